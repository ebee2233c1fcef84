import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { HealthCheckConfig } from '../src/config/types';
import { HealthChecker, HEALTH_CHECK_USER_AGENT } from '../dist/upstream/health-check';
import { Target } from '../dist/upstream/target';

/** Polls `condition` every 20 ms until it holds or `limitMs` passes. */
async function waitFor(condition: () => boolean, limitMs = 5_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('Target', () => {
  test('parses scheme, host, port, authority and identity key', () => {
    const plain = new Target('http://Example.com');
    expect([plain.scheme, plain.host, plain.port, plain.authority, plain.key]).toEqual(['http', 'example.com', 80, 'example.com', 'http://example.com:80']);
    const tls = new Target('https://api.example.com:8443', 3);
    expect([tls.port, tls.authority, tls.key, tls.weight, tls.secure]).toEqual([8443, 'api.example.com:8443', 'https://api.example.com:8443', 3, true]);
    const v6 = new Target('h2c://[::1]:50051');
    expect([v6.scheme, v6.host, v6.port, v6.authority, v6.key]).toEqual(['h2c', '::1', 50051, '[::1]:50051', 'h2c://[::1]:50051']);
    expect(new Target('https://a.example:443').authority).toBe('a.example');
    expect(() => new Target('ftp://x')).toThrow(/scheme/);
  });

  test('begin/end count requests in flight', () => {
    const t = new Target('http://127.0.0.1:1');
    t.begin();
    t.begin();
    t.end();
    expect(t.active).toBe(1);
  });
});

describe('passive ejection', () => {
  const options = { max_fails: 3, fail_timeout_ms: 1_000 };
  /** `t` and a healthy partner, one group: `t` may be ejected while the partner serves. */
  const paired = (t: Target): Target => (Target.group([t, new Target('http://127.0.0.1:2', 1, options)]), t);

  test('ejected after max_fails consecutive failures; a success resets the count', () => {
    const t = paired(new Target('http://127.0.0.1:1', 1, options));
    expect(t.recordFailure(0)).toBe(false);
    expect(t.recordFailure(0)).toBe(false);
    t.recordSuccess();
    t.recordFailure(0);
    t.recordFailure(0);
    expect(t.available(0)).toBe(true);
    expect(t.recordFailure(100)).toBe(true);
    expect(t.available(100)).toBe(false);
    expect(t.serving).toBe(false);
  });

  test('cooldown, then one half-open probe; its failure ejects again at once', () => {
    const t = paired(new Target('http://127.0.0.1:1', 1, options));
    for (let i = 0; i < 3; i++) t.recordFailure(0);
    expect(t.available(999)).toBe(false);
    expect(t.available(1_000)).toBe(true);
    t.begin(); // the probe
    expect(t.available(1_001)).toBe(false); // only one probe at a time
    expect(t.recordFailure(1_050)).toBe(true);
    t.end();
    expect(t.available(1_500)).toBe(false);
    expect(t.available(2_050)).toBe(true);
  });

  test('a successful probe restores the target', () => {
    const t = paired(new Target('http://127.0.0.1:1', 1, options));
    for (let i = 0; i < 3; i++) t.recordFailure(0);
    t.begin();
    t.recordSuccess();
    t.end();
    expect(t.serving).toBe(true);
    expect(t.recordFailure(2_000)).toBe(false); // the count starts again
  });

  test('a probe that ends without a verdict lets the next one through', () => {
    const t = paired(new Target('http://127.0.0.1:1', 1, options));
    for (let i = 0; i < 3; i++) t.recordFailure(0);
    t.begin();
    t.end();
    expect(t.available(1_000)).toBe(true);
  });

  test('max_fails 0 never ejects', () => {
    const t = paired(new Target('http://127.0.0.1:1', 1, { max_fails: 0, fail_timeout_ms: 1_000 }));
    for (let i = 0; i < 100; i++) expect(t.recordFailure(0)).toBe(false);
    expect(t.available(0)).toBe(true);
  });

  test('a lone target is never ejected by failures (nginx: a single server is never marked down)', () => {
    const lone = new Target('http://127.0.0.1:1', 1, options);
    const fromConfig = Target.fromConfig({ targets: [{ url: 'http://127.0.0.1:1', weight: 1 }], load_balancing: 'round_robin', ...options, keepalive_timeout_ms: 0, tls_verify: true, max_connections: 1024 })[0];
    for (const t of [lone, fromConfig]) {
      for (let i = 0; i < 10; i++) expect(t.recordFailure(i)).toBe(false);
      expect(t.serving).toBe(true);
    }
  });

  test('the last target of a group still serving stays in, whatever the order of failures', () => {
    const [a, b, c] = Target.group([1, 2, 3].map((n) => new Target(`http://127.0.0.1:${n}`, 1, { max_fails: 1, fail_timeout_ms: 1_000 })));
    expect(a.recordFailure(0)).toBe(true);
    c.healthy = false; // out by active checks
    expect(b.recordFailure(0)).toBe(false); // b is the last one serving
    expect(b.serving).toBe(true);
    c.healthy = true;
    expect(b.recordFailure(10)).toBe(true); // c serves again: b may go
    expect([a.serving, b.serving, c.serving]).toEqual([false, false, true]);
  });

  test('a probe that fails while no other target serves ends its ejection instead of renewing it', () => {
    const [a, b] = Target.group([1, 2].map((n) => new Target(`http://127.0.0.1:${n}`, 1, { max_fails: 1, fail_timeout_ms: 1_000 })));
    expect(a.recordFailure(0)).toBe(true);
    b.healthy = false;
    a.begin(); // the probe, after the cooldown
    expect(a.recordFailure(1_000)).toBe(false);
    a.end();
    expect(a.serving).toBe(true);
  });
});

describe('active-check thresholds', () => {
  test('unhealthy after unhealthy_threshold failures in a row, healthy after healthy_threshold passes', () => {
    const thresholds = { healthy_threshold: 2, unhealthy_threshold: 3 };
    const t = new Target('http://127.0.0.1:1');
    expect(t.recordCheck(false, thresholds)).toBe(false);
    expect(t.recordCheck(false, thresholds)).toBe(false);
    expect(t.recordCheck(true, thresholds)).toBe(false); // breaks the streak
    t.recordCheck(false, thresholds);
    t.recordCheck(false, thresholds);
    expect(t.recordCheck(false, thresholds)).toBe(true);
    expect(t.healthy).toBe(false);
    expect(t.available(0)).toBe(false);
    expect(t.recordCheck(true, thresholds)).toBe(false);
    expect(t.recordCheck(true, thresholds)).toBe(true);
    expect(t.healthy).toBe(true);
  });
});

describe('HealthChecker against real servers', () => {
  interface Backend {
    server: http.Server;
    port: number;
    status: number;
    requests: http.IncomingMessage[];
  }

  async function backend(): Promise<Backend> {
    const b = { status: 200, requests: [] } as unknown as Backend;
    b.server = http.createServer((req, res) => {
      b.requests.push(req);
      res.writeHead(b.status).end('ok');
    });
    await new Promise<void>((resolve) => b.server.listen(0, '127.0.0.1', resolve));
    b.port = (b.server.address() as AddressInfo).port;
    return b;
  }

  const config: HealthCheckConfig = { interval_ms: 50, path: '/healthz', timeout_ms: 40, expected_status: 200, healthy_threshold: 2, unhealthy_threshold: 3 };
  const backends: Backend[] = [];
  let checker: HealthChecker | null = null;

  afterEach(async () => {
    checker?.stop();
    checker = null;
    await Promise.all(backends.splice(0).map((b) => new Promise((resolve) => b.server.close(resolve))));
  });

  test('a failing target goes unhealthy after the threshold and comes back; changes are reported', async () => {
    const up = await backend();
    const flaky = await backend();
    backends.push(up, flaky);
    const targets = [new Target(`http://127.0.0.1:${up.port}`), new Target(`http://127.0.0.1:${flaky.port}`)];
    const changes: Array<[number, boolean]> = [];
    checker = new HealthChecker(targets, config, (target, healthy) => changes.push([targets.indexOf(target), healthy]));
    checker.start();
    await waitFor(() => flaky.requests.length >= 2);
    const request = flaky.requests[0];
    expect(request.method).toBe('GET');
    expect(request.url).toBe('/healthz');
    expect(request.headers.host).toBe(`127.0.0.1:${flaky.port}`);
    expect(request.headers.connection).toBe('close');
    expect(request.headers['user-agent']).toBe(HEALTH_CHECK_USER_AGENT);
    expect(targets[1].healthy).toBe(true);

    flaky.status = 500;
    const failingFrom = flaky.requests.length;
    await waitFor(() => !targets[1].healthy);
    expect(flaky.requests.length - failingFrom).toBeGreaterThanOrEqual(config.unhealthy_threshold);

    flaky.status = 200;
    await waitFor(() => targets[1].healthy);
    expect(targets[0].healthy).toBe(true);
    expect(changes).toEqual([
      [1, false],
      [1, true],
    ]);
  });

  test('a target that is shut down goes unhealthy, and healthy again when it is back', async () => {
    const b = await backend();
    const target = new Target(`http://127.0.0.1:${b.port}`);
    checker = new HealthChecker([target], config);
    checker.start();
    await waitFor(() => b.requests.length >= 1);
    await new Promise((resolve) => b.server.close(resolve));
    await waitFor(() => !target.healthy);
    await new Promise<void>((resolve) => b.server.listen(b.port, '127.0.0.1', resolve));
    backends.push(b);
    await waitFor(() => target.healthy);
  });

  test('a target slower than timeout_ms fails its checks', async () => {
    const slow = http.createServer((_req, res) => setTimeout(() => res.end('late'), 500).unref());
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const target = new Target(`http://127.0.0.1:${(slow.address() as AddressInfo).port}`);
    checker = new HealthChecker([target], { ...config, healthy_threshold: 1, unhealthy_threshold: 1 });
    checker.start();
    await waitFor(() => !target.healthy);
    checker.stop();
    slow.closeAllConnections();
    await new Promise((resolve) => slow.close(resolve));
  });

  test('stop() clears the timer and aborts checks in flight; a throwing listener is contained', async () => {
    let seen = 0;
    const hanging = http.createServer(() => seen++); // never answers
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    const target = new Target(`http://127.0.0.1:${(hanging.address() as AddressInfo).port}`);
    checker = new HealthChecker([target], { ...config, timeout_ms: 45, unhealthy_threshold: 1 }, () => {
      throw new Error('listener bug');
    });
    checker.start();
    expect(checker.running).toBe(true);
    await waitFor(() => !target.healthy);
    await waitFor(() => seen >= 2);
    checker.stop();
    expect(checker.running).toBe(false);
    const after = seen;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen).toBe(after);
    hanging.closeAllConnections();
    await new Promise((resolve) => hanging.close(resolve));
  });

  test('h2c targets are checked over HTTP/2 with prior knowledge', async () => {
    const seen: http2.IncomingHttpHeaders[] = [];
    let status = 200;
    const h2c = http2.createServer();
    h2c.on('stream', (stream, headers) => {
      seen.push(headers);
      stream.respond({ ':status': status });
      stream.end();
    });
    await new Promise<void>((resolve) => h2c.listen(0, '127.0.0.1', resolve));
    const port = (h2c.address() as AddressInfo).port;
    const target = new Target(`h2c://127.0.0.1:${port}`);
    checker = new HealthChecker([target], { ...config, healthy_threshold: 1, unhealthy_threshold: 1 });
    checker.start();
    await waitFor(() => seen.length >= 1);
    expect([seen[0][':method'], seen[0][':path'], seen[0][':authority'], seen[0]['user-agent']]).toEqual(['GET', '/healthz', `127.0.0.1:${port}`, HEALTH_CHECK_USER_AGENT]);
    status = 503;
    await waitFor(() => !target.healthy);
    status = 200;
    await waitFor(() => target.healthy);
    checker.stop();
    await new Promise((resolve) => h2c.close(resolve));
  });

  test('interval_ms 0 disables checks', () => {
    checker = new HealthChecker([new Target('http://127.0.0.1:1')], { ...config, interval_ms: 0 });
    checker.start();
    expect(checker.running).toBe(false);
  });
});
