import { describe, expect, it } from "vitest";
import { cleanEnv, lines, startCli } from "./run-cli.js";

describe("npm start", () => {
  it("runs the demo end to end, ends by itself with a summary, exit code 0 and a burst answered by one request", async () => {
    const npm = process.platform === "win32" ? "npm.cmd" : "npm";

    const result = await startCli(["start", "--", "--duration", "8"], cleanEnv(), [npm]).exited;

    expect(result.code, result.stderr).toBe(0);
    const output = lines(result.stdout);
    const summary = output.find((line) => line.includes("summary"));
    expect(summary).toMatch(/burst of 100 getToken calls -> 1 request;/);
    expect(summary).toMatch(/0 subscriber errors/);
    expect(output.some((line) => /token\s+storage #1 eyJ\w{3}…\(\d+ chars\)/.test(line))).toBe(
      true,
    );
    expect(
      output.some((line) =>
        /outage\s+over: [1-9]\d* requests? answered 503, subscribers saw 0 errors/.test(line),
      ),
    ).toBe(true);
    expect(output.some((line) => /claims\s+.*1 request carrying claims/.test(line))).toBe(true);
    // credential.status() mid-outage: the held token is still usable, its refresh is failing.
    expect(
      output.some((line) =>
        /status\s+https:\/\/storage\.azure\.com\/\.default: usable for \S+, .*refresh failed [1-9]\d* times? \(transient AuthenticationError \(status 503/.test(
          line,
        ),
      ),
    ).toBe(true);
    // Tokens are only ever shown redacted.
    expect(result.stdout).not.toMatch(/eyJ[\w-]{20,}/);
    // No colour when stdout is not a terminal.
    expect(result.stdout).not.toContain("\u001b[");
  });
});
