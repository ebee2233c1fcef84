/**
 * parseResponseHead and responseHasBody: status line, framing facts,
 * errors (which the proxy answers with 502) and incremental feeding.
 */
import { parseResponseHead, responseHasBody, ResponseHead } from '../dist/protocol/http1/response-head';
import { bytes, feedSplit, fieldsOf, summary } from './fixtures/http1-feed';

const limits = { maxHeaderBytes: 65536 };

function head(s: string): ResponseHead {
  const b = bytes(s);
  const r = parseResponseHead(b, 0, b.length, limits);
  if (r.kind !== 'head') throw new Error(`expected a head: ${JSON.stringify(r)}`);
  return r.head;
}

function reject(s: string, l = limits): string {
  const b = bytes(s);
  const r = parseResponseHead(b, 0, b.length, l);
  if (r.kind !== 'error') throw new Error(`expected an error: ${JSON.stringify(summary(r))}`);
  expect(r.status).toBe(502);
  return r.reason;
}

test('status line and fields', () => {
  const h = head('HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\n');
  expect([h.versionMinor, h.status, h.reason]).toEqual([1, 404, 'Not Found']);
  expect(fieldsOf(h)).toEqual([
    ['Content-Type', 'text/plain'],
    ['Content-Length', '9'],
  ]);
  expect(h.contentLength).toBe(9);
  expect(h.bodyFraming('GET')).toBe('length');
  expect(h.reusable('GET')).toBe(true);
});

test('empty and missing reason phrases are tolerated', () => {
  expect(head('HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n').reason).toBe('');
  expect(head('HTTP/1.1 204\r\n\r\n').status).toBe(204);
  expect(head('HTTP/1.0 200 OK \xe9\r\n\r\n').reason).toBe('OK \xe9');
});

test('framing: chunked, length, close-delimited', () => {
  const chunked = head('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
  expect([chunked.chunked, chunked.closeDelimited, chunked.bodyFraming('GET')]).toEqual([true, false, 'chunked']);
  const gzipChunked = head('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n');
  expect(gzipChunked.bodyFraming('GET')).toBe('chunked');
  const gzipOnly = head('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n');
  expect([gzipOnly.chunked, gzipOnly.bodyFraming('GET'), gzipOnly.reusable('GET')]).toEqual([false, 'close', false]);
  const untilClose = head('HTTP/1.1 200 OK\r\n\r\n');
  expect([untilClose.closeDelimited, untilClose.bodyFraming('GET'), untilClose.reusable('GET')]).toEqual([true, 'close', false]);
  // The same response has no body for HEAD, so the connection stays reusable.
  expect([untilClose.bodyFraming('HEAD'), untilClose.reusable('HEAD')]).toEqual(['none', true]);
  expect(head('HTTP/1.1 304 Not Modified\r\n\r\n').reusable('GET')).toBe(true);
  expect(head('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')).toMatchObject({
    upgrade: 'websocket',
    connectionTokens: ['upgrade'],
  });
});

test('keep-alive', () => {
  expect(head('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(false);
  expect(head('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(true);
  expect(head('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').reusable('GET')).toBe(false);
});

test('responseHasBody', () => {
  expect(responseHasBody('GET', 200)).toBe(true);
  expect(responseHasBody('HEAD', 200)).toBe(false);
  expect(responseHasBody('GET', 100)).toBe(false);
  expect(responseHasBody('GET', 101)).toBe(false);
  expect(responseHasBody('GET', 204)).toBe(false);
  expect(responseHasBody('GET', 304)).toBe(false);
  expect(responseHasBody('POST', 404)).toBe(true);
  expect(responseHasBody('CONNECT', 200)).toBe(false);
  expect(responseHasBody('CONNECT', 407)).toBe(true);
});

test('malformed responses are errors', () => {
  expect(reject('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n')).toBe('content-length with transfer-encoding');
  expect(reject('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n')).toBe('duplicate content-length');
  expect(reject('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n')).toBe('duplicate content-length');
  expect(reject('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n')).toBe('invalid content-length');
  expect(reject('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n')).toBe('chunked is not the final transfer-coding');
  expect(reject('HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')).toBe('transfer-encoding on HTTP/1.0');
  reject('HTTP/2.0 200 OK\r\n\r\n');
  reject('HTTP/1.1 99 Low\r\n\r\n');
  reject('HTTP/1.1 600 High\r\n\r\n');
  reject('HTTP/1.1 2x0 OK\r\n\r\n');
  reject('HTTP/1.1 2000 OK\r\n\r\n');
  reject('HTTP/1.1  200 OK\r\n\r\n');
  reject('HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n');
  reject('HTTP/1.1 200 O\x00K\r\n\r\n');
  reject('HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n');
  reject('HTTP/1.1 200 OK\r\nX : a\r\n\r\n');
  reject('\r\nHTTP/1.1 200 OK\r\n\r\n');
  reject('<html>', limits);
  expect(reject('HTTP/1.1 200 OK\r\nX: ' + 'a'.repeat(300) + '\r\n\r\n', { maxHeaderBytes: 128 })).toBe('response head too large');
});

test('incremental feeding gives the same result at every split', () => {
  const inputs = [
    'HTTP/1.1 200 OK\r\nServer: up\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello',
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n',
  ];
  const parse = (b: Buffer, s: number, e: number) => parseResponseHead(b, s, e, limits);
  for (const s of inputs) {
    const input = bytes(s);
    const whole = summary(parse(input, 0, input.length));
    for (let cut = 0; cut < input.length; cut++) expect(summary(feedSplit(parse, input, cut))).toEqual(whole);
  }
});
