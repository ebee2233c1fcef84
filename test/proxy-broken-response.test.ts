/**
 * An upstream that breaks a response off midway (found by the soak, issue
 * 15): the HTTP/1 client gets every earlier pipelined response whole, then
 * the broken one cut off and the connection ended — never the earlier ones
 * dropped with it; a broken body delimited by the close is reset, so it
 * cannot look complete. Native and fallback.
 */
import net from 'node:net';
import { RUNTIMES, startProxy } from './helpers/server';
import type { Server } from '../dist/index';

const FIRST = 4 * 1024 * 1024;

/** Sends the requests, starts reading after `readAfterMs`, and collects until the proxy ends the connection. */
function slowClient(port: number, requests: string, readAfterMs: number): Promise<{ data: Buffer; reset: boolean }> {
  return new Promise((resolve, reject) => {
    const client = net.connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    let reset = false;
    const timer = setTimeout(() => reject(new Error('the proxy never ended the connection')), 20_000);
    client.on('data', (c: Buffer) => parts.push(c));
    client.on('error', (err: NodeJS.ErrnoException) => (reset = err.code === 'ECONNRESET'));
    client.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(parts), reset });
    });
    client.pause();
    setTimeout(() => client.resume(), readAfterMs);
    client.write(requests);
  });
}

describe.each(RUNTIMES)('%s', (_name, noNative) => {
  let upstream: net.Server;
  let proxy: Server;
  const sockets = new Set<net.Socket>();

  beforeAll(async () => {
    // One answer per connection: /first whole (by length or chunked), /broken cut off after 1500 of 4000 bytes, /eof close-delimited and cut.
    upstream = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
      s.once('data', (head: Buffer) => {
        const text = head.toString('latin1');
        if (text.includes('GET /first-length')) s.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${FIRST}\r\n\r\n`), Buffer.alloc(FIRST, 'a')]));
        else if (text.includes('GET /first-chunked')) s.end(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${`10000\r\n${'a'.repeat(65536)}\r\n`.repeat(FIRST / 65536)}0\r\n\r\n`);
        else if (text.includes('GET /eof')) s.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npartial', () => setTimeout(() => s.resetAndDestroy(), 50));
        else s.end(`HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n${'b'.repeat(1500)}`);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
    proxy = await startProxy({ drain_timeout_ms: 1000, routes: [{ path: '/', upstream: { targets: [{ url }], max_fails: 0 } }] }, noNative);
  });

  afterAll(async () => {
    await proxy.stop();
    for (const s of sockets) s.destroy();
    upstream.close();
  });

  test.each(['length', 'chunked'])('a complete response (by %s) queued for a slow client survives the break of the next', async (framing) => {
    for (let i = 0; i < 3; i++) {
      const { data } = await slowClient(proxy.address().port, `GET /first-${framing} HTTP/1.1\r\nHost: x\r\n\r\nGET /broken HTTP/1.1\r\nHost: x\r\n\r\n`, 300);
      const text = data.toString('latin1');
      const second = text.indexOf('HTTP/1.1 200 OK', 10);
      // The whole first response, then the second's head and the 1500 bytes there were: its length says it is cut off.
      expect(second).toBeGreaterThan(FIRST);
      expect(text.slice(second)).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*content-length: 4000\r\n[^]*\r\n\r\nb{1500}$/i);
      expect((text.slice(0, second).match(/a/g) ?? []).length).toBeGreaterThanOrEqual(FIRST);
    }
  }, 60_000);

  test('a close-delimited body cut off is reset, never ended as if complete', async () => {
    const { data, reset } = await slowClient(proxy.address().port, 'GET /eof HTTP/1.1\r\nHost: x\r\n\r\n', 0);
    expect(reset).toBe(true);
    expect(data.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });
});

describe.each(RUNTIMES)('a broken response with a pipelined request waiting, %s', (_name, noNative) => {
  test('the connection is gone as soon as the client closes it (no socket left open, however the client reads)', async () => {
    const upstream = net.createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.end(`HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n${'b'.repeat(1500)}`));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
    // A long idle timeout: only the client's close may end the connection within the test.
    const proxy = await startProxy({ drain_timeout_ms: 1000, connection_timeout_ms: 60_000, routes: [{ path: '/', upstream: { targets: [{ url }], max_fails: 0 } }] }, noNative);
    try {
      for (let i = 0; i < 3; i++) {
        const client = net.connect(proxy.address().port, '127.0.0.1');
        client.on('error', () => undefined);
        // The second request is read while the first is answered: the proxy stops reading the client to keep it.
        client.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n');
        client.resume();
        await new Promise<void>((resolve) => client.once('end', resolve));
        client.destroy();
      }
      const open = async () => ((await proxy.stats()).workers as Array<{ connections: number }>).reduce((sum, w) => sum + w.connections, 0);
      for (let i = 0; i < 200 && (await open()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await open()).toBe(0);
    } finally {
      await proxy.stop();
      upstream.close();
    }
  });
});
