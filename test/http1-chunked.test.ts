/**
 * ChunkedDecoder: decoding without copies, raw-forward accounting,
 * incremental pushes, trailers and limits. Malformed bodies are in the
 * smuggling corpus.
 */
import { ChunkedDecoder } from '../dist/protocol/http1/chunked';
import { bytes, decodeChunked, fieldsOf } from './fixtures/http1-feed';

const body = '4;name=value\r\nWiki\r\n5\r\npedia\r\nE;q="a;b"\r\n in\r\n\r\nchunks.\r\n0\r\nX-Checksum: abc\r\nX-Other:  two \r\n\r\n';
const decoded = 'Wikipedia in\r\n\r\nchunks.';

test('decodes and reports data ranges inside the caller buffer', () => {
  const input = bytes(body + 'NEXT');
  const ranges: Array<[Buffer, number, number]> = [];
  const d = new ChunkedDecoder({ onData: (b, s, e) => ranges.push([b, s, e]) });
  const r = d.push(input, 0, input.length);
  expect(r).toEqual({ consumed: body.length, done: true, dataBytes: decoded.length });
  expect(ranges.every(([b]) => b === input)).toBe(true);
  expect(ranges.map(([b, s, e]) => b.toString('latin1', s, e)).join('')).toBe(decoded);
  expect(d.done).toBe(true);
  expect(d.bodyBytes).toBe(decoded.length);
  expect(d.trailers && fieldsOf(d.trailers)).toEqual([
    ['X-Checksum', 'abc'],
    ['X-Other', 'two'],
  ]);
  // Once done, nothing more is consumed: the rest is the next message.
  expect(d.push(input, r.consumed, input.length)).toEqual({ consumed: 0, done: true, dataBytes: 0 });
});

test('same outcome for every split point and byte by byte', () => {
  const input = bytes(body);
  for (let cut = 1; cut < input.length; cut++) expect(decodeChunked(input, [cut])).toEqual({ ok: true, data: decoded, consumed: input.length });
  const everyByte = Array.from({ length: input.length }, (_, i) => i);
  expect(decodeChunked(input, everyByte)).toEqual({ ok: true, data: decoded, consumed: input.length });
});

test('raw forwarding: consumed bytes reproduce the body exactly', () => {
  const input = bytes(body + 'GET / HTTP/1.1\r\n');
  const d = new ChunkedDecoder();
  const forwarded: Buffer[] = [];
  for (let at = 0; at < input.length && !d.done; ) {
    const end = Math.min(input.length, at + 7);
    const r = d.push(input, at, end);
    forwarded.push(input.subarray(at, at + r.consumed));
    at += r.consumed;
  }
  expect(Buffer.concat(forwarded).toString('latin1')).toBe(body);
});

test('large chunk streams across pushes', () => {
  const data = 'x'.repeat(70000);
  const input = bytes(data.length.toString(16) + '\r\n' + data + '\r\n0\r\n\r\n');
  const cuts = Array.from({ length: 20 }, (_, i) => i * 3571);
  expect(decodeChunked(input, cuts)).toEqual({ ok: true, data, consumed: input.length });
});

test('errors are sticky and reset() starts a new body', () => {
  const d = new ChunkedDecoder();
  const bad = bytes('zz\r\n');
  expect(d.push(bad, 0, bad.length).error).toBe('invalid chunk size');
  expect(d.error).toBe('invalid chunk size');
  const good = bytes('0\r\n\r\n');
  expect(d.push(good, 0, good.length).error).toBe('invalid chunk size');
  d.reset();
  expect(d.push(good, 0, good.length)).toEqual({ consumed: 5, done: true, dataBytes: 0 });
  expect(d.trailers).toBeNull();
});

test('chunk line cap covers extensions split across pushes', () => {
  const d = new ChunkedDecoder({ maxChunkLineBytes: 16 });
  const line = bytes('1;aaaaaaaaaa');
  expect(d.push(line, 0, line.length).error).toBeUndefined();
  const more = bytes('aaaaaa\r\n');
  expect(d.push(more, 0, more.length).error).toBe('chunk line too long');
  const ok = new ChunkedDecoder({ maxChunkLineBytes: 16 });
  const fits = bytes('1;aaaaaaaaaaa\r\nx\r\n0\r\n\r\n');
  expect(ok.push(fits, 0, fits.length).done).toBe(true);
});

test('trailer cap', () => {
  const d = new ChunkedDecoder({ maxTrailerBytes: 32 });
  const input = bytes('0\r\nX-A: ' + 'b'.repeat(40) + '\r\n\r\n');
  expect(d.push(input, 0, input.length).error).toBe('trailer section too large');
  const small = new ChunkedDecoder({ maxTrailerBytes: 32 });
  const fits = bytes('0\r\nX-A: b\r\n\r\n');
  expect(small.push(fits, 0, fits.length).done).toBe(true);
});

test('size at the overflow guard', () => {
  expect(decodeChunked(bytes('1fffffffffffff\r\n')).error).toBe('incomplete');
  expect(decodeChunked(bytes('20000000000000\r\n')).error).toBe('chunk size too large');
});
