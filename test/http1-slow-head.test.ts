/**
 * A request head sent slowly costs linear work (issue 10.9): the connection
 * keeps a partial head in a PendingHead (a buffer that grows by doubling,
 * and the scan's resume point), so each read copies and scans only about
 * its own bytes. Proven by counting work, never by timing: the bytes the
 * head scans looked at (scanState.bytesExamined) and the buffers made.
 * Byte-at-a-time and randomly split parsing give exactly the results of
 * whole-head parsing over the smuggling corpus, and end to end a head sent
 * a byte per write arrives whole at the upstream, on both runtimes.
 */
import net from 'node:net';
import type { Server } from '../dist/index';
import { EARLY_SCAN_BYTES, scanState } from '../dist/protocol/http1/field-lines';
import { PendingHead, parseRequestHead } from '../dist/protocol/http1/request-head';
import { headCases } from './fixtures/smuggling-corpus';
import { bytes, summary } from './fixtures/http1-feed';
import { mulberry32 } from './helpers/random';
import { RUNTIMES, startProxy } from './helpers/server';
import { RawClient, closeAll, header, startRecordingUpstream, type RecordingUpstream } from './helpers/upstreams';

const LIMITS = { maxHeaderBytes: 65536 };

interface Fed {
  /** The first answer that is not `incomplete` (offsets relative to the head's start), or the last one. */
  result: unknown;
  /** Bytes the scans looked at, over all calls. */
  examined: number;
  /** Distinct buffers the pending head's bytes were kept in. */
  buffers: number;
}

/**
 * Feeds `input` in reads ending at `ends`, the way Http1Session does: the
 * first read is parsed where it lies, later ones are appended to the bytes
 * kept, and the same PendingHead's progress goes with every call.
 */
function feed(input: Buffer, ends: number[], limits = LIMITS, resume = true): Fed {
  const pending = new PendingHead();
  const before = scanState.bytesExamined;
  const buffers = new Set<ArrayBufferLike>();
  let kept: Buffer | null = null;
  let from = 0;
  let result: unknown = { kind: 'incomplete' };
  for (const end of ends) {
    const buf: Buffer = kept === null ? input : pending.append(kept, input, from, end);
    const start = kept === null ? from : 0;
    const stop = kept === null ? end : buf.length;
    const r = parseRequestHead(buf, start, stop, limits, resume ? pending.progress : null);
    result = summary(r, start);
    if (r.kind !== 'incomplete') break;
    kept = pending.hold(buf, start, stop);
    buffers.add(kept.buffer);
    from = end;
  }
  return { result, examined: scanState.bytesExamined - before, buffers: buffers.size };
}

const everyByte = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

function randomEnds(n: number, random: () => number, largest: number): number[] {
  const ends: number[] = [];
  for (let at = 0; at < n; ) {
    at = Math.min(n, at + 1 + Math.floor(random() * largest));
    ends.push(at);
  }
  return ends;
}

function bigHead(bytesWanted: number): Buffer {
  let head = 'GET /slow HTTP/1.1\r\nHost: slow.test\r\n';
  for (let i = 0; head.length < bytesWanted - 40; i++) head += `X-Filler-${i}: ${'v'.repeat(50)}\r\n`;
  return bytes(head + '\r\n');
}

describe('work per head', () => {
  test('a 60 KiB head sent a byte per read is scanned in O(n) and copied into O(log n) buffers', () => {
    const input = bigHead(60 * 1024);
    const n = input.length;
    const { result, examined, buffers } = feed(input, everyByte(n));
    expect(result).toMatchObject({ kind: 'head', headEnd: n, target: '/slow' });
    // Each read: the search over its byte and the 3 before, plus early-window scans that add up to 3 × EARLY_SCAN_BYTES, plus one full scan at the end.
    expect(examined).toBeLessThanOrEqual(6 * n + 3 * EARLY_SCAN_BYTES);
    // Stateless calls over the same reads would look at about n²/2 bytes (1.9e9 here).
    expect(buffers).toBeLessThanOrEqual(Math.ceil(Math.log2(n)));
  });

  test('the count sees the cost of starting over: the same reads parsed without progress look at over n²/4 bytes', () => {
    const input = bigHead(16 * 1024);
    const n = input.length;
    const { result, examined } = feed(input, everyByte(n), LIMITS, false);
    expect(result).toMatchObject({ kind: 'head', headEnd: n });
    expect(examined).toBeGreaterThan((n * n) / 4);
  });

  test('the same head read whole is scanned once', () => {
    const input = bigHead(60 * 1024);
    const { result, examined } = feed(input, [input.length]);
    expect(result).toMatchObject({ kind: 'head', headEnd: input.length });
    // The search for its end, then the scan.
    expect(examined).toBeLessThanOrEqual(2 * input.length);
  });

  test('a small head sent a byte per read, and empty lines before it, cost linear work too', () => {
    const input = bytes('\r\n'.repeat(1000) + 'GET / HTTP/1.1\r\nHost: h\r\nX-Value: ' + 'a'.repeat(3000) + '\r\n\r\n');
    const { result, examined } = feed(input, everyByte(input.length));
    expect(result).toMatchObject({ kind: 'head', headEnd: input.length });
    expect(examined).toBeLessThanOrEqual(6 * input.length + 3 * EARLY_SCAN_BYTES);
  });

  test.each([
    ['NUL in a value', 'GET / HTTP/1.1\r\nHost: h\r\nX: a\x00', 'invalid character in field value'],
    ['bare LF', 'GET / HTTP/1.1\r\nHost: h\n', 'bare LF'],
    ['bare CR', 'GET / HTTP/1.1\r\nHost: h\rX', 'bare CR'],
    ['DEL in a name', 'GET / HTTP/1.1\r\nHo\x7f', 'invalid character in field name'],
  ])('a byte no head may hold (%s) is rejected as soon as it arrives', (_name, text, reason) => {
    const input = bytes(text);
    expect(feed(input, everyByte(input.length - 1)).result).toEqual({ kind: 'incomplete' });
    expect(feed(input, everyByte(input.length)).result).toMatchObject({ kind: 'error', status: 400, reason });
  });

  test('a malformation that depends on its place is rejected before the head ends, within twice its offset', () => {
    const input = bytes('GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n' + 'X: y\r\n'.repeat(100));
    const badAt = input.indexOf(' Name');
    expect(feed(input, everyByte(2 * badAt + 2)).result).toMatchObject({ kind: 'error', status: 400, reason: 'whitespace before colon' });
  });

  test('an oversized head sent a byte per read gets 431 as soon as it passes the limit', () => {
    const input = bigHead(3000);
    expect(feed(input, everyByte(1025), { maxHeaderBytes: 1024 }).result).toMatchObject({ kind: 'error', status: 431 });
    expect(feed(input, everyByte(1024), { maxHeaderBytes: 1024 }).result).toEqual({ kind: 'incomplete' });
  });
});

describe('byte-at-a-time and split parsing agree with whole-head parsing over the smuggling corpus', () => {
  test.each(headCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const limits = { maxHeaderBytes: c.maxHeaderBytes ?? 65536 };
    const input = bytes(c.input);
    const whole = summary(parseRequestHead(input, 0, input.length, limits));
    expect(feed(input, everyByte(input.length), limits).result).toEqual(whole);
    const random = mulberry32(input.length * 7919 + 1);
    for (let round = 0; round < 20; round++) expect(feed(input, randomEnds(input.length, random, 1 + (round % 5) * 8), limits).result).toEqual(whole);
  });
});

describe.each(RUNTIMES)('a head sent a byte per write (%s)', (_name, noNative) => {
  let up: RecordingUpstream;
  let proxy: Server;
  let port: number;

  beforeAll(async () => {
    up = await startRecordingUpstream();
    proxy = await startProxy({ max_header_bytes: 32 * 1024, routes: [{ path: '/', upstream: up.url }] }, noNative);
    port = proxy.address().port;
  });

  afterAll(async () => {
    await proxy?.stop();
    await closeAll();
  });

  /** Writes `data` a byte per write, letting the event loop turn between writes so the proxy reads small pieces. */
  async function dribble(client: RawClient, data: Buffer): Promise<void> {
    (client.socket as net.Socket).setNoDelay(true);
    for (let i = 0; i < data.length && !client.closed; i++) {
      client.write(data.subarray(i, i + 1));
      if (i % 4 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  test('a 20 KiB head arrives whole at the upstream, and the connection keeps working', async () => {
    const input = bigHead(20 * 1024);
    const client = await RawClient.open(port);
    try {
      await dribble(client, input);
      expect((await client.response('GET', 15_000)).status).toBe(200);
      const got = up.requests[up.requests.length - 1];
      expect(got.target).toBe('/slow');
      expect(header(got, 'x-filler-0')).toBe('v'.repeat(50));
      expect(got.headers.filter(([name]) => name.toLowerCase().startsWith('x-filler-')).length).toBe((input.toString('latin1').match(/X-Filler-/g) ?? []).length);
      // The same connection, a head in one write.
      client.write('GET /next HTTP/1.1\r\nHost: slow.test\r\n\r\n');
      expect((await client.response()).status).toBe(200);
      expect(up.requests[up.requests.length - 1].target).toBe('/next');
    } finally {
      client.destroy();
    }
  }, 30_000);

  test('garbage sent slowly is answered 400 before the head ends', async () => {
    const client = await RawClient.open(port);
    const before = up.requests.length;
    try {
      await dribble(client, bytes('GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n' + 'X: y\r\n'.repeat(200)));
      expect((await client.response()).status).toBe(400);
      expect(up.requests.length).toBe(before);
    } finally {
      client.destroy();
    }
  }, 30_000);

  test('a head over max_header_bytes sent slowly is answered 431', async () => {
    const client = await RawClient.open(port);
    const before = up.requests.length;
    try {
      await dribble(client, bigHead(40 * 1024));
      expect((await client.response()).status).toBe(431);
      expect(up.requests.length).toBe(before);
    } finally {
      client.destroy();
    }
  }, 30_000);
});
