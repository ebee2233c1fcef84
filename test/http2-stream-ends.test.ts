/**
 * How HTTP/2 streams end when something breaks (issue 15, items 2 and 3):
 *
 * - a response body the upstream cuts short reaches the client as
 *   RST_STREAM, never END_STREAM (HTTP/1.1 upstreams through a
 *   ProxyExchange, h2c upstreams stream to stream, chunked or sized);
 * - an upload the client abandons reaches an h2c upstream as RST_STREAM,
 *   never END_STREAM;
 * - a stream answered while its request body is still arriving (a 504
 *   from an upstream that never reads, 404, 405, 413, a `respond` route, an
 *   upstream that answers early) gets the full response, then RST_STREAM
 *   NO_ERROR, so unread uploads never hold the connection's flow-control
 *   window and the session keeps serving.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { H2Raw, E, F, FrameTap, T } from './helpers/h2-frames';
import { RUNTIMES, startProxy } from './helpers/server';
import type { Server } from '../dist/index';

const listen = <T extends net.Server>(server: T): Promise<T> => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
const portOf = (server: net.Server): number => (server.address() as net.AddressInfo).port;
const closeServer = (server: net.Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));
/** One target, never ejected: the failures these tests cause must not turn later requests into 503s. */
const target = (url: string) => ({ targets: [{ url }], max_fails: 0 });

/** An HTTP/1.1 upstream: 200 with Content-Length 4000, 2000 bytes, then the connection closes 5 ms later. */
function truncatingH1(): Promise<net.Server> {
  return listen(
    net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', (head) => {
        const chunked = head.toString('latin1').includes('/chunked');
        if (chunked) socket.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n7d0\r\n${'c'.repeat(2000)}\r\n`);
        else socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 4000\r\n\r\n${'s'.repeat(2000)}`);
        setTimeout(() => socket.destroy(), 5);
      });
    }),
  );
}

/** An h2c upstream: 200 with content-length 4000 and 2000 bytes, then the stream is reset or the connection dropped. */
function truncatingH2(): Promise<http2.Http2Server> {
  const server = http2.createServer();
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const drop = String(headers[':path']).includes('/drop');
    // Without content-length when dropping: only the missing END_STREAM tells the response is cut.
    stream.respond(drop ? { ':status': 200 } : { ':status': 200, 'content-length': 4000 });
    stream.write(Buffer.alloc(2000, 0x68));
    setTimeout(() => {
      if (drop) for (const socket of sockets) socket.destroy();
      else stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }, 5);
  });
  return listen(server);
}

describe.each(RUNTIMES)('HTTP/2 stream ends (%s)', (_name, noNative) => {
  let h1: net.Server;
  let h2: http2.Http2Server;
  let proxy: Server;
  let port: number;

  beforeAll(async () => {
    h1 = await truncatingH1();
    h2 = await truncatingH2();
    proxy = await startProxy(
      {
        log_level: process.env.LL ?? 'warn',
        routes: [
          { path: '/h2', upstream: target(`h2c://127.0.0.1:${portOf(h2)}`), retries: 0 },
          { path: '/', upstream: target(`http://127.0.0.1:${portOf(h1)}`), retries: 0 },
        ],
      },
      noNative,
    );
    port = proxy.address().port;
  });
  afterAll(async () => {
    await proxy?.stop();
    await closeServer(h1);
    await closeServer(h2);
  });

  async function sixtyGets(path: string): Promise<void> {
    const c = await H2Raw.connect(port);
    const ids = Array.from({ length: 60 }, (_, i) => 2 * i + 1);
    for (const id of ids) c.request(id, path);
    const outcomes = [];
    for (const id of ids) outcomes.push(await c.ended(id, 10_000));
    c.close();
    // Every stream: the 200's head, at most the 2000 bytes sent, then RST_STREAM with an error, and no END_STREAM;
    // or, where the upstream went away before its response started, a complete 502.
    const is502 = (body: Buffer) => /^\{"error":.*"status":502/.test(body.toString());
    const truncatedRight = (o: (typeof outcomes)[number]) => o.headers && !o.endStream && o.rst !== null && o.rst !== E.NO_ERROR && o.dataBytes <= 2000;
    const wrong = outcomes.filter((o) => !truncatedRight(o) && !(o.headers && o.endStream && is502(o.body)));
    const seen = [...new Set(wrong.map((o) => `${o.headers ? 'HEADERS' : 'no HEADERS'}, ${o.dataBytes} bytes${o.endStream ? ', END_STREAM' : ''}${o.rst === null ? '' : `, RST_STREAM ${o.rst}`}`))];
    expect({ path, wrong: wrong.length, seen }).toEqual({ path, wrong: 0, seen: [] });
  }

  test('HTTP/1.1 upstream closing mid-body (Content-Length): 60 GETs, every one RST_STREAM, none END_STREAM', async () => {
    await sixtyGets('/sized');
  });

  test('HTTP/1.1 upstream closing mid-body (chunked): RST_STREAM, never END_STREAM', async () => {
    await sixtyGets('/chunked');
  });

  test('h2c upstream resetting mid-body: RST_STREAM, never END_STREAM', async () => {
    await sixtyGets('/h2/reset');
  });

  test('h2c upstream connection dropped mid-body: RST_STREAM, never END_STREAM', async () => {
    await sixtyGets('/h2/drop');
  });
});

describe.each(RUNTIMES)('HTTP/2 uploads cut short or answered early (%s)', (_name, noNative) => {
  let silent: net.Server;
  const silentSockets = new Set<net.Socket>();
  let early: http.Server;
  let h2up: http2.Http2Server;
  let tap: FrameTap;
  let recorder: net.Server;
  const recorded: Buffer[] = [];
  const uploads: Array<{ id: number; bytes: number }> = [];
  let proxy: Server;
  let port: number;

  beforeAll(async () => {
    // Accepts, never reads, never answers.
    silent = await listen(
      net.createServer((socket) => {
        silentSockets.add(socket);
        socket.pause();
        socket.on('error', () => undefined);
      }),
    );
    // Answers 413 at once, without reading the upload.
    early = await listen(http.createServer((_req, res) => res.writeHead(413, { 'content-length': 2 }).end('no')));
    h2up = http2.createServer();
    h2up.on('stream', (stream) => {
      const record = { id: stream.id ?? 0, bytes: 0 };
      uploads.push(record);
      stream.on('data', (d: Buffer) => (record.bytes += d.length));
      stream.on('error', () => undefined);
    });
    await listen(h2up);
    // What crosses the wire to the h2c upstream (node's 'end' event is no proof of END_STREAM).
    tap = await FrameTap.start(portOf(h2up));
    // Records what an HTTP/1.1 upstream receives, answers nothing.
    recorder = await listen(
      net.createServer((socket) => {
        const index = recorded.push(Buffer.alloc(0)) - 1;
        socket.on('data', (d: Buffer) => (recorded[index] = Buffer.concat([recorded[index], d])));
        socket.on('error', () => undefined);
      }),
    );
    proxy = await startProxy(
      {
        max_body_bytes: 16 << 20,
        routes: [
          { path: '/silent', upstream: target(`http://127.0.0.1:${portOf(silent)}`), timeout_ms: 300, retries: 0 },
          { path: '/early', upstream: target(`http://127.0.0.1:${portOf(early)}`), retries: 0 },
          { path: '/h2up', upstream: target(`h2c://127.0.0.1:${tap.port}`), retries: 0 },
          { path: '/direct', respond: { status: 200, headers: {}, body: 'direct' } },
          { path: '/get-only', methods: ['GET'], respond: { status: 200, headers: {}, body: 'get' } },
          { path: '/small', upstream: target(`http://127.0.0.1:${portOf(silent)}`) },
          { path: '/record', upstream: target(`http://127.0.0.1:${portOf(recorder)}`), retries: 0 },
        ],
      },
      noNative,
    );
    port = proxy.address().port;
  });
  afterAll(async () => {
    await proxy?.stop();
    for (const s of silentSockets) s.destroy();
    await closeServer(silent);
    await closeServer(early);
    await tap.close();
    await closeServer(h2up);
    await closeServer(recorder);
  });

  test('8 MB POSTs to an upstream that never reads: 504s, then the same session still serves', async () => {
    // Plenty of session memory: node's client keeps the unsent upload in it, and refuses responses (ENHANCE_YOUR_CALM) past its 10 MB default.
    const session = http2.connect(`http://127.0.0.1:${port}`, { maxSessionMemory: 1000 });
    session.on('error', () => undefined);
    const post = () =>
      new Promise<number | undefined>((resolve) => {
        const req = session.request({ ':method': 'POST', ':path': '/silent', 'content-length': 8 << 20 });
        let status: number | undefined;
        req.on('response', (h) => (status = h[':status'] as number));
        req.on('error', () => undefined);
        req.resume();
        req.on('close', () => resolve(status));
        req.end(Buffer.alloc(8 << 20, 0x61));
      });
    expect(await post()).toBe(504);
    expect(await post()).toBe(504);
    expect(await post()).toBe(504);
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('GET on the same session got no answer')), 5000);
      const req = session.request({ ':path': '/direct' });
      req.on('response', (h) => {
        clearTimeout(timer);
        resolve(h[':status'] as number);
      });
      req.on('error', reject);
      req.resume();
    });
    expect(status).toBe(200);
    session.close();
  });

  test.each([
    ['504 from an upstream that never reads', '/silent', {}],
    ['404 (no route)', '/nowhere/x', {}],
    ['405 (method not allowed)', '/get-only', {}],
    ['413 (declared body too large)', '/direct', { 'content-length': String(64 << 20) }],
    ['a respond route', '/direct', {}],
    ['an upstream answering before reading (413)', '/early', {}],
  ] as Array<[string, string, Record<string, string>]>)('%s: the response, then RST_STREAM NO_ERROR while the body is still coming', async (_label, path, extra) => {
    const c = await H2Raw.connect(port);
    c.request(1, path, { method: 'POST', endStream: false, extra: Object.entries(extra) });
    c.data(1, Buffer.alloc(1000, 0x62));
    const end = await c.ended(1);
    expect(end.headers).toBe(true);
    expect(end.endStream).toBe(true);
    await c.waitFor(() => c.outcome(1).rst !== null, 3000, 'RST_STREAM NO_ERROR');
    expect(c.outcome(1).rst).toBe(E.NO_ERROR);
    // More of the body in flight is ignored; the connection goes on.
    c.data(1, Buffer.alloc(1000, 0x62), true);
    c.request(3, '/direct');
    expect((await c.ended(3)).endStream).toBe(true);
    expect(c.frames.some((f) => f.type === 7)).toBe(false);
    c.close();
  });

  /** Waits until the upstream has `bytes` of a new upload; returns its stream id there. */
  async function uploadArrived(before: number, bytes: number): Promise<number> {
    const deadline = Date.now() + 5000;
    while ((uploads.length === before || uploads[before].bytes < bytes) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(uploads[before]?.bytes).toBe(bytes);
    return uploads[before].id;
  }

  /** What went to the upstream on its stream `id`, once a reset went: never END_STREAM, a RST_STREAM CANCEL. */
  async function expectResetUpstream(id: number): Promise<void> {
    const deadline = Date.now() + 5000;
    const sent = () => tap.toServer.filter((f) => f.id === id);
    while (!sent().some((f) => f.type === T.RST_STREAM) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const frames = sent();
    expect(frames.some((f) => (f.type === T.DATA || f.type === T.HEADERS) && (f.flags & F.END_STREAM) !== 0)).toBe(false);
    expect(frames.filter((f) => f.type === T.RST_STREAM).map((f) => f.payload.readUInt32BE(0))).toEqual([E.CANCEL]);
  }

  test('an upload the client resets reaches the h2c upstream as RST_STREAM CANCEL, never END_STREAM', async () => {
    const before = uploads.length;
    const c = await H2Raw.connect(port);
    c.request(1, '/h2up', { method: 'POST', endStream: false });
    c.data(1, Buffer.alloc(3000, 0x63));
    const id = await uploadArrived(before, 3000);
    c.rst(1, E.CANCEL);
    await expectResetUpstream(id);
    c.close();
  });

  test('a chunked upload the client resets never gets its last chunk at an HTTP/1.1 upstream', async () => {
    const before = recorded.length;
    const c = await H2Raw.connect(port);
    c.request(1, '/record', { method: 'POST', endStream: false });
    c.data(1, Buffer.from('part-one'));
    const deadline = Date.now() + 5000;
    while ((recorded.length === before || !recorded[before].includes('part-one')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(recorded[before].toString('latin1')).toMatch(/transfer-encoding: chunked\r\n[\s\S]*\r\n8\r\npart-one\r\n$/);
    c.rst(1, E.CANCEL);
    await new Promise((r) => setTimeout(r, 200));
    expect(recorded[before].toString('latin1')).not.toContain('0\r\n\r\n');
    c.close();
  });

  test('an upload cut off by the client connection closing reaches the h2c upstream as RST_STREAM CANCEL', async () => {
    const before = uploads.length;
    const c = await H2Raw.connect(port);
    c.request(1, '/h2up', { method: 'POST', endStream: false });
    c.data(1, Buffer.alloc(1000, 0x63));
    const id = await uploadArrived(before, 1000);
    c.close();
    await expectResetUpstream(id);
  });
});
