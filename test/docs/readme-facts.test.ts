/**
 * The README checked against the program and the repository: the files it names exist (and
 * the documents it points to ship in the package), `startEntraEmulator`'s options are all
 * documented, and the demo's sample summary has the shape the demo prints.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../cli/run-cli.js";

const readme = readFileSync(join(projectRoot, "README.md"), "utf8");
const packageJson = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as {
  files: string[];
};

describe("README", () => {
  it("names only files a clone has, and documents that ship with the package", () => {
    const paths = [
      ...readme.matchAll(
        // Paths from the repository root, and root documents; a bare `file.ts` names a
        // file of the folder the sentence is about.
        /`((?:src|test|examples|bench|dist|\.ci)\/[^`\s]*|[\w.-]+\.(?:md|json))`/g,
      ),
    ].map((match) => match[1]!);
    expect(paths.length).toBeGreaterThan(5);

    const missing = paths.filter((path) => !existsSync(join(projectRoot, path)));
    const unshipped = paths.filter(
      (path) => path.endsWith(".md") && !packageJson.files.includes(path),
    );

    expect(missing).toEqual([]);
    expect(unshipped).toEqual([]);
  });

  it("documents every option of startEntraEmulator", () => {
    const types = readFileSync(join(projectRoot, "src/testing/emulator/types.ts"), "utf8");
    const block = /export interface EntraEmulatorOptions \{([\s\S]*?)\n\}/.exec(types)?.[1] ?? "";
    const options = [...block.matchAll(/^ {2}readonly (\w+)\?/gm)].map((match) => match[1]!);
    expect(options.length).toBeGreaterThan(3);

    const undocumented = options.filter((option) => !readme.includes(`\`${option}\``));

    expect(undocumented).toEqual([]);
  });

  it("shows a demo summary line of the shape the demo prints", () => {
    const demo = readFileSync(join(projectRoot, "src/cli/commands/demo.ts"), "utf8");
    expect(demo).toContain("tokens delivered to 2 subscribers; ");

    const summary = readme.split("\n").find((line) => /\] summary +ran /.test(line));

    expect(summary).toMatch(
      /^\[ *\d+\.\ds\] summary +ran \d+\.\ds: \d+ tokens delivered to 2 subscribers; \d+ token requests \(\d+ failed during the outage\); burst of \d+ getToken calls -> 1 request; \d+ claims requests?; 0 subscriber errors$/,
    );
  });
});
