/**
 * A target host name's addresses, cached for the hot path.
 *
 * - IP literals pass through: no lookup, never expire.
 * - Other names: A and AAAA records with their TTLs (dns.promises resolve4/
 *   resolve6); when DNS has no answer, or for `localhost` and `*.localhost`
 *   (RFC 6761, never asked of DNS), the system resolver (dns.lookup:
 *   /etc/hosts, search domains) with a TTL of LOOKUP_TTL_MS.
 * - An answer is kept for its TTL clamped to [MIN_TTL_MS, MAX_TTL_MS]: a TTL
 *   of 0 does not mean a query per connection, a day-long TTL does not hide
 *   a moved service for more than 30 s.
 * - IPv4 is preferred: when the answer has IPv4 addresses only those are
 *   used, IPv6 only when there is no IPv4 (containers often have AAAA records
 *   but no IPv6 route, and `localhost` is both ::1 and 127.0.0.1 while servers
 *   often listen on one).
 * - address() rotates over the addresses, synchronously; when the answer has
 *   expired it starts a refresh in the background and meanwhile returns the
 *   old answer. A failed refresh keeps the last good answer and is retried
 *   after MIN_TTL_MS. No timers: nothing to stop, nothing keeps a process alive.
 */
import dns from 'node:dns';
import net from 'node:net';

export const MIN_TTL_MS = 1_000;
export const MAX_TTL_MS = 30_000;
export const LOOKUP_TTL_MS = 30_000;

export interface DnsRecord {
  address: string;
  /** Seconds. */
  ttl: number;
}

export interface HostResolverOptions {
  /** Milliseconds. */
  now?: () => number;
  /** DNS answers with TTLs; by default A and AAAA records. An empty list or a rejection means "ask lookup". */
  resolve?: (host: string) => Promise<DnsRecord[]>;
  /** The system resolver; by default dns.lookup with all addresses. */
  lookup?: (host: string) => Promise<string[]>;
}

interface Answer {
  addresses: string[];
  ttlMs: number;
}

let sharedResolver: dns.promises.Resolver | undefined;

async function resolveRecords(host: string): Promise<DnsRecord[]> {
  const resolver = (sharedResolver ??= new dns.promises.Resolver({ timeout: 2_000, tries: 2 }));
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(host, { ttl: true }), resolver.resolve6(host, { ttl: true })]);
  return [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
}

async function lookupAddresses(host: string): Promise<string[]> {
  const found = await dns.promises.lookup(host, { all: true });
  return found.map((entry) => entry.address);
}

/** The IPv4 addresses if there are any, else all of them. */
function preferIpv4(addresses: string[]): string[] {
  const v4 = addresses.filter((address) => net.isIPv4(address));
  return v4.length > 0 ? v4 : addresses;
}

function isLocalhost(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

export class HostResolver {
  readonly host: string;
  private addresses: string[] = [];
  private cursor = 0;
  private expiresAt = 0;
  private refreshing: Promise<void> | null = null;
  private lastError: unknown = null;
  private readonly now: () => number;
  private readonly resolve: (host: string) => Promise<DnsRecord[]>;
  private readonly lookup: (host: string) => Promise<string[]>;

  constructor(host: string, options: HostResolverOptions = {}) {
    this.host = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host.toLowerCase();
    this.now = options.now ?? Date.now;
    this.resolve = options.resolve ?? resolveRecords;
    this.lookup = options.lookup ?? lookupAddresses;
    if (net.isIP(this.host) !== 0) {
      this.addresses = [this.host];
      this.expiresAt = Infinity;
    }
  }

  /** Resolves once the first answer is in; rejects when the name cannot be resolved at all. */
  async ready(): Promise<void> {
    if (this.addresses.length > 0) return;
    await (this.refreshing ?? this.refresh());
    if (this.addresses.length === 0) throw this.lastError;
  }

  /** The next address to connect to, or null when the name has never resolved. */
  address(): string | null {
    if (this.refreshing === null && this.now() >= this.expiresAt) void this.refresh();
    const list = this.addresses;
    if (list.length === 0) return null;
    if (this.cursor >= list.length) this.cursor = 0;
    return list[this.cursor++];
  }

  /** The current answer. */
  get all(): readonly string[] {
    return this.addresses;
  }

  private refresh(): Promise<void> {
    this.refreshing = this.query().then(
      (answer) => {
        this.addresses = answer.addresses;
        this.expiresAt = this.now() + Math.min(MAX_TTL_MS, Math.max(MIN_TTL_MS, answer.ttlMs));
        this.lastError = null;
      },
      (error: unknown) => {
        this.lastError = error;
        this.expiresAt = this.now() + MIN_TTL_MS;
      },
    );
    void this.refreshing.then(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async query(): Promise<Answer> {
    if (!isLocalhost(this.host)) {
      const records = await this.resolve(this.host).catch(() => []);
      if (records.length > 0) {
        const addresses = preferIpv4(records.map((record) => record.address));
        const ttl = Math.min(...records.filter((record) => addresses.includes(record.address)).map((record) => record.ttl));
        return { addresses, ttlMs: ttl * 1000 };
      }
    }
    const addresses = preferIpv4(await this.lookup(this.host));
    if (addresses.length === 0) throw new Error(`no address for ${this.host}`);
    return { addresses, ttlMs: LOOKUP_TTL_MS };
  }
}
