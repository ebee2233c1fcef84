/**
 * HTTP/2 with prior knowledge on the HTTP/1 port, with real clients (curl,
 * nghttp, node:http2): translation to HTTP/1.1 upstreams, bodies intact both
 * ways, trailers, per-stream failures, limits and abuse defences, GOAWAY.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RUNTIMES, startProxy, waitForClose } from './helpers/server';
import type { Server } from '../dist/index';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function run(command: string, args: string[]): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { encoding: 'buffer', maxBuffer: 64 << 20, timeout: 15000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${command} failed: ${stderr.toString()}`)) : resolve({ stdout, stderr: stderr.toString() }),
    );
  });
}

interface Seen {
  method: string;
  url: string;
  rawHeaders: string[];
  bodySha: string;
  bodyLength: number;
}

/** An HTTP/1.1 upstream that records what it got and answers per path. */
function startUpstream(seen: Seen[]): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, bodySha: sha(body), bodyLength: body.length });
      if (req.url === '/trailers') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('part1;');
        res.write('part2');
        res.addTrailers({ 'x-checksum': 'abc123' });
        return res.end();
      }
      if (req.url === '/big') return res.end(bigBody);
      if (req.url === '/reset') return req.socket.destroy();
      if (req.url === '/echo') return res.end(body);
      res.setHeader('connection', 'keep-alive');
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.end(JSON.stringify({ url: req.url }));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const bigBody = randomBytes(4 << 20);

function h2request(port: number, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer; trailers: http2.IncomingHttpHeaders | null; rstCode: number }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | null = null;
    req.on('response', (h) => (responseHeaders = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('close', () => {
      session.close();
      resolve({ headers: responseHeaders, body: Buffer.concat(chunks), trailers, rstCode: req.rstCode ?? 0 });
    });
    if (body) req.end(body);
  });
}

describe.each(RUNTIMES)('HTTP/2 prior knowledge (%s)', (_name, noNative) => {
  const seen: Seen[] = [];
  let upstream: http.Server;
  let proxy: Server;
  let port: number;

  beforeAll(async () => {
    upstream = await startUpstream(seen);
    const { port: upPort } = upstream.address() as net.AddressInfo;
    proxy = await startProxy(
      {
        max_concurrent_streams: 7,
        max_body_bytes: 8 << 20,
        routes: [
          { path: '/direct', respond: { status: 203, headers: { 'X-Direct': 'yes' }, body: 'direct body' } },
          { path: '/', upstream: `http://127.0.0.1:${upPort}` },
        ],
      },
      noNative,
    );
    port = proxy.address().port;
  });
  afterAll(async () => {
    await proxy?.stop();
    await new Promise((r) => upstream.close(r));
  });

  test('curl --http2-prior-knowledge: a direct response', async () => {
    const { stdout } = await run('curl', ['-sS', '-i', '--http2-prior-knowledge', `http://127.0.0.1:${port}/direct`]);
    const text = stdout.toString();
    expect(text).toMatch(/^HTTP\/2 203/);
    expect(text).toMatch(/\r\nx-direct: yes\r\n/);
    expect(text.endsWith('\r\n\r\ndirect body')).toBe(true);
  });

  test('translation to HTTP/1.1: :authority becomes Host, cookies joined, no connection-specific fields', async () => {
    const before = seen.length;
    const res = await h2request(port, { ':path': '/t?q=1', ':authority': 'site.test:8443', cookie: ['a=1', 'b=2'], 'x-custom': 'v', te: 'trailers' });
    expect(res.headers[':status']).toBe(200);
    const got = seen[before];
    const headers = Object.fromEntries(got.rawHeaders.reduce<string[][]>((pairs, v, i) => (i % 2 ? pairs : [...pairs, [v.toLowerCase(), got.rawHeaders[i + 1]]]), []));
    expect(got.url).toBe('/t?q=1');
    expect(headers.host).toBe('site.test:8443');
    expect(headers.cookie).toBe('a=1; b=2');
    expect(headers['x-custom']).toBe('v');
    expect(headers.te).toBeUndefined();
    expect(headers['x-forwarded-proto']).toBe('http');
    expect(headers['x-request-id']).toBe(res.headers['x-request-id']);
    // The upstream's Connection: keep-alive is not forwarded; repeated set-cookie stays two fields.
    expect(res.headers.connection).toBeUndefined();
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
  });

  test('a 4 MB body intact both ways (upload with content-length and without, download)', async () => {
    const upload = randomBytes(3 << 20);
    const before = seen.length;
    const echoed = await h2request(port, { ':method': 'POST', ':path': '/echo', 'content-length': upload.length }, upload);
    expect(sha(echoed.body)).toBe(sha(upload));
    const chunked = await h2request(port, { ':method': 'POST', ':path': '/echo' }, upload);
    expect(sha(chunked.body)).toBe(sha(upload));
    expect(seen.slice(before).map((s) => s.bodySha)).toEqual([sha(upload), sha(upload)]);
    const download = await h2request(port, { ':path': '/big' });
    expect(sha(download.body)).toBe(sha(bigBody));
  });

  test('nghttp downloads through the proxy', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'zproxy-h2-'));
    const upload = path.join(dir, 'up.bin');
    writeFileSync(upload, randomBytes(1 << 20));
    const { stdout } = await run('nghttp', ['-n', '-s', `http://127.0.0.1:${port}/big`, `http://127.0.0.1:${port}/direct`]);
    expect(stdout.toString()).toMatch(/\/big/);
    const echoed = await run('nghttp', ['-d', upload, `http://127.0.0.1:${port}/echo`]);
    expect(echoed.stdout.length).toBe(1 << 20);
  });

  test('trailers of a chunked HTTP/1.1 response pass to the HTTP/2 client', async () => {
    const res = await h2request(port, { ':path': '/trailers' });
    expect(res.body.toString()).toBe('part1;part2');
    expect(res.trailers).toMatchObject({ 'x-checksum': 'abc123' });
  });

  test('a failed upstream exchange resets or answers its stream only; the other streams on the connection finish', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const ok = (p: string) =>
      new Promise<number>((resolve) => {
        const req = session.request({ ':path': p });
        let status = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.resume();
        req.on('close', () => resolve(status));
      });
    const results = await Promise.all([ok('/a'), ok('/reset'), ok('/b'), ok('/direct')]);
    expect(results[0]).toBe(200);
    expect(results[1]).toBe(502);
    expect(results[2]).toBe(200);
    expect(results[3]).toBe(203);
    expect(session.destroyed).toBe(false);
    session.close();
  });

  test('streams that arrive together each get their own answer, a stream reset as it arrives among them', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    await new Promise((r) => session.once('connect', r));
    const before = seen.length;
    const get = (p: string) =>
      new Promise<string>((resolve) => {
        const req = session.request({ ':path': p });
        const chunks: Buffer[] = [];
        req.on('data', (c) => chunks.push(c));
        req.on('close', () => resolve(Buffer.concat(chunks).toString()));
      });
    // HEADERS and RST_STREAM leave together: the proxy mostly sees that stream closed before its exchange starts.
    const cancelled = session.request({ ':path': '/cancelled' });
    cancelled.on('error', () => undefined);
    cancelled.close(http2.constants.NGHTTP2_CANCEL);
    const paths = ['/p1', '/p2', '/p3', '/p4', '/p5'];
    const bodies = await Promise.all(paths.map(get));
    expect(bodies).toEqual(paths.map((p) => JSON.stringify({ url: p })));
    expect(seen.slice(before).map((s) => s.url)).toEqual(expect.arrayContaining(paths));
    expect(session.destroyed).toBe(false);
    session.close();
  });

  test('the stream concurrency limit is announced (max_concurrent_streams)', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
    expect(settings.maxConcurrentStreams).toBe(7);
    session.close();
  });

  test('a body over max_body_bytes gets 413, declared or streamed', async () => {
    const oversized = randomBytes((8 << 20) + 1);
    const declared = await h2request(port, { ':method': 'POST', ':path': '/echo', 'content-length': oversized.length }, oversized);
    expect(declared.headers[':status']).toBe(413);
    const streamed = await h2request(port, { ':method': 'POST', ':path': '/echo' }, oversized);
    expect(streamed.headers[':status']).toBe(413);
  });

  test('rapid reset: a client that resets streams in a flood loses its connection', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`, { peerMaxConcurrentStreams: 1000 });
    session.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    await new Promise((r) => session.once('connect', r));
    let sent = 0;
    while (!session.destroyed && !session.closed && sent < 5000) {
      const req = session.request({ ':path': '/a' });
      req.on('error', () => undefined);
      req.close(http2.constants.NGHTTP2_CANCEL);
      sent++;
      if (sent % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('still open')), 5000)))]);
    clearTimeout(timer);
    expect(sent).toBeLessThan(5000);
  });

  test('a CONTINUATION flood closes the connection', async () => {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    socket.write(frame(0x4, 0, 0, Buffer.alloc(0))); // SETTINGS
    // HEADERS without END_HEADERS, then CONTINUATION frames that never end the block.
    socket.write(frame(0x1, 0x1, 1, Buffer.from([0x82]))); // :method GET (indexed)
    let written = 0;
    const flood = setInterval(() => {
      if (socket.destroyed || written > 20000) return clearInterval(flood);
      for (let i = 0; i < 100; i++) socket.write(frame(0x9, 0, 1, Buffer.from([0x40, 0x01, 0x61, 0x01, 0x62])));
      written += 100;
    }, 1);
    socket.on('error', () => undefined);
    await waitForClose(socket, 5000);
    clearInterval(flood);
    expect(written).toBeLessThan(20000);
  });
});

test('HTTP/2 left out of protocols: the preface is refused', async () => {
  const proxy = await startProxy({ protocols: ['http1'] }, false);
  try {
    const session = http2.connect(`http://127.0.0.1:${proxy.address().port}`);
    const outcome = await new Promise<string>((resolve) => {
      session.on('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code}`));
      session.on('close', () => resolve('closed'));
      session.request({ ':path': '/' }).on('error', () => undefined);
    });
    expect(outcome).toMatch(/closed|error/);
  } finally {
    await proxy.stop();
  }
});

test('draining sends GOAWAY; a stream in flight still completes', async () => {
  const slow = http.createServer((_req, res) => setTimeout(() => res.end('late'), 300));
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
  const proxy = await startProxy({ routes: [{ path: '/', upstream: `http://127.0.0.1:${(slow.address() as net.AddressInfo).port}` }] }, false);
  const session = http2.connect(`http://127.0.0.1:${proxy.address().port}`);
  const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
  const req = session.request({ ':path': '/slow' });
  const body = new Promise<string>((resolve) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => resolve(text));
  });
  await new Promise((r) => setTimeout(r, 100));
  const stopped = proxy.stop();
  await goaway;
  expect(await body).toBe('late');
  await stopped;
  session.destroy();
  await new Promise((r) => slow.close(r));
});

/** A raw HTTP/2 frame. */
function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}
