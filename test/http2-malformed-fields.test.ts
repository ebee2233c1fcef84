/**
 * Requests RFC 9113 §8.2.1 calls malformed are refused with a stream error
 * (RST_STREAM PROTOCOL_ERROR) and never reach the upstream, as nginx and
 * HAProxy do. nghttp2 resets some of them itself (upper-case names,
 * connection-specific fields); the rest it used to drop silently and
 * zproxy forwarded the request without the field. Raw HPACK literals carry
 * any byte; a node:http2 client covers Huffman-coded fields; an indexed
 * malformed field is refused every time it is referenced again.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { H2Raw, E, requestFields, type Encoded } from './helpers/h2-frames';
import { RUNTIMES, startProxy } from './helpers/server';
import type { Server } from '../dist/index';
import { HeaderBlockChecker, BLOCK_MALFORMED, BLOCK_OK } from '../dist/protocol/http2/hpack-check';
import { huffmanDecode } from '../dist/protocol/http2/huffman';

const MALFORMED: Array<[string, string, string]> = [
  ['CR in a value', 'x-a', 'a\rb'],
  ['LF in a value', 'x-a', 'a\nb'],
  ['CRLF in a value', 'x-a', 'a\r\nx-injected: 1'],
  ['NUL in a value', 'x-a', 'a\0b'],
  ['another CTL in a value', 'x-a', 'a\x01b'],
  ['DEL in a value', 'x-a', 'a\x7fb'],
  ['leading space in a value', 'x-a', ' a'],
  ['trailing tab in a value', 'x-a', 'a\t'],
  ['colon in a name', 'x:a', 'v'],
  ['space in a name', 'x a', 'v'],
  ['CRLF in a name', 'x\r\na', 'v'],
  ['upper case in a name', 'X-A', 'v'],
  ['non-token character in a name', 'x(a', 'v'],
  ['obs-text in a name', 'x\xe9', 'v'],
  ['empty name', '', 'v'],
  ['host that is no authority', 'host', 'a b'],
  ['connection', 'connection', 'close'],
  ['keep-alive', 'keep-alive', '5'],
  ['proxy-connection', 'proxy-connection', 'keep-alive'],
  ['transfer-encoding', 'transfer-encoding', 'chunked'],
  ['upgrade', 'upgrade', 'websocket'],
  ['te other than trailers', 'te', 'gzip'],
];

const VALID: Array<[string, string, string]> = [
  ['plain', 'x-a', 'v'],
  ['obs-text in a value', 'x-a', 'caf\xe9'],
  ['inner spaces and tabs', 'x-a', 'a \t b'],
  ['empty value', 'x-a', ''],
  ['te: trailers', 'te', 'trailers'],
  ['host', 'host', 'h2.test:8080'],
];

describe.each(RUNTIMES)('HTTP/2 malformed request fields (%s)', (_name, noNative) => {
  const seen: string[] = [];
  let upstream: http.Server;
  let proxy: Server;
  let port: number;

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      seen.push(req.url!);
      req.resume();
      req.on('end', () => res.end(JSON.stringify(req.rawHeaders)));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    proxy = await startProxy({ routes: [{ path: '/', upstream: `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}` }] }, noNative);
    port = proxy.address().port;
  });
  afterAll(async () => {
    await proxy?.stop();
    await new Promise((r) => upstream.close(r));
  });

  test.each(MALFORMED)('%s: RST_STREAM PROTOCOL_ERROR, nothing upstream, the connection goes on', async (label, name, value) => {
    const c = await H2Raw.connect(port);
    const path = `/bad/${encodeURIComponent(label)}`;
    c.request(1, path, { extra: [[name, value]] });
    const end = await c.ended(1);
    expect({ label, rst: end.rst, headers: end.headers }).toEqual({ label, rst: E.PROTOCOL_ERROR, headers: false });
    c.request(3, '/after');
    expect((await c.ended(3)).endStream).toBe(true);
    c.close();
    expect(seen).not.toContain(path);
  });

  test.each(VALID)('%s: forwarded', async (label, name, value) => {
    const c = await H2Raw.connect(port);
    const path = `/good/${encodeURIComponent(label)}`;
    c.request(1, path, { extra: [[name, value]] });
    const end = await c.ended(1);
    expect({ label, end: end.endStream, rst: end.rst }).toEqual({ label, end: true, rst: null });
    expect(seen).toContain(path);
    c.close();
  });

  test('a malformed field added to the dynamic table is refused again when referenced by index', async () => {
    const c = await H2Raw.connect(port);
    // Stream 1 adds "x-a: a\rb" at index 62 (with incremental indexing), stream 3 refers to it, stream 5 adds and uses a good one.
    c.headers(1, [...requestFields('/indexed/1'), { field: ['x-a', 'a\rb'], indexing: true }], { endStream: true });
    expect((await c.ended(1)).rst).toBe(E.PROTOCOL_ERROR);
    c.headers(3, [...requestFields('/indexed/3'), { index: 62 }], { endStream: true });
    expect((await c.ended(3)).rst).toBe(E.PROTOCOL_ERROR);
    const good: Encoded[] = [...requestFields('/indexed/5'), { field: ['x-b', 'fine'], indexing: true }];
    c.headers(5, good, { endStream: true });
    expect((await c.ended(5)).endStream).toBe(true);
    // Now index 62 is x-b: fine, and 63 the bad one.
    c.headers(7, [...requestFields('/indexed/7'), { index: 62 }], { endStream: true });
    expect((await c.ended(7)).endStream).toBe(true);
    c.headers(9, [...requestFields('/indexed/9'), { index: 63 }], { endStream: true });
    expect((await c.ended(9)).rst).toBe(E.PROTOCOL_ERROR);
    expect(seen.filter((p) => p.startsWith('/indexed/'))).toEqual(['/indexed/5', '/indexed/7']);
    c.close();
  });

  test('Huffman-coded fields from a real client: a value with a leading space and a bad host are refused', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    const ask = (headers: http2.OutgoingHttpHeaders) =>
      new Promise<{ status?: number; rstCode: number }>((resolve) => {
        const req = session.request({ ':path': '/huffman', ...headers });
        let status: number | undefined;
        req.on('response', (h) => (status = h[':status'] as number));
        req.on('error', () => undefined);
        req.resume();
        req.on('close', () => resolve({ status, rstCode: req.rstCode ?? 0 }));
      });
    expect(await ask({ 'x-padded': ' padded-value-that-compresses' })).toEqual({ status: undefined, rstCode: E.PROTOCOL_ERROR });
    expect(await ask({ host: 'a b.example' })).toEqual({ status: undefined, rstCode: E.PROTOCOL_ERROR });
    expect(await ask({ 'x-fine': 'a value that compresses well' })).toEqual({ status: 200, rstCode: 0 });
    session.close();
  });

  test('a malformed field in request trailers resets the stream', async () => {
    const c = await H2Raw.connect(port);
    c.request(1, '/trailers', { method: 'POST', endStream: false });
    c.data(1, Buffer.from('body'));
    c.headers(1, [['x-trailer', 'a\nb']], { endStream: true });
    expect((await c.ended(1)).rst).toBe(E.PROTOCOL_ERROR);
    c.close();
  });
});

describe('the HPACK checker', () => {
  test('Huffman decoding: RFC 7541 C.4.1 "www.example.com", C.4.3 "custom-value"', () => {
    const out = new Uint8Array(64);
    const a = Buffer.from('f1e3c2e5f23a6ba0ab90f4ff', 'hex');
    expect(Buffer.from(out.subarray(0, huffmanDecode(a, 0, a.length, out))).toString()).toBe('www.example.com');
    const b = Buffer.from('25a849e95bb8e8b4bf', 'hex');
    expect(Buffer.from(out.subarray(0, huffmanDecode(b, 0, b.length, out))).toString()).toBe('custom-value');
  });

  test('RFC 7541 C.4 request examples decode cleanly (with Huffman and the dynamic table)', () => {
    const checker = new HeaderBlockChecker();
    for (const hex of [
      '828684418cf1e3c2e5f23a6ba0ab90f4ff',
      '828684be5886a8eb10649cbf',
      '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf',
    ]) {
      expect(checker.check(Buffer.from(hex, 'hex'))).toBe(BLOCK_OK);
    }
  });

  test('evictions follow the table size: a bad entry pushed out no longer taints its index', () => {
    const checker = new HeaderBlockChecker();
    // Table size 100: one entry of 32 + 3 + 4 = 39 octets fits twice, not three times.
    const update = Buffer.from([0x3f, 100 - 31]);
    const lit = (name: string, value: string) => Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name, 'latin1'), Buffer.from([value.length]), Buffer.from(value, 'latin1')]);
    expect(checker.check(Buffer.concat([update, lit('x-a', 'a\rbc')]))).toBe(BLOCK_MALFORMED);
    expect(checker.check(Buffer.from([0x80 | 62]))).toBe(BLOCK_MALFORMED);
    expect(checker.check(lit('x-b', 'good'))).toBe(BLOCK_OK);
    expect(checker.check(Buffer.from([0x80 | 63]))).toBe(BLOCK_MALFORMED);
    expect(checker.check(lit('x-c', 'good'))).toBe(BLOCK_OK); // evicts the bad x-a
    expect(checker.check(Buffer.from([0x80 | 62, 0x80 | 63]))).toBe(BLOCK_OK);
  });
});
