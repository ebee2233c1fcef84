/**
 * WebSocket over HTTP/1.1 through the proxy, with real clients (`ws`) and
 * raw sockets, on both runtimes: the splice tunnel (addon) and the
 * JavaScript tunnel (fallback).
 */
import http from 'node:http';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import type { Server } from '../dist/index';
import { ROOT, RUNTIMES, listeningPort, startCli, startProxy } from './helpers/server';
import type { RawAddon } from '../src/native/addon-types';

/** The addon as this process loads it: its tunnel thread is the one the in-process proxy uses. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const addon = require('node-gyp-build')(ROOT) as RawAddon;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data as ArrayBuffer);
}

interface WsUpstream {
  wss: WebSocketServer;
  port: number;
  /** Heads of the upgrade requests, in order. */
  requests: http.IncomingMessage[];
  close(): Promise<void>;
}

/** A `ws` server: echoes every message; `big:N` answers with N random bytes after their sha256. */
async function startWsUpstream(options: { perMessageDeflate?: boolean } = {}): Promise<WsUpstream> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: options.perMessageDeflate ?? false,
    handleProtocols: (protocols) => protocols.values().next().value ?? false,
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  const requests: http.IncomingMessage[] = [];
  wss.on('connection', (ws, req) => {
    requests.push(req);
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '' : toBuffer(data).toString();
      if (text.startsWith('big:')) {
        const payload = randomBytes(Number(text.slice(4)));
        ws.send(sha256(payload));
        ws.send(payload, { binary: true });
      } else if (text.startsWith('close:')) {
        ws.close(Number(text.slice(6)), 'server-bye');
      } else {
        ws.send(data, { binary: isBinary });
      }
    });
  });
  return {
    wss,
    port: (wss.address() as net.AddressInfo).port,
    requests,
    close: () =>
      new Promise((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}

function open(url: string, protocols?: string[], options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data, binary) => resolve({ data: toBuffer(data), binary }));
    ws.once('close', () => reject(new Error('closed before a message')));
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve({ code: 1006, reason: '' });
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
}

/** Reads from a raw socket until `predicate` holds on everything received. */
function readUntil(socket: net.Socket, predicate: (data: Buffer) => boolean, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`timed out; got ${JSON.stringify(data.toString('latin1'))}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (predicate(data)) finish();
    };
    const onEnd = () => finish(predicate(data) ? undefined : new Error(`ended early; got ${JSON.stringify(data.toString('latin1'))}`));
    function finish(err?: Error) {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      if (err) reject(err);
      else resolve(data);
    }
    socket.on('data', onData);
    socket.once('end', onEnd);
  });
}

const UPGRADE_HEAD = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

describe.each(RUNTIMES)('WebSocket tunnels (%s)', (_name, noNative) => {
  let up: WsUpstream;
  let proxy: Server;
  let url: string;

  beforeAll(async () => {
    up = await startWsUpstream({ perMessageDeflate: true });
    proxy = await startProxy({ drain_timeout_ms: 1000, routes: [{ path: '/', upstream: `http://127.0.0.1:${up.port}` }] }, noNative);
    url = `ws://127.0.0.1:${proxy.address().port}`;
  });

  afterAll(async () => {
    await proxy?.stop();
    await up?.close();
  });

  test('echo: text, binary, and an 8 MiB message each way compared by sha256', async () => {
    const spliced = addon.tunnelStats().created;
    const ws = await open(`${url}/echo`);
    ws.send('hello');
    expect(await nextMessage(ws)).toEqual({ data: Buffer.from('hello'), binary: false });
    const bin = randomBytes(1000);
    ws.send(bin);
    const echoed = await nextMessage(ws);
    expect(echoed.binary).toBe(true);
    expect(echoed.data.equals(bin)).toBe(true);

    const big = randomBytes(8 << 20);
    ws.send(big);
    const back = await nextMessage(ws);
    expect(back.data.length).toBe(big.length);
    expect(sha256(back.data)).toBe(sha256(big));

    ws.send(`big:${8 << 20}`);
    const digest = (await nextMessage(ws)).data.toString();
    const payload = await nextMessage(ws);
    expect(payload.data.length).toBe(8 << 20);
    expect(sha256(payload.data)).toBe(digest);
    ws.close();
    await closed(ws);
    // The addon runtime moved it through a splice tunnel; the fallback never touches the addon.
    expect(addon.tunnelStats().created - spliced).toBe(noNative ? 0 : 1);
  });

  test('every offered subprotocol and extension reaches the upstream; permessage-deflate negotiated end to end', async () => {
    const ws = await open(`${url}/proto?q=1`, ['a', 'b'], { perMessageDeflate: true });
    const req = up.requests[up.requests.length - 1];
    expect(req.url).toBe('/proto?q=1');
    expect(req.headers['sec-websocket-protocol']?.split(/\s*,\s*/)).toEqual(['a', 'b']);
    expect(req.headers['sec-websocket-extensions']).toMatch(/permessage-deflate/);
    expect(req.headers.upgrade).toBe('websocket');
    expect(req.headers.connection).toMatch(/upgrade/i);
    expect(req.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(ws.protocol).toBe('a');
    expect(ws.extensions).toMatch(/permessage-deflate/);
    const text = 'compressible '.repeat(10000);
    ws.send(text);
    expect((await nextMessage(ws)).data.toString()).toBe(text);
    ws.close();
    await closed(ws);
  });

  test('several Sec-WebSocket-* field lines reach the upstream byte for byte', async () => {
    const client = net.connect(proxy.address().port, '127.0.0.1');
    client.write(
      'GET /raw-offer HTTP/1.1\r\nHost: ws.test\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: a, b\r\nSec-WebSocket-Protocol: c\r\n' +
        'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nSec-WebSocket-Extensions: x-custom; p=1\r\n\r\n',
    );
    const head = (await readUntil(client, (d) => d.includes('\r\n\r\n'))).toString('latin1');
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    expect(head).toMatch(/\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
    expect(head).toMatch(/\r\nSec-WebSocket-Protocol: a\r\n/i);
    expect(head).toMatch(/\r\nSec-WebSocket-Extensions: permessage-deflate/i);
    const raw = up.requests[up.requests.length - 1].rawHeaders;
    const lines = (name: string) => raw.filter((_, i) => i % 2 === 1 && raw[i - 1].toLowerCase() === name);
    expect(lines('sec-websocket-protocol')).toEqual(['a, b', 'c']);
    expect(lines('sec-websocket-extensions')).toEqual(['permessage-deflate; client_max_window_bits', 'x-custom; p=1']);
    expect(lines('upgrade')).toEqual(['websocket']);
    expect(lines('connection')).toEqual(['upgrade']);
    client.destroy();
  });

  test('close codes and reasons propagate both ways', async () => {
    const fromClient = await open(`${url}/close1`);
    const serverSide = new Promise<{ code: number; reason: string }>((resolve) => {
      const last = [...up.wss.clients].pop()!;
      last.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    const clientSide = closed(fromClient);
    fromClient.close(4001, 'client-bye');
    expect(await serverSide).toEqual({ code: 4001, reason: 'client-bye' });
    expect((await clientSide).code).toBe(4001);

    const fromServer = await open(`${url}/close2`);
    fromServer.send('close:4002');
    expect(await closed(fromServer)).toEqual({ code: 4002, reason: 'server-bye' });
  });

  test('the upstream refusing the upgrade (403 with a body) is relayed as is, and its connection is not reused', async () => {
    const sockets = new Set<number>();
    const server = http.createServer((req, res) => {
      sockets.add(req.socket.remotePort!);
      if (req.headers.upgrade) {
        res.writeHead(403, { 'content-type': 'text/plain', 'content-length': 9, 'x-why': 'nope' });
        return res.end('forbidden');
      }
      res.end('plain');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const p = await startProxy({ drain_timeout_ms: 500, thread_count: 1, routes: [{ path: '/', upstream: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}` }] }, noNative);
    try {
      const client = net.connect(p.address().port, '127.0.0.1');
      client.write(UPGRADE_HEAD('/deny'));
      const refused = (await readUntil(client, (d) => d.toString('latin1').endsWith('forbidden'))).toString('latin1');
      expect(refused).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
      expect(refused).toMatch(/\r\nx-why: nope\r\n/i);
      expect(refused).not.toMatch(/\r\nupgrade:/i);
      // The client connection goes on; the upstream one that carried the upgrade is not reused.
      client.write('GET /plain HTTP/1.1\r\nHost: ws.test\r\n\r\n');
      const plain = (await readUntil(client, (d) => d.toString('latin1').endsWith('plain'))).toString('latin1');
      expect(plain).toMatch(/^HTTP\/1\.1 200 /);
      expect(sockets.size).toBe(2);
      client.destroy();
    } finally {
      await p.stop();
      server.closeAllConnections();
      server.close();
    }
  });

  test('half-close both ways over raw sockets; bytes read together with the heads are not lost', async () => {
    let upstreamSide!: net.Socket;
    let upstreamGot = Buffer.alloc(0);
    const servers: net.Server[] = [];
    const upstreamEnded = new Promise<void>((resolveEnd) => {
      const server = net.createServer({ allowHalfOpen: true }, (socket) => {
        upstreamSide = socket;
        socket.on('data', (chunk) => {
          upstreamGot = Buffer.concat([upstreamGot, chunk]);
          const text = upstreamGot.toString('latin1');
          if (text.includes('\r\n\r\n') && !socket.writableEnded && !(socket as net.Socket & { answered?: boolean }).answered) {
            (socket as net.Socket & { answered?: boolean }).answered = true;
            // The 101 and the first frame in one write: they reach the proxy in one read.
            socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nFIRST-FROM-UPSTREAM|');
          }
        });
        socket.on('end', () => resolveEnd());
      });
      server.listen(0, '127.0.0.1');
      servers.push(server);
    });
    await new Promise((resolve) => (servers[0].listening ? resolve(undefined) : servers[0].once('listening', resolve)));
    const upPort = (servers[0].address() as net.AddressInfo).port;
    const p = await startProxy({ drain_timeout_ms: 500, thread_count: 1, routes: [{ path: '/', upstream: `http://127.0.0.1:${upPort}` }] }, noNative);
    try {
      const client = net.connect({ port: p.address().port, host: '127.0.0.1', allowHalfOpen: true });
      // The upgrade request and the first client bytes in one write.
      client.write(UPGRADE_HEAD('/raw') + 'FIRST-FROM-CLIENT|');
      const head = await readUntil(client, (d) => d.toString('latin1').includes('FIRST-FROM-UPSTREAM|'));
      expect(head.toString('latin1')).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
      expect(head.toString('latin1')).toMatch(/\r\nupgrade: websocket\r\n/i);
      expect(head.toString('latin1')).toMatch(/\r\nconnection: upgrade\r\n/i);
      expect(head.toString('latin1')).toMatch(/\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
      await readUntilValue(() => upstreamGot.toString('latin1').endsWith('FIRST-FROM-CLIENT|'));

      // Client half-closes: the upstream sees the end, and can still answer.
      client.end('LAST-FROM-CLIENT');
      await upstreamEnded;
      expect(upstreamGot.toString('latin1').endsWith('FIRST-FROM-CLIENT|LAST-FROM-CLIENT')).toBe(true);
      upstreamSide.write('AFTER-HALF-CLOSE');
      const after = await readUntil(client, (d) => d.toString('latin1').includes('AFTER-HALF-CLOSE'));
      expect(after.toString('latin1')).toBe('AFTER-HALF-CLOSE');
      const clientEnded = new Promise<void>((resolve) => client.once('end', () => resolve()));
      client.resume();
      upstreamSide.end();
      await clientEnded;
      await new Promise<void>((resolve) => (client.destroyed ? resolve() : client.once('close', () => resolve())));
    } finally {
      await p.stop();
      for (const server of servers) server.close();
      upstreamSide?.destroy();
    }
  });

  test('websocket_idle_timeout_ms closes a quiet tunnel, not a busy one', async () => {
    const p = await startProxy({ drain_timeout_ms: 500, thread_count: 1, websocket_idle_timeout_ms: 400, routes: [{ path: '/', upstream: `http://127.0.0.1:${up.port}` }] }, noNative);
    try {
      const base = `ws://127.0.0.1:${p.address().port}`;
      const busy = await open(`${base}/busy`);
      const quiet = await open(`${base}/quiet`);
      const started = Date.now();
      const quietClosed = closed(quiet);
      for (let i = 0; i < 10; i++) {
        busy.send(`tick ${i}`);
        await nextMessage(busy);
        await sleep(100);
      }
      const q = await quietClosed;
      expect(q.code).toBe(1006); // the TCP connection was closed, no close frame
      expect(Date.now() - started).toBeGreaterThanOrEqual(350);
      expect(busy.readyState).toBe(WebSocket.OPEN);
      busy.close();
      await closed(busy);
    } finally {
      await p.stop();
    }
  });

  test('`websocket` left out of `protocols`: the request goes on as a plain one, never tunnelled', async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    let upgrades = 0;
    const server = http.createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(426, { 'content-type': 'text/plain' });
      res.end('upgrade required');
    });
    server.on('upgrade', (_req, socket) => {
      upgrades++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const p = await startProxy(
      { drain_timeout_ms: 500, thread_count: 1, protocols: ['http1'], routes: [{ path: '/', upstream: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}` }] },
      noNative,
    );
    try {
      await expect(open(`ws://127.0.0.1:${p.address().port}/ws`, ['a'])).rejects.toThrow(/unexpected response 426/);
      expect(upgrades).toBe(0);
      expect(seen).toHaveLength(1);
      expect(seen[0].upgrade).toBeUndefined();
      expect(seen[0].connection ?? '').not.toMatch(/upgrade/i);
      expect(seen[0]['sec-websocket-protocol']).toBe('a');
    } finally {
      await p.stop();
      server.closeAllConnections();
      server.close();
    }
  });
});

async function readUntilValue(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe.each(RUNTIMES)('WebSocket tunnels leak no fd (%s)', (_name, noNative) => {
  const SESSIONS = 1000;
  const CONCURRENCY = 50;

  test(`${SESSIONS} sessions, ${CONCURRENCY} at a time: the proxy's open fds are back where they were`, async () => {
    const up = await startWsUpstream();
    const dir = mkdtempSync(path.join(tmpdir(), 'zproxy-ws-fds-'));
    const file = path.join(dir, 'zproxy.json');
    writeFileSync(file, JSON.stringify({ host: '127.0.0.1', port: 0, thread_count: 2, admin: null, routes: [{ path: '/', upstream: `http://127.0.0.1:${up.port}` }] }));
    const proxy = await startCli(['start', '--config', file], noNative ? { ZPROXY_NO_NATIVE: '1' } : {});
    const pid = proxy.child.pid!;
    const fds = () => readdirSync(`/proc/${pid}/fd`).length;
    try {
      const url = `ws://127.0.0.1:${listeningPort(proxy.output())}/s`;
      const session = async (i: number) => {
        const ws = await open(url);
        ws.send(`session ${i}`);
        expect((await nextMessage(ws)).data.toString()).toBe(`session ${i}`);
        // Half the sessions close from the client, half from the upstream.
        if (i % 2 === 0) ws.close(1000);
        else ws.send('close:1000');
        await closed(ws);
      };
      const run = async (count: number) => {
        let next = 0;
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (next < count) await session(next++);
          }),
        );
      };
      // Warm-up: both workers have made what they keep for their lifetime
      // (the tunnel thread's epoll fd and eventfd with the addon).
      await run(2 * CONCURRENCY);
      await sleep(500); // closes in flight finish
      const before = fds();
      await run(SESSIONS);
      // Tunnels close asynchronously (the native report, the upstream's close): give them a moment.
      for (let i = 0; i < 100 && fds() > before; i++) await sleep(50);
      // Slack of 2: an fd that happens to be open at the moment of counting
      // (a log write, a socket between accept and close), unrelated to tunnels.
      const after = fds();
      expect(after).toBeLessThanOrEqual(before + 2);
      expect(proxy.child.exitCode).toBeNull();
    } finally {
      proxy.child.kill('SIGTERM');
      expect(await proxy.exited).toBe(0);
      await up.close();
    }
  }, 120_000);
});
