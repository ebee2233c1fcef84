/**
 * Reload (SIGHUP / Server.reload) with proxy routes (SPEC §2): new routes and
 * upstreams apply to new requests, a request in flight finishes on its old
 * upstream, and no established client connection is dropped.
 */
import type { Server } from '../dist/index';
import { startProxy } from './helpers/server';
import { RawClient, closeAll, requestHead, sleep, startRecordingUpstream } from './helpers/upstreams';

let proxy: Server | undefined;

afterEach(async () => {
  await closeAll();
  await proxy?.stop();
  proxy = undefined;
});

test('new upstreams apply to new requests on existing connections; the request in flight finishes on the old one', async () => {
  const a = await startRecordingUpstream(async (req, res) => {
    if (req.target === '/slow') await sleep(500);
    res.send(200, [], `a ${req.target}`);
  });
  const b = await startRecordingUpstream((req, res) => res.send(200, [], `b ${req.target}`));
  const base = { drain_timeout_ms: 1000, host: '127.0.0.1', port: 0, admin: null, thread_count: 2, log_level: 'warn' };
  proxy = await startProxy({ ...base, routes: [{ path: '/', upstream: a.url }] }, false);
  const port = proxy.address().port;

  const keepAlive = await RawClient.open(port);
  keepAlive.write(requestHead('GET', '/before', []));
  expect((await keepAlive.response()).body.toString()).toBe('a /before');

  const inFlight = await RawClient.open(port);
  inFlight.write(requestHead('GET', '/slow', []));
  await a.waitForRequests(2);

  await proxy.reload({ ...base, routes: [{ path: '/', upstream: b.url }, { path: '/new', respond: { status: 200, headers: {}, body: 'new route' } }] });

  const slow = await inFlight.response('GET', 5000);
  expect(slow.body.toString()).toBe('a /slow');

  keepAlive.write(requestHead('GET', '/after', []));
  expect((await keepAlive.response()).body.toString()).toBe('b /after');
  keepAlive.write(requestHead('GET', '/new', []));
  expect((await keepAlive.response()).body.toString()).toBe('new route');
  expect(keepAlive.closed).toBe(false);

  inFlight.write(requestHead('GET', '/again', []));
  expect((await inFlight.response()).body.toString()).toBe('b /again');
  keepAlive.destroy();
  inFlight.destroy();
});

test('a reload that removes active health checks brings a target they had taken out back', async () => {
  let sick = true;
  const a = await startRecordingUpstream((req, res) => res.send(req.target === '/healthz' && sick ? 500 : 200, [], 'a'));
  const base = { drain_timeout_ms: 1000, host: '127.0.0.1', port: 0, admin: null, thread_count: 2, log_level: 'error' };
  proxy = await startProxy(
    { ...base, routes: [{ path: '/', upstream: { targets: [{ url: a.url }], health_check: { interval_ms: 100, timeout_ms: 90, path: '/healthz', unhealthy_threshold: 1 } } }] },
    false,
  );
  const port = proxy.address().port;
  for (const start = Date.now(); a.requests.filter((r) => r.target === '/healthz').length < 3 && Date.now() - start < 5000; ) await sleep(50);
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/x', []));
  expect((await client.response()).status).toBe(503);

  await proxy.reload({ ...base, routes: [{ path: '/', upstream: { targets: [{ url: a.url }] } }] });
  await sleep(300); // any check still in flight from before must not count any more
  for (let i = 0; i < 5; i++) {
    client.write(requestHead('GET', `/y${i}`, []));
    expect((await client.response()).status).toBe(200);
  }
  const checks = a.requests.filter((r) => r.target === '/healthz').length;
  await sleep(400);
  expect(a.requests.filter((r) => r.target === '/healthz').length).toBe(checks);
  sick = false;
  client.destroy();
});

test('a reload that shortens connection_timeout_ms applies to idle connections too (the sweep follows the new timeout)', async () => {
  const base = { host: '127.0.0.1', port: 0, admin: null, thread_count: 1, log_level: 'warn', routes: [{ path: '/', respond: { status: 200, headers: {}, body: 'ok' } }] };
  proxy = await startProxy({ ...base, connection_timeout_ms: 60_000 }, false);
  const port = proxy.address().port;
  await proxy.reload({ ...base, connection_timeout_ms: 300 });
  // One sweep at the old pace (every second) has run by now and taken up the new one (every 37 ms).
  await sleep(1200);
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/', []));
  expect((await client.response()).status).toBe(200);
  const idleFrom = Date.now();
  await client.waitClosed(4000);
  const idle = Date.now() - idleFrom;
  expect(idle).toBeGreaterThanOrEqual(300 - 20);
  // At the old pace the close would come a second or more after the response.
  expect(idle).toBeLessThan(900);
});
