/**
 * consistent_hash: a key from the request (`header:NAME` or `cookie:NAME`)
 * is hashed onto a ring of points, and the first point at or after it names
 * the target. Each target owns 160 points per unit of reduced weight, placed
 * by hashing its identity key, so removing one target moves only the keys
 * that were on its points (about 1/n of them) and adding one takes only its
 * share. The ring is capped at RING_LIMIT points (weights are scaled down
 * to fit). A pick is a binary search, O(log points); an unavailable target's
 * points are walked past to the next available target on the ring. A request
 * without the key goes round robin.
 */
import { BalancerBase, reducedWeights, type BalancerInput, type BalancerOptions } from './balancer-base';
import { hashString } from './hash';
import { RoundRobinBalancer } from './round-robin';
import type { Target } from '../upstream/target';

export const POINTS_PER_WEIGHT = 160;
export const RING_LIMIT = 65_536;

/**
 * Where the value of cookie `name` starts in a Cookie header, or -1.
 * It ends at the next ";" (or the end of the header).
 */
export function cookieValueStart(header: string, name: string): number {
  for (let at = 0; at < header.length; ) {
    while (header.charCodeAt(at) === 0x20 || header.charCodeAt(at) === 0x3b) at++;
    if (header.startsWith(name, at) && header.charCodeAt(at + name.length) === 0x3d) return at + name.length + 1;
    at = header.indexOf(';', at);
    if (at === -1) return -1;
  }
  return -1;
}

export class ConsistentHashBalancer extends BalancerBase {
  /** Sorted point hashes, and the target index owning each. */
  private readonly points: Uint32Array;
  private readonly owners: Int32Array;
  private readonly fromCookie: boolean;
  private readonly keyName: string;
  private readonly fallback: RoundRobinBalancer;

  constructor(targets: readonly Target[], hashKey: string, options?: BalancerOptions) {
    super(targets, options);
    const colon = hashKey.indexOf(':');
    const source = hashKey.slice(0, colon);
    if (colon === -1 || (source !== 'header' && source !== 'cookie')) throw new TypeError(`hash_key must be "header:NAME" or "cookie:NAME", got "${hashKey}"`);
    this.fromCookie = source === 'cookie';
    this.keyName = this.fromCookie ? hashKey.slice(colon + 1) : hashKey.slice(colon + 1).toLowerCase();
    this.fallback = new RoundRobinBalancer(targets, options);
    [this.points, this.owners] = buildRing(targets);
  }

  protected choose(request: BalancerInput, exclude: Target | null): Target | null {
    const hash = this.keyHash(request);
    if (hash === -1) return this.fallback.pick(request, exclude);
    const { points } = this;
    let low = 0;
    let high = points.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (points[middle] < hash) low = middle + 1;
      else high = middle;
    }
    const position = this.scan(this.owners, low === points.length ? 0 : low, exclude);
    return position === -1 ? null : this.targets[this.owners[position]];
  }

  /** The key's hash, or -1 when the request has no (or an empty) key. */
  private keyHash(request: BalancerInput): number {
    if (!this.fromCookie) {
      const value = request.getHeader(this.keyName);
      return value === undefined || value === '' ? -1 : hashString(value);
    }
    const cookie = request.getHeader('cookie');
    const start = cookie === undefined ? -1 : cookieValueStart(cookie, this.keyName);
    if (start === -1) return -1;
    const semicolon = cookie!.indexOf(';', start);
    const end = semicolon === -1 ? cookie!.length : semicolon;
    return end === start ? -1 : hashString(cookie!, start, end);
  }
}

function buildRing(targets: readonly Target[]): [Uint32Array, Int32Array] {
  const weights = reducedWeights(targets);
  const total = weights.reduce((sum, w) => sum + w, 0);
  const perWeight = Math.min(POINTS_PER_WEIGHT, RING_LIMIT / total);
  const hashes: number[] = [];
  const owners: number[] = [];
  targets.forEach((target, index) => {
    const count = Math.max(1, Math.round(weights[index] * perWeight));
    for (let i = 0; i < count; i++) {
      hashes.push(hashString(`${target.key}#${i}`));
      owners.push(index);
    }
  });
  const order = hashes.map((_, i) => i).sort((a, b) => hashes[a] - hashes[b] || owners[a] - owners[b]);
  return [Uint32Array.from(order, (i) => hashes[i]), Int32Array.from(order, (i) => owners[i])];
}
