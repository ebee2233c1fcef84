/**
 * The per-target cap on open upstream connections (`max_connections` in the
 * upstream object form, default 1024 per worker): at the cap, requests wait
 * in line up to `upstream_connect_timeout_ms`, then get a 503; a released
 * connection goes to the first in line, a closed one lets it connect; a
 * waiter whose client goes away leaves the line; body bytes that arrive
 * while waiting are held and sent whole. One HTTP/2 client's streams cannot
 * open more sockets than the cap. HTTP/1 and HTTP/2 clients, native and
 * fallback (one worker: the cap is per worker).
 */
import http2 from 'node:http2';
import { createHash, randomBytes } from 'node:crypto';
import { validateConfig } from '../dist/config/validate';
import { RawClient, errorBody, requestHead, sleep, startRecordingUpstream, type RecordedRequest, type RawResponder } from './helpers/upstreams';
import { proxyFor } from './helpers/proxy-per-test';
import { RUNTIMES } from './helpers/server';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** An upstream whose `/hold*` requests wait until `release()`, and whose `*-close` answers close; every answer names its target. */
async function gatedUpstream(): Promise<{ up: Awaited<ReturnType<typeof startRecordingUpstream>>; release: () => void }> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const up = await startRecordingUpstream(async (req: RecordedRequest, res: RawResponder) => {
    if (req.target.startsWith('/hold')) await gate;
    if (req.target.endsWith('-close')) {
      res.send(200, [['Connection', 'close']], 'closing');
      return res.close();
    }
    res.send(200, [], `${req.target} ${sha(req.body)}`);
  });
  return { up, release };
}

function capped(url: string, maxConnections: number, extra: Record<string, unknown> = {}): unknown[] {
  return [{ path: '/', retries: 0, timeout_ms: 20_000, upstream: { targets: [{ url }], max_connections: maxConnections, max_fails: 0 }, ...extra }];
}

describe.each(RUNTIMES)('%s', (_name, noNative) => {
  test('HTTP/2 client: 40 concurrent streams through max_connections 3 all get their answers, over at most 3 upstream connections', async () => {
    const up = await startRecordingUpstream(async (req, res) => {
      await sleep(50);
      res.send(200, [], req.target);
    });
    const port = await proxyFor(capped(up.url, 3), { thread_count: 1 }, noNative);
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    try {
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          new Promise<string>((resolve, reject) => {
            const stream = session.request({ ':path': `/s${i}` });
            const timer = setTimeout(() => reject(new Error(`/s${i}: no answer within 15 s`)), 15_000);
            let body = '';
            stream.on('data', (chunk: Buffer) => (body += chunk.toString()));
            stream.on('error', reject);
            stream.on('end', () => (clearTimeout(timer), resolve(body)));
          }),
        ),
      );
      expect(answers).toEqual(Array.from({ length: 40 }, (_, i) => `/s${i}`));
      expect(up.connectionCount).toBeLessThanOrEqual(3);
    } finally {
      session.destroy();
    }
  });

  test('HTTP/1: 12 clients at once through max_connections 2 all get their answers, over at most 2 upstream connections', async () => {
    const up = await startRecordingUpstream(async (req, res) => {
      await sleep(30);
      res.send(200, [], req.target);
    });
    const port = await proxyFor(capped(up.url, 2), { thread_count: 1 }, noNative);
    const bodies = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const client = await RawClient.open(port);
        client.write(requestHead('GET', `/c${i}`, []));
        const res = await client.response('GET', 15_000);
        client.destroy();
        return res.body.toString();
      }),
    );
    expect(bodies).toEqual(Array.from({ length: 12 }, (_, i) => `/c${i}`));
    expect(up.connectionCount).toBeLessThanOrEqual(2);
  });

  test('a body that arrives while its request waits for a connection is held, the client paused past 64 KiB, and sent whole', async () => {
    const { up, release } = await gatedUpstream();
    const port = await proxyFor(capped(up.url, 1), { thread_count: 1 }, noNative);
    const holder = await RawClient.open(port);
    holder.write(requestHead('GET', '/hold', []));
    await up.waitForRequests(1);
    const bodies = [randomBytes(40_000), randomBytes(16 * 1024 * 1024)];
    const clients = await Promise.all(bodies.map(() => RawClient.open(port)));
    bodies.forEach((body, i) => clients[i].write(Buffer.concat([Buffer.from(`POST /up${i} HTTP/1.1\r\nHost: p\r\nContent-Length: ${body.length}\r\n\r\n`), body])));
    await sleep(300); // both wait, their bodies arriving
    expect(up.requests).toHaveLength(1);
    // Not read into memory while waiting: most of the large body is still on the client's side (loopback buffers hold a few MB).
    expect(clients[1].socket.writableLength).toBeGreaterThan(4 * 1024 * 1024);
    release();
    expect((await holder.response()).status).toBe(200);
    const answers = await Promise.all(clients.map((c) => c.response('POST', 15_000)));
    expect(answers.map((a) => a.body.toString()).sort()).toEqual(bodies.map((b, i) => `/up${i} ${sha(b)}`).sort());
    expect(up.connectionCount).toBe(1);
    for (const c of [holder, ...clients]) c.destroy();
  });
});

describe('the line for a connection (native)', () => {
  test('a request still waiting after upstream_connect_timeout_ms gets a 503 (JSON), and never reaches the upstream', async () => {
    const { up, release } = await gatedUpstream();
    const port = await proxyFor(capped(up.url, 1), { thread_count: 1, upstream_connect_timeout_ms: 300 });
    const holder = await RawClient.open(port);
    holder.write(requestHead('GET', '/hold', []));
    await up.waitForRequests(1);
    const waiter = await RawClient.open(port);
    waiter.write(requestHead('GET', '/late', [['X-Request-Id', 'cap-1']]));
    const res = await waiter.response('GET', 5000);
    expect(res.status).toBe(503);
    expect(errorBody(res)).toMatchObject({ status: 503, request_id: 'cap-1', error: 'upstream connection limit reached' });
    // The keep-alive connection goes on: the next request waits its turn like any other.
    waiter.write(requestHead('GET', '/later', []));
    await sleep(50);
    release();
    expect((await holder.response()).status).toBe(200);
    expect((await waiter.response('GET', 5000)).body.toString()).toMatch(/^\/later /);
    expect(up.requests.map((r) => r.target)).toEqual(['/hold', '/later']);
    holder.destroy();
    waiter.destroy();
  });

  test('a released connection goes to the first in line; a waiter whose client went away has left the line', async () => {
    const { up, release } = await gatedUpstream();
    const port = await proxyFor(capped(up.url, 1), { thread_count: 1 });
    const holder = await RawClient.open(port);
    holder.write(requestHead('GET', '/hold', []));
    await up.waitForRequests(1);
    const gone = await RawClient.open(port);
    gone.write(requestHead('GET', '/gone', []));
    const first = await RawClient.open(port);
    const second = await RawClient.open(port);
    await sleep(50);
    first.write(requestHead('GET', '/first', []));
    await sleep(50);
    second.write(requestHead('GET', '/second', []));
    await sleep(50);
    gone.destroy();
    await sleep(100);
    release();
    for (const c of [holder, first, second]) expect((await c.response('GET', 5000)).status).toBe(200);
    expect(up.requests.map((r) => r.target)).toEqual(['/hold', '/first', '/second']);
    expect(up.connectionCount).toBe(1);
    for (const c of [holder, first, second]) c.destroy();
  });

  test('a target reached by two routes gets the smaller of their caps', async () => {
    const up = await startRecordingUpstream(async (req, res) => {
      await sleep(30);
      res.send(200, [], req.target);
    });
    const target = { targets: [{ url: up.url }], max_fails: 0 };
    const port = await proxyFor(
      [
        { path: '/wide', upstream: { ...target, max_connections: 8 } },
        { path: '/narrow', upstream: { ...target, max_connections: 1 } },
      ],
      { thread_count: 1 },
    );
    const statuses = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const client = await RawClient.open(port);
        client.write(requestHead('GET', `/wide/${i}`, []));
        const res = await client.response('GET', 10_000);
        client.destroy();
        return res.status;
      }),
    );
    expect(statuses).toEqual(Array(6).fill(200));
    expect(up.connectionCount).toBe(1);
  });

  test('a connection that closes lets the first in line connect', async () => {
    const { up, release } = await gatedUpstream();
    const port = await proxyFor(capped(up.url, 1), { thread_count: 1 });
    const holder = await RawClient.open(port);
    holder.write(requestHead('GET', '/hold-close', []));
    await up.waitForRequests(1);
    const waiter = await RawClient.open(port);
    waiter.write(requestHead('GET', '/next', []));
    await sleep(100);
    expect(up.requests).toHaveLength(1);
    release();
    expect((await holder.response()).status).toBe(200);
    expect((await waiter.response('GET', 5000)).body.toString()).toMatch(/^\/next /);
    expect(up.connectionCount).toBe(2);
    holder.destroy();
    waiter.destroy();
  });
});

describe('WebSocket upgrades at the cap (native)', () => {
  test('an upgrade needs a connection of its own: at max_connections 1 an idle one closes to make room, and the tunnel opens', async () => {
    const up = await startRecordingUpstream((req, res) => {
      if (req.target !== '/ws') return res.send(200, [], 'plain');
      res.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
      res.hang();
    });
    const port = await proxyFor(capped(up.url, 1, { timeout_ms: 5000 }), { thread_count: 1, upstream_connect_timeout_ms: 2000 });
    const plain = await RawClient.open(port);
    plain.write(requestHead('GET', '/plain', []));
    expect((await plain.response()).status).toBe(200);
    const ws = await RawClient.open(port);
    ws.write('GET /ws HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    await ws.waitFor(() => ws.data.toString('latin1').includes('\r\n\r\n'), 5000, 'the 101');
    expect(ws.data.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
    expect(up.connections.map((c) => c.requests.map((r) => r.target))).toEqual([['/plain'], ['/ws']]);
    expect(up.connections[0].isClosed).toBe(true);
    plain.destroy();
    ws.destroy();
  });
});

describe('config', () => {
  const upstreamOf = (upstream: unknown) => validateConfig({ routes: [{ path: '/', upstream }] });

  test('max_connections defaults to 1024 in every form, and takes an integer from 1', () => {
    for (const form of ['http://a', ['http://a', 'http://b'], { targets: [{ url: 'http://a' }] }]) {
      const result = upstreamOf(form);
      expect('config' in result && result.config.routes[0].upstream!.max_connections).toBe(1024);
    }
    const set = upstreamOf({ targets: [{ url: 'http://a' }], max_connections: 8 });
    expect('config' in set && set.config.routes[0].upstream!.max_connections).toBe(8);
    for (const bad of [0, 1.5, '8', -1]) {
      expect(upstreamOf({ targets: [{ url: 'http://a' }], max_connections: bad })).toEqual({
        errors: [expect.stringMatching(/^routes\[0\]\.upstream\.max_connections: expected an integer from 1 to /)],
      });
    }
  });
});
