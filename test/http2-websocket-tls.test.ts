/**
 * WebSocket over HTTP/2 (RFC 8441) through the same connect path as every
 * other request: to an `https://` upstream over TLS (verified against the
 * route's CA), the upstream's Sec-WebSocket-Accept checked against the
 * proxy's own key, and a tunnel that breaks reaching the client as
 * RST_STREAM CONNECT_ERROR, never a clean END_STREAM.
 */
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { WebSocketServer } from 'ws';
import { RUNTIMES, startProxy } from './helpers/server';
import type { Server } from '../dist/index';

const FIXTURES = path.join(__dirname, 'fixtures', 'tls');
const file = (name: string): string => path.join(FIXTURES, name);

/** A masked client text frame (RFC 6455 §5.2), short payloads only. */
function clientText(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

interface Opened {
  session: http2.ClientHttp2Session;
  stream: http2.ClientHttp2Stream;
  status: number;
}

async function openTunnel(port: number, p: string): Promise<Opened> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  await new Promise((resolve) => session.once('remoteSettings', resolve));
  const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': p, ':scheme': 'http', 'sec-websocket-version': '13' });
  stream.on('error', () => undefined);
  const response = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
  return { session, stream, status: response[':status'] as number };
}

describe.each(RUNTIMES)('WebSocket over HTTP/2 to https:// upstreams (%s)', (_name, noNative) => {
  let upstream: https.Server;
  let wss: WebSocketServer;
  let raw: tls.Server;
  const rawSockets = new Set<tls.TLSSocket>();
  const tcp = new WeakMap<tls.TLSSocket, net.Socket>();
  let lastTcp: net.Socket | null = null;
  const encrypted: boolean[] = [];
  let proxy: Server;
  let port: number;

  beforeAll(async () => {
    const credentials = { cert: readFileSync(file('localhost.pem')), key: readFileSync(file('localhost.key')) };
    upstream = https.createServer(credentials);
    wss = new WebSocketServer({ server: upstream });
    wss.on('connection', (ws, req) => {
      encrypted.push((req.socket as tls.TLSSocket).encrypted === true);
      ws.on('message', (data) => ws.send(String(data).toUpperCase()));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    // A TLS upstream that answers 101 with a wrong accept (/bad-accept), or accepts and then resets the connection (/reset).
    raw = tls.createServer(credentials, (socket) => {
      rawSockets.add(socket);
      socket.on('error', () => undefined);
      socket.once('data', (head) => {
        const text = head.toString('latin1');
        if (text.includes(' /bad-accept ')) return socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong=\r\n\r\n');
        const key = /sec-websocket-key: (\S+)/i.exec(text)![1];
        const accept = require('node:crypto').createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        // A TLS socket cannot be reset: its TCP connection is.
        socket.once('data', () => tcp.get(socket)?.resetAndDestroy());
      });
    });
    raw.on('secureConnection', (socket: tls.TLSSocket) => tcp.set(socket, lastTcp!));
    raw.on('connection', (socket: net.Socket) => (lastTcp = socket));
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', () => r()));
    const tlsTarget = (p: number) => ({ targets: [{ url: `https://127.0.0.1:${p}` }], ca_file: file('ca.pem'), max_fails: 0 });
    proxy = await startProxy(
      {
        routes: [
          { path: '/ws', upstream: tlsTarget((upstream.address() as net.AddressInfo).port) },
          { path: '/', upstream: tlsTarget((raw.address() as net.AddressInfo).port), retries: 0 },
        ],
      },
      noNative,
    );
    port = proxy.address().port;
  });
  afterAll(async () => {
    await proxy?.stop();
    wss.close();
    for (const s of rawSockets) s.destroy();
    await new Promise((r) => upstream.close(r));
    await new Promise((r) => raw.close(r));
  });

  test('the tunnel goes over TLS, and messages cross it both ways', async () => {
    const before = encrypted.length;
    const { session, stream, status } = await openTunnel(port, '/ws');
    expect(status).toBe(200);
    expect(encrypted.slice(before)).toEqual([true]);
    const reply = new Promise<Buffer>((resolve) => stream.once('data', resolve));
    stream.write(clientText('hello over tls'));
    const frame = await reply;
    expect(frame.subarray(2).toString()).toBe('HELLO OVER TLS');
    stream.end();
    await new Promise((r) => stream.once('close', r));
    session.close();
  });

  test("an upstream 101 whose Sec-WebSocket-Accept does not match the proxy's key is a 502", async () => {
    const { session, status } = await openTunnel(port, '/bad-accept');
    expect(status).toBe(502);
    session.close();
  });

  test('an upstream connection reset mid-tunnel reaches the client as RST_STREAM CONNECT_ERROR', async () => {
    const { session, stream, status } = await openTunnel(port, '/reset');
    expect(status).toBe(200);
    let ended = false;
    stream.on('end', () => (ended = stream.rstCode === undefined || stream.rstCode === 0));
    stream.resume();
    stream.write(clientText('x'));
    await new Promise((r) => stream.once('close', r));
    expect(stream.rstCode).toBe(http2.constants.NGHTTP2_CONNECT_ERROR);
    expect(ended).toBe(false);
    session.close();
  });
});
