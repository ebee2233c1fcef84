/**
 * Upstream timeouts: connect timeout (a loopback port whose accept queue is
 * full, so SYNs go unanswered) → 502 or a retry elsewhere; the route's
 * timeout_ms → 504; idle pooled connections closed after keepalive_timeout_ms.
 * Only generous upper bounds on time.
 */
import { RawClient, errorBody, requestHead, sleep, startBlackhole, startRecordingUpstream, waitAtMost } from './helpers/upstreams';
import { proxyFor } from './helpers/proxy-per-test';

test('connect timeout (upstream_connect_timeout_ms) → 502 with a JSON body', async () => {
  const hole = await startBlackhole();
  const port = await proxyFor([{ path: '/', retries: 0, upstream: hole.url }], { upstream_connect_timeout_ms: 300 });
  const client = await RawClient.open(port);
  const started = Date.now();
  client.write(requestHead('GET', '/', [['X-Request-Id', 'ct-1']]));
  const res = await client.response('GET', 5000);
  expect(res.status).toBe(502);
  expect(errorBody(res)).toMatchObject({ status: 502, request_id: 'ct-1' });
  expect(Date.now() - started).toBeLessThan(3000);
  client.destroy();
});

test('connect timeout on one target: the GET is retried on another (200)', async () => {
  const hole = await startBlackhole();
  const good = await startRecordingUpstream();
  const port = await proxyFor([{ path: '/', upstream: { targets: [{ url: hole.url }, { url: good.url }], max_fails: 0 } }], { upstream_connect_timeout_ms: 300, thread_count: 1 });
  const client = await RawClient.open(port);
  for (let i = 0; i < 4; i++) {
    client.write(requestHead('GET', `/t${i}`, []));
    expect((await client.response('GET', 5000)).status).toBe(200);
  }
  expect(good.requests).toHaveLength(4);
  client.destroy();
});

test('route timeout_ms: an upstream that never answers → 504 with a JSON body; the upstream request is abandoned', async () => {
  const up = await startRecordingUpstream((_req, res) => res.hang());
  const port = await proxyFor([{ path: '/', timeout_ms: 300, upstream: up.url }]);
  const client = await RawClient.open(port);
  const started = Date.now();
  client.write(requestHead('GET', '/never', [['X-Request-Id', 'to-1']]));
  const res = await client.response('GET', 5000);
  expect(res.status).toBe(504);
  expect(errorBody(res)).toMatchObject({ status: 504, request_id: 'to-1' });
  expect(Date.now() - started).toBeLessThan(3000);
  // The connection with a request in flight cannot be reused: zproxy closes it.
  const conn = up.requests[0].conn;
  await waitAtMost(conn.closed, 3000);
  expect(conn.peerClosed).toBe(true);
  client.destroy();
});

test('route timeout_ms: a slow head (after the timeout) → 504; a fast one on the same route → 200', async () => {
  const up = await startRecordingUpstream(async (req, res) => {
    if (req.target === '/slow') await sleep(1500);
    res.send(200, [], 'late or not');
  });
  const port = await proxyFor([{ path: '/', timeout_ms: 300, upstream: up.url }]);
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/slow', []));
  expect((await client.response('GET', 5000)).status).toBe(504);
  const other = await RawClient.open(port);
  other.write(requestHead('GET', '/fast', []));
  expect((await other.response()).status).toBe(200);
  client.destroy();
  other.destroy();
});

test('the default route timeout is long: a 1 s answer is not cut', async () => {
  const up = await startRecordingUpstream(async (_req, res) => {
    await sleep(1000);
    res.send(200, [], 'patience');
  });
  const port = await proxyFor([{ path: '/', upstream: up.url }]);
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/', []));
  const res = await client.response('GET', 5000);
  expect(res.status).toBe(200);
  expect(res.body.toString()).toBe('patience');
  client.destroy();
});

test('an idle pooled connection is closed after keepalive_timeout_ms (the upstream sees the close)', async () => {
  const up = await startRecordingUpstream();
  const port = await proxyFor([{ path: '/', upstream: { targets: [{ url: up.url }], keepalive_timeout_ms: 300 } }]);
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/', []));
  expect((await client.response()).status).toBe(200);
  const conn = up.connections[0];
  const started = Date.now();
  await waitAtMost(conn.closed, 4000);
  expect(conn.isClosed).toBe(true);
  expect(conn.peerClosed).toBe(true);
  expect(Date.now() - started).toBeLessThan(4000);
  // And the next request opens a new connection and works.
  client.write(requestHead('GET', '/', []));
  expect((await client.response()).status).toBe(200);
  expect(up.connectionCount).toBe(2);
  client.destroy();
});

test('keepalive_timeout_ms: 0 pools nothing: each request its own upstream connection, closed after it', async () => {
  const up = await startRecordingUpstream();
  const port = await proxyFor([{ path: '/', upstream: { targets: [{ url: up.url }], keepalive_timeout_ms: 0 } }], { thread_count: 1 });
  const client = await RawClient.open(port);
  for (let i = 0; i < 3; i++) {
    client.write(requestHead('GET', `/${i}`, []));
    expect((await client.response()).status).toBe(200);
  }
  expect(up.connectionCount).toBe(3);
  await waitAtMost(Promise.all(up.connections.map((c) => c.closed)), 3000);
  expect(up.openConnections).toHaveLength(0);
  client.destroy();
});

test('an upstream that stalls mid-body: the client connection is ended (no hang), the upstream connection closed', async () => {
  const up = await startRecordingUpstream((_req, res) => res.stallMidBody(200, 100, 'half'));
  const port = await proxyFor([{ path: '/', timeout_ms: 500, upstream: up.url }]);
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/stall', []));
  await client.waitClosed(5000);
  expect(client.data.toString('latin1')).toMatch(/^HTTP\/1\.1 200 [\s\S]*\r\n\r\nhalf$/);
  const conn = up.requests[0].conn;
  await waitAtMost(conn.closed, 3000);
  expect(conn.isClosed).toBe(true);
});

test('a slow but steady body (longer in total than timeout_ms) is not cut', async () => {
  const up = await startRecordingUpstream(async (_req, res) => {
    res.write('HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n');
    for (let i = 0; i < 12; i++) {
      await sleep(100);
      res.write('x');
    }
    res.finished = true;
  });
  const port = await proxyFor([{ path: '/', timeout_ms: 500, upstream: up.url }]);
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/steady', []));
  const res = await client.response('GET', 5000);
  expect(res.body.toString()).toBe('x'.repeat(12));
  client.destroy();
});
