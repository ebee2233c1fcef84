/**
 * Target health over real upstreams: passive ejection after max_fails (with
 * no client-visible errors for idempotent requests, and the target back
 * after fail_timeout_ms, logged at warn), never of the last target serving
 * (as nginx never marks a lone server down), active health checks taking a
 * target out and bringing it back, and 503 JSON when no target is left.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { listeningPort, startCli } from './helpers/server';
import {
  RawClient,
  RecordingUpstream,
  errorBody,
  refusedPort,
  requestHead,
  sleep,
  startRecordingUpstream,
} from './helpers/upstreams';
import { proxyFor } from './helpers/proxy-per-test';

/** Requests spread over `connections` keep-alive connections; the statuses. */
async function burst(port: number, path: string, n: number, connections = 4): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = await RawClient.open(port);
      try {
        while (next < n) {
          next++;
          if (client.closed) break;
          client.write(requestHead('GET', path, []));
          statuses.push((await client.response('GET', 8000)).status);
        }
      } finally {
        client.destroy();
      }
    }),
  );
  return statuses;
}

const traffic = (up: RecordingUpstream, from = 0) => up.requests.slice(from).filter((r) => !r.target.startsWith('/healthz')).length;

test('a target taken down is ejected after max_fails; idempotent requests see no error; it is back after fail_timeout_ms', async () => {
  const ups = await Promise.all([startRecordingUpstream(), startRecordingUpstream(), startRecordingUpstream()]);
  const [a, b, c] = ups;
  const port = await proxyFor([{ path: '/', upstream: { targets: ups.map((u) => ({ url: u.url })), max_fails: 2, fail_timeout_ms: 2000 } }]);

  const warm = await burst(port, '/warm', 30);
  expect(warm.every((s) => s === 200)).toBe(true);
  expect(traffic(c)).toBeGreaterThan(0);

  const cPort = c.port;
  await c.close();
  const down = await burst(port, '/down', 60, 6);
  expect(down.filter((s) => s !== 200)).toEqual([]);

  // c listens again at once, but it is ejected: no traffic until fail_timeout_ms has passed.
  const c2 = await new RecordingUpstream().listen(cPort);
  const aBefore = traffic(a);
  const bBefore = traffic(b);
  const during = await burst(port, '/ejected', 30, 3);
  expect(during.every((s) => s === 200)).toBe(true);
  expect(traffic(c2)).toBe(0);
  expect(traffic(a) - aBefore + traffic(b) - bBefore).toBe(30);

  await sleep(2300);
  const after = await burst(port, '/after', 60, 3);
  expect(after.every((s) => s === 200)).toBe(true);
  expect(traffic(c2)).toBeGreaterThan(0);
}, 20_000);

test('active health checks take a target answering 500 out, and bring it back on 200', async () => {
  let sick = false;
  const a = await startRecordingUpstream();
  const b = await startRecordingUpstream((req, res) => {
    if (req.target.startsWith('/healthz')) return res.send(sick ? 500 : 200, [], sick ? 'sick' : 'ok');
    res.send(200, [], 'b');
  });
  const port = await proxyFor([
    {
      path: '/',
      upstream: {
        targets: [{ url: a.url }, { url: b.url }],
        health_check: { interval_ms: 100, timeout_ms: 90, path: '/healthz', unhealthy_threshold: 2, healthy_threshold: 2 },
      },
    },
  ]);
  const checksSince = (from: number) => b.requests.slice(from).filter((r) => r.target.startsWith('/healthz')).length;
  // Checks run with the documented GET and User-Agent.
  await b.waitForRequests(1, 3000);
  const check = b.requests.find((r) => r.target.startsWith('/healthz'))!;
  expect(check.method).toBe('GET');

  expect((await burst(port, '/x', 20)).every((s) => s === 200)).toBe(true);
  expect(traffic(b)).toBeGreaterThan(0);

  sick = true;
  let mark = b.requests.length;
  // Two failed checks (unhealthy_threshold) plus one interval of slack.
  for (const start = Date.now(); checksSince(mark) < 3 && Date.now() - start < 5000; ) await sleep(50);
  await sleep(150);
  let before = traffic(b);
  expect((await burst(port, '/x', 40)).every((s) => s === 200)).toBe(true);
  expect(traffic(b) - before).toBe(0);

  sick = false;
  mark = b.requests.length;
  for (const start = Date.now(); checksSince(mark) < 3 && Date.now() - start < 5000; ) await sleep(50);
  await sleep(150);
  before = traffic(b);
  expect((await burst(port, '/x', 40)).every((s) => s === 200)).toBe(true);
  expect(traffic(b) - before).toBeGreaterThan(0);
}, 20_000);

test('no healthy target (active checks): 503 with a JSON error body', async () => {
  const a = await startRecordingUpstream((req, res) => res.send(req.target.startsWith('/healthz') ? 503 : 200, [], 'x'));
  const port = await proxyFor([
    { path: '/', upstream: { targets: [{ url: a.url }], health_check: { interval_ms: 100, timeout_ms: 90, path: '/healthz', unhealthy_threshold: 1 } } },
  ]);
  for (const start = Date.now(); a.requests.filter((r) => r.target === '/healthz').length < 2 && Date.now() - start < 5000; ) await sleep(50);
  await sleep(100);
  const before = traffic(a);
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/x', [['X-Request-Id', 'all-down-1']]));
  const res = await client.response();
  expect(res.status).toBe(503);
  expect(errorBody(res)).toMatchObject({ status: 503, request_id: 'all-down-1' });
  expect(typeof errorBody(res).error).toBe('string');
  expect(traffic(a)).toBe(before);
  client.destroy();
});

test('all targets down (connections refused): every request is tried and gets 502, never a 503 from passive ejection, never a hang', async () => {
  const ports = [await refusedPort(), await refusedPort()];
  const port = await proxyFor([{ path: '/', upstream: { targets: ports.map((p) => ({ url: `http://127.0.0.1:${p}` })), max_fails: 1, fail_timeout_ms: 10_000 } }], { thread_count: 1 });
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const client = await RawClient.open(port);
    client.write(requestHead('GET', '/x', []));
    const res = await client.response('GET', 8000);
    statuses.push(res.status);
    expect(errorBody(res)).toMatchObject({ status: 502 });
    client.destroy();
  }
  expect(statuses).toEqual(Array(6).fill(502));
});

test('a single target that fails is never ejected: once it answers again, so does zproxy (no 503 for fail_timeout_ms)', async () => {
  let failing = 3;
  const up = await startRecordingUpstream((_req, res) => (failing-- > 0 ? res.reset() : res.send(200, [], 'back')));
  const port = await proxyFor([{ path: '/', retries: 0, upstream: { targets: [{ url: up.url }], max_fails: 1, fail_timeout_ms: 60_000 } }], { thread_count: 1 });
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) {
    const client = await RawClient.open(port);
    client.write(requestHead('GET', `/s${i}`, []));
    statuses.push((await client.response('GET', 8000)).status);
    client.destroy();
  }
  expect(statuses).toEqual([502, 502, 502, 200, 200]);
  expect(up.requests).toHaveLength(5);
});

test('an ejection is logged at warn with the target, its failures and for how long', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zproxy-health-'));
  const good = await startRecordingUpstream();
  const dead = `http://127.0.0.1:${await refusedPort()}`;
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ host: '127.0.0.1', port: 0, admin: null, thread_count: 1, routes: [{ path: '/', upstream: { targets: [{ url: dead }, { url: good.url }], max_fails: 2, fail_timeout_ms: 7000 } }] }));
  const proxy = await startCli(['start', '--config', file]);
  try {
    const port = listeningPort(proxy.output());
    for (let i = 0; i < 4; i++) {
      const client = await RawClient.open(port);
      client.write(requestHead('GET', `/l${i}`, []));
      expect((await client.response('GET', 8000)).status).toBe(200);
      client.destroy();
    }
    for (const start = Date.now(); !proxy.output().includes('ejected') && Date.now() - start < 5000; ) await sleep(50);
    const line = proxy.output().split('\n').find((l) => l.includes('ejected'));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ level: 40, target: dead, failures: 2, ejected_ms: 7000 });
  } finally {
    proxy.child.kill('SIGTERM');
    await proxy.exited;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two proxies in one process: one proxy\'s health verdicts do not leak into the other', async () => {
  const shared = await startRecordingUpstream((req, res) => res.send(req.target === '/healthz-strict' ? 500 : 200, [], 'x'));
  // Proxy A checks a path that fails; proxy B uses the same target with no active checks.
  await proxyFor([{ path: '/', upstream: { targets: [{ url: shared.url }], health_check: { interval_ms: 100, timeout_ms: 90, path: '/healthz-strict', unhealthy_threshold: 1 } } }]);
  const portB = await proxyFor([{ path: '/', upstream: { targets: [{ url: shared.url }] } }]);
  for (const start = Date.now(); shared.requests.filter((r) => r.target === '/healthz-strict').length < 3 && Date.now() - start < 5000; ) await sleep(50);
  const statuses = await burst(portB, '/via-b', 10, 2);
  expect(statuses).toEqual(Array(10).fill(200));
});
