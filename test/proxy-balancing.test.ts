/**
 * Load balancing over real upstream servers (SPEC §3 upstream object form):
 * round_robin with weights (smooth WRR: exact shares on one connection),
 * least_connections, random, ip_hash, consistent_hash by header and cookie,
 * and the array-of-URLs form.
 *
 * Each worker thread keeps its own balancer state, so exact counts are
 * asserted on one keep-alive connection (one worker); spreads over many
 * connections get a tolerance of one round per thread.
 */
import type { Server } from '../dist/index';
import { startProxy } from './helpers/server';
import { RawClient, type EchoUpstream, type RecordingUpstream, closeAll, requestHead, startEchoUpstream, startRecordingUpstream } from './helpers/upstreams';

let a: EchoUpstream;
let b: EchoUpstream;
let c: EchoUpstream;
let proxy: Server;
let port: number;

/**
 * A target that holds every request until the test releases them: it stays
 * busy exactly as long as the test says, not for a delay a loaded machine
 * could outlast.
 */
let busy: RecordingUpstream;
let releaseBusy: () => void = () => undefined;
const busyReleased = new Promise<void>((resolve) => (releaseBusy = resolve));
let onBusyRequest: Array<() => void> = [];
/** Resolves when the busy target receives its next request. */
const nextBusyRequest = (): Promise<void> => new Promise((resolve) => onBusyRequest.push(resolve));

beforeAll(async () => {
  [a, b, c] = await Promise.all([startEchoUpstream('a'), startEchoUpstream('b'), startEchoUpstream('c')]);
  busy = await startRecordingUpstream(async (_req, res) => {
    const waiting = onBusyRequest;
    onBusyRequest = [];
    for (const resolve of waiting) resolve();
    await busyReleased;
    res.send(200, [['content-type', 'text/plain']], 'name=busy');
  });
  proxy = await startProxy(
    {
      drain_timeout_ms: 1000,
      routes: [
        { path: '/wrr', upstream: { targets: [{ url: a.url, weight: 3 }, { url: b.url, weight: 1 }], load_balancing: 'round_robin' } },
        { path: '/array', upstream: [a.url, b.url, c.url] },
        { path: '/least', upstream: { targets: [{ url: busy.url }, { url: b.url }], load_balancing: 'least_connections' } },
        { path: '/random', upstream: { targets: [{ url: a.url }, { url: b.url }, { url: c.url }], load_balancing: 'random' } },
        { path: '/iphash', upstream: { targets: [{ url: a.url }, { url: b.url }, { url: c.url }], load_balancing: 'ip_hash' } },
        { path: '/chash-header', upstream: { targets: [{ url: a.url }, { url: b.url }, { url: c.url }], load_balancing: 'consistent_hash', hash_key: 'header:X-User' } },
        { path: '/chash-cookie', upstream: { targets: [{ url: a.url }, { url: b.url }, { url: c.url }], load_balancing: 'consistent_hash', hash_key: 'cookie:session' } },
      ],
    },
    false,
  );
  port = proxy.address().port;
});

afterAll(async () => {
  releaseBusy();
  await closeAll();
  await proxy?.stop();
});

const nameOf = (body: Buffer): string => /name=(\w+)/.exec(body.toString())?.[1] ?? `?${body.toString()}`;

/** `n` requests in sequence on one keep-alive connection; the upstream name of each. */
async function sequential(path: string, n: number, headers: (i: number) => Array<[string, string]> = () => []): Promise<string[]> {
  const client = await RawClient.open(port);
  const names: string[] = [];
  try {
    for (let i = 0; i < n; i++) {
      client.write(requestHead('GET', `${path}?id=${i}`, headers(i)));
      const res = await client.response();
      expect(res.status).toBe(200);
      names.push(nameOf(res.body));
    }
  } finally {
    client.destroy();
  }
  return names;
}

/** `n` requests spread over `connections` parallel keep-alive connections. */
async function parallel(path: string, n: number, connections: number, headers: (i: number) => Array<[string, string]> = () => []): Promise<string[]> {
  const names: string[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = await RawClient.open(port);
      try {
        while (next < n) {
          const i = next++;
          client.write(requestHead('GET', `${path}?id=${i}`, headers(i)));
          const res = await client.response();
          expect(res.status).toBe(200);
          names[i] = nameOf(res.body);
        }
      } finally {
        client.destroy();
      }
    }),
  );
  return names;
}

const count = (names: string[]): Record<string, number> => names.reduce<Record<string, number>>((acc, n) => ((acc[n] = (acc[n] ?? 0) + 1), acc), {});

test('round_robin with weights 3/1: exactly 300/100 of 400 on one connection, smoothly interleaved', async () => {
  const names = await sequential('/wrr', 400);
  expect(count(names)).toEqual({ a: 300, b: 100 });
  // Smooth WRR never sends more than 3 in a row to a, and b never twice in a row.
  expect(names.join('')).not.toMatch(/aaaa|bb/);
});

test('round_robin with weights 3/1 over many connections (both threads): 75/25 within a round per thread', async () => {
  const counts = count(await parallel('/wrr', 400, 8));
  expect(counts.a + counts.b).toBe(400);
  expect(Math.abs(counts.a - 300)).toBeLessThanOrEqual(8);
});

test('an array of URLs round-robins over equal targets', async () => {
  const names = await sequential('/array', 300);
  expect(count(names)).toEqual({ a: 100, b: 100, c: 100 });
  for (let i = 0; i + 3 <= names.length; i += 3) expect(new Set(names.slice(i, i + 3)).size).toBe(3);
});

test('least_connections prefers the idle target while the other is busy', async () => {
  // One request at a time, each on a new connection: the next is sent once the last was answered (by b) or is
  // held (by busy), so b never has one in flight at a pick, and the outcome does not depend on the machine's speed.
  const held: Array<Promise<{ body: Buffer }>> = [];
  const clients: RawClient[] = [];
  let answeredByB = 0;
  try {
    for (let i = 0; i < 40; i++) {
      const client = await RawClient.open(port);
      clients.push(client);
      const busyGotIt = nextBusyRequest();
      client.write(requestHead('GET', `/least?id=${i}`, []));
      const response = client.response('GET', 30_000);
      const outcome = await Promise.race([response.then((res) => nameOf(res.body)), busyGotIt.then(() => 'held')]);
      if (outcome === 'held') held.push(response);
      else {
        expect(outcome).toBe('b');
        answeredByB++;
      }
    }
    releaseBusy();
    for (const response of held) expect(nameOf((await response).body)).toBe('busy');
  } finally {
    for (const client of clients) client.destroy();
  }
  // Each worker thread's first pick is a tie at 0 in flight, which goes to busy (picked longest ago); from then on
  // busy has one in flight and b none. So busy holds one request per worker that got any: 1 or 2 of the 40.
  expect(held.length).toBeGreaterThanOrEqual(1);
  expect(held.length).toBeLessThanOrEqual(2);
  expect(busy.requests.length).toBe(held.length);
  expect(answeredByB).toBe(40 - held.length);
}, 60_000);

test('random spreads over every target', async () => {
  const counts = count(await parallel('/random', 600, 4));
  expect(Object.keys(counts).sort()).toEqual(['a', 'b', 'c']);
  for (const n of Object.values(counts)) expect(n).toBeGreaterThan(100); // expected 200 each
});

test('ip_hash: every request from 127.0.0.1 goes to one target, over any connection and thread', async () => {
  const names = [...(await parallel('/iphash', 60, 6)), ...(await sequential('/iphash', 20))];
  expect(new Set(names).size).toBe(1);
});

test('consistent_hash by header sticks per key and spreads keys', async () => {
  const keys = Array.from({ length: 30 }, (_, i) => `user-${i}`);
  const names = await parallel('/chash-header', 150, 6, (i) => [['X-User', keys[i % keys.length]]]);
  const byKey = new Map<string, Set<string>>();
  names.forEach((n, i) => {
    const key = keys[i % keys.length];
    byKey.set(key, (byKey.get(key) ?? new Set()).add(n));
  });
  for (const [key, targets] of byKey) expect([key, targets.size]).toEqual([key, 1]);
  expect(new Set(names).size).toBeGreaterThanOrEqual(2);
  // And the same key on a fresh connection later still lands on the same target.
  const again = await sequential('/chash-header', 5, () => [['X-User', keys[3]]]);
  expect(new Set(again)).toEqual(byKey.get(keys[3]));
});

test('consistent_hash by cookie sticks per key and spreads keys', async () => {
  const keys = Array.from({ length: 30 }, (_, i) => `s${i * 7919}`);
  const names = await parallel('/chash-cookie', 150, 6, (i) => [['Cookie', `theme=dark; session=${keys[i % keys.length]}; lang=en`]]);
  const byKey = new Map<string, Set<string>>();
  names.forEach((n, i) => {
    const key = keys[i % keys.length];
    byKey.set(key, (byKey.get(key) ?? new Set()).add(n));
  });
  for (const [key, targets] of byKey) expect([key, targets.size]).toEqual([key, 1]);
  expect(new Set(names).size).toBeGreaterThanOrEqual(2);
});

describe('ip_hash and trusted_proxies (docs/config-reference.md: "ip_hash keys on the client IP (see trusted_proxies)")', () => {
  const clients = Array.from({ length: 30 }, (_, i) => `198.51.100.${i + 1}`);

  test('an X-Forwarded-For from an untrusted peer is ignored: every request still goes to one target', async () => {
    const names = await sequential('/iphash', clients.length, (i) => [['X-Forwarded-For', clients[i]]]);
    expect(new Set(names).size).toBe(1);
  });

  test('from a trusted proxy, the X-Forwarded-For client picks the target: each client sticks, clients spread', async () => {
    const trusted = await startProxy(
      {
        drain_timeout_ms: 1000,
        trusted_proxies: ['127.0.0.0/8'],
        routes: [{ path: '/iphash', upstream: { targets: [{ url: a.url }, { url: b.url }, { url: c.url }], load_balancing: 'ip_hash' } }],
      },
      false,
    );
    try {
      const client = await RawClient.open(trusted.address().port);
      const byClient = new Map<string, Set<string>>();
      for (let round = 0; round < 3; round++) {
        for (const ip of clients) {
          client.write(requestHead('GET', '/iphash', [['X-Forwarded-For', ip]]));
          const res = await client.response();
          byClient.set(ip, (byClient.get(ip) ?? new Set()).add(nameOf(res.body)));
        }
      }
      client.destroy();
      for (const [ip, targets] of byClient) expect([ip, targets.size]).toEqual([ip, 1]);
      expect(new Set([...byClient.values()].map((s) => [...s][0])).size).toBeGreaterThanOrEqual(2);
    } finally {
      await trusted.stop();
    }
  });
});
