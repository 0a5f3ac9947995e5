import { describe, expect, it } from "vitest";
import { main } from "../../examples/secret-rotation/index.js";

// Real time and real files: the secret is rotated on disk the way the kubelet does it
// (a `..data` symlink swapped atomically) and followed by `secretFromFile`'s watcher. Nothing
// below asserts on timing, only on what the subscriber and the emulator saw.
describe("examples/secret-rotation", () => {
  it("keeps a token$ subscriber working across rotations whose old secret is revoked right after the new one is mounted", async () => {
    const lines: string[] = [];

    const result = await main({ rotations: 2, log: (line) => lines.push(line) });

    expect(result.streamErrors).toBe(0);
    // The first token, then two refreshes after each rotation (the skip(2) in the example).
    expect(result.tokensReceived).toBeGreaterThanOrEqual(1 + 2 * 2);
    expect(result.tokenRequests - result.refusedRequests).toBe(result.tokensReceived);
    expect(lines.filter((line) => line.includes("old secret revoked"))).toHaveLength(2);
    expect(lines.at(-1)).toMatch(/^secret-rotation: \d+ tokens across 2 rotations, 0 errors;/);
    expect(lines.join("\n")).not.toMatch(/eyJ[\w-]{20,}/);
  });
});
