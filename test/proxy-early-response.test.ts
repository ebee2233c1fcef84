/**
 * An upstream that answers before it has read the whole upload (a 413, a 501
 * from `python3 -m http.server`), then closes: the client gets the
 * upstream's own answer, never a 502 from the failed writes, as nginx does;
 * the rest of the body is not forwarded, and the client connection closes
 * cleanly after the response (its request was not all read), so a graceful
 * stop never waits on it. HTTP/1 and HTTP/2 clients, native and fallback.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { RawClient, sleep } from './helpers/upstreams';
import { RUNTIMES, startProxy } from './helpers/server';
import type { Server } from '../dist/index';

const UPLOAD = 5 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);
const ANSWER = '{"error":"too large for me"}';

let proxy: Server | undefined;
const cleanups: Array<() => void | Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await proxy?.stop();
  proxy = undefined;
});

/**
 * A raw upstream that answers 413 as soon as a request head has arrived and
 * closes: `reset` like python's http.server (FIN, then close with the upload
 * unread, which sends RST, so zproxy's next write fails), `drain` keeps
 * reading and discarding what comes.
 */
async function earlyUpstream(how: 'reset' | 'drain'): Promise<{ url: string; heads: string[]; bytes: () => number }> {
  const heads: string[] = [];
  let bytes = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    let head = '';
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (answered) return;
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      answered = true;
      heads.push(head.slice(0, end));
      socket.write(`HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: ${ANSWER.length}\r\nConnection: close\r\n\r\n${ANSWER}`);
      if (how === 'reset') {
        socket.end();
        setImmediate(() => socket.destroy());
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, heads, bytes: () => bytes };
}

/** Writes the head and `UPLOAD` body bytes as fast as the proxy takes them, until done or the socket is gone. */
async function upload(client: RawClient, path: string): Promise<void> {
  client.write(`POST ${path} HTTP/1.1\r\nHost: p\r\nContent-Length: ${UPLOAD}\r\n\r\n`);
  for (let sent = 0; sent < UPLOAD && !client.socket.destroyed && client.socket.writable; sent += CHUNK.length) {
    if (!client.socket.write(CHUNK.subarray(0, Math.min(CHUNK.length, UPLOAD - sent)))) {
      await new Promise<void>((resolve) => {
        client.socket.once('drain', resolve);
        client.socket.once('close', resolve);
      });
    }
  }
}

describe.each(RUNTIMES)('%s', (_name, noNative) => {
  async function start(url: string): Promise<number> {
    proxy = await startProxy({ thread_count: 1, drain_timeout_ms: 20_000, connection_timeout_ms: 20_000, routes: [{ path: '/', retries: 0, upstream: { targets: [{ url }], max_fails: 0 } }] }, noNative);
    return proxy.address().port;
  }

  test.each(['reset', 'drain'] as const)('a 5 MB upload answered 413 at once (upstream %s): the client gets the 413, never a 502; then the connection closes', async (how) => {
    const up = await earlyUpstream(how);
    const port = await start(up.url);
    for (let i = 0; i < 4; i++) {
      const client = await RawClient.open(port);
      void upload(client, `/up${i}`);
      const res = await client.response('POST', 8000);
      expect([res.status, res.body.toString()]).toEqual([413, ANSWER]);
      // The rest of the upload was not forwarded: the upstream saw little more than the head and the first reads.
      await client.waitClosed(5000);
      client.destroy();
    }
    expect(up.heads).toHaveLength(4);
    expect(up.bytes()).toBeLessThan(4 * UPLOAD);
  });

  test('the client half-closes after the early answer: zproxy closes at once, and a graceful stop does not wait for it', async () => {
    const up = await earlyUpstream('reset');
    const port = await start(up.url);
    const client = await RawClient.open(port);
    void upload(client, '/half');
    const res = await client.response('POST', 8000);
    expect(res.status).toBe(413);
    // Stops uploading and half-closes, as a client that gives up does: zproxy must see it although it had stopped reading.
    client.socket.end();
    await client.waitClosed(5000);
    const stopping = proxy!.stop();
    proxy = undefined;
    let stopped = false;
    void stopping.then(() => (stopped = true));
    for (const begun = Date.now(); !stopped && Date.now() - begun < 5000; ) await sleep(50);
    expect(stopped).toBe(true);
  });

  test('HTTP/2 client: a 2 MB upload answered 413 at once gets the 413 on its stream, and the session goes on', async () => {
    const up = await earlyUpstream('reset');
    const port = await start(up.url);
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    cleanups.push(() => void session.destroy());
    const ask = (path: string, body?: Buffer): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const stream = session.request({ ':method': body ? 'POST' : 'GET', ':path': path }, { endStream: !body });
        const timer = setTimeout(() => reject(new Error(`${path}: no answer within 8 s`)), 8000);
        let status = 0;
        let text = '';
        stream.on('response', (headers) => (status = Number(headers[':status'])));
        stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
        stream.on('error', () => undefined);
        stream.on('close', () => (clearTimeout(timer), resolve({ status, body: text })));
        if (body) stream.end(body);
      });
    expect(await ask('/h2-big', Buffer.alloc(2 * 1024 * 1024, 0x62))).toEqual({ status: 413, body: ANSWER });
    expect(await ask('/h2-next', Buffer.alloc(1000, 0x63))).toEqual({ status: 413, body: ANSWER });
  });

  const python = spawnSync('python3', ['--version']).status === 0;
  (python ? test : test.skip)('python3 -m http.server answers a 5 MB POST with 501 at once: the client gets that 501; a graceful stop is prompt', async () => {
    const child: ChildProcess = spawn('python3', ['-m', 'http.server', '0', '--bind', '127.0.0.1'], { cwd: __dirname, stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(() => void (child.exitCode === null && child.kill('SIGKILL')));
    const pyPort = await new Promise<number>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`python http.server did not start: ${out}`)), 10_000);
      const onOutput = (chunk: Buffer) => {
        out += chunk.toString();
        const match = /port (\d+)/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      };
      child.stdout!.on('data', onOutput);
      child.stderr!.on('data', onOutput);
    });
    const port = await start(`http://127.0.0.1:${pyPort}`);
    for (let i = 0; i < 3; i++) {
      const client = await RawClient.open(port);
      void upload(client, `/py${i}`);
      const res = await client.response('POST', 8000);
      expect(res.status).toBe(501);
      expect(res.body.toString()).toMatch(/Unsupported method/);
      await client.waitClosed(5000);
      client.destroy();
    }
    const stopping = proxy!.stop();
    proxy = undefined;
    let stopped = false;
    void stopping.then(() => (stopped = true));
    for (const begun = Date.now(); !stopped && Date.now() - begun < 5000; ) await sleep(50);
    expect(stopped).toBe(true);
  });
});
