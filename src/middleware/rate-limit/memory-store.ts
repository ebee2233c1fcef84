/**
 * The memory store: every bucket of one rate_limit entry lives in the
 * entry's SharedArrayBuffer (middleware/shared-memory.ts), so all worker
 * threads of the process take from the same buckets and the limit is
 * exact: a burst of 50 lets 50 requests through, whichever thread each
 * lands on, not 50 per thread.
 *
 * The table is a fixed-size, set-associative hash table (open addressing
 * with the probe confined to a set of 8 slots): a key's two 32-bit hashes
 * (seeded; the seed is chosen once per table by whichever thread comes
 * first) pick its set and identify it within the set, so a slot stores the
 * 64-bit identity and the bucket's TAT (gcra.ts), never the key. One spin
 * lock per set (Atomics compare-and-swap) covers the lookup, the decision
 * and the write: a key can never get two slots, and two threads can never
 * both take its last request.
 *
 * Bounded memory: `max_keys` slots allocated once. A key that has no slot
 * takes the one of its set whose bucket is fullest (the smallest TAT). A
 * bucket that has refilled is the same as no bucket (gcra.ts), so reusing
 * it changes no decision; only when all 8 buckets of the set are still
 * refilling is the fullest of them evicted — it loses least, and its key
 * starts over with a full bucket — and that is counted and warned about
 * (raise `max_keys`). A flood of distinct keys therefore never grows
 * memory; the most it can do is give the keys it evicts their burst again.
 *
 * Cost: a hash over the key's characters, one uncontended CAS, a scan of 8
 * slots, one Date.now(): no allocation but the Decision.
 */
import { randomInt } from 'node:crypto';
import { mix32 } from '../../balancer/hash';
import type { Decision, Gcra } from './gcra';
import type { KeyKind, RateLimitStore } from './store';
import type { OccasionalWarning } from './occasional-warning';

const WAYS = 8;
/** A seed word, then padding to a cache line so the TATs of a set share one. */
const HEADER_BYTES = 64;
/** Per slot: its TAT (f64) and its identity (two i32). */
const SLOT_BYTES = 16;
const LOCK_BYTES = 4;
/**
 * CAS attempts before a waiter sleeps: a lock is held for well under a
 * microsecond, so spinning wins unless the holder's thread was preempted;
 * then short sleeps give the CPU back to it.
 */
const SPINS_BEFORE_SLEEP = 100;
const SLEEP_MS = 0.05;

/** Slots for `maxKeys`: whole sets, a power of two of them (the set is picked by a mask). */
function setCount(maxKeys: number): number {
  let sets = 1;
  while (sets * WAYS < maxKeys) sets *= 2;
  return sets;
}

export class MemoryStore implements RateLimitStore {
  /** Bytes of shared memory a table of `maxKeys` keys needs. */
  static bytesFor(maxKeys: number): number {
    const sets = setCount(maxKeys);
    return HEADER_BYTES + sets * WAYS * SLOT_BYTES + sets * LOCK_BYTES;
  }

  private readonly setMask: number;
  private readonly seed: number;
  private readonly tats: Float64Array;
  private readonly ids: Int32Array;
  private readonly locks: Int32Array;
  /** The two hashes of the key being decided (fields, not a returned pair: no allocation). */
  private hash1 = 0;
  private hash2 = 0;
  evictions = 0;
  /** Never fails: decided in this thread. */
  readonly failures = 0;

  constructor(
    shared: SharedArrayBuffer,
    maxKeys: number,
    private readonly gcra: Gcra,
    private readonly tableFull: OccasionalWarning,
  ) {
    if (shared.byteLength !== MemoryStore.bytesFor(maxKeys)) throw new Error(`rate_limit: shared memory of ${shared.byteLength} bytes, expected ${MemoryStore.bytesFor(maxKeys)}`);
    const sets = setCount(maxKeys);
    const slots = sets * WAYS;
    this.setMask = sets - 1;
    this.tats = new Float64Array(shared, HEADER_BYTES, slots);
    this.ids = new Int32Array(shared, HEADER_BYTES + slots * Float64Array.BYTES_PER_ELEMENT, slots * 2);
    this.locks = new Int32Array(shared, HEADER_BYTES + slots * SLOT_BYTES, sets);
    const header = new Int32Array(shared, 0, 1);
    // The first thread to get here chooses the seed; 0 means "not chosen yet".
    Atomics.compareExchange(header, 0, 0, randomInt(1, 2 ** 31 - 1));
    this.seed = Atomics.load(header, 0);
  }

  take(key: string, kind: KeyKind): Decision {
    this.hash(key, kind);
    const hash1 = this.hash1;
    const hash2 = this.hash2;
    const set = hash1 & this.setMask;
    const first = set * WAYS;
    const tats = this.tats;
    const ids = this.ids;
    const now = Date.now();
    this.lock(set);
    let slot = -1;
    let fullest = first;
    for (let s = first; s < first + WAYS; s++) {
      if (ids[s * 2] === hash1 && ids[s * 2 + 1] === hash2) {
        slot = s;
        break;
      }
      if (tats[s] < tats[fullest]) fullest = s;
    }
    let evicted = false;
    if (slot < 0) {
      slot = fullest;
      evicted = tats[slot] > now;
      ids[slot * 2] = hash1;
      ids[slot * 2 + 1] = hash2;
      tats[slot] = 0;
    }
    const decision = this.gcra.take(tats[slot], now);
    tats[slot] = now + decision.resetMs;
    Atomics.store(this.locks, set, 0);
    if (evicted) {
      this.evictions++;
      this.tableFull.warn('rate_limit: every slot of a set holds a bucket still refilling; the fullest was evicted (its key starts over with a full bucket): raise max_keys');
    }
    return decision;
  }

  close(): void {
    // Nothing held: the memory belongs to the entry, kept across reloads.
  }

  private lock(set: number): void {
    const locks = this.locks;
    for (let spins = 0; Atomics.compareExchange(locks, set, 0, 1) !== 0; spins++) {
      if (spins >= SPINS_BEFORE_SLEEP) Atomics.wait(locks, set, 1, SLEEP_MS);
    }
  }

  /**
   * Two 32-bit hashes of the key in one pass: FNV-1a and a second lane with
   * murmur2's multiplier, each finished by fmix32, started from the table's
   * seed (and the key's kind, so a header value never shares a bucket with
   * the same text as a client IP).
   */
  private hash(key: string, kind: KeyKind): void {
    let a = this.seed ^ (kind === 'ip' ? 0 : 0x5f3759df);
    let b = ~a;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
    this.hash1 = mix32(a) | 0;
    this.hash2 = mix32(b ^ (b >>> 15)) | 0;
  }
}
