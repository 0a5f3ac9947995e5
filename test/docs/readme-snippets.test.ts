/**
 * Every TypeScript snippet in README.md type-checks against the public API, imported by the
 * package name as a user would (`rx-identity`, `rx-identity/testing`).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));
const readme = readFileSync(join(root, "README.md"), "utf8");
const snippets = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");
const folder = join(root, ".tmp", `readme-snippets-${process.pid}`);

afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe("README snippets", () => {
  it("has TypeScript snippets to check", () => {
    expect(snippets.length).toBeGreaterThanOrEqual(5);
  });

  // A real tsc run over every snippet: about 9 s on a quiet machine, 30+ s on a loaded one.
  it("type-check against the public API", { timeout: 120_000 }, () => {
    mkdirSync(folder, { recursive: true });
    const files = snippets.map((code, index) => {
      const file = join(folder, `snippet-${index + 1}.ts`);
      // `export {}` makes each snippet a module, so top-level await and names stay local.
      writeFileSync(file, `${code}\nexport {};\n`);
      return file;
    });
    const config = ts.getParsedCommandLineOfConfigFile(
      join(root, "tsconfig.json"),
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined },
    );
    expect(config).toBeDefined();
    // Snippets are fragments: a value set up and not used again is fine there.
    const program = ts.createProgram(files, {
      ...config!.options,
      noEmit: true,
      noUnusedLocals: false,
    });
    const diagnostics = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file !== undefined && files.includes(d.file.fileName))
      .map((d) => {
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        const snippet = d.file!.fileName.replace(/^.*snippet-/, "snippet ");
        return `${snippet}:${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
      });
    expect(diagnostics).toEqual([]);
  });
});
