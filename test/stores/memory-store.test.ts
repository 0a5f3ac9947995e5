import { firstValueFrom, take, toArray } from "rxjs";
import { describe, expect, test } from "vitest";
import { createMemoryTokenStore } from "../../src/stores/index.js";

describe("createMemoryTokenStore", () => {
  test("round-trips entries and forgets them at expiry on its clock", async () => {
    let now = 1_000;
    const store = createMemoryTokenStore({ now: () => now });

    await store.write("nocae.a", { token: "t1", expiresOnTimestamp: 2_000 });

    expect(await store.read("nocae.a")).toEqual({ token: "t1", expiresOnTimestamp: 2_000 });
    expect(await store.read("nocae.b")).toBeUndefined();
    now = 2_000;
    expect(await store.read("nocae.a")).toBeUndefined();
  });

  test("does not keep an already expired entry, and deletes", async () => {
    const store = createMemoryTokenStore({ now: () => 5_000 });

    await store.write("nocae.a", { token: "old", expiresOnTimestamp: 4_000 });
    await store.write("nocae.b", { token: "t", expiresOnTimestamp: 9_000 });
    await store.delete("nocae.b");

    expect(await store.read("nocae.a")).toBeUndefined();
    expect(await store.read("nocae.b")).toBeUndefined();
  });

  test("watch delivers writes and deletes of one key, or of all", async () => {
    const store = createMemoryTokenStore({ now: () => 0 });
    const one = firstValueFrom(store.watch!("nocae.b"));
    const all = firstValueFrom(store.watch!().pipe(take(3), toArray()));

    await store.write("nocae.a", { token: "a", expiresOnTimestamp: 10 });
    await store.write("nocae.b", { token: "b", expiresOnTimestamp: 10 });
    await store.delete("nocae.a");

    expect(await one).toEqual({ key: "nocae.b", entry: { token: "b", expiresOnTimestamp: 10 } });
    expect((await all).map((u) => [u.key, u.entry?.token])).toEqual([
      ["nocae.a", "a"],
      ["nocae.b", "b"],
      ["nocae.a", undefined],
    ]);
  });

  test("a lease is exclusive, lapses after its TTL, and a lapsed holder cannot release the next one", async () => {
    let now = 0;
    const store = createMemoryTokenStore({ now: () => now });

    const first = await store.lease!("nocae.a", 1_000);
    const blocked = await store.lease!("nocae.a", 1_000);
    const otherKey = await store.lease!("nocae.b", 1_000);
    now = 1_000;
    const second = await store.lease!("nocae.a", 1_000);
    await first!.release();
    const stillBlocked = await store.lease!("nocae.a", 1_000);
    await second!.release();
    const third = await store.lease!("nocae.a", 1_000);

    expect(first).not.toBeNull();
    expect(blocked).toBeNull();
    expect(otherKey).not.toBeNull();
    expect(second).not.toBeNull();
    expect(stillBlocked).toBeNull();
    expect(third).not.toBeNull();
  });

  test("close completes watchers, forgets tokens, and later calls reject", async () => {
    const store = createMemoryTokenStore({ now: () => 0 });
    await store.write("nocae.a", { token: "a", expiresOnTimestamp: 10 });
    const watched = firstValueFrom(store.watch!().pipe(toArray()));

    await store.close();
    await store.close();

    expect(await watched).toEqual([]);
    await expect(store.read("nocae.a")).rejects.toThrow(/closed/);
  });
});
