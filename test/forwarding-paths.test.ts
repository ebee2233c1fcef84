/**
 * One forwarding rule set for every path (issue 11 item 3): the same cases
 * through HTTP/1 -> HTTP/1, HTTP/2 -> HTTP/1, HTTP/2 -> HTTP/2, WebSocket
 * over HTTP/1 and WebSocket over HTTP/2, and the same upstream view each
 * time — X-Forwarded-For appended to, X-Forwarded-Proto and -Host zproxy's
 * own, X-Request-Id passed on or made, Host kept, end-to-end fields passed
 * and connection-specific ones never, and `trusted_proxies` deciding the
 * client IP the same way on every path (seen through a test middleware).
 */
import http2 from 'node:http2';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startProxy } from './helpers/server';
import type { Server } from '../dist/index';

type Fields = Record<string, string>;
type Path = 'h1->h1' | 'h2->h1' | 'h2->h2' | 'ws/h1' | 'ws/h2';
const PATHS: Path[] = ['h1->h1', 'h2->h1', 'h2->h2', 'ws/h1', 'ws/h2'];
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** What each case sends (as end-to-end fields every protocol can carry) and expects upstream. */
const CASES: Array<{ name: string; send: Fields; expect: Fields; absent: string[] }> = [
  {
    name: 'forwarded fields: appended to, or the proxy\'s own',
    send: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'gopher', 'x-forwarded-host': 'evil.example', 'x-custom': 'kept' },
    expect: { 'x-forwarded-for': '203.0.113.9, 127.0.0.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'fwd.test', 'x-custom': 'kept', host: 'fwd.test' },
    absent: [],
  },
  {
    name: 'a client X-Request-Id is passed on as it came',
    send: { 'x-request-id': 'rid-given-1' },
    expect: { 'x-request-id': 'rid-given-1', 'x-forwarded-for': '127.0.0.1', host: 'fwd.test' },
    absent: [],
  },
  {
    name: 'without one, an id is made; fields with "_" never pass; the client IP follows trusted_proxies',
    send: { x_forwarded_for: '198.51.100.1', 'x-forwarded-for': '192.0.2.77' },
    expect: { 'x-forwarded-for': '192.0.2.77, 127.0.0.1', 'x-seen-client-ip': '192.0.2.77' },
    absent: ['x_forwarded_for'],
  },
];

let h1Upstream: net.Server;
let h2Upstream: http2.Http2Server;
let proxy: Server;
const seen: Array<{ path: string; fields: Fields }> = [];
const sockets = new Set<net.Socket>();

function fieldsOf(rawHead: string): Fields {
  const fields: Fields = {};
  for (const line of rawHead.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return fields;
}

beforeAll(async () => {
  // HTTP/1.1 upstream: records each head; answers 200, or 101 to an upgrade (then closes).
  h1Upstream = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = '';
    socket.on('data', (chunk) => {
      pending += chunk.toString('latin1');
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = pending.slice(0, end);
      pending = pending.slice(end + 4);
      const fields = fieldsOf(head);
      seen.push({ path: head.split(' ')[1], fields });
      if (fields.upgrade === 'websocket') {
        const accept = createHash('sha1').update(fields['sec-websocket-key'] + WS_GUID).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
      } else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    });
  });
  await new Promise<void>((resolve) => h1Upstream.listen(0, '127.0.0.1', resolve));
  // HTTP/2 upstream (h2c): records each stream's fields.
  h2Upstream = http2.createServer();
  h2Upstream.on('stream', (stream, headers) => {
    const fields: Fields = {};
    for (const [name, value] of Object.entries(headers)) if (!name.startsWith(':')) fields[name] = Array.isArray(value) ? value.join(', ') : String(value);
    fields.host = String(headers[':authority']);
    seen.push({ path: String(headers[':path']), fields });
    stream.respond({ ':status': 200 });
    stream.end('ok');
  });
  await new Promise<void>((resolve) => h2Upstream.listen(0, '127.0.0.1', resolve));
  const h1 = `http://127.0.0.1:${(h1Upstream.address() as net.AddressInfo).port}`;
  const h2 = `h2c://127.0.0.1:${(h2Upstream.address() as net.AddressInfo).port}`;
  // A middleware that shows the client IP the pipeline decided, as a forwarded field.
  const dir = mkdtempSync(path.join(tmpdir(), 'zproxy-paths-'));
  const module = path.join(dir, 'client-ip.js');
  writeFileSync(module, "module.exports = () => ({ name: 'client-ip', onUpstreamRequest(ctx, fields) { fields.set('x-seen-client-ip', ctx.clientIp); } });\n");
  const mw = [{ type: 'module', config: { path: module } }];
  proxy = await startProxy(
    {
      trusted_proxies: ['127.0.0.1'],
      routes: [
        { path: '/h2', upstream: h2, middlewares: mw },
        { path: '/', upstream: h1, middlewares: mw },
      ],
    },
    false,
  );
});

afterAll(async () => {
  await proxy.stop();
  for (const s of sockets) s.destroy();
  h1Upstream.close();
  h2Upstream.close();
});

/** Sends `send` along `route` and resolves with what the upstream recorded. */
async function through(route: Path, send: Fields): Promise<Fields> {
  const before = seen.length;
  const port = proxy.address().port;
  const target = route === 'h2->h2' ? '/h2/x' : route.startsWith('ws') ? '/ws' : '/x';
  if (route === 'h1->h1' || route === 'ws/h1') {
    const extra = route === 'ws/h1' ? 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' : '';
    const head = `GET ${target} HTTP/1.1\r\nHost: fwd.test\r\n${extra}${Object.entries(send).map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(head));
      let got = '';
      socket.on('data', (c) => {
        got += c.toString('latin1');
        if (/^HTTP\/1\.1 (200|101)/.test(got) && got.includes('\r\n\r\n')) {
          socket.destroy();
          resolve();
        }
      });
      socket.on('error', reject);
      setTimeout(() => reject(new Error(`no answer on ${route}: ${got}`)), 5000).unref();
    });
  } else {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      if (route === 'ws/h2') await new Promise((resolve) => session.once('remoteSettings', resolve));
      const pseudo = route === 'ws/h2' ? { ':method': 'CONNECT', ':protocol': 'websocket', 'sec-websocket-version': '13' } : { ':method': 'GET' };
      const stream = session.request({ ...pseudo, ':path': target, ':authority': 'fwd.test', ...send });
      await new Promise<void>((resolve, reject) => {
        stream.once('response', () => resolve());
        stream.on('error', reject);
      });
      stream.close();
    } finally {
      session.close();
    }
  }
  for (let i = 0; i < 100 && seen.length === before; i++) await new Promise((r) => setTimeout(r, 10));
  expect(seen.length).toBe(before + 1);
  return seen[before].fields;
}

describe.each(CASES)('$name', ({ send, expect: expected, absent }) => {
  test.each(PATHS)('%s', async (route) => {
    const got = await through(route, send);
    expect(got).toMatchObject(expected);
    for (const name of absent) expect(got[name]).toBeUndefined();
    if (send['x-request-id'] === undefined) expect(got['x-request-id']).toMatch(/^[0-9a-f]{16}-[0-9a-f]+$/);
    // Connection-specific fields never reach an upstream, whatever the path (an HTTP/2 upstream gets none at all).
    for (const name of ['keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'http2-settings']) expect(got[name]).toBeUndefined();
  });
});

test('the same upstream view on every path', async () => {
  const send = { 'x-custom': 'same', 'x-forwarded-for': '203.0.113.9', 'x-request-id': 'rid-same' };
  const views = [];
  for (const route of PATHS) {
    const got = await through(route, send);
    // What depends on the path itself: the tunnel's Upgrade fields and the upstream protocol's framing.
    const common: Fields = {};
    for (const name of ['host', 'x-custom', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id', 'x-seen-client-ip']) common[name] = got[name];
    views.push([route, common]);
  }
  for (const [, view] of views) expect(view).toEqual(views[0][1]);
});

