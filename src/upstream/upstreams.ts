/**
 * A worker's upstreams: for each route with an `upstream`, its targets and
 * balancer; for each peer (scheme, host, port), one connection pool shared
 * by every route that reaches it. Health verdicts from the main thread's
 * active checks arrive on a BroadcastChannel.
 */
import { BroadcastChannel } from 'node:worker_threads';
import type { UpstreamConfig, ZproxyConfig } from '../config/types';
import { createBalancer, type BalancerBase } from '../balancer/create-balancer';
import { Target } from './target';
import { ConnectionPool } from './connection-pool';
import { poolKey, upstreamTlsOptions } from './tls-connect';

export interface UpstreamGroup {
  readonly config: UpstreamConfig;
  readonly targets: readonly Target[];
  readonly balancer: BalancerBase;
  /** The one request header a consistent-hash balancer reads (`cookie` for cookie keys), or null. */
  readonly hashHeader: string | null;
}

function hashHeaderOf(upstream: UpstreamConfig): string | null {
  const key = upstream.hash_key;
  if (upstream.load_balancing !== 'consistent_hash' || !key) return null;
  return key.startsWith('cookie:') ? 'cookie' : key.slice('header:'.length).toLowerCase();
}

/** A health verdict, as the main thread broadcasts it. */
export interface HealthVerdict {
  generation: number;
  route: number;
  url: string;
  healthy: boolean;
}

export const HEALTH_CHANNEL = 'zproxy:upstream-health';
/** How often idle pooled connections are checked against their keep-alive timeout. */
const SWEEP_INTERVAL_MS = 500;

export class Upstreams {
  private groups: (UpstreamGroup | null)[] = [];
  private readonly pools = new Map<string, ConnectionPool>();
  /** Each target's pool (the key includes TLS settings, which the target alone does not know). */
  private readonly poolOf = new WeakMap<Target, ConnectionPool>();
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly health = new BroadcastChannel(HEALTH_CHANNEL);

  constructor(
    config: ZproxyConfig,
    private generation: number,
    private readonly allocBuffer: (size: number) => Buffer,
  ) {
    this.load(config, generation);
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
    this.health.onmessage = (event) => this.applyVerdict((event as { data: HealthVerdict }).data);
    (this.health as unknown as { unref(): void }).unref();
  }

  /** A new config: new targets and balancers; pools (and their connections) are kept per peer. */
  load(config: ZproxyConfig, generation: number): void {
    this.generation = generation;
    // Each ca_file is read once per load.
    const caBundles = new Map<string, string>();
    this.groups = config.routes.map((route) => {
      if (!route.upstream) return null;
      const targets = Target.fromConfig(route.upstream);
      for (const target of targets) this.poolFor(target, config, route.upstream, caBundles);
      return { config: route.upstream, targets, balancer: createBalancer(route.upstream, targets), hashHeader: hashHeaderOf(route.upstream) };
    });
  }

  group(routeIndex: number): UpstreamGroup | null {
    return this.groups[routeIndex] ?? null;
  }

  pool(target: Target): ConnectionPool {
    return this.poolOf.get(target)!;
  }

  close(): void {
    clearInterval(this.sweepTimer);
    this.health.close();
    for (const pool of this.pools.values()) pool.closeAll();
  }

  private poolFor(target: Target, config: ZproxyConfig, upstream: UpstreamConfig, caBundles: Map<string, string>): void {
    const settings = {
      connectTimeoutMs: config.upstream_connect_timeout_ms,
      keepAliveTimeoutMs: upstream.keepalive_timeout_ms,
      allocBuffer: this.allocBuffer,
      tls: upstreamTlsOptions(target, upstream, caBundles),
    };
    const key = poolKey(target, upstream);
    let pool = this.pools.get(key);
    if (pool) pool.update(settings);
    else this.pools.set(key, (pool = new ConnectionPool(target, settings)));
    this.poolOf.set(target, pool);
  }

  private applyVerdict(verdict: HealthVerdict): void {
    if (verdict.generation !== this.generation) return;
    const target = this.groups[verdict.route]?.targets.find((t) => t.url === verdict.url);
    if (target) target.healthy = verdict.healthy;
  }

  private sweep(): void {
    const now = Date.now();
    for (const pool of this.pools.values()) pool.sweep(now);
  }
}
