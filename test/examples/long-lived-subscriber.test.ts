import { describe, expect, it } from "vitest";
import { main } from "../../examples/long-lived-subscriber/index.js";

// Real time: the resource server checks `exp` against the wall clock. Nothing below asserts
// on timing, only on what the service observed.
describe("examples/long-lived-subscriber", () => {
  it("reacts to every rotation, never calls with a refused token, and makes one token request per token", async () => {
    const lines: string[] = [];

    const result = await main({
      lifetimeSeconds: 3,
      refreshInSeconds: 1,
      durationMs: 4_000,
      log: (line) => lines.push(line),
    });

    expect(result.tokensReceived).toBeGreaterThanOrEqual(3);
    expect(result.calls).toBeGreaterThan(10);
    expect(result.failedCalls).toBe(0);
    expect(result.streamErrors).toBe(0);
    expect(result.tokenRequests).toBe(result.tokensReceived);
    expect(lines.filter((line) => line.includes("rotated to"))).toHaveLength(
      result.tokensReceived - 1,
    );
    expect(lines.join("\n")).not.toMatch(/eyJ[\w-]{20,}/);
  });
});
