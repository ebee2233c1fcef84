/**
 * WebSocket over HTTP/2 (RFC 8441 extended CONNECT) tunnelled to an HTTP/1.1
 * WebSocket upstream (the `ws` server): the handshake, frames both ways
 * (a multi-megabyte message intact by hash), and close.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { startProxy } from './helpers/server';
import type { Server } from '../dist/index';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A masked client frame (RFC 6455 §5.2). */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const length = payload.length;
  const head = length < 126 ? Buffer.from([0x80 | opcode, 0x80 | length]) : length < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 255]) : Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 127]), bigLength(length)]);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, masked]);
}

function bigLength(length: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(length));
  return b;
}

/** Reads unmasked server frames from a byte stream. */
class FrameReader {
  private data = Buffer.alloc(0);
  readonly frames: Array<{ opcode: number; payload: Buffer }> = [];
  push(chunk: Buffer): void {
    this.data = Buffer.concat([this.data, chunk]);
    for (;;) {
      if (this.data.length < 2) return;
      let length = this.data[1] & 127;
      let at = 2;
      if (length === 126) [length, at] = [this.data.readUInt16BE(2), 4];
      else if (length === 127) [length, at] = [Number(this.data.readBigUInt64BE(2)), 10];
      if (this.data.length < at + length) return;
      this.frames.push({ opcode: this.data[0] & 15, payload: this.data.subarray(at, at + length) });
      this.data = this.data.subarray(at + length);
    }
  }
}

describe('WebSocket over HTTP/2 extended CONNECT', () => {
  let upstream: http.Server;
  let wss: WebSocketServer;
  let proxy: Server;
  const offered: string[] = [];

  beforeAll(async () => {
    upstream = http.createServer();
    wss = new WebSocketServer({ server: upstream, handleProtocols: (protocols) => [...protocols][1] ?? false });
    wss.on('connection', (ws, req) => {
      offered.push(String(req.headers['sec-websocket-protocol']));
      ws.on('message', (data, isBinary) => ws.send(isBinary ? Buffer.from(sha(data as Buffer)) : String(data).toUpperCase()));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    proxy = await startProxy({ routes: [{ path: '/ws', upstream: `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}` }] }, false);
  });
  afterAll(async () => {
    await proxy?.stop();
    wss.close();
    await new Promise((r) => upstream.close(r));
  });

  test('handshake, text and a 3 MB binary message both ways, then close', async () => {
    const session = http2.connect(`http://127.0.0.1:${proxy.address().port}`);
    const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
    expect(settings.enableConnectProtocol).toBe(true);
    const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/ws', ':scheme': 'http', 'sec-websocket-version': '13', 'sec-websocket-protocol': 'first, second' });
    const response = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
    expect(response[':status']).toBe(200);
    expect(response['sec-websocket-protocol']).toBe('second');
    expect(offered.at(-1)).toBe('first, second');

    const reader = new FrameReader();
    stream.on('data', (chunk: Buffer) => reader.push(chunk));
    const waitFrames = (n: number) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${reader.frames.length} frames`)), 5000);
        const check = () => (reader.frames.length >= n ? (clearTimeout(timer), resolve()) : setTimeout(check, 5));
        check();
      });
    stream.write(clientFrame(0x1, Buffer.from('hello')));
    await waitFrames(1);
    expect(reader.frames[0].payload.toString()).toBe('HELLO');
    const big = randomBytes(3 << 20);
    stream.write(clientFrame(0x2, big));
    await waitFrames(2);
    expect(reader.frames[1].payload.toString()).toBe(sha(big));

    stream.write(clientFrame(0x8, Buffer.from([0x03, 0xe8])));
    await waitFrames(3);
    expect(reader.frames[2].opcode).toBe(0x8);
    stream.end();
    await new Promise((r) => stream.once('close', r));
    session.close();
  });

  test('an upstream refusing the upgrade is relayed', async () => {
    const refusing = http.createServer((_req, res) => res.writeHead(403).end('no'));
    refusing.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n'));
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', () => r()));
    const p = await startProxy({ routes: [{ path: '/', upstream: `http://127.0.0.1:${(refusing.address() as net.AddressInfo).port}` }] }, false);
    try {
      const session = http2.connect(`http://127.0.0.1:${p.address().port}`);
      await new Promise((resolve) => session.once('remoteSettings', resolve));
      const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/x', ':scheme': 'http', 'sec-websocket-version': '13' });
      const response = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
      expect(response[':status']).toBe(403);
      session.close();
    } finally {
      await p.stop();
      await new Promise((r) => refusing.close(r));
    }
  });
});
