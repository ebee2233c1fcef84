import type { LoadBalancing, UpstreamConfig } from '../src/config/types';
import { createBalancer, type BalancerBase, type BalancerInput } from '../dist/balancer/create-balancer';
import { cookieValueStart } from '../dist/balancer/consistent-hash';
import { Target } from '../dist/upstream/target';

const ALGORITHMS: LoadBalancing[] = ['round_robin', 'least_connections', 'random', 'ip_hash', 'consistent_hash'];

function targets(weights: number[]): Target[] {
  return Target.group(weights.map((weight, i) => new Target(`http://10.0.0.${i + 1}:8080`, weight, { max_fails: 1, fail_timeout_ms: 60_000 })));
}

function balancer(algorithm: LoadBalancing, group: Target[], hashKey?: string): BalancerBase {
  const config: UpstreamConfig = {
    targets: group.map((t) => ({ url: t.url, weight: t.weight })),
    load_balancing: algorithm,
    hash_key: algorithm === 'consistent_hash' ? (hashKey ?? 'header:x-user') : undefined,
    max_fails: 1,
    fail_timeout_ms: 60_000,
    keepalive_timeout_ms: 4_000,
    tls_verify: true,
    max_connections: 1024,
  };
  return createBalancer(config, group);
}

function request(clientIp = '127.0.0.1', headers: Record<string, string> = {}): BalancerInput {
  return { clientIp, getHeader: (name) => headers[name] };
}

/** The varied requests each algorithm is driven with: different clients and keys. */
function nthRequest(i: number): BalancerInput {
  return request(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, { 'x-user': `user-${i}` });
}

function counts(b: BalancerBase, group: Target[], picks: number, input: (i: number) => BalancerInput = nthRequest): number[] {
  const tally = group.map(() => 0);
  for (let i = 0; i < picks; i++) tally[group.indexOf(b.pick(input(i))!)]++;
  return tally;
}

/** The indices of `n` successive picks for the same request. */
function sequence(b: BalancerBase, group: Target[], n: number, input = request()): number[] {
  return Array.from({ length: n }, () => group.indexOf(b.pick(input)!));
}

/** Passive ejection (max_fails 1): only while another target of the group serves. */
function eject(target: Target): void {
  expect(target.recordFailure(Date.now())).toBe(true);
}

/** Out by the active checks' verdict. */
function down(target: Target): void {
  target.healthy = false;
}

describe('round_robin', () => {
  test('weights 5/1/1 give nginx smooth sequence a a b a c a a, repeated', () => {
    const group = targets([5, 1, 1]);
    const b = balancer('round_robin', group);
    const names = sequence(b, group, 14).map((i) => 'abc'[i]).join('');
    expect(names).toBe('aabacaa'.repeat(2));
  });

  test('equal weights alternate', () => {
    const group = targets([1, 1, 1]);
    expect(sequence(balancer('round_robin', group), group, 6)).toEqual([0, 1, 2, 0, 1, 2]);
  });

  test('an unavailable target is skipped and the rest keep their weights', () => {
    const group = targets([5, 2, 1]);
    eject(group[0]);
    expect(counts(balancer('round_robin', group), group, 300)).toEqual([0, 200, 100]);
  });
});

describe('least_connections', () => {
  test('prefers idle targets', () => {
    const group = targets([1, 1, 1]);
    const b = balancer('least_connections', group);
    group[0].begin();
    group[0].begin();
    group[1].begin();
    expect(b.pick(request())).toBe(group[2]);
    group[2].begin();
    group[2].begin();
    expect(b.pick(request())).toBe(group[1]);
    group[0].end();
    group[0].end();
    expect(b.pick(request())).toBe(group[0]);
  });

  test('load is compared per unit of weight', () => {
    const group = targets([3, 1]);
    const b = balancer('least_connections', group);
    for (let i = 0; i < 2; i++) group[0].begin();
    group[1].begin();
    expect(b.pick(request())).toBe(group[0]); // 2/3 < 1/1
  });

  test('ties are broken round robin', () => {
    const group = targets([1, 1, 1]);
    expect(sequence(balancer('least_connections', group), group, 6)).toEqual([0, 1, 2, 0, 1, 2]);
  });

  test('requests that begin and end spread evenly; weights are honoured', () => {
    const group = targets([2, 1, 1]);
    const b = balancer('least_connections', group);
    const inFlight: Target[] = [];
    const tally = [0, 0, 0];
    for (let i = 0; i < 4000; i++) {
      const t = b.pick(request())!;
      t.begin();
      inFlight.push(t);
      tally[group.indexOf(t)]++;
      if (inFlight.length > 8) inFlight.shift()!.end();
    }
    expect(tally[0]).toBeGreaterThan(1700);
    expect(tally[1]).toBeGreaterThan(900);
    expect(tally[2]).toBeGreaterThan(900);
  });
});

describe('random (power of two choices)', () => {
  test('roughly balanced when idle, and weighted', () => {
    const group = targets([2, 1, 1]);
    const tally = counts(balancer('random', group), group, 40_000);
    expect(tally[0] / 40_000).toBeGreaterThan(0.4);
    expect(tally[1] / 40_000).toBeGreaterThan(0.2);
    expect(tally[2] / 40_000).toBeGreaterThan(0.2);
  });

  test('favours less loaded targets', () => {
    const group = targets([1, 1, 1]);
    for (let i = 0; i < 10; i++) group[0].begin();
    const tally = counts(balancer('random', group), group, 30_000);
    expect(tally[0]).toBe(0); // the loaded target always loses a comparison (a repeated draw is replaced by another target)
    expect(Math.abs(tally[1] - tally[2])).toBeLessThan(3_000);
  });
});

describe('ip_hash', () => {
  test('stable per client, spread across clients', () => {
    const group = targets([1, 1, 1]);
    const b = balancer('ip_hash', group);
    for (const ip of ['192.0.2.1', '198.51.100.7', '2001:db8::1']) {
      const first = b.pick(request(ip));
      for (let i = 0; i < 20; i++) expect(b.pick(request(ip))).toBe(first);
    }
    const tally = counts(b, group, 3000);
    for (const n of tally) expect(n).toBeGreaterThan(700);
  });

  test('the full address counts (clients of one /24 spread); ::ffff:a.b.c.d is a.b.c.d', () => {
    const group = targets([1, 1, 1]);
    const b = balancer('ip_hash', group);
    const chosen = new Set(Array.from({ length: 50 }, (_, i) => b.pick(request(`203.0.113.${i}`))));
    expect(chosen.size).toBe(3);
    expect(b.pick(request('::ffff:203.0.113.9'))).toBe(b.pick(request('203.0.113.9')));
  });

  test('an unavailable target sends its clients elsewhere, and only them', () => {
    const group = targets([1, 1, 1]);
    const b = balancer('ip_hash', group);
    const before = Array.from({ length: 300 }, (_, i) => b.pick(nthRequest(i)));
    eject(group[1]);
    for (let i = 0; i < 300; i++) {
      const now = b.pick(nthRequest(i));
      expect(now).not.toBe(group[1]);
      if (before[i] !== group[1]) expect(now).toBe(before[i]);
    }
  });
});

describe('consistent_hash', () => {
  const keys = Array.from({ length: 3000 }, (_, i) => `user-${i}`);
  const byHeader = (key: string) => request('127.0.0.1', { 'x-user': key });

  test('stable per key and spread across targets', () => {
    const group = targets([1, 1, 1, 1]);
    const b = balancer('consistent_hash', group);
    const tally = [0, 0, 0, 0];
    for (const key of keys) {
      const t = b.pick(byHeader(key))!;
      expect(b.pick(byHeader(key))).toBe(t);
      tally[group.indexOf(t)]++;
    }
    for (const n of tally) expect(n).toBeGreaterThan(500);
  });

  test('removing one of n targets moves only about 1/n of the keys', () => {
    const group = targets([1, 1, 1, 1, 1]);
    const full = balancer('consistent_hash', group);
    const reduced = balancer('consistent_hash', group.slice(0, 4));
    let moved = 0;
    for (const key of keys) {
      const before = full.pick(byHeader(key));
      const after = reduced.pick(byHeader(key));
      if (before !== group[4]) expect(after).toBe(before);
      if (before !== after) moved++;
    }
    expect(moved / keys.length).toBeGreaterThan(0.1);
    expect(moved / keys.length).toBeLessThan(0.3);
  });

  test('an unavailable target moves only its own keys', () => {
    const group = targets([1, 1, 1]);
    const b = balancer('consistent_hash', group);
    const before = keys.map((key) => b.pick(byHeader(key)));
    eject(group[0]);
    keys.forEach((key, i) => {
      const now = b.pick(byHeader(key));
      expect(now).not.toBe(group[0]);
      if (before[i] !== group[0]) expect(now).toBe(before[i]);
    });
  });

  test('cookie keys: the named cookie decides, other cookies do not', () => {
    const group = targets([1, 1, 1]);
    const b = balancer('consistent_hash', group, 'cookie:sid');
    const viaHeader = balancer('consistent_hash', group, 'header:x-sid');
    for (const key of keys.slice(0, 200)) {
      const expected = viaHeader.pick(request('127.0.0.1', { 'x-sid': key }));
      expect(b.pick(request('127.0.0.1', { cookie: `sid=${key}` }))).toBe(expected);
      expect(b.pick(request('127.0.0.1', { cookie: `a=1; xsid=zz; sid=${key}; b=2` }))).toBe(expected);
    }
  });

  test('cookie parsing', () => {
    expect(cookieValueStart('sid=abc', 'sid')).toBe(4);
    expect(cookieValueStart('a=1; sid=abc', 'sid')).toBe(9);
    expect(cookieValueStart('a=1;sid=abc', 'sid')).toBe(8);
    expect(cookieValueStart('xsid=1; sidx=2', 'sid')).toBe(-1);
    expect(cookieValueStart('a=sid=3', 'sid')).toBe(-1);
    expect(cookieValueStart('', 'sid')).toBe(-1);
  });

  test('a missing or empty key falls back to round robin', () => {
    const group = targets([1, 1, 1]);
    for (const [hashKey, headers] of [
      ['header:x-user', {}],
      ['header:x-user', { 'x-user': '' }],
      ['cookie:sid', {}],
      ['cookie:sid', { cookie: 'other=1' }],
      ['cookie:sid', { cookie: 'sid=' }],
    ] as Array<[string, Record<string, string>]>) {
      expect(sequence(balancer('consistent_hash', group, hashKey), group, 6, request('127.0.0.1', headers))).toEqual([0, 1, 2, 0, 1, 2]);
    }
  });

  test('the header name of hash_key is case-insensitive', () => {
    const group = targets([1, 1, 1]);
    const b = balancer('consistent_hash', group, 'header:X-User');
    const lower = balancer('consistent_hash', group, 'header:x-user');
    for (const key of keys.slice(0, 50)) expect(b.pick(byHeader(key))).toBe(lower.pick(byHeader(key)));
  });
});

describe.each(ALGORITHMS)('%s: availability and retries', (algorithm) => {
  test('unavailable targets are never picked', () => {
    const group = targets([1, 3, 1, 2]);
    eject(group[1]);
    group[3].recordCheck(false, { healthy_threshold: 1, unhealthy_threshold: 1 });
    const tally = counts(balancer(algorithm, group), group, 2000);
    expect(tally[1]).toBe(0);
    expect(tally[3]).toBe(0);
    expect(tally[0] + tally[2]).toBe(2000);
  });

  test('all unavailable gives null', () => {
    const group = targets([1, 2, 1]);
    eject(group[0]);
    down(group[1]);
    down(group[2]);
    const b = balancer(algorithm, group);
    for (let i = 0; i < 20; i++) expect(b.pick(nthRequest(i))).toBeNull();
  });

  test('passive failures alone never leave the group without a target to pick', () => {
    const group = targets([1, 2, 1]);
    const b = balancer(algorithm, group);
    for (let round = 0; round < 3; round++) {
      for (const target of group) target.recordFailure(Date.now());
      for (let i = 0; i < 20; i++) expect(b.pick(nthRequest(i))).not.toBeNull();
    }
    expect(group.filter((t) => t.serving)).toHaveLength(1);
  });

  test('exclude is avoided while another target is available, and used when it is the only one', () => {
    const group = targets([1, 1, 1]);
    const b = balancer(algorithm, group);
    for (let i = 0; i < 300; i++) {
      const first = b.pick(nthRequest(i))!;
      const retry = b.pick(nthRequest(i), first);
      expect(retry).not.toBeNull();
      expect(retry).not.toBe(first);
    }
    eject(group[1]);
    eject(group[2]);
    expect(b.pick(nthRequest(1), group[0])).toBe(group[0]);
    down(group[0]);
    expect(b.pick(nthRequest(1), group[0])).toBeNull();
  });

  test('an ejected target comes back after its cooldown (the clock is read only when needed)', () => {
    let now = 1_000;
    const group = targets([1, 1]);
    const config = { targets: [], load_balancing: algorithm, hash_key: 'header:x-user', max_fails: 1, fail_timeout_ms: 60_000, keepalive_timeout_ms: 0, tls_verify: true, max_connections: 1024 };
    const b = createBalancer(config, group, { now: () => now });
    expect(group[0].recordFailure(now)).toBe(true);
    down(group[1]);
    expect(b.pick(nthRequest(0))).toBeNull();
    now += 60_000;
    expect(b.pick(nthRequest(0))).toBe(group[0]);
  });
});
