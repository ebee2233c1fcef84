/**
 * ip_hash: the client address picks the target, so a client keeps its target
 * while the set of targets does not change. The full address is hashed
 * (IPv4 all four octets, IPv6 all of it; `::ffff:a.b.c.d` counts as a.b.c.d),
 * unlike nginx's first three octets: clients behind one /24 (an office, a
 * carrier NAT pool) would otherwise all land on one target. Stickiness that
 * must survive address changes is consistent_hash on a cookie.
 *
 * The hash indexes the weight slots (O(1)); an unavailable target makes it
 * rehash deterministically up to 20 times like nginx, then walk the slots.
 */
import { BalancerBase, weightSlots, type BalancerInput, type BalancerOptions } from './balancer-base';
import { hashString, mix32 } from './hash';
import type { Target } from '../upstream/target';

const REHASHES = 20;
const MAPPED_IPV4 = '::ffff:';

/** The hash of a client address. */
export function hashClientIp(ip: string): number {
  const start = ip.length > MAPPED_IPV4.length && ip.startsWith(MAPPED_IPV4) && ip.includes('.', MAPPED_IPV4.length) ? MAPPED_IPV4.length : 0;
  return hashString(ip, start);
}

export class IpHashBalancer extends BalancerBase {
  private readonly slots: Int32Array;

  constructor(targets: readonly Target[], options?: BalancerOptions) {
    super(targets, options);
    this.slots = weightSlots(targets);
  }

  protected choose(request: BalancerInput, exclude: Target | null): Target | null {
    const { slots, targets } = this;
    let hash = hashClientIp(request.clientIp);
    for (let attempt = 0; attempt < REHASHES; attempt++) {
      const target = targets[slots[hash % slots.length]];
      if (this.eligible(target, exclude)) return target;
      hash = mix32(hash + 0x9e3779b9);
    }
    const position = this.scan(slots, hash % slots.length, exclude);
    return position === -1 ? null : targets[slots[position]];
  }
}
