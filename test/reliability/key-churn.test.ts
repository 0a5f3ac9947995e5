/**
 * A virtual day of 10,000 keys coming and going (some refused, most read once and left to
 * expire, some subscribed for two hours): what the registry keeps follows the keys alive, not
 * the keys ever seen. The soak (`npm run test:soak`) runs the same day with 100,000 keys.
 */
import { describe, it } from "vitest";
import { expectFlat } from "./support/expect-flat.js";
import { churnForADay } from "./support/key-churn.js";

describe("key churn", () => {
  it("a virtual day of 10,000 keys ends with the entries, timers and heap of its live keys", async () => {
    const figures = await churnForADay(10_000);

    expectFlat(figures);
  }, 60_000);
});
