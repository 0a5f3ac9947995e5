/**
 * What a cache hit reads, for every long-lived key of a registry: the promise fulfilled with
 * its token and the time until which handing it back is all a `get` would do (its refresh
 * time), in dense arrays indexed by the key's slot. A caller that memoises hits itself (the
 * credential's Map from scope strings to promises) is told of every hit that appears or goes
 * (`onHit`), and checks one time for all of them (`current`): the earliest deadline of the
 * hits it was given, kept by a binary heap. So its hit touches what a bare `Map` of promises
 * touches, the string, the Map's table and the promise, and no per-key deadline (issue #12:
 * with 10,000 keys read round-robin, each further object a hit reads is a cache miss). A slot
 * is given to another key only once released, its hit withdrawn first.
 */
import type { AccessToken } from "@azure/core-auth";

/** A slot that no key holds (claims keys, which are never a cache hit). */
export const NO_SLOT = -1;

/** Tells a memo of hits that `key`'s hit is now `promise`, or that it has none (`undefined`). */
export type OnHit<K> = (key: K, promise: Promise<AccessToken> | undefined) => void;

/** The dense table of cache hits of one registry. */
export class HitTable<K> {
  #deadlines = new Float64Array(64);
  /** Packed: never holey, so a read is a bounds check and a load. */
  readonly #promises: (Promise<AccessToken> | undefined)[] = [];
  /** The key of each slot, for `onHit`. */
  readonly #keys: (K | undefined)[] = [];
  readonly #free: number[] = [];
  readonly #onHit: OnHit<K> | undefined;
  readonly #now: () => number;
  /** A min-heap of (deadline, slot) of the hits given to `onHit`; stale nodes are skipped. */
  #heapAt = new Float64Array(64);
  #heapSlot = new Int32Array(64);
  #heapSize = 0;
  /** The earliest deadline in the heap (`Infinity` when it is empty). */
  #earliest = Number.POSITIVE_INFINITY;

  /**
   * @param onHit - told of every hit a caller may memoise; without it, no heap is kept
   * @param now - the clock the deadlines are on, for the heap's sweep on `set`
   */
  constructor(onHit?: OnHit<K>, now: () => number = () => Number.NEGATIVE_INFINITY) {
    this.#onHit = onHit;
    this.#now = now;
  }

  /** A slot for a new key, holding no hit. */
  allocate(key: K): number {
    const reused = this.#free.pop();
    if (reused !== undefined) {
      this.#keys[reused] = key;
      return reused;
    }
    const slot = this.#promises.length;
    if (slot === this.#deadlines.length) {
      const grown = new Float64Array(slot * 2);
      grown.set(this.#deadlines);
      this.#deadlines = grown;
    }
    this.#promises.push(undefined);
    this.#keys.push(key);
    return slot;
  }

  /** Makes `promise` the hit of `slot` until `deadline` (on the registry's deadline clock). */
  set(slot: number, promise: Promise<AccessToken>, deadline: number): void {
    if (slot === NO_SLOT) return;
    this.#promises[slot] = promise;
    this.#deadlines[slot] = deadline;
    if (this.#onHit === undefined) return;
    // The sweep of the slow path: deadlines that passed with nobody asking leave the heap.
    const now = this.#now();
    if (now >= this.#earliest) this.#expire(now);
    if (deadline <= now) {
      this.#notify(slot, undefined);
      return;
    }
    this.#push(deadline, slot);
    this.#notify(slot, promise);
  }

  /** `slot` holds no hit any longer: its callers go to the slow path. */
  clear(slot: number): void {
    if (slot === NO_SLOT || this.#promises[slot] === undefined) return;
    this.#promises[slot] = undefined;
    this.#notify(slot, undefined);
  }

  /** Clears `slot` and gives it back for a new key. */
  release(slot: number): void {
    if (slot === NO_SLOT) return;
    this.clear(slot);
    this.#keys[slot] = undefined;
    this.#free.push(slot);
  }

  /** Clears every slot (the registry closed): no slot is given out again, nobody is told. */
  clearAll(): void {
    // Not a floating promise: the array's promises are dropped, none is made.
    // eslint-disable-next-line @typescript-eslint/no-floating-promises
    this.#promises.fill(undefined);
    this.#keys.fill(undefined);
    this.#heapSize = 0;
    this.#earliest = Number.POSITIVE_INFINITY;
  }

  /** The promise of `slot` when `now` is before its deadline, else `undefined`. */
  hit(slot: number, now: number): Promise<AccessToken> | undefined {
    const promise = this.#promises[slot];
    return promise !== undefined && now < (this.#deadlines[slot] as number) ? promise : undefined;
  }

  /**
   * Whether every hit given to `onHit` (and not withdrawn since) is still a hit at `now`.
   * When not, those whose deadline passed are withdrawn first (`onHit(key, undefined)`), so
   * what the caller still holds is current: it may look again.
   */
  current(now: number): boolean {
    if (now < this.#earliest) return true;
    this.#expire(now);
    return false;
  }

  /** Withdraws every hit whose deadline is at or before `now`. */
  #expire(now: number): void {
    while (this.#heapSize > 0 && (this.#heapAt[0] as number) <= now) {
      const at = this.#heapAt[0] as number;
      const slot = this.#heapSlot[0] as number;
      this.#pop();
      // A node is stale once its slot was refreshed (a later deadline) or cleared.
      if (this.#promises[slot] !== undefined && this.#deadlines[slot] === at) {
        this.#notify(slot, undefined);
      }
    }
    this.#earliest = this.#heapSize > 0 ? (this.#heapAt[0] as number) : Number.POSITIVE_INFINITY;
  }

  #notify(slot: number, promise: Promise<AccessToken> | undefined): void {
    const key = this.#keys[slot];
    if (this.#onHit === undefined || key === undefined) return;
    try {
      this.#onHit(key, promise);
    } catch {
      // A throwing callback must not break token delivery.
    }
  }

  #push(at: number, slot: number): void {
    if (this.#heapSize === this.#heapAt.length) {
      const at2 = new Float64Array(this.#heapSize * 2);
      at2.set(this.#heapAt);
      this.#heapAt = at2;
      const slot2 = new Int32Array(this.#heapSize * 2);
      slot2.set(this.#heapSlot);
      this.#heapSlot = slot2;
    }
    // Sift up.
    let i = this.#heapSize;
    this.#heapSize += 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((this.#heapAt[parent] as number) <= at) break;
      this.#heapAt[i] = this.#heapAt[parent] as number;
      this.#heapSlot[i] = this.#heapSlot[parent] as number;
      i = parent;
    }
    this.#heapAt[i] = at;
    this.#heapSlot[i] = slot;
    if (at < this.#earliest) this.#earliest = at;
  }

  #pop(): void {
    this.#heapSize -= 1;
    const size = this.#heapSize;
    if (size === 0) return;
    const at = this.#heapAt[size] as number;
    const slot = this.#heapSlot[size] as number;
    // Sift down the last node from the root.
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (
        child + 1 < size &&
        (this.#heapAt[child + 1] as number) < (this.#heapAt[child] as number)
      ) {
        child += 1;
      }
      if ((this.#heapAt[child] as number) >= at) break;
      this.#heapAt[i] = this.#heapAt[child] as number;
      this.#heapSlot[i] = this.#heapSlot[child] as number;
      i = child;
    }
    this.#heapAt[i] = at;
    this.#heapSlot[i] = slot;
  }
}
