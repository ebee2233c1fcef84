/**
 * `rate_limit` with the Redis store, against a real redis-server on a
 * loopback port (test/helpers/redis.ts): two zproxy instances share one
 * limit; Redis killed mid-run and started again (store_failure allow: the
 * requests pass, deny: 503, and the limit holds again once Redis is back);
 * a Redis that hangs costs a request its timeout, not a hang; the failure
 * counter on the middleware object; and, through the CLI, the warning is
 * logged at most once per 10 s and the password in the URL never is; and
 * `rediss://` checks the server's certificate.
 * HTTP/1 and HTTP/2, native and fallback.
 */
import http2 from 'node:http2';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, RUNTIMES, listeningPort, startCli, startProxy, type ChildProxy } from './helpers/server';
import { RawClient, closeAll, requestHead, sleep, startRecordingUpstream, type RecordingUpstream } from './helpers/upstreams';
import { RedisServer } from './helpers/redis';
import type { Server } from '../dist/index';
import { createRateLimit } from '../dist/middleware/rate-limit/rate-limit';
import { RequestContext } from '../dist/pipeline/request-context';
import { createLogger } from '../dist/util/log';

type Protocol = 'HTTP/1' | 'HTTP/2';

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One GET on a new connection, HTTP/1.1 or HTTP/2 (prior knowledge). */
async function get(port: number, protocol: Protocol, target = '/'): Promise<Reply> {
  if (protocol === 'HTTP/1') {
    const client = await RawClient.open(port);
    try {
      client.write(requestHead('GET', target));
      const response = await client.response('GET', 10_000);
      return { status: response.status, headers: Object.fromEntries(response.headers.map(([n, v]) => [n.toLowerCase(), v])), body: response.body.toString() };
    } finally {
      client.destroy();
    }
  }
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no HTTP/2 response within 10 s')), 10_000);
      const stream = session.request({ ':path': target });
      let headers: http2.IncomingHttpHeaders = {};
      let body = '';
      stream.on('response', (h) => (headers = h));
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (body += chunk));
      stream.on('end', () => {
        clearTimeout(timer);
        resolve({ status: Number(headers[':status']), headers: headers as Record<string, string>, body });
      });
      stream.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      stream.end();
    });
  } finally {
    session.close();
  }
}

const PROTOCOLS: Protocol[] = ['HTTP/1', 'HTTP/2'];

/** Requests (alternating protocols) until `done` holds for one; fails after `attempts`. */
async function until(port: number, done: (reply: Reply) => boolean, attempts = 150): Promise<Reply> {
  for (let i = 0; i < attempts; i++) {
    const reply = await get(port, PROTOCOLS[i % 2]);
    if (done(reply)) return reply;
    await sleep(50);
  }
  throw new Error(`no matching reply in ${attempts} requests`);
}

let redis: RedisServer;

beforeAll(async () => {
  redis = await RedisServer.start();
});

afterAll(async () => {
  await redis.close();
});

describe.each(RUNTIMES)('%s', (_name, noNative) => {
  let up: RecordingUpstream;
  const proxies: Server[] = [];

  beforeEach(async () => {
    if (!redis.running) await redis.start();
    expect(await redis.command('FLUSHALL')).toBe('+OK');
    up = await startRecordingUpstream();
  });

  afterEach(async () => {
    redis.resume();
    await closeAll();
    await Promise.all(proxies.splice(0).map((p) => p.stop()));
  });

  async function start(config: Record<string, unknown>): Promise<number> {
    const proxy = await startProxy(
      { drain_timeout_ms: 1000, thread_count: 2, log_level: 'error', routes: [{ path: '/', upstream: up.url, middlewares: [{ type: 'rate_limit', config: { store: 'redis', redis_url: redis.url, ...config } }] }] },
      noNative,
    );
    proxies.push(proxy);
    return proxy.address().port;
  }

  test('two instances share one limit through Redis, over HTTP/1 and HTTP/2', async () => {
    // A generous timeout: an exact count must not meet a decision timed out on a loaded machine.
    const config = { requests_per_minute: 1, burst: 6, redis_timeout_ms: 5000 };
    const ports = [await start(config), await start(config)];
    const replies: Reply[] = [];
    for (let i = 0; i < 10; i++) replies.push(await get(ports[i % 2], PROTOCOLS[Math.floor(i / 2) % 2]));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200, 429, 429, 429, 429]);
    expect(replies.map((r) => r.headers['ratelimit-remaining'])).toEqual(['5', '4', '3', '2', '1', '0', '0', '0', '0', '0']);
    // 60 s when the first request was taken, less only by the time the test took since.
    expect(Number(replies[6].headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(Number(replies[6].headers['retry-after'])).toBeGreaterThan(30);
    expect(JSON.parse(replies[7].body)).toMatchObject({ error: 'rate limit exceeded', status: 429 });
    expect(up.requests).toHaveLength(6);
    // The bucket lives in Redis (one key, expiring once full again), not in either instance.
    expect(await redis.command('DBSIZE')).toBe(':1');
  });

  test('Redis killed mid-run, store_failure allow: requests pass (no RateLimit fields), and the limit holds again once Redis is back', async () => {
    const port = await start({ requests_per_minute: 1, burst: 2, redis_timeout_ms: 200 });
    expect([(await get(port, 'HTTP/1')).status, (await get(port, 'HTTP/2')).status, (await get(port, 'HTTP/1')).status]).toEqual([200, 200, 429]);
    await redis.stop();
    for (const protocol of [...PROTOCOLS, ...PROTOCOLS]) {
      const reply = await get(port, protocol);
      expect(reply.status).toBe(200);
      expect(reply.headers['ratelimit-remaining']).toBeUndefined();
    }
    expect(up.requests).toHaveLength(2 + 4);
    await redis.start();
    // Both threads reconnect by themselves; Redis restarted empty, so the buckets start full.
    await until(port, (reply) => reply.headers['ratelimit-remaining'] !== undefined);
    await until(port, (reply) => reply.status === 429);
  });

  test('Redis killed mid-run, store_failure deny: 503 and nothing upstream; then back to normal', async () => {
    const port = await start({ requests_per_minute: 1, burst: 100, redis_timeout_ms: 200, store_failure: 'deny' });
    expect((await get(port, 'HTTP/1')).status).toBe(200);
    await redis.stop();
    for (const protocol of [...PROTOCOLS, ...PROTOCOLS]) {
      const reply = await get(port, protocol);
      expect(reply.status).toBe(503);
      expect(reply.headers['retry-after']).toBeUndefined();
      expect(JSON.parse(reply.body)).toMatchObject({ error: 'the rate limit store is unavailable', status: 503 });
    }
    expect(up.requests).toHaveLength(1);
    await redis.start();
    await until(port, (reply) => reply.status === 200);
    expect(up.requests.length).toBeGreaterThan(1);
  });

  test('a Redis that hangs costs a request redis_timeout_ms, not a hang: allow passes it, deny answers 503', async () => {
    const allowPort = await start({ requests_per_minute: 1, burst: 100, redis_timeout_ms: 100 });
    const denyPort = await start({ requests_per_minute: 1, burst: 100, redis_timeout_ms: 100, store_failure: 'deny' });
    // Connected first, so the commands are sent and go unanswered (not refused as offline).
    await until(allowPort, (reply) => reply.headers['ratelimit-remaining'] !== undefined && Number(reply.headers['ratelimit-remaining']) <= 97);
    await until(denyPort, (reply) => reply.status === 200 && Number(reply.headers['ratelimit-remaining']) <= 97);
    redis.pause();
    for (const protocol of PROTOCOLS) {
      // get() gives up after 10 s: an answer at all proves the wait was bounded.
      expect((await get(allowPort, protocol)).status).toBe(200);
      expect((await get(denyPort, protocol)).status).toBe(503);
    }
    redis.resume();
    await until(denyPort, (reply) => reply.status === 200);
  });
});

test('the failure counter on the middleware object, and close()', async () => {
  const log = createLogger('silent');
  const config = { requests_per_minute: 1, burst: 1, key: 'ip', store: 'redis', redis_url: redis.url, redis_timeout_ms: 1000, store_failure: 'allow' };
  const middleware = createRateLimit(config, { log, path: 'middlewares[0]', shared: null });
  const headers = { get: () => undefined, joined: () => undefined };
  const request = () => new RequestContext('HTTP/1.1', 'GET', '/', '', 'h', headers, '198.51.100.9', 'http', 1, false);
  try {
    // Until the connection is ready, decisions fail at once (no offline queue): allowed, and counted.
    for (let i = 0; i < 200; i++) {
      const before = middleware.storeFailures;
      expect(await middleware.onRequest(request())).toBeUndefined();
      if (middleware.storeFailures === before) break;
      await sleep(20);
    }
    const failuresWhileUp = middleware.storeFailures;
    expect(await middleware.onRequest(request())).toMatchObject({ status: 429 });
    expect(middleware.storeFailures).toBe(failuresWhileUp);
    await redis.stop();
    expect(await middleware.onRequest(request())).toBeUndefined();
    expect(middleware.storeFailures).toBe(failuresWhileUp + 1);
  } finally {
    middleware.close();
    if (!redis.running) await redis.start();
  }
});

describe('through the CLI', () => {
  let child: ChildProxy | null = null;
  let up: RecordingUpstream;
  let secured: RedisServer;
  const password = 'pw-6f1d-never-logged';

  beforeAll(async () => {
    secured = await RedisServer.start({ password });
  });

  afterAll(async () => {
    await secured.close();
  });

  async function startWithRateLimit(rateLimit: Record<string, unknown>, env: Record<string, string> = {}): Promise<number> {
    up = await startRecordingUpstream();
    const dir = mkdtempSync(path.join(tmpdir(), 'zproxy-rate-limit-'));
    const file = path.join(dir, 'zproxy.json');
    const middlewares = [{ type: 'rate_limit', config: { requests_per_minute: 600, burst: 600, store: 'redis', ...rateLimit } }];
    writeFileSync(file, JSON.stringify({ host: '127.0.0.1', port: 0, admin: null, thread_count: 2, log_level: 'info', routes: [{ path: '/', upstream: up.url, middlewares }] }));
    child = await startCli(['start', '--config', file], { ZPROXY_LOG_LEVEL: 'info', ...env });
    return listeningPort(child.output());
  }

  afterEach(async () => {
    if (child !== null && child.child.exitCode === null) {
      child.child.kill('SIGTERM');
      await child.exited;
    }
    child = null;
    await closeAll();
  });

  test('Redis down: one warning per thread per 10 s however many requests fail, back to info when it returns, and the password never in the log', async () => {
    const port = await startWithRateLimit({ redis_url: secured.url, redis_timeout_ms: 500 });
    await until(port, (reply) => reply.headers['ratelimit-remaining'] !== undefined);
    await secured.stop();
    const failing = [];
    for (let i = 0; i < 40; i++) failing.push(await get(port, PROTOCOLS[i % 2]));
    expect(failing.every((reply) => reply.status === 200)).toBe(true);
    const warnings = () => child!.output().split('\n').filter((line) => line.includes('rate limit store'));
    for (let i = 0; i < 100 && !warnings().some((line) => line.includes('unavailable')); i++) await sleep(50);
    const lines = warnings().map((line) => JSON.parse(line) as { level: number; msg: string; store: string; middleware: string });
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(2);
    for (const line of lines) {
      expect(line.level).toBe(40);
      expect(line.store).toBe(`redis://127.0.0.1:${secured.port}`);
      expect(line.middleware).toBe('routes[0].middlewares[0]');
    }
    await secured.start();
    await until(port, (reply) => reply.headers['ratelimit-remaining'] !== undefined);
    for (let i = 0; i < 100 && !child!.output().includes('rate limit store reachable again'); i++) await sleep(50);
    expect(child!.output()).toContain('rate limit store reachable again');
    expect(child!.output()).not.toContain(password);
  });

  test('rediss://: decisions over TLS with a trusted certificate; an untrusted one is a store failure', async () => {
    const certificates = path.join(ROOT, 'test', 'fixtures', 'tls');
    const tlsRedis = await RedisServer.start({ tls: { certFile: path.join(certificates, 'localhost.pem'), keyFile: path.join(certificates, 'localhost.key'), caFile: path.join(certificates, 'ca.pem') } });
    try {
      expect(tlsRedis.url).toMatch(/^rediss:/);
      const port = await startWithRateLimit({ redis_url: tlsRedis.url, redis_timeout_ms: 1000 }, { NODE_EXTRA_CA_CERTS: path.join(certificates, 'ca.pem') });
      const reply = await until(port, (r) => r.headers['ratelimit-remaining'] !== undefined);
      expect(reply.status).toBe(200);
      // This test process does not trust the test CA: its proxy cannot use that Redis.
      const untrusting = await startProxy(
        { drain_timeout_ms: 1000, thread_count: 1, log_level: 'error', routes: [{ path: '/', upstream: up.url, middlewares: [{ type: 'rate_limit', config: { requests_per_minute: 600, store: 'redis', redis_url: tlsRedis.url, redis_timeout_ms: 1000, store_failure: 'deny' } }] }] },
        false,
      );
      try {
        for (const protocol of PROTOCOLS) expect((await get(untrusting.address().port, protocol)).status).toBe(503);
      } finally {
        await untrusting.stop();
      }
    } finally {
      await tlsRedis.close();
    }
  });
});
