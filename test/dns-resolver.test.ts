import { HostResolver, MAX_TTL_MS, MIN_TTL_MS, LOOKUP_TTL_MS, type DnsRecord } from '../dist/upstream/dns';

/** A fake DNS: answers from `records`, counts queries, fails when `failing`. */
function fakeDns(records: DnsRecord[]) {
  const dns = {
    records,
    queries: 0,
    lookups: 0,
    failing: false,
    now: 1_000_000,
    options: {
      now: () => dns.now,
      resolve: async (): Promise<DnsRecord[]> => {
        dns.queries++;
        if (dns.failing) throw new Error('SERVFAIL');
        return dns.records;
      },
      lookup: async (): Promise<string[]> => {
        dns.lookups++;
        if (dns.failing) throw new Error('ENOTFOUND');
        return ['192.0.2.50'];
      },
    },
  };
  return dns;
}

/** Lets a background refresh finish. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

test('IP literals pass through without any lookup', async () => {
  const dns = fakeDns([]);
  for (const [host, address] of [
    ['127.0.0.1', '127.0.0.1'],
    ['::1', '::1'],
    ['[::1]', '::1'],
  ]) {
    const resolver = new HostResolver(host, dns.options);
    await resolver.ready();
    dns.now += 10 * MAX_TTL_MS;
    expect(resolver.address()).toBe(address);
  }
  expect(dns.queries + dns.lookups).toBe(0);
});

test('localhost resolves through the system resolver (/etc/hosts), IPv4 first, never asking DNS', async () => {
  let queried = false;
  const resolver = new HostResolver('localhost', {
    resolve: async () => {
      queried = true;
      return [];
    },
  });
  await resolver.ready();
  expect(queried).toBe(false);
  expect(['127.0.0.1', '::1']).toContain(resolver.address());
});

test('addresses rotate; IPv6 is used only when there is no IPv4', async () => {
  const dns = fakeDns([
    { address: '192.0.2.1', ttl: 10 },
    { address: '2001:db8::1', ttl: 10 },
    { address: '192.0.2.2', ttl: 10 },
  ]);
  const resolver = new HostResolver('api.example', dns.options);
  await resolver.ready();
  expect(Array.from({ length: 4 }, () => resolver.address())).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.1', '192.0.2.2']);
  const v6 = new HostResolver('v6.example', fakeDns([{ address: '2001:db8::1', ttl: 10 }]).options);
  await v6.ready();
  expect(v6.address()).toBe('2001:db8::1');
});

test('the answer is kept for its TTL, clamped to [1 s, 30 s]', async () => {
  for (const [ttlSeconds, keptMs] of [
    [0, MIN_TTL_MS],
    [5, 5_000],
    [86_400, MAX_TTL_MS],
  ]) {
    const dns = fakeDns([{ address: '192.0.2.1', ttl: ttlSeconds }]);
    const resolver = new HostResolver('api.example', dns.options);
    await resolver.ready();
    expect(dns.queries).toBe(1);
    dns.now += keptMs - 1;
    resolver.address();
    await settle();
    expect(dns.queries).toBe(1);
    dns.now += 1;
    resolver.address();
    await settle();
    expect(dns.queries).toBe(2);
  }
});

test('a refresh replaces the answer; the old one is served meanwhile', async () => {
  const dns = fakeDns([{ address: '192.0.2.1', ttl: 5 }]);
  const resolver = new HostResolver('api.example', dns.options);
  await resolver.ready();
  dns.records = [{ address: '192.0.2.9', ttl: 5 }];
  dns.now += 5_000;
  expect(resolver.address()).toBe('192.0.2.1');
  await settle();
  expect(resolver.address()).toBe('192.0.2.9');
});

test('a failed refresh keeps the last good answer and is retried after 1 s', async () => {
  const dns = fakeDns([{ address: '192.0.2.1', ttl: 5 }]);
  const resolver = new HostResolver('api.example', dns.options);
  await resolver.ready();
  dns.failing = true;
  dns.now += 5_000;
  resolver.address();
  await settle();
  expect(resolver.address()).toBe('192.0.2.1');
  const attempts = dns.queries + dns.lookups;
  dns.now += MIN_TTL_MS - 1;
  resolver.address();
  await settle();
  expect(dns.queries + dns.lookups).toBe(attempts);
  dns.failing = false;
  dns.now += 1;
  resolver.address();
  await settle();
  expect(dns.queries + dns.lookups).toBeGreaterThan(attempts);
  expect(resolver.address()).toBe('192.0.2.1');
});

test('no DNS answer falls back to lookup, kept for 30 s', async () => {
  const dns = fakeDns([]);
  const resolver = new HostResolver('intranet-host', dns.options);
  await resolver.ready();
  expect(resolver.address()).toBe('192.0.2.50');
  expect(dns.lookups).toBe(1);
  dns.now += LOOKUP_TTL_MS - 1;
  resolver.address();
  await settle();
  expect(dns.lookups).toBe(1);
});

test('a name that never resolves: ready() rejects, address() is null', async () => {
  const dns = fakeDns([]);
  dns.failing = true;
  const resolver = new HostResolver('nowhere.example', dns.options);
  await expect(resolver.ready()).rejects.toThrow('ENOTFOUND');
  expect(resolver.address()).toBeNull();
});
