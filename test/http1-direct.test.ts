/**
 * HTTP/1 on the listener with direct responses: keep-alive, pipelining,
 * HEAD, 404/405 with JSON bodies, malformed requests closing only their own
 * connection, limits, unknown protocols refused — with curl and raw sockets.
 */
import { execFile } from 'node:child_process';
import { RUNTIMES, connect, exchange, readResponse, startProxy } from './helpers/server';
import type { Server } from '../dist/index';

const routes = [
  { path: '/hello', respond: { status: 200, headers: { 'content-type': 'text/plain', 'X-Served-By': 'zproxy' }, body: 'hello' } },
  { path: '/only-get', methods: ['GET'], respond: { status: 200, headers: {}, body: 'got' } },
  { path: '/upload', methods: ['POST', 'PUT'], respond: { status: 201, headers: {}, body: 'ok' } },
  { path: '/tenant', headers: { 'X-Tenant': 'a' }, respond: { status: 200, headers: {}, body: 'tenant a' } },
  { path: '/tenant', respond: { status: 200, headers: {}, body: 'any tenant' } },
];

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '5', ...args], (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout)));
  });
}

describe.each(RUNTIMES)('HTTP/1 direct responses (%s)', (_name, noNative) => {
  let server: Server;
  let port: number;

  beforeAll(async () => {
    server = await startProxy({ routes, max_header_bytes: 4096, max_body_bytes: 1000 }, noNative);
    port = server.address().port;
  });
  afterAll(() => server.stop());

  test('curl gets the configured status, headers and body', async () => {
    const out = await curl(['-i', `http://127.0.0.1:${port}/hello`]);
    expect(out).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(out).toMatch(/\r\nX-Served-By: zproxy\r\n/);
    expect(out).toMatch(/\r\ncontent-length: 5\r\n/);
    expect(out).toMatch(/\r\ndate: .+ GMT\r\n/);
    expect(out.endsWith('\r\n\r\nhello')).toBe(true);
  });

  test('keep-alive: many requests on one connection', async () => {
    const socket = await connect(port);
    for (let i = 0; i < 20; i++) {
      socket.write('GET /hello HTTP/1.1\r\nHost: t\r\n\r\n');
      expect((await readResponse(socket)).body).toBe('hello');
    }
    socket.destroy();
  });

  test('pipelined requests are answered in order', async () => {
    const requests = ['/only-get', '/hello', '/missing', '/only-get'].map((p) => `GET ${p} HTTP/1.1\r\nHost: t\r\n\r\n`).join('');
    const text = await exchange(port, requests + 'GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    expect(statuses).toEqual([200, 200, 404, 200, 200]);
    expect(text.indexOf('got')).toBeLessThan(text.indexOf('hello'));
  });

  test('a route with a header condition is taken per request on one connection', async () => {
    const socket = await connect(port);
    const bodies: string[] = [];
    for (const tenant of ['a', 'b', 'A', null, 'a']) {
      socket.write(`GET /tenant HTTP/1.1\r\nHost: t\r\n${tenant === null ? '' : `x-tenant: ${tenant}\r\n`}\r\n`);
      bodies.push((await readResponse(socket)).body);
    }
    socket.destroy();
    expect(bodies).toEqual(['tenant a', 'any tenant', 'any tenant', 'any tenant', 'tenant a']);
  });

  test('a request split across many writes', async () => {
    const socket = await connect(port);
    const request = 'GET /only-get HTTP/1.1\r\nHost: t\r\nX-Long: ' + 'y'.repeat(300) + '\r\n\r\n';
    for (const part of request.match(/.{1,7}/gs)!) {
      socket.write(part);
      await new Promise((r) => setImmediate(r));
    }
    expect((await readResponse(socket)).body).toBe('got');
    socket.destroy();
  });

  test('HEAD gets the head without the body', async () => {
    const text = await exchange(port, 'HEAD /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*content-length: 5\r\n/);
    expect(text.endsWith('\r\n\r\n')).toBe(true);
  });

  test('HTTP/1.0: closes by default, keeps alive when asked', async () => {
    expect(await exchange(port, 'GET /hello HTTP/1.0\r\n\r\n')).toMatch(/connection: close\r\n\r\nhello$/);
    const socket = await connect(port);
    socket.write('GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    expect((await readResponse(socket)).head).toMatch(/connection: keep-alive/);
    socket.destroy();
  });

  test('404 and 405 with Allow carry JSON error bodies with the request id', async () => {
    const missing = await exchange(port, 'GET /nope HTTP/1.1\r\nHost: t\r\nX-Request-Id: abc-123\r\nConnection: close\r\n\r\n');
    expect(missing).toMatch(/^HTTP\/1\.1 404 /);
    expect(JSON.parse(missing.split('\r\n\r\n')[1])).toEqual({ error: 'no route', status: 404, request_id: 'abc-123' });
    const wrongMethod = await exchange(port, 'DELETE /upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    expect(wrongMethod).toMatch(/^HTTP\/1\.1 405 /);
    expect(wrongMethod).toMatch(/\r\nallow: POST, PUT\r\n/i);
    expect(JSON.parse(wrongMethod.split('\r\n\r\n')[1])).toMatchObject({ status: 405 });
  });

  test('request bodies are read before answering: Content-Length and chunked', async () => {
    const socket = await connect(port);
    socket.write('POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world');
    expect((await readResponse(socket)).status).toBe(201);
    socket.write('PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
    expect((await readResponse(socket)).status).toBe(201);
    socket.write('GET /hello HTTP/1.1\r\nHost: t\r\n\r\n');
    expect((await readResponse(socket)).body).toBe('hello');
    socket.destroy();
  });

  test('Expect: 100-continue gets 100 before the final response', async () => {
    const socket = await connect(port);
    let seen = '';
    socket.on('data', (c) => (seen += c));
    socket.write('POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n');
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    socket.write('abc');
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toMatch(/HTTP\/1\.1 201 Created/);
    socket.destroy();
  });

  test('a malformed request gets 400 and closes only its own connection', async () => {
    const bystander = await connect(port);
    const bad = await exchange(port, 'GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400 [\s\S]*connection: close/);
    expect(JSON.parse(bad.split('\r\n\r\n')[1])).toMatchObject({ status: 400 });
    bystander.write('GET /hello HTTP/1.1\r\nHost: t\r\n\r\n');
    expect((await readResponse(bystander)).body).toBe('hello');
    bystander.destroy();
  });

  test('limits: 431 for a head over max_header_bytes, 413 for a body over max_body_bytes', async () => {
    expect(await exchange(port, `GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
    expect(await exchange(port, 'POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n')).toMatch(/^HTTP\/1\.1 413 /);
    const chunked = `POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n${'400\r\n' + 'z'.repeat(1024) + '\r\n'}`;
    expect(await exchange(port, chunked)).toMatch(/^HTTP\/1\.1 413 /);
  });

  test('bytes that are no known protocol are closed without an answer', async () => {
    expect(await exchange(port, Buffer.from([0x00, 0x01, 0x02, 0x03, 0xff, 0x20, 0x0d, 0x0a]))).toBe('');
    expect(await exchange(port, 'SSH-2.0-OpenSSH_9.2\r\n')).toBe('');
  });

  test('the process survives a burst of garbage and keeps serving', async () => {
    const garbage = Array.from({ length: 50 }, (_, i) => exchange(port, Buffer.from(`${'\x7f'.repeat(i)}GET /\x00 HTTP/9.9\r\n\r\n`)).catch(() => ''));
    await Promise.all(garbage);
    expect(await exchange(port, 'GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')).toMatch(/hello$/);
  });
});
