/**
 * Bodies stream with backpressure both ways, never fully buffered (SPEC §5):
 * a client that stops reading stops the upstream's writes, and an upstream
 * that stops reading stops the client's upload; when they resume, every byte
 * arrives. Loopback kernel buffers hold a few MB, so "stopped" means far less
 * than the whole body got through.
 */
import net from 'node:net';
import type { Server } from '../dist/index';
import { startProxy } from './helpers/server';
import { sleep } from './helpers/upstreams';

const TOTAL = 128 * 1024 * 1024;
const LIMIT = 64 * 1024 * 1024;
const CHUNK = Buffer.alloc(1024 * 1024, 0x61);

let proxy: Server | undefined;
const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();

afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  await proxy?.stop();
  proxy = undefined;
});

function listen(handler: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    handler(socket);
  });
  servers.push(server);
  return new Promise((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve((server.address() as net.AddressInfo).port)));
}

/** Writes `total` bytes honouring backpressure; `progress.accepted` counts bytes the socket took. */
async function pump(socket: net.Socket, total: number, progress: { accepted: number }): Promise<void> {
  while (progress.accepted < total && !socket.destroyed) {
    const n = Math.min(CHUNK.length, total - progress.accepted);
    progress.accepted += n;
    if (!socket.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
      await new Promise<void>((resolve) => {
        socket.once('drain', resolve);
        socket.once('close', resolve);
      });
    }
  }
}

test('a client that stops reading stops the upstream (response backpressure); resumed, every byte arrives', async () => {
  const sent = { accepted: 0 };
  const upstreamPort = await listen((socket) => {
    socket.once('data', () => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${TOTAL}\r\n\r\n`);
      void pump(socket, TOTAL, sent);
    });
  });
  proxy = await startProxy({ drain_timeout_ms: 1000, routes: [{ path: '/', upstream: `http://127.0.0.1:${upstreamPort}` }] }, false);
  const client = net.connect({ host: '127.0.0.1', port: proxy.address().port });
  sockets.add(client);
  let received = 0;
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  client.write('GET /big HTTP/1.1\r\nHost: p\r\n\r\n');
  await new Promise<void>((resolve) => client.once('data', (chunk: Buffer) => ((received += chunk.length), resolve())));
  client.pause();
  await sleep(1500);
  expect(sent.accepted).toBeLessThan(LIMIT);
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${received} bytes within 20 s`)), 20_000);
    client.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= TOTAL) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  client.resume();
  await done;
  // Head plus exactly the body.
  expect(received - TOTAL).toBeGreaterThan(0);
  expect(received - TOTAL).toBeLessThan(1000);
}, 40_000);

test('an upstream that stops reading stops the client upload (request backpressure); resumed, every byte arrives', async () => {
  let upstream: net.Socket | null = null;
  let got = 0;
  let headEnd = -1;
  const upstreamPort = await listen((socket) => {
    upstream = socket;
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      if (headEnd < 0) {
        head += chunk.toString('latin1');
        headEnd = head.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        got += head.length - headEnd - 4;
        socket.pause(); // stop reading after the head
      } else {
        got += chunk.length;
      }
      if (got >= TOTAL) socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${String(got).length}\r\n\r\n${got}`);
    });
  });
  proxy = await startProxy({ drain_timeout_ms: 1000, routes: [{ path: '/', upstream: `http://127.0.0.1:${upstreamPort}` }] }, false);
  const client = net.connect({ host: '127.0.0.1', port: proxy.address().port });
  sockets.add(client);
  client.on('error', () => undefined);
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  let answer = '';
  client.on('data', (c: Buffer) => (answer += c.toString('latin1')));
  client.write(`POST /upload HTTP/1.1\r\nHost: p\r\nContent-Length: ${TOTAL}\r\n\r\n`);
  const sent = { accepted: 0 };
  const pumping = pump(client, TOTAL, sent);
  await sleep(1500);
  expect(upstream).not.toBeNull();
  expect(sent.accepted).toBeLessThan(LIMIT);
  upstream!.resume();
  await pumping;
  for (const start = Date.now(); !answer.includes('\r\n\r\n') && Date.now() - start < 20_000; ) await sleep(50);
  expect(answer).toMatch(/^HTTP\/1\.1 200 /);
  expect(answer.endsWith(`\r\n\r\n${TOTAL}`)).toBe(true);
}, 40_000);
