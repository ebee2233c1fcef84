/**
 * No client holds a connection forever once a request is active (issue 10
 * items 3, 4 and 12, HTTP/1): a request body that stops arriving gets 408
 * (or a close once the response has started) after `client_body_timeout_ms`,
 * on proxied, 404 and `respond` routes alike; a response the client stops
 * reading is closed after `send_timeout_ms`, and the upstream request with
 * it; a client that pipelines and never reads makes zproxy stop reading its
 * requests; a client's FIN ends its connection at once.
 *
 * Timeouts are short (300 ms) and every wait is bounded far above them, so a
 * loaded machine cannot make a pass fail; what is asserted is what happens,
 * never how fast.
 */
import net from 'node:net';
import { RUNTIMES, startProxy } from './helpers/server';
import { RawClient, closeAll, errorBody, sleep, startRecordingUpstream, type RecordingUpstream } from './helpers/upstreams';
import type { Server } from '../dist/index';
import { validateConfig } from '../dist/index';

const SHORT = 300;

describe.each(RUNTIMES)('%s', (_name, noNative) => {
  let up: RecordingUpstream;
  let proxy: Server;
  let port: number;

  beforeEach(async () => {
    up = await startRecordingUpstream();
    proxy = await startProxy(
      {
        drain_timeout_ms: 1000,
        client_body_timeout_ms: SHORT,
        send_timeout_ms: SHORT,
        routes: [
          { path: '/direct', respond: { status: 200, headers: {}, body: 'direct' } },
          { path: '/only-get', methods: ['GET'], upstream: up.url },
          { path: '/up', upstream: up.url },
        ],
      },
      noNative,
    );
    port = proxy.address().port;
  });

  afterEach(async () => {
    await closeAll();
    await proxy.stop();
  });

  describe('a request body that stops arriving', () => {
    test.each([
      ['a proxied route', '/up/x'],
      ['a route with no match (404)', '/nowhere'],
      ['a method the route refuses (405)', '/only-get'],
      ['a respond route', '/direct'],
    ])('on %s: 408, then the connection closes', async (_what, target) => {
      const client = await RawClient.open(port);
      client.write(`POST ${target} HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789`);
      await client.waitClosed(10_000);
      const [response] = await client.responses(['POST']).catch(() => [null]);
      client.destroy();
      expect(response?.status).toBe(408);
      expect(errorBody(response!).error).toMatch(/request body not received in time/);
      expect(up.requests).toHaveLength(0); // the upstream never got a complete request
    });

    test('a chunked body stalled between chunks times out too', async () => {
      const client = await RawClient.open(port);
      client.write('POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      await client.waitClosed(10_000);
      expect(client.data.toString('latin1')).toMatch(/^HTTP\/1\.1 408 /);
      client.destroy();
    });

    test('once the response has started, the stalled body closes the connection (no 408 after a head)', async () => {
      // An upstream that starts answering as soon as the head arrives, and waits for the rest of the body.
      const sockets = new Set<net.Socket>();
      const early = net.createServer((s) => {
        sockets.add(s);
        s.on('error', () => undefined);
        s.once('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial'));
      });
      await new Promise<void>((resolve) => early.listen(0, '127.0.0.1', resolve));
      const earlyProxy = await startProxy({ client_body_timeout_ms: SHORT, routes: [{ path: '/', upstream: `http://127.0.0.1:${(early.address() as net.AddressInfo).port}` }] }, noNative);
      try {
        const client = await RawClient.open(earlyProxy.address().port);
        client.write('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789');
        await client.waitClosed(10_000);
        client.destroy();
        const text = client.data.toString('latin1');
        expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\npartial$/);
        expect(text).not.toContain('408');
      } finally {
        await earlyProxy.stop();
        for (const s of sockets) s.destroy();
        early.close();
      }
    });

    test('a body that keeps arriving slowly is not cut off', async () => {
      const client = await RawClient.open(port);
      client.write('POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n');
      for (let i = 0; i < 8; i++) {
        await sleep(SHORT / 3);
        client.write('x');
      }
      const response = await client.response('POST', 10_000);
      client.destroy();
      expect(response.status).toBe(200);
      expect(up.requests[0].body.toString()).toBe('xxxxxxxx');
    });
  });

  test('a response the client stops reading is closed, and its upstream request with it', async () => {
    const big = Buffer.alloc(32 * 1024 * 1024, 0x61);
    up.handler = (_req, res) => res.send(200, [], big);
    const socket = net.connect({ port, host: '127.0.0.1' });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.on('error', () => undefined);
    socket.pause(); // never reads
    socket.write('GET /up/big HTTP/1.1\r\nHost: a\r\n\r\n');
    await up.waitForRequests(1, 10_000);
    // zproxy gives up on the client: the upstream connection carrying its response is closed.
    await up.requests[0].conn.closed;
    // What the client gets when it reads at last is a part of the body, then the end: never a hang.
    let received = 0;
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.resume();
    await new Promise((resolve) => socket.once('close', resolve));
    expect(received).toBeLessThan(big.length);
  }, 30_000);

  test('a client that pipelines without reading makes zproxy stop reading its requests', async () => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.on('error', () => undefined);
    socket.pause();
    const request = Buffer.from('GET /direct HTTP/1.1\r\nHost: a\r\n\r\n', 'latin1');
    const batch = Buffer.concat(Array(2048).fill(request)); // 64 KiB of requests
    let written = 0;
    // Write until the kernel and zproxy stop taking more: zproxy no longer reads.
    for (let stalls = 0; stalls < 3 && written < 512 * 1024 * 1024; ) {
      if (socket.write(batch)) {
        written += batch.length;
        continue;
      }
      written += batch.length;
      const drained = await Promise.race([new Promise((resolve) => socket.once('drain', () => resolve(true))), sleep(1000).then(() => false)]);
      if (!drained) stalls++;
    }
    // Bounded by socket buffers and the high-water mark, far below what was offered.
    expect(written).toBeLessThan(128 * 1024 * 1024);
    // Everything zproxy read is answered, in order, once the client reads.
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.resume();
    const answers = () => text.split('HTTP/1.1 200 OK').length - 1;
    for (let last = -1; answers() !== last; ) {
      last = answers();
      await sleep(500);
    }
    socket.destroy();
    expect(answers()).toBeGreaterThan(1000);
    expect(text.endsWith('direct')).toBe(true);
  }, 60_000);

  describe("a client's FIN", () => {
    test('on an idle keep-alive connection closes it at once', async () => {
      const client = await RawClient.open(port);
      client.write('GET /direct HTTP/1.1\r\nHost: a\r\n\r\n');
      await client.response();
      client.socket.end();
      await client.waitClosed(2000);
      client.destroy();
    });

    test('during a proxied request cancels the upstream request', async () => {
      up.handler = (_req, res) => res.hang();
      const client = await RawClient.open(port);
      client.write('GET /up/slow HTTP/1.1\r\nHost: a\r\n\r\n');
      await up.waitForRequests(1);
      client.socket.end();
      await up.requests[0].conn.closed;
      await client.waitClosed(2000);
      client.destroy();
    });
  });
});

describe('configuration', () => {
  test('client_body_timeout_ms and send_timeout_ms default to connection_timeout_ms', () => {
    const result = validateConfig({ connection_timeout_ms: 1234 });
    expect('config' in result && result.config).toMatchObject({ client_body_timeout_ms: 1234, send_timeout_ms: 1234 });
    const own = validateConfig({ connection_timeout_ms: 1234, client_body_timeout_ms: 10, send_timeout_ms: 20 });
    expect('config' in own && own.config).toMatchObject({ client_body_timeout_ms: 10, send_timeout_ms: 20 });
    const bad = validateConfig({ send_timeout_ms: 0, client_body_timeout_ms: 'x' });
    expect('errors' in bad && bad.errors.join('\n')).toMatch(/send_timeout_ms: .*\n?.*|client_body_timeout_ms: /);
  });
});
