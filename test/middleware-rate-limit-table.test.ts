/**
 * The rate limit's rule and its shared table, without the network: the
 * GCRA arithmetic (bursts, refill, fractional intervals, a clock stepping
 * back), and the memory store's table — shared by every view of one
 * SharedArrayBuffer, exact under four threads hammering one key, bounded:
 * idle buckets reused silently, a full set evicting its fullest bucket
 * (counted), a flood of keys never growing memory.
 */
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { Gcra } from '../dist/middleware/rate-limit/gcra';
import { MemoryStore } from '../dist/middleware/rate-limit/memory-store';
import { OccasionalWarning } from '../dist/middleware/rate-limit/occasional-warning';
import type { Logger } from '../dist/util/log';

const DIST = path.join(__dirname, '..', 'dist');

/** A logger that records warn lines (the store's only use of it). */
function recordingLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: { warn: (_fields: unknown, message: string) => lines.push(message) } as unknown as Logger, lines };
}

describe('GCRA', () => {
  test('a burst at one instant, then refusals that say when to come back', () => {
    const gcra = new Gcra(60, 3); // one a second, three at once
    const now = 1_700_000_000_000;
    let tat = 0;
    const decisions = [];
    for (let i = 0; i < 4; i++) {
      const decision = gcra.take(tat, now);
      tat = now + decision.resetMs;
      decisions.push(decision);
    }
    expect(decisions.map((d) => [d.allowed, d.remaining, d.resetMs, d.retryMs])).toEqual([
      [true, 2, 1000, 0],
      [true, 1, 2000, 0],
      [true, 0, 3000, 0],
      [false, 0, 3000, 1000],
    ]);
    // Refused requests take nothing: one interval later exactly one passes.
    expect(gcra.take(tat, now + 990).allowed).toBe(false);
    const later = gcra.take(tat, now + 1000);
    expect([later.allowed, later.remaining]).toEqual([true, 0]);
    // Idle long enough, the bucket is full again: the same as no bucket.
    expect(gcra.take(tat, now + 60_000)).toEqual(gcra.take(0, now + 60_000));
  });

  test.each([
    [7, 7],
    [1, 5],
    [3, 1000],
    [6_000_000, 50],
  ])('%i a minute, burst %i: exactly the burst passes at one instant, whatever the rounding', (perMinute, burst) => {
    const gcra = new Gcra(perMinute, burst);
    const now = 1_765_000_123_456;
    let tat = 0;
    let allowed = 0;
    for (let i = 0; i < burst + 5; i++) {
      const decision = gcra.take(tat, now);
      tat = now + decision.resetMs;
      if (decision.allowed) allowed++;
    }
    expect(allowed).toBe(burst);
  });

  test('over a long run, the rate is requests_per_minute', () => {
    const gcra = new Gcra(120, 10); // one each 500 ms
    let tat = 0;
    let allowed = 0;
    for (let now = 1_700_000_000_000, end = now + 60_000; now < end; now += 7) {
      const decision = gcra.take(tat, now);
      tat = now + decision.resetMs;
      if (decision.allowed) allowed++;
    }
    expect(allowed).toBe(10 + 120 - 1);
  });

  test('a clock stepping back leaves an empty bucket, not a longer ban', () => {
    const gcra = new Gcra(60, 2);
    const tat = 1_700_000_000_000 + 2000; // drained at that moment
    const decision = gcra.take(tat, 1_700_000_000_000 - 3_600_000); // an hour back
    expect([decision.allowed, decision.resetMs, decision.retryMs]).toEqual([false, 2000, 1000]);
  });
});

describe('memory store', () => {
  const warning = (log: Logger) => new OccasionalWarning(log, {});

  test('views of one SharedArrayBuffer share the buckets; keys and key kinds are apart', () => {
    const gcra = new Gcra(1, 2);
    const shared = new SharedArrayBuffer(MemoryStore.bytesFor(1024));
    const { log } = recordingLog();
    const a = new MemoryStore(shared, 1024, gcra, warning(log));
    const b = new MemoryStore(shared, 1024, gcra, warning(log));
    expect([a.take('10.0.0.1', 'ip').allowed, b.take('10.0.0.1', 'ip').allowed, a.take('10.0.0.1', 'ip').allowed]).toEqual([true, true, false]);
    expect(b.take('10.0.0.2', 'ip').remaining).toBe(1);
    expect(b.take('10.0.0.1', 'header').remaining).toBe(1);
  });

  test('memory is what max_keys says, whole sets of 8, a power of two of them', () => {
    expect(MemoryStore.bytesFor(8)).toBe(64 + 8 * 16 + 4);
    expect(MemoryStore.bytesFor(65_536)).toBe(64 + 65_536 * 16 + 8192 * 4);
    expect(MemoryStore.bytesFor(65_537)).toBe(MemoryStore.bytesFor(131_072));
    expect(() => new MemoryStore(new SharedArrayBuffer(100), 8, new Gcra(1, 1), warning(recordingLog().log))).toThrow(/expected 196/);
  });

  test('a full table: idle buckets are reused silently; a refilling one is evicted, fullest first, counted and warned about once', () => {
    const gcra = new Gcra(60, 1); // a bucket refills in 1 s
    const shared = new SharedArrayBuffer(MemoryStore.bytesFor(8)); // one set: every key meets every other
    const { log, lines } = recordingLog();
    const store = new MemoryStore(shared, 8, gcra, warning(log));
    const realNow = Date.now;
    let now = 1_700_000_000_000;
    Date.now = () => now;
    try {
      for (let i = 0; i < 8; i++) {
        expect(store.take(`key-${i}`, 'header').allowed).toBe(true);
        now += 10;
      }
      // Eight buckets refilling: a ninth key evicts the fullest (the oldest), and only it.
      expect(store.take('key-8', 'header').allowed).toBe(true);
      expect(store.evictions).toBe(1);
      expect(store.take('key-1', 'header').allowed).toBe(false);
      expect(store.take('key-0', 'header').allowed).toBe(true);
      expect(store.evictions).toBe(2);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/raise max_keys/);
      // A second later every bucket is full again: a flood of new keys reuses them, evicting nothing.
      now += 1000;
      for (let i = 0; i < 100; i++) expect(store.take(`flood-${i}`, 'header').allowed).toBe(true);
      // ...though now they refill, and each new one evicts.
      expect(store.evictions).toBe(2 + 100 - 8);
      expect(lines).toHaveLength(1);
      expect(shared.byteLength).toBe(MemoryStore.bytesFor(8));
    } finally {
      Date.now = realNow;
    }
  });

  test('exact under four threads taking from one key at once', async () => {
    const burst = 20_000;
    const perThread = 10_000;
    const shared = new SharedArrayBuffer(MemoryStore.bytesFor(64));
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { Gcra } = require(${JSON.stringify(path.join(DIST, 'middleware/rate-limit/gcra.js'))});
      const { MemoryStore } = require(${JSON.stringify(path.join(DIST, 'middleware/rate-limit/memory-store.js'))});
      const { OccasionalWarning } = require(${JSON.stringify(path.join(DIST, 'middleware/rate-limit/occasional-warning.js'))});
      const store = new MemoryStore(workerData.shared, 64, new Gcra(1, ${burst}), new OccasionalWarning({ warn() {} }, {}));
      const start = new Int32Array(workerData.start);
      Atomics.wait(start, 0, 0);
      let allowed = 0;
      for (let i = 0; i < ${perThread}; i++) if (store.take('203.0.113.7', 'ip').allowed) allowed++;
      parentPort.postMessage(allowed);
    `;
    const start = new SharedArrayBuffer(4);
    const workers = Array.from({ length: 4 }, () => new Worker(code, { eval: true, workerData: { shared, start } }));
    const counts = workers.map((worker) => new Promise<number>((resolve, reject) => worker.once('message', resolve).once('error', reject)));
    const online = workers.map((worker) => new Promise((resolve) => worker.once('online', resolve)));
    await Promise.all(online);
    Atomics.store(new Int32Array(start), 0, 1);
    Atomics.notify(new Int32Array(start), 0);
    const allowed = await Promise.all(counts);
    await Promise.all(workers.map((worker) => worker.terminate()));
    expect(allowed.reduce((sum, n) => sum + n, 0)).toBe(burst);
  });
});
