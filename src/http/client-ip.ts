/**
 * The client's address as policies see it (ip_hash, rate limits, logs): the
 * socket peer, unless the peer is one of `trusted_proxies`; then the
 * right-most X-Forwarded-For entry that is not itself trusted (nginx's
 * realip with `real_ip_recursive on`).
 */
import { BlockList, isIP } from 'node:net';

/** A socket's peer address as X-Forwarded-For shows it (IPv4-mapped IPv6 as plain IPv4). */
export function peerAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(entries: readonly string[]) {
    this.empty = entries.length === 0;
    for (const entry of entries) {
      const [address, prefix] = entry.split('/');
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) this.list.addAddress(address, family);
      else this.list.addSubnet(address, Number(prefix), family);
    }
  }

  has(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }

  /** The client address given the socket peer and the request's X-Forwarded-For (joined) value. */
  clientAddress(peer: string, forwardedFor: string | null): string {
    if (this.empty || forwardedFor === null || !this.has(peer)) return peer;
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i].trim();
      if (isIP(hop) === 0) return peer; // a forged or garbled entry: trust nothing past it
      if (!this.has(hop)) return hop;
    }
    return hops[0].trim();
  }
}
