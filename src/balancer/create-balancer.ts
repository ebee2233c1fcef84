/** The balancer an upstream's `load_balancing` names, over that upstream's targets. */
import type { UpstreamConfig } from '../config/types';
import type { Target } from '../upstream/target';
import type { BalancerBase, BalancerOptions } from './balancer-base';
import { ConsistentHashBalancer } from './consistent-hash';
import { IpHashBalancer } from './ip-hash';
import { LeastConnectionsBalancer } from './least-connections';
import { RandomBalancer } from './random';
import { RoundRobinBalancer } from './round-robin';

export type { BalancerBase, BalancerInput, BalancerOptions } from './balancer-base';

export function createBalancer(config: UpstreamConfig, targets: Target[], options?: BalancerOptions): BalancerBase {
  switch (config.load_balancing) {
    case 'round_robin':
      return new RoundRobinBalancer(targets, options);
    case 'least_connections':
      return new LeastConnectionsBalancer(targets, options);
    case 'random':
      return new RandomBalancer(targets, options);
    case 'ip_hash':
      return new IpHashBalancer(targets, options);
    case 'consistent_hash':
      if (config.hash_key === undefined) throw new TypeError('load_balancing "consistent_hash" needs hash_key');
      return new ConsistentHashBalancer(targets, config.hash_key, options);
  }
}
