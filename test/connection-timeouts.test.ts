/**
 * `connection_timeout_ms`: idle keep-alive connections, connections that
 * never send anything, and request heads that arrive too slowly (slowloris)
 * are closed; a connection that keeps making requests is not.
 */
import { LISTENERS, connect, readResponse, startProxy, waitForClose } from './helpers/server';
import type { Server } from '../dist/index';

const TIMEOUT_MS = 400;

describe.each(LISTENERS)('connection timeouts (%s)', (_name, noNative, threads) => {
  let server: Server;
  let port: number;

  beforeAll(async () => {
    server = await startProxy({ connection_timeout_ms: TIMEOUT_MS, thread_count: threads }, noNative);
    port = server.address().port;
  });
  afterAll(() => server.stop());

  test('a connection that sends nothing is closed', async () => {
    const socket = await connect(port);
    const closedAfter = await waitForClose(socket, TIMEOUT_MS * 5);
    expect(closedAfter).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
  });

  test('an idle keep-alive connection is closed after its response', async () => {
    const socket = await connect(port);
    socket.write('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
    expect((await readResponse(socket)).status).toBe(200);
    const closedAfter = await waitForClose(socket, TIMEOUT_MS * 5);
    expect(closedAfter).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
  });

  test('a request head sent byte by byte too slowly is answered 408 and closed', async () => {
    const socket = await connect(port);
    let received = '';
    socket.on('data', (chunk) => (received += chunk));
    const head = 'GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ' + 'a'.repeat(40) + '\r\n\r\n';
    let i = 0;
    const drip = setInterval(() => {
      if (!socket.destroyed && i < head.length) socket.write(head[i++]);
    }, 25);
    try {
      await waitForClose(socket, TIMEOUT_MS * 6);
    } finally {
      clearInterval(drip);
    }
    expect(i).toBeLessThan(head.length);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  });

  test('a busy keep-alive connection stays open past the timeout', async () => {
    const socket = await connect(port);
    const until = Date.now() + TIMEOUT_MS * 3;
    let requests = 0;
    while (Date.now() < until) {
      socket.write('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
      expect((await readResponse(socket)).status).toBe(200);
      requests++;
      await new Promise((r) => setTimeout(r, TIMEOUT_MS / 4));
    }
    expect(requests).toBeGreaterThan(4);
    expect(socket.destroyed).toBe(false);
    socket.destroy();
  });
});
