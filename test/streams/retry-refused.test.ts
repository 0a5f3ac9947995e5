/**
 * `retryRefused()`: the back-off after a permanent refusal ends when what was refused has
 * changed (ClientSecretCredential calls it when a new client secret arrives); a transient
 * failure's schedule and keys never refused are left alone.
 */
import { describe, expect, it } from "vitest";
import { createTokenRegistry, type TokenKey } from "../../src/streams/index.js";
import { FakeSource, VirtualClock, classify } from "./harness.js";

const HOUR = 3_600_000;
const key = (id: string): TokenKey => ({ id });

async function heldAndDue(id: string) {
  const clock = new VirtualClock();
  const source = new FakeSource(clock);
  const registry = createTokenRegistry<TokenKey>({
    acquire: source.acquire,
    classify,
    scheduler: clock,
    random: () => 0,
  });
  source.script.push({ kind: "token", lifetimeMs: HOUR });
  const first = registry.get(key(id));
  await clock.advance(100);
  await first;
  // Past its refresh time: the next get serves the token and starts a refresh.
  await clock.advance(56 * 60_000);
  return { clock, source, registry };
}

describe("createTokenRegistry: retryRefused", () => {
  it("ends the back-off of a refused refresh: the next get refreshes at once", async () => {
    const { clock, source, registry } = await heldAndDue("refused");
    source.script.push({ kind: "permanent" });
    await expect(registry.get(key("refused"))).resolves.toMatchObject({ token: "refused#1" });
    await clock.advance(100);
    // Inside the back-off, a get sends nothing.
    await registry.get(key("refused"));
    await clock.advance(100);
    expect(source.countFor("refused")).toBe(2);

    expect(registry.retryRefused()).toBe(1);
    await registry.get(key("refused"));
    await clock.advance(100);

    expect(source.countFor("refused")).toBe(3);
    await expect(registry.get(key("refused"))).resolves.toMatchObject({ token: "refused#3" });
    // Nothing is refused any longer: a second call unblocks nothing.
    expect(registry.retryRefused()).toBe(0);
    await registry.close();
  });

  it("refreshes a subscribed key at once, with no get", async () => {
    const { clock, source, registry } = await heldAndDue("subscribed");
    const tokens: string[] = [];
    source.script.push({ kind: "permanent" });
    const subscription = registry.stream(key("subscribed")).subscribe((t) => tokens.push(t.token));
    await clock.advance(100);
    expect(source.countFor("subscribed")).toBe(2);

    registry.retryRefused();
    await clock.advance(100);

    expect(tokens).toEqual(["subscribed#1", "subscribed#3"]);
    subscription.unsubscribe();
    await registry.close();
  });

  it("leaves a transient failure's retries on their schedule", async () => {
    const { clock, source, registry } = await heldAndDue("transient");
    source.script.push(...Array.from({ length: 50 }, () => ({ kind: "transient" }) as const));
    await registry.get(key("transient"));
    await clock.advance(100);
    const before = source.countFor("transient");

    expect(registry.retryRefused()).toBe(0);
    await clock.advance(1);

    expect(source.countFor("transient")).toBe(before);
    await registry.close();
  });
});
