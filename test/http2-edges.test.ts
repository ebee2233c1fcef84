/**
 * HTTP/2 edges (issue 10, item 7): upstream responses HTTP/2 cannot carry
 * as they are are cleaned or answered 502, never left hanging and never
 * with a wrong status; plain CONNECT is refused; an exception in a
 * stream's handling ends that stream and is logged.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { RUNTIMES, startProxy } from './helpers/server';
import type { Server } from '../dist/index';
import { failStream } from '../dist/protocol/http2/stream-failure';

/** Raw HTTP/1.1 answers by path (each connection serves one request, then closes). */
const ANSWERS: Record<string, string> = {
  '/date-twice-same': 'HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nok',
  '/date-twice-different': 'HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nDate: Tue, 02 Jan 2024 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nok',
  '/content-type-twice': 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok',
  '/connection-specific':
    'HTTP/1.1 200 OK\r\nConnection: keep-alive, Upgrade, X-Private\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nKeep-Alive: timeout=5\r\n' +
    'Proxy-Connection: keep-alive\r\nTE: gzip\r\nX-Private: secret\r\nX-Public: kept\r\nContent-Length: 2\r\n\r\nok',
  '/interim-conflict': 'HTTP/1.1 103 Early Hints\r\nContent-Type: a/b\r\nContent-Type: c/d\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/trailers-conflict': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-MD5\r\n\r\n2\r\nok\r\n0\r\nContent-MD5: a\r\nContent-MD5: b\r\n\r\n',
  '/trailers-fine': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Checksum: 1\r\nConnection: close\r\n\r\n',
};

function startUpstream(): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', (head) => {
      const path = head.toString('latin1').split(' ')[1];
      socket.end(ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

interface Result {
  status?: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  trailers?: http2.IncomingHttpHeaders;
  rstCode: number;
}

function ask(port: number, headers: http2.OutgoingHttpHeaders, options: http2.ClientSessionOptions = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`, options);
    session.on('error', () => undefined);
    const timer = setTimeout(() => reject(new Error(`no end within 5 s for ${JSON.stringify(headers)}`)), 5000);
    const req = session.request(headers);
    const result: Result = { headers: {}, body: '', rstCode: 0 };
    req.on('response', (h) => {
      result.status = h[':status'] as number;
      result.headers = h;
    });
    req.on('trailers', (t) => (result.trailers = t));
    req.on('data', (d: Buffer) => (result.body += d.toString()));
    req.on('error', () => undefined);
    req.on('close', () => {
      clearTimeout(timer);
      result.rstCode = req.rstCode ?? 0;
      session.close();
      resolve(result);
    });
  });
}

describe.each(RUNTIMES)('HTTP/2 edges (%s)', (_name, noNative) => {
  let upstream: net.Server;
  let proxy: Server;
  let port: number;

  beforeAll(async () => {
    upstream = await startUpstream();
    const url = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
    proxy = await startProxy({ routes: [{ path: '/', upstream: { targets: [{ url }], max_fails: 0 }, retries: 0 }] }, noNative);
    port = proxy.address().port;
  });
  afterAll(async () => {
    await proxy?.stop();
    await new Promise((r) => upstream.close(r));
  });

  test('a single-value field repeated with the same value is sent once', async () => {
    const r = await ask(port, { ':path': '/date-twice-same' });
    expect(r.status).toBe(200);
    expect(r.headers.date).toBe('Mon, 01 Jan 2024 00:00:00 GMT');
    expect(r.body).toBe('ok');
  });

  test.each(['/date-twice-different', '/content-type-twice'])('%s: a single-value field with two values is a 502, not a hang', async (path) => {
    const r = await ask(port, { ':path': path });
    expect(r.status).toBe(502);
    expect(JSON.parse(r.body)).toMatchObject({ status: 502 });
  });

  test('connection-specific fields (HTTP2-Settings, Upgrade, Keep-Alive, TE...) and those Connection names are left out', async () => {
    const r = await ask(port, { ':path': '/connection-specific' });
    expect(r.status).toBe(200);
    for (const name of ['connection', 'upgrade', 'http2-settings', 'keep-alive', 'proxy-connection', 'te', 'x-private']) expect([name, r.headers[name]]).toEqual([name, undefined]);
    expect(r.headers['x-public']).toBe('kept');
    expect(r.body).toBe('ok');
  });

  test('an interim response that cannot be expressed is left out; the final one arrives', async () => {
    const r = await ask(port, { ':path': '/interim-conflict' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok');
  });

  test('trailers that cannot be expressed reset the stream after the body (never a clean end)', async () => {
    const r = await ask(port, { ':path': '/trailers-conflict' });
    expect(r.status).toBe(200);
    expect(r.trailers).toBeUndefined();
    expect(r.rstCode).toBe(http2.constants.NGHTTP2_INTERNAL_ERROR);
  });

  test('trailers that can be expressed are relayed, connection-specific ones left out', async () => {
    const r = await ask(port, { ':path': '/trailers-fine' });
    expect(r.status).toBe(200);
    expect(r.trailers?.['x-checksum']).toBe('1');
    expect(r.trailers?.connection).toBeUndefined();
    expect(r.rstCode).toBe(0);
  });

  test('plain CONNECT (no :protocol) is refused with 501', async () => {
    const r = await ask(port, { ':method': 'CONNECT', ':authority': 'example.com:443' });
    expect(r.status).toBe(501);
    expect(JSON.parse(r.body)).toMatchObject({ status: 501 });
  });

  test('extended CONNECT for another protocol than websocket is refused with 501', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    await new Promise((resolve) => session.once('remoteSettings', resolve));
    session.close();
    const r = await ask(port, { ':method': 'CONNECT', ':protocol': 'chat', ':path': '/x', ':scheme': 'http' });
    expect(r.status).toBe(501);
  });
});

describe('an exception in a stream callback', () => {
  let server: http2.Http2Server;
  let port: number;
  const logged: unknown[] = [];
  const ctx = { log: { error: (o: unknown) => logged.push(o) } } as unknown as Parameters<typeof failStream>[0];

  beforeAll(async () => {
    server = http2.createServer();
    server.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      const cancelled: string[] = [];
      if (headers[':path'] === '/after-head') {
        stream.respond({ ':status': 200 });
        stream.write('partial');
      }
      failStream(ctx, stream, 'req-1', new Error('boom'), { abort: () => cancelled.push('cancelled') });
      logged.push(cancelled);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  test('before the response head: a 500, logged, what it fed cancelled', async () => {
    logged.length = 0;
    const r = await ask(port, { ':path': '/before' });
    expect(r.status).toBe(500);
    expect(JSON.parse(r.body)).toMatchObject({ status: 500, request_id: 'req-1' });
    expect(logged).toEqual([expect.objectContaining({ requestId: 'req-1' }), ['cancelled']]);
  });

  test('after the response head: RST_STREAM INTERNAL_ERROR, never a clean end', async () => {
    const r = await ask(port, { ':path': '/after-head' });
    expect(r.status).toBe(200);
    expect(r.rstCode).toBe(http2.constants.NGHTTP2_INTERNAL_ERROR);
  });
});
