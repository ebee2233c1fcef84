/**
 * Host buckets: exact names in a Map, `*.example.com` suffixes in a Map keyed
 * by ".example.com", and one bucket for routes without `host`.
 */

/** The name routes are keyed by: port dropped, IPv6 brackets removed, no trailing dot, lower-case. */
export function normaliseHost(host: string): string {
  let name = host;
  if (name.startsWith('[')) {
    const close = name.indexOf(']');
    name = name.slice(1, close === -1 ? undefined : close);
  } else {
    const colon = name.indexOf(':');
    if (colon !== -1 && colon === name.lastIndexOf(':')) name = name.slice(0, colon);
  }
  if (name.endsWith('.')) name = name.slice(0, -1);
  return name.toLowerCase();
}

export class HostTable<T> {
  private readonly exact = new Map<string, T>();
  private readonly suffixes = new Map<string, T>();
  private anyHost: T | null = null;

  constructor(private readonly createBucket: () => T) {}

  /** The bucket for a route's `host`: absent or "*" = any host; `*.x.y` = every subdomain of x.y. */
  bucketFor(pattern: string | undefined): T {
    if (pattern === undefined || pattern === '*') return (this.anyHost ??= this.createBucket());
    const name = normaliseHost(pattern);
    const map = name.startsWith('*.') ? this.suffixes : this.exact;
    const key = name.startsWith('*.') ? name.slice(1) : name;
    let bucket = map.get(key);
    if (bucket === undefined) map.set(key, (bucket = this.createBucket()));
    return bucket;
  }

  /**
   * Asks `search` each bucket that applies to `host`, most specific first
   * (exact, then the longest matching wildcard suffix, then any host), and
   * returns the first non-null answer.
   */
  find<R>(host: string | null, search: (bucket: T) => R | null): R | null {
    if (host !== null && (this.exact.size > 0 || this.suffixes.size > 0)) {
      const name = normaliseHost(host);
      const exact = this.exact.get(name);
      const found = exact === undefined ? null : search(exact);
      if (found !== null) return found;
      for (let dot = name.indexOf('.', 1); dot !== -1 && this.suffixes.size > 0; dot = name.indexOf('.', dot + 1)) {
        const bucket = this.suffixes.get(name.slice(dot));
        const inSuffix = bucket === undefined ? null : search(bucket);
        if (inSuffix !== null) return inSuffix;
      }
    }
    return this.anyHost === null ? null : search(this.anyHost);
  }
}
