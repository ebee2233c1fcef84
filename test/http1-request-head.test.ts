/**
 * parseRequestHead: facts, offsets for verbatim forwarding, incremental
 * feeding and limits. The smuggling corpus has its own file.
 */
import { parseRequestHead, RequestHead } from '../dist/protocol/http1/request-head';
import { EARLY_SCAN_BYTES } from '../dist/protocol/http1/field-lines';
import { bytes, feedSplit, fieldsOf, summary, withStaleTail } from './fixtures/http1-feed';

const limits = { maxHeaderBytes: 65536 };

function head(s: string, l = limits): RequestHead {
  const b = bytes(s);
  const r = parseRequestHead(b, 0, b.length, l);
  if (r.kind !== 'head') throw new Error(`expected a head: ${JSON.stringify(r)}`);
  return r.head;
}

function reject(s: string, l = limits): { status: number; reason: string } {
  const b = bytes(s);
  const r = parseRequestHead(b, 0, b.length, l);
  if (r.kind !== 'error') throw new Error(`expected an error: ${JSON.stringify(summary(r))}`);
  return r;
}

const browser =
  'GET /api/v1/users/42?expand=true HTTP/1.1\r\n' +
  'Host: app.example.com\r\n' +
  'User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n' +
  'Accept: text/html,*/*;q=0.8\r\n' +
  'accept-encoding: gzip, deflate, br\r\n' +
  'Connection: keep-alive\r\n' +
  'Cookie: a=b; c=d\r\n' +
  '\r\n';

describe('request line and fields', () => {
  test('keeps method, target, version, and field names with their case and order', () => {
    const h = head(browser);
    expect(h.method).toBe('GET');
    expect(h.target).toBe('/api/v1/users/42?expand=true');
    expect(h.targetForm).toBe('origin');
    expect(h.versionMinor).toBe(1);
    expect(h.headerCount).toBe(6);
    expect(fieldsOf(h)).toEqual([
      ['Host', 'app.example.com'],
      ['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64)'],
      ['Accept', 'text/html,*/*;q=0.8'],
      ['accept-encoding', 'gzip, deflate, br'],
      ['Connection', 'keep-alive'],
      ['Cookie', 'a=b; c=d'],
    ]);
    expect(h.headEnd).toBe(browser.length);
  });

  test('offsets let the proxy copy the request line and every field line verbatim', () => {
    const input = 'POST /x HTTP/1.1\r\nHost: h\r\nX-Pad:   spaced value \t \r\nContent-Length: 3\r\n\r\nabc';
    const b = bytes(input);
    const r = parseRequestHead(b, 0, b.length, limits);
    if (r.kind !== 'head') throw new Error('head expected');
    const h = r.head;
    let rebuilt = b.toString('latin1', h.start, h.fieldsStart);
    for (let i = 0; i < h.headerCount; i++) rebuilt += b.toString('latin1', h.headers[i * 4], h.headerLineEnd(i));
    expect(rebuilt + '\r\n').toBe(input.slice(0, r.headEnd));
    expect(h.headerValue(1)).toBe('spaced value');
    expect(b.toString('latin1', h.targetStart, h.targetEnd)).toBe('/x');
  });

  test('getHeader is case-insensitive and returns the first value; getHeaderJoined joins all', () => {
    const h = head('GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n');
    expect(h.getHeader('x-a')).toBe('1');
    expect(h.getHeader('host')).toBe('h');
    expect(h.getHeader('missing')).toBeNull();
    expect(h.getHeaderJoined('x-a')).toBe('1, 2');
    expect(h.indexOfHeader('x-a', 2)).toBe(2);
  });

  test('common methods are interned, others are kept as sent', () => {
    for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE']) expect(head(`${m} / HTTP/1.1\r\nHost: h\r\n\r\n`).method).toBe(m);
    expect(head('MKCOL /d HTTP/1.1\r\nHost: h\r\n\r\n').method).toBe('MKCOL');
    expect(head('get / HTTP/1.1\r\nHost: h\r\n\r\n').method).toBe('get');
  });

  test('target forms', () => {
    expect(head('OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n').targetForm).toBe('asterisk');
    expect(head('CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n').targetForm).toBe('authority');
    expect(head('CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n').targetForm).toBe('authority');
    const abs = head('GET https://H.example:8443?q=1 HTTP/1.1\r\nHost: h.example:8443\r\n\r\n');
    expect([abs.targetForm, abs.target]).toEqual(['absolute', 'https://H.example:8443?q=1']);
    expect(reject('GET http:// HTTP/1.1\r\nHost: h\r\n\r\n').status).toBe(400);
    expect(reject('GET http://h%zz/ HTTP/1.1\r\nHost: h%zz\r\n\r\n').status).toBe(400);
    expect(reject('GET http://h:8x/ HTTP/1.1\r\nHost: h:8x\r\n\r\n').status).toBe(400);
  });

  test('many fields grow the scratch space', () => {
    const fields = Array.from({ length: 300 }, (_, i) => `X-F${i}: ${i}\r\n`).join('');
    const h = head(`GET / HTTP/1.1\r\nHost: h\r\n${fields}\r\n`);
    expect(h.headerCount).toBe(301);
    expect(h.headerValue(300)).toBe('299');
  });
});

describe('framing and connection facts', () => {
  test('keep-alive defaults and Connection tokens', () => {
    expect(head('GET / HTTP/1.1\r\nHost: h\r\n\r\n').keepAlive).toBe(true);
    expect(head('GET / HTTP/1.0\r\n\r\n').keepAlive).toBe(false);
    expect(head('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n').keepAlive).toBe(true);
    expect(head('GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n').keepAlive).toBe(false);
    expect(head('GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n').keepAlive).toBe(false);
    const h = head('GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Hop , ,keep-alive\r\nConnection: TE\r\n\r\n');
    expect(h.connectionTokens).toEqual(['x-hop', 'keep-alive', 'te']);
    expect(head('GET / HTTP/1.1\r\nHost: h\r\n\r\n').connectionTokens).toEqual([]);
  });

  test('upgrade is reported only when Connection lists upgrade', () => {
    expect(head('GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n').upgrade).toBe('websocket');
    expect(head('GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n').upgrade).toBeNull();
  });

  test('Expect: 100-continue on HTTP/1.1 only', () => {
    expect(head('PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nExpect: 100-Continue\r\n\r\n').expectContinue).toBe(true);
    expect(head('PUT / HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n').expectContinue).toBe(false);
    expect(head('PUT / HTTP/1.1\r\nHost: h\r\nExpect: other\r\n\r\n').expectContinue).toBe(false);
  });

  test('body framing', () => {
    const cl = head('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\n');
    expect([cl.contentLength, cl.chunked, cl.hasBody]).toEqual([12, false, true]);
    const te = head('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n');
    expect([te.contentLength, te.chunked, te.hasBody]).toEqual([null, true, true]);
    const none = head('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
    expect([none.contentLength, none.chunked, none.hasBody]).toEqual([null, false, false]);
    expect(head('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n').hasBody).toBe(false);
  });
});

describe('incremental feeding', () => {
  const inputs = [
    browser,
    '\r\n\r\nPOST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n',
    'GET / HTTP/1.0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: h\r\nX: a\x00\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\n',
  ];
  test.each(inputs.map((s) => [JSON.stringify(s).slice(0, 40), s]))('%s: same result at every split', (_n, s) => {
    const input = bytes(s);
    const parse = (b: Buffer, st: number, e: number) => parseRequestHead(b, st, e, limits);
    const whole = summary(parse(input, 0, input.length));
    for (let cut = 0; cut < input.length; cut++) expect(summary(feedSplit(parse, input, cut))).toEqual(whole);
  });

  test('every proper prefix of a valid head is incomplete', () => {
    const input = bytes(browser);
    for (let n = 0; n < input.length; n++) expect(parseRequestHead(input, 0, n, limits).kind).toBe('incomplete');
  });

  test('garbage fails before the head is complete', () => {
    const tls = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
    expect(parseRequestHead(tls, 0, tls.length, limits)).toMatchObject({ kind: 'error', status: 400 });
    expect(reject('GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n')).toMatchObject({ status: 400, reason: 'whitespace before colon' });
  });

  test('pipelined heads are parsed one after the other from headEnd', () => {
    const b = bytes('GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n');
    const first = parseRequestHead(b, 0, b.length, limits);
    if (first.kind !== 'head') throw new Error('head expected');
    const second = parseRequestHead(b, first.headEnd, b.length, limits);
    if (second.kind !== 'head') throw new Error('head expected');
    expect([first.head.target, second.head.target, second.headEnd]).toEqual(['/a', '/b', b.length]);
  });

  test('never reads past end', () => {
    const t = withStaleTail('GET / HTTP/1.1\r\nHost: h\r\n');
    expect(parseRequestHead(t.buf, t.start, t.end, limits).kind).toBe('incomplete');
    const big = withStaleTail('GET / HTTP/1.1\r\nHost: h\r\nX: ' + 'y'.repeat(EARLY_SCAN_BYTES * 2) + '\r\n');
    expect(parseRequestHead(big.buf, big.start, big.end, limits).kind).toBe('incomplete');
  });

  test('a head larger than the early-scan window is validated once complete', () => {
    const long = 'GET / HTTP/1.1\r\nHost: h\r\nX-Big: ' + 'v'.repeat(EARLY_SCAN_BYTES * 3) + '\r\n';
    const input = bytes(long + 'X-Bad\x01: 1\r\n\r\n');
    expect(parseRequestHead(input, 0, input.length - 20, limits).kind).toBe('incomplete');
    expect(parseRequestHead(input, 0, input.length, limits)).toMatchObject({ kind: 'error', status: 400 });
    const ok = bytes(long + '\r\n');
    const parse = (b: Buffer, st: number, e: number) => parseRequestHead(b, st, e, limits);
    const whole = summary(parse(ok, 0, ok.length));
    expect((whole as { kind: string }).kind).toBe('head');
    for (let cut = 0; cut < ok.length; cut += 97) expect(summary(feedSplit(parse, ok, cut))).toEqual(whole);
  });
});

describe('limits', () => {
  const small = { maxHeaderBytes: 256 };
  test('431 as soon as the bytes without a complete head exceed the limit', () => {
    const b = bytes('GET / HTTP/1.1\r\nHost: h\r\nX: ' + 'a'.repeat(400));
    expect(parseRequestHead(b, 0, 256, small).kind).toBe('incomplete');
    expect(parseRequestHead(b, 0, 257, small)).toMatchObject({ kind: 'error', status: 431 });
  });

  test('leading empty lines count towards the limit', () => {
    const b = bytes('\r\n'.repeat(200) + 'GET / HTTP/1.1\r\nHost: h\r\n\r\n');
    expect(parseRequestHead(b, 0, b.length, small)).toMatchObject({ kind: 'error', status: 431 });
    expect(parseRequestHead(b, 0, b.length, limits).kind).toBe('head');
  });

  test('the limit is counted from start, not from the buffer start', () => {
    const s = 'GET / HTTP/1.1\r\nHost: h\r\n\r\n';
    const b = bytes('x'.repeat(1000) + s);
    expect(parseRequestHead(b, 1000, b.length, { maxHeaderBytes: s.length }).kind).toBe('head');
  });

  test('split feeding of an oversized head gives 431 at every cut', () => {
    const input = bytes('GET / HTTP/1.1\r\nHost: h\r\nX: ' + 'a'.repeat(300) + '\r\n\r\n');
    const parse = (b: Buffer, st: number, e: number) => parseRequestHead(b, st, e, small);
    for (let cut = 0; cut < input.length; cut++) expect(feedSplit(parse, input, cut)).toMatchObject({ kind: 'error', status: 431 });
  });
});

test('Host values are handed out right whether they were seen just before or long ago (the recent-hosts reuse)', () => {
  const names = ['a.test', 'b.test', 'a.tesT', 'c.test:8080', '', '[::1]:80', 'd.test', 'e.test', 'a.test', 'A.TEST'];
  for (let round = 0; round < 3; round++) {
    for (const name of names) expect(head(`GET / HTTP/1.1\r\nHost: ${name}\r\n\r\n`).host).toBe(name);
  }
  expect(head('GET / HTTP/1.0\r\n\r\n').host).toBeNull();
});
