/**
 * Retries (docs/config-reference.md `retries`, default 1; SPEC §5): a failed
 * connection (refused, reset before any response byte) is retried on another
 * target for requests safe to replay; a POST whose body reached an upstream
 * is never replayed; `retries: 0` never retries; a stale pooled keep-alive
 * connection is replaced transparently. A retried request carries its whole
 * body, and the client connection goes on reading afterwards (HTTP/1 and
 * HTTP/2 clients, native and fallback).
 */
import http2 from 'node:http2';
import { createHash, randomBytes } from 'node:crypto';
import { RawClient, errorBody, refusedPort, requestHead, sleep, startRecordingUpstream } from './helpers/upstreams';
import { proxyFor } from './helpers/proxy-per-test';
import { RUNTIMES } from './helpers/server';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const post = (path: string, body: string, extra = ''): string => `POST ${path} HTTP/1.1\r\nHost: p\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

test('connect refused on one target: an idempotent GET is retried on another (client sees 200)', async () => {
  const good = await startRecordingUpstream();
  const dead = `http://127.0.0.1:${await refusedPort()}`;
  // max_fails 0: the refused target stays in rotation, so every other pick hits it.
  const port = await proxyFor([{ path: '/', upstream: { targets: [{ url: dead }, { url: good.url }], max_fails: 0 } }]);
  const client = await RawClient.open(port);
  for (let i = 0; i < 20; i++) {
    client.write(requestHead(i % 2 ? 'GET' : 'HEAD', `/r${i}`, []));
    expect((await client.response(i % 2 ? 'GET' : 'HEAD')).status).toBe(200);
  }
  expect(good.requests).toHaveLength(20);
  client.destroy();
});

test('an upstream reset before any response byte: GET retried on another target', async () => {
  const resetting = await startRecordingUpstream((_req, res) => res.reset());
  const good = await startRecordingUpstream();
  const port = await proxyFor([{ path: '/', upstream: { targets: [{ url: resetting.url }, { url: good.url }], max_fails: 0 } }]);
  const client = await RawClient.open(port);
  for (let i = 0; i < 6; i++) {
    client.write(requestHead('GET', `/g${i}`, []));
    expect((await client.response()).status).toBe(200);
  }
  expect(resetting.requests.length).toBeGreaterThan(0);
  expect(good.requests).toHaveLength(6);
  client.destroy();
});

test('a POST whose upstream resets after receiving the body: 502, and it is not replayed', async () => {
  const resetting = await startRecordingUpstream((_req, res) => res.reset());
  const good = await startRecordingUpstream();
  const port = await proxyFor([{ path: '/', upstream: { targets: [{ url: resetting.url }, { url: good.url }], max_fails: 0 } }]);
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const client = await RawClient.open(port);
    client.write(post(`/p${i}`, `payload-${i}`, `X-Request-Id: post-${i}\r\n`));
    const res = await client.response('POST');
    statuses.push(res.status);
    if (res.status === 502) expect(errorBody(res)).toMatchObject({ status: 502, request_id: `post-${i}` });
    client.destroy();
  }
  await sleep(100);
  const arrivals = [...resetting.requests, ...good.requests].map((r) => r.target).sort();
  // Every POST reached exactly one upstream once: none replayed.
  expect(arrivals).toEqual(Array.from({ length: 6 }, (_, i) => `/p${i}`).sort());
  expect(statuses.filter((s) => s === 502)).toHaveLength(resetting.requests.length);
  expect(statuses.filter((s) => s === 200)).toHaveLength(good.requests.length);
  expect(resetting.requests.length).toBeGreaterThan(0);
});

test('retries: 0 never retries (refused target → 502)', async () => {
  const good = await startRecordingUpstream();
  const dead = `http://127.0.0.1:${await refusedPort()}`;
  const port = await proxyFor([{ path: '/', retries: 0, upstream: { targets: [{ url: dead }, { url: good.url }], max_fails: 0 } }]);
  const client = await RawClient.open(port);
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) {
    client.write(requestHead('GET', `/n${i}`, []));
    statuses.push((await client.response()).status);
  }
  expect(statuses.filter((s) => s === 502)).toHaveLength(5);
  expect(statuses.filter((s) => s === 200)).toHaveLength(5);
  expect(good.requests).toHaveLength(5);
  client.destroy();
});

test('retries: 0 with a reset before the response: 502 and one attempt', async () => {
  const resetting = await startRecordingUpstream((_req, res) => res.reset());
  const port = await proxyFor([{ path: '/', retries: 0, upstream: resetting.url }]);
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/once', []));
  expect((await client.response()).status).toBe(502);
  await sleep(100);
  expect(resetting.requests).toHaveLength(1);
  client.destroy();
});

test.each(['fin', 'reset'] as const)('a stale pooled keep-alive connection (upstream closed it idle, %s) is replaced transparently: GET and POST', async (how) => {
  const up = await startRecordingUpstream({ idleCloseMs: 100, idleCloseHow: how });
  const port = await proxyFor([{ path: '/', upstream: { targets: [{ url: up.url }], keepalive_timeout_ms: 10_000, max_fails: 0 } }], { thread_count: 1 });
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/first', []));
  expect((await client.response()).status).toBe(200);
  await sleep(300); // the upstream has closed the pooled connection
  client.write(requestHead('GET', '/second', []));
  expect((await client.response()).status).toBe(200);
  await sleep(300);
  client.write(post('/third', 'body-3'));
  const third = await client.response('POST');
  expect(third.status).toBe(200);
  expect(JSON.parse(third.body.toString()).body).toBe('body-3');
  expect(up.requests.map((r) => r.target)).toEqual(['/first', '/second', '/third']);
  expect(up.connectionCount).toBeGreaterThanOrEqual(3);
  client.destroy();
});

test('requests in quick succession reuse one pooled connection', async () => {
  const up = await startRecordingUpstream();
  const port = await proxyFor([{ path: '/', upstream: up.url }], { thread_count: 1 });
  const client = await RawClient.open(port);
  for (let i = 0; i < 10; i++) {
    client.write(requestHead('GET', `/k${i}`, []));
    expect((await client.response()).status).toBe(200);
  }
  expect(up.connectionCount).toBe(1);
  client.destroy();
});

test('connect refused: even a POST is retried on another target (nothing was sent), and arrives once', async () => {
  const good = await startRecordingUpstream();
  const dead = `http://127.0.0.1:${await refusedPort()}`;
  const port = await proxyFor([{ path: '/', upstream: { targets: [{ url: dead }, { url: good.url }], max_fails: 0 } }], { thread_count: 1 });
  const client = await RawClient.open(port);
  for (let i = 0; i < 6; i++) {
    client.write(post(`/cp${i}`, `body-${i}`));
    const res = await client.response('POST');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString()).body).toBe(`body-${i}`);
  }
  expect(good.requests.map((r) => r.target)).toEqual(Array.from({ length: 6 }, (_, i) => `/cp${i}`));
  client.destroy();
});

test.each([
  [1, 2],
  [2, 3],
])('retries: %i bounds the attempts per request to %i', async (retries, maxAttempts) => {
  const r1 = await startRecordingUpstream((_req, res) => res.reset());
  const r2 = await startRecordingUpstream((_req, res) => res.reset());
  const good = await startRecordingUpstream();
  const ups = [r1, r2, good];
  const port = await proxyFor([{ path: '/', retries, upstream: { targets: ups.map((u) => ({ url: u.url })), max_fails: 0 } }], { thread_count: 1 });
  const client = await RawClient.open(port);
  const statuses: number[] = [];
  for (let i = 0; i < 9; i++) {
    const before = ups.map((u) => u.requests.length);
    client.write(requestHead('GET', `/a${i}`, []));
    const res = await client.response();
    statuses.push(res.status);
    await sleep(20);
    const attempts = ups.reduce((sum, u, k) => sum + u.requests.length - before[k], 0);
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(attempts).toBeLessThanOrEqual(maxAttempts);
    if (res.status === 200) expect(good.requests.length - before[2]).toBe(1);
  }
  if (retries === 2) expect(statuses.every((s) => s === 200)).toBe(true);
  else expect(statuses).toContain(200);
  client.destroy();
});

test('a timeout (504) is not retried on another target', async () => {
  const hanging = await startRecordingUpstream((_req, res) => res.hang());
  const good = await startRecordingUpstream();
  const port = await proxyFor([{ path: '/', timeout_ms: 300, upstream: { targets: [{ url: hanging.url }, { url: good.url }], max_fails: 0 } }], { thread_count: 1 });
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const client = await RawClient.open(port);
    client.write(requestHead('GET', `/t${i}`, []));
    statuses.push((await client.response('GET', 5000)).status);
    client.destroy();
  }
  expect(statuses.filter((s) => s === 504)).toHaveLength(hanging.requests.length);
  expect(statuses.filter((s) => s === 200)).toHaveLength(good.requests.length);
  expect(hanging.requests.length + good.requests.length).toBe(4);
});

describe.each(RUNTIMES)('%s: a request retried after a refused connect', (_name, noNative) => {
  /** Round robin over [refused, live] with one worker: every request tries the refused target first. */
  async function refusedThenLive(): Promise<{ port: number; live: Awaited<ReturnType<typeof startRecordingUpstream>> }> {
    const live = await startRecordingUpstream();
    const dead = `http://127.0.0.1:${await refusedPort()}`;
    const port = await proxyFor([{ path: '/', timeout_ms: 3000, retries: 1, upstream: { targets: [{ url: dead }, { url: live.url }], max_fails: 0 } }], { thread_count: 1 }, noNative);
    return { port, live };
  }

  test('HTTP/1: POSTs of 100 000, 50 000, 65 481 and 1 000 bytes arrive whole, once each, and the keep-alive connection goes on', async () => {
    const { port, live } = await refusedThenLive();
    const client = await RawClient.open(port);
    const bodies = [100_000, 50_000, 65_481, 1_000].map((n) => randomBytes(n));
    for (const [i, body] of bodies.entries()) {
      client.write(Buffer.concat([Buffer.from(`POST /up${i} HTTP/1.1\r\nHost: p\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
      expect((await client.response('POST', 8000)).status).toBe(200);
    }
    client.write(requestHead('GET', '/after', []));
    expect((await client.response('GET', 8000)).status).toBe(200);
    expect(live.requests.map((r) => r.target)).toEqual(['/up0', '/up1', '/up2', '/up3', '/after']);
    expect(live.requests.slice(0, 4).map((r) => sha(r.body))).toEqual(bodies.map(sha));
    client.destroy();
  });

  test('HTTP/1: a chunked upload retried onto a pooled connection arrives whole, and the next request is read', async () => {
    const { port, live } = await refusedThenLive();
    const client = await RawClient.open(port);
    client.write(requestHead('GET', '/warm', []));
    expect((await client.response('GET', 8000)).status).toBe(200);
    const body = randomBytes(50_000);
    const chunks = [body.subarray(0, 20_000), body.subarray(20_000)].map((c) => Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]));
    client.write(Buffer.concat([Buffer.from('POST /chunked HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n'), ...chunks, Buffer.from('0\r\n\r\n')]));
    expect((await client.response('POST', 8000)).status).toBe(200);
    client.write(requestHead('GET', '/after', []));
    expect((await client.response('GET', 8000)).status).toBe(200);
    expect(live.requests.map((r) => r.target)).toEqual(['/warm', '/chunked', '/after']);
    expect(sha(live.requests[1].body)).toBe(sha(body));
    client.destroy();
  });

  test('HTTP/2 client: uploads of 100 000 and 50 000 bytes arrive whole, and the session goes on', async () => {
    const { port, live } = await refusedThenLive();
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    try {
      const bodies = [100_000, 50_000].map((n) => randomBytes(n));
      const ask = (path: string, body?: Buffer): Promise<number> =>
        new Promise((resolve, reject) => {
          const stream = session.request({ ':method': body ? 'POST' : 'GET', ':path': path }, { endStream: !body });
          const timer = setTimeout(() => reject(new Error(`${path}: no answer within 8 s`)), 8000);
          let status = 0;
          stream.on('response', (headers) => (status = Number(headers[':status'])));
          stream.on('error', reject);
          stream.on('end', () => (clearTimeout(timer), resolve(status)));
          stream.resume();
          if (body) stream.end(body);
        });
      for (const [i, body] of bodies.entries()) expect(await ask(`/h2-${i}`, body)).toBe(200);
      expect(await ask('/h2-after')).toBe(200);
      expect(live.requests.slice(0, 2).map((r) => sha(r.body))).toEqual(bodies.map(sha));
    } finally {
      session.destroy();
    }
  });
});
