/**
 * Every case of the request-smuggling corpus (test/fixtures/smuggling-corpus.ts),
 * parsed whole, split at every byte boundary, and inside a larger buffer.
 */
import { parseRequestHead } from '../dist/protocol/http1/request-head';
import { chunkedCases, headCases } from './fixtures/smuggling-corpus';
import { bytes, decodeChunked, feedSplit, summary, withStaleTail } from './fixtures/http1-feed';

describe('smuggling corpus: request heads', () => {
  test.each(headCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const limits = { maxHeaderBytes: c.maxHeaderBytes ?? 65536 };
    const input = bytes(c.input);
    const r = parseRequestHead(input, 0, input.length, limits);
    if (c.expect === 'accept') {
      if (r.kind !== 'head') throw new Error(`expected accept, got ${JSON.stringify(r)}`);
      expect(r.headEnd).toBe(input.length);
      for (const [key, value] of Object.entries(c.facts ?? {})) {
        expect([key, (r.head as unknown as Record<string, unknown>)[key]]).toEqual([key, value]);
      }
    } else {
      expect(r.kind).toBe('error');
      if (r.kind === 'error') expect(r.status).toBe(c.expect);
    }

    const whole = summary(r);
    const parse = (b: Buffer, s: number, e: number) => parseRequestHead(b, s, e, limits);
    for (let cut = 0; cut < input.length; cut++) {
      const split = summary(feedSplit(parse, input, cut));
      if (JSON.stringify(split) !== JSON.stringify(whole)) {
        throw new Error(`split at ${cut}: ${JSON.stringify(split)} vs whole ${JSON.stringify(whole)}`);
      }
    }
    const t = withStaleTail(c.input);
    expect(summary(parseRequestHead(t.buf, t.start, t.end, limits), t.start)).toEqual(whole);
  });
});

describe('smuggling corpus: chunked bodies', () => {
  test.each(chunkedCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const input = bytes(c.input);
    const whole = decodeChunked(input);
    if (c.expect === 'accept') {
      expect(whole.error).toBeUndefined();
      expect(whole.ok).toBe(true);
      if (c.data !== undefined) expect(whole.data).toBe(c.data);
      expect(input.length - whole.consumed).toBe((c.rest ?? '').length);
    } else {
      expect(whole.ok).toBe(false);
      expect(whole.error).not.toBe('incomplete');
    }
    for (let cut = 1; cut < input.length; cut++) {
      const split = decodeChunked(input, [cut]);
      if (split.ok !== whole.ok || split.data !== whole.data || split.error !== whole.error || (whole.ok && split.consumed !== whole.consumed)) {
        throw new Error(`split at ${cut}: ${JSON.stringify(split)} vs whole ${JSON.stringify(whole)}`);
      }
    }
  });
});
