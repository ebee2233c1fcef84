/**
 * A proxied response head made in place (forward-head.ts rewriteResponseHead,
 * the small-response path) must be byte for byte the head forwardResponseHead
 * builds in a buffer of its own, body included, for any mix of kept and
 * dropped fields; and where it cannot be made in place it must leave the
 * buffer as it was.
 */
import { parseResponseHead, type ResponseHead } from '../dist/protocol/http1/response-head';
import { forwardResponseHead, rewriteResponseHead, type ForwardResponseOptions } from '../dist/protocol/http1/forward-head';
import { mulberry32 } from './helpers/random';


const FIELDS: Array<[string, string]> = [
  ['Server', 'nginx/1.22.1'],
  ['Date', 'Thu, 26 Nov 2026 07:40:00 GMT'],
  ['Content-Type', 'text/plain'],
  ['Connection', 'keep-alive'],
  ['Connection', 'close, X-Hop'],
  ['Keep-Alive', 'timeout=5'],
  ['X-Hop', 'dropped when named'],
  ['Proxy-Connection', 'keep-alive'],
  ['TE', 'trailers'],
  ['Upgrade', 'h2c'],
  ['Set-Cookie', 'a=b; Path=/'],
  ['X-Request-Id', 'from-upstream'],
  ['ETag', '"abc"'],
];

function parsed(bytes: Buffer, length: number): ResponseHead {
  const result = parseResponseHead(bytes, 0, length, { maxHeaderBytes: 65536 });
  if (result.kind !== 'head') throw new Error(`not a head: ${JSON.stringify(result)}`);
  return result.head;
}

test('made in place equals built apart, over 3000 generated responses', () => {
  const rand = mulberry32(20261126);
  for (let n = 0; n < 3000; n++) {
    const fields = FIELDS.filter(() => rand() < 0.4).sort(() => rand() - 0.5);
    const body = 'x'.repeat(Math.floor(rand() * 40));
    const text = `HTTP/1.1 200 OK\r\n${fields.map(([k, v]) => `${k}: ${v}\r\n`).join('')}Content-Length: ${body.length}\r\n\r\n${body}`;
    const options: ForwardResponseOptions = {
      requestId: rand() < 0.5 ? Math.floor(rand() * 2 ** 40) : 'client-given-id',
      addRequestId: rand() < 0.7,
      chunked: rand() < 0.2,
      close: rand() < 0.3,
      keepAliveHeader: rand() < 0.2,
      edits: null,
    };
    const apart = Buffer.from(text, 'latin1');
    const headApart = parsed(apart, apart.length);
    const expected = forwardResponseHead(headApart, options, apart, headApart.headEnd, apart.length);

    const room = Buffer.alloc(apart.length + 200, 0x2e);
    apart.copy(room);
    const head = parsed(room, apart.length);
    const end = rewriteResponseHead(head, options, apart.length);
    expect(end).toBeGreaterThan(0);
    expect(room.subarray(head.start, end).toString('latin1')).toBe(expected.toString('latin1'));
  }
});

test('no room behind the body, or a status line to rewrite: -1, and the buffer is untouched', () => {
  const options: ForwardResponseOptions = { requestId: 12345, addRequestId: true, chunked: false, close: true, keepAliveHeader: false, edits: null };
  const tight = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi', 'latin1');
  const before = Buffer.from(tight);
  expect(rewriteResponseHead(parsed(tight, tight.length), options, tight.length)).toBe(-1);
  expect(tight).toEqual(before);

  const old = Buffer.alloc(200, 0x2e);
  const length = old.write('HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi', 'latin1');
  const oldBefore = Buffer.from(old);
  expect(rewriteResponseHead(parsed(old, length), options, length)).toBe(-1);
  expect(old).toEqual(oldBefore);
});

test('fields shorter than the dropped ones: the blank line and body move left, nothing behind them is read', () => {
  const room = Buffer.alloc(300, 0x2e);
  const length = room.write('HTTP/1.1 204 No Content\r\nConnection: keep-alive, X-Long-Hop-Header-Name\r\nX-Long-Hop-Header-Name: ' + 'v'.repeat(60) + '\r\nA: b\r\n\r\nbody', 'latin1');
  const head = parsed(room, length);
  const end = rewriteResponseHead(head, { requestId: 'id', addRequestId: false, chunked: false, close: false, keepAliveHeader: false, edits: null }, length);
  expect(room.toString('latin1', 0, end)).toBe('HTTP/1.1 204 No Content\r\nA: b\r\n\r\nbody');
});
