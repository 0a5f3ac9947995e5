/**
 * What a cache hit reads, for every long-lived key of a registry, in two dense arrays indexed
 * by the key's slot: the promise fulfilled with its token and the time until which handing it
 * back is all a `get` would do. With 100,000 keys read round-robin, each object a hit touches
 * is a cache miss (the Map's bucket, the entry, the entry's boxed deadline...); these arrays
 * are 12 bytes a key and stay in the CPU cache, so a hit costs about what the caller's own
 * Map lookup of the slot costs (issue #12). A slot is given back only once the registry told
 * its caller the key was forgotten (`onForget`), so no caller holds it when it is reused.
 */
import type { AccessToken } from "@azure/core-auth";

/** A slot that no key holds (claims keys, which are never a cache hit). */
export const NO_SLOT = -1;

/** The dense table of cache hits of one registry. */
export class HitTable {
  #deadlines = new Float64Array(64);
  /** Packed: never holey, so a read is a bounds check and a load. */
  readonly #promises: (Promise<AccessToken> | undefined)[] = [];
  readonly #free: number[] = [];

  /** A slot for a new key, holding no hit. */
  allocate(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    const slot = this.#promises.length;
    if (slot === this.#deadlines.length) {
      const grown = new Float64Array(slot * 2);
      grown.set(this.#deadlines);
      this.#deadlines = grown;
    }
    this.#promises.push(undefined);
    return slot;
  }

  /** Makes `promise` the hit of `slot` until `deadline` (on the registry's deadline clock). */
  set(slot: number, promise: Promise<AccessToken>, deadline: number): void {
    if (slot === NO_SLOT) return;
    this.#promises[slot] = promise;
    this.#deadlines[slot] = deadline;
  }

  /** `slot` holds no hit any longer: its callers go to the slow path. */
  clear(slot: number): void {
    if (slot !== NO_SLOT) this.#promises[slot] = undefined;
  }

  /** Clears `slot` and gives it back for a new key. */
  release(slot: number): void {
    if (slot === NO_SLOT) return;
    this.#promises[slot] = undefined;
    this.#free.push(slot);
  }

  /** Clears every slot (the registry closed): no slot is given out again. */
  clearAll(): void {
    // Not a floating promise: the array's promises are dropped, none is made.
    // eslint-disable-next-line @typescript-eslint/no-floating-promises
    this.#promises.fill(undefined);
  }

  /** The promise of `slot` when `now` is before its deadline, else `undefined`. */
  hit(slot: number, now: number): Promise<AccessToken> | undefined {
    const promise = this.#promises[slot];
    return promise !== undefined && now < (this.#deadlines[slot] as number) ? promise : undefined;
  }
}
