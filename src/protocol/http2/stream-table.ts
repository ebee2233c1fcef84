/**
 * A workaround for a garbage-collection pathology of node:http2 when streams
 * are multiplexed. Each session keeps its open streams in a Map
 * (`session[kState].streams`) and its not-yet-numbered ones in a Set. With
 * steady stream churn V8 rebuilds those hash tables every few streams, and a
 * replaced table stays linked to its successor (for live iterators). Once one
 * of them is in the old generation, minor GCs treat what it links to as live:
 * closed streams, with everything that hangs from them, are promoted and wait
 * for the next full GC. Measured with h2load -c16 -m10 through zproxy: 150 MB
 * promoted in 4 s, scavenges three times longer, a full GC every ~300 ms; with
 * these tables in their place, 5 MB, and about 15 % less CPU per request.
 * A bare node:http2 server shows the same, and no promotion at -m1.
 *
 * The replacements are arrays (their slots are cleared, and rebuilt arrays
 * link to nothing). Node 20 calls get, set, delete, size and forEach on the
 * Map, and add, delete, size and forEach on the Set; the rest of the read
 * API (has, iteration) is there too, so a Node.js that reads its tables
 * another way still works. They are installed only where a new session's
 * state looks as expected (an empty Map and Set); on a Node.js whose
 * internals differ, nothing changes.
 */
import type { Http2Session } from 'node:http2';
import { types } from 'node:util';

/**
 * Compaction runs once holes outnumber entries (and there are more than this
 * many slots): each deletion pays for it, amortised, and no array is rebuilt
 * while a session has only a few streams.
 */
const COMPACT_AFTER = 32;

/**
 * The session's streams by id. Ids are kept ascending, so a lookup is a
 * binary search, and forEach goes in the order streams were opened as long as
 * ids grow: they do on zproxy's sessions, which neither push nor accept
 * pushes (a pushed stream's even id would go to its place, ahead of
 * later-opened odd ones). A deleted entry leaves a hole (its value cleared) until the
 * arrays are compacted in place: a session may hold thousands of streams
 * (requests queued on an upstream beyond its concurrency limit), and
 * shifting the arrays on every delete would cost O(n) each.
 */
export class StreamTable<V> {
  private readonly ids: number[] = [];
  private readonly items: (V | undefined)[] = [];
  private live = 0;

  get size(): number {
    return this.live;
  }

  /** Index of `id` (a hole, possibly), or -(insertion point) - 1. */
  private find(id: number): number {
    const ids = this.ids;
    let low = 0;
    let high = ids.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      const at = ids[mid];
      if (at === id) return mid;
      if (at < id) low = mid + 1;
      else high = mid - 1;
    }
    return -low - 1;
  }

  get(id: number): V | undefined {
    const i = this.find(id);
    return i >= 0 ? this.items[i] : undefined;
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  set(id: number, value: V): this {
    const n = this.ids.length;
    if (n === 0 || this.ids[n - 1] < id) {
      this.ids.push(id);
      this.items.push(value);
      this.live++;
      return this;
    }
    const i = this.find(id);
    if (i >= 0) {
      if (this.items[i] === undefined) this.live++;
      this.items[i] = value;
    } else {
      this.ids.splice(-i - 1, 0, id);
      this.items.splice(-i - 1, 0, value);
      this.live++;
    }
    return this;
  }

  delete(id: number): boolean {
    const i = this.find(id);
    if (i < 0 || this.items[i] === undefined) return false;
    this.items[i] = undefined;
    this.live--;
    if (this.ids.length > COMPACT_AFTER && this.live * 2 < this.ids.length) this.compact();
    return true;
  }

  /** Moves the entries over the holes, in place (the arrays are trimmed, not replaced). */
  private compact(): void {
    const { ids, items } = this;
    let to = 0;
    for (let from = 0; from < ids.length; from++) {
      if (items[from] === undefined) continue;
      ids[to] = ids[from];
      items[to] = items[from];
      to++;
    }
    ids.length = to;
    items.length = to;
  }

  clear(): void {
    this.ids.length = 0;
    this.items.length = 0;
    this.live = 0;
  }

  /** A snapshot, so a callback may delete (streams remove themselves when closed). */
  forEach(callback: (value: V, id: number, table: this) => void): void {
    for (const [id, value] of this.entries()) callback(value, id, this);
  }

  entries(): IterableIterator<[number, V]> {
    const out: [number, V][] = [];
    for (let i = 0; i < this.ids.length; i++) {
      const value = this.items[i];
      if (value !== undefined) out.push([this.ids[i], value]);
    }
    return out[Symbol.iterator]();
  }

  keys(): IterableIterator<number> {
    return [...this.entries()].map(([id]) => id)[Symbol.iterator]();
  }

  values(): IterableIterator<V> {
    return [...this.entries()].map(([, value]) => value)[Symbol.iterator]();
  }

  [Symbol.iterator](): IterableIterator<[number, V]> {
    return this.entries();
  }
}

/**
 * The session's streams that have no id yet (a Set in node:http2, which
 * churns the same way: every stream passes through it). One entry at a time
 * on a server; on a client session still connecting, every request made
 * meanwhile, leaving in the order they came. Holes and compaction as in
 * StreamTable; `first` skips the holes at the front, so removals in order
 * cost O(1). node:http2 adds each stream once, so `add` does not look for
 * it first.
 */
export class PendingStreams<V> {
  private readonly items: (V | undefined)[] = [];
  private first = 0;
  private live = 0;

  get size(): number {
    return this.live;
  }

  has(value: V): boolean {
    return this.items.indexOf(value, this.first) >= 0;
  }

  add(value: V): this {
    this.items.push(value);
    this.live++;
    return this;
  }

  delete(value: V): boolean {
    const i = this.items.indexOf(value, this.first);
    if (i < 0) return false;
    this.items[i] = undefined;
    this.live--;
    while (this.first < this.items.length && this.items[this.first] === undefined) this.first++;
    if (this.live === 0 || (this.items.length > COMPACT_AFTER && this.live * 2 < this.items.length)) this.compact();
    return true;
  }

  private compact(): void {
    const items = this.items;
    let to = 0;
    for (let from = this.first; from < items.length; from++) if (items[from] !== undefined) items[to++] = items[from];
    items.length = to;
    this.first = 0;
  }

  clear(): void {
    this.items.length = 0;
    this.first = 0;
    this.live = 0;
  }

  /** A snapshot, so a callback may delete. */
  forEach(callback: (value: V, same: V, set: this) => void): void {
    for (const value of this.values()) callback(value, value, this);
  }

  values(): IterableIterator<V> {
    return this.items.filter((value): value is V => value !== undefined)[Symbol.iterator]();
  }

  [Symbol.iterator](): IterableIterator<V> {
    return this.values();
  }
}

/** The session's internal state object, found by its symbol's description (not exported by Node.js). */
interface SessionState {
  streams?: unknown;
  pendingStreams?: unknown;
}

function sessionState(session: Http2Session): SessionState | undefined {
  const symbol = Object.getOwnPropertySymbols(session).find((s) => s.description === 'state');
  const state: unknown = symbol && (session as unknown as Record<symbol, unknown>)[symbol];
  return typeof state === 'object' && state !== null ? (state as SessionState) : undefined;
}

/** Puts a StreamTable and PendingStreams in place of a new session's Map and Set; returns whether it did. */
export function installStreamTable(session: Http2Session): boolean {
  const state = sessionState(session);
  if (!state || !types.isMap(state.streams) || !types.isSet(state.pendingStreams)) return false;
  if (state.streams.size !== 0 || state.pendingStreams.size !== 0) return false;
  state.streams = new StreamTable();
  state.pendingStreams = new PendingStreams();
  return true;
}
