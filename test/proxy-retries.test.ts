/**
 * Retries (docs/config-reference.md `retries`, default 1; SPEC §5): a failed
 * connection (refused, reset before any response byte) is retried on another
 * target for requests safe to replay; a POST whose body reached an upstream
 * is never replayed; `retries: 0` never retries; a stale pooled keep-alive
 * connection is replaced transparently.
 */
import { RawClient, errorBody, refusedPort, requestHead, sleep, startRecordingUpstream } from './helpers/upstreams';
import { proxyFor } from './helpers/proxy-per-test';

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
