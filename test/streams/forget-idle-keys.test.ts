/**
 * Memory follows the live keys: an entry with no usable token, no acquisition in flight and no
 * subscriber is forgotten (at once after a refusal; once its token expired, by the sweep new
 * keys pay for), while a usable token and its permanent-failure back-off are kept.
 */
import { describe, expect, it } from "vitest";
import { createTokenRegistry, type TokenKey } from "../../src/streams/index.js";
import { FakeSource, VirtualClock, classify } from "./harness.js";

const HOUR = 3_600_000;

function setup(random: () => number = () => 0) {
  const clock = new VirtualClock();
  const source = new FakeSource(clock);
  const forgotten: string[] = [];
  const registry = createTokenRegistry<TokenKey>({
    acquire: source.acquire,
    classify,
    scheduler: clock,
    random,
    onForget: (key) => forgotten.push(key.id),
  });
  return { clock, source, registry, forgotten };
}

const key = (id: string): TokenKey => ({ id });

describe("createTokenRegistry: forgetting what holds nothing", () => {
  it("forgets a refused key at once, and asks again on its next get", async () => {
    const { clock, source, registry, forgotten } = setup();
    source.script.push({ kind: "permanent" });
    const refused = registry.get(key("refused"));
    const rejected = expect(refused).rejects.toThrow("invalid_client");

    await clock.advance(100);

    await rejected;
    expect(forgotten).toEqual(["refused"]);
    const again = registry.get(key("refused"));
    await clock.advance(100);
    await expect(again).resolves.toMatchObject({ token: "refused#2" });
    expect(source.countFor("refused")).toBe(2);
  });

  it("forgets keys whose tokens expired unused as new keys arrive, and keeps the live ones", async () => {
    const { clock, registry, forgotten } = setup();
    const old = Array.from({ length: 20 }, (_, i) => key(`old-${i}`));
    const gets = old.map((k) => registry.get(k));
    await clock.advance(100);
    await Promise.all(gets);
    const live = key("live");
    const subscribed = key("subscribed");
    const held = registry.get(live);
    const subscription = registry.stream(subscribed).subscribe();
    await clock.advance(100);
    await held;
    await clock.advance(HOUR);

    // Twenty new keys (ten would do: each insertion checks four entries) sweep the old ones.
    const fresh = Array.from({ length: 20 }, (_, i) => registry.get(key(`new-${i}`)));
    await clock.advance(100);
    await Promise.all(fresh);

    expect(forgotten.filter((id) => id.startsWith("old-")).sort()).toEqual(
      old.map((k) => k.id).sort(),
    );
    expect(forgotten).not.toContain("subscribed");
    expect(forgotten.filter((id) => id.startsWith("new-"))).toEqual([]);
    subscription.unsubscribe();
    await registry.close();
  });

  it("keeps a key whose token is usable, and with it the back-off after a permanent failure", async () => {
    const { clock, source, registry, forgotten } = setup();
    const served = key("served");
    source.script.push({ kind: "token", lifetimeMs: HOUR });
    const first = registry.get(served);
    await clock.advance(100);
    await first;
    // Past its refresh time (55 min): the next get serves the token and refreshes, refused.
    await clock.advance(56 * 60_000);
    source.script.push({ kind: "permanent" });
    await expect(registry.get(served)).resolves.toMatchObject({ token: "served#1" });
    await clock.advance(100);
    expect(source.countFor("served")).toBe(2);

    // Many new keys sweep the map; the refused refresh must not be retried at once.
    const others = Array.from({ length: 40 }, (_, i) => registry.get(key(`other-${i}`)));
    await clock.advance(100);
    await Promise.all(others);
    await expect(registry.get(served)).resolves.toMatchObject({ token: "served#1" });
    await clock.advance(100);

    expect(forgotten).not.toContain("served");
    expect(source.countFor("served")).toBe(2);
    await registry.close();
  });

  it("keeps a key with an acquisition in flight or a subscriber, and forgets it after", async () => {
    const { clock, source, registry, forgotten } = setup();
    source.script.push({ kind: "permanent" });
    const busy = key("busy");
    const errors: unknown[] = [];
    const subscription = registry.stream(busy).subscribe({ error: (e) => errors.push(e) });
    const sweepers = Array.from({ length: 10 }, (_, i) => registry.get(key(`sweeper-${i}`)));
    expect(forgotten).toEqual([]);

    await clock.advance(100);
    await Promise.all(sweepers);

    expect(errors).toHaveLength(1);
    expect(forgotten).toEqual(["busy"]);
    subscription.unsubscribe();
    await registry.close();
  });

  it("a get with an already aborted signal leaves nothing behind", async () => {
    const { registry, forgotten, source } = setup();
    const aborted = AbortSignal.abort();

    await expect(registry.get(key("aborted"), { signal: aborted })).rejects.toThrow("aborted");

    expect(forgotten).toEqual(["aborted"]);
    expect(source.requests).toHaveLength(0);
    await registry.close();
  });

  it("serves one key object's fresh token from another object with the same id, with no refresh", async () => {
    const { clock, source, registry } = setup();
    const first = registry.get(key("same"));
    await clock.advance(100);
    await first;

    const token = await registry.get(key("same"));

    await clock.advance(100);
    expect(token.token).toBe("same#1");
    expect(source.countFor("same")).toBe(1);
    await registry.close();
  });

  it("a key object used with two registries gets each registry's own token", async () => {
    const one = setup();
    const two = setup();
    const shared = key("shared");
    const fromOne = one.registry.get(shared);
    const fromTwo = two.registry.get(shared);
    await Promise.all([one.clock.advance(100), two.clock.advance(100)]);
    await Promise.all([fromOne, fromTwo]);

    await expect(one.registry.get(shared)).resolves.toBe(await fromOne);
    await expect(two.registry.get(shared)).resolves.toBe(await fromTwo);
    expect((await fromOne) === (await fromTwo)).toBe(false);
    await one.registry.close();
    await two.registry.close();
  });

  it("refreshAfterTimestamp is a whole number of milliseconds, jitter or not", async () => {
    const { clock, registry } = setup(() => 0.3131);
    clock.time = 1_796_115_000_000.25;
    const pending = [registry.get(key("jittered")), registry.get(key("other"))];
    await clock.advance(100);

    for (const token of await Promise.all(pending)) {
      expect(Number.isInteger(token.refreshAfterTimestamp)).toBe(true);
      expect(token.refreshAfterTimestamp).toBeLessThan(token.expiresOnTimestamp);
    }
  });
});
