/**
 * A worker's upstreams: for each route with an `upstream`, its targets and
 * balancer; for each peer (scheme, host, port), one connection pool shared
 * by every route that reaches it, capped at the smallest `max_connections`
 * among them (a cap protects the target, whoever reaches it). Health
 * verdicts from the main thread's active checks arrive on a BroadcastChannel.
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
  /** The targets speak HTTP/2 (h2c://, h2://); config validation keeps an upstream to one kind. */
  readonly http2: boolean;
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
const IDLE_SWEEP_INTERVAL_MS = 500;
/** Bounds of how often busy connections, and requests waiting for one, are checked against their deadlines. */
const MIN_DEADLINE_SWEEP_MS = 10;
const MAX_DEADLINE_SWEEP_MS = 250;

/**
 * An eighth of the shortest route or connect timeout: a deadline starts at
 * the first sweep after the last activity and is seen at the first sweep
 * after it passes, so a timeout fires at most 25% late (20 ms for timeouts
 * under 80 ms: the sweep runs at most every 10 ms).
 */
function deadlineSweepInterval(config: ZproxyConfig): number {
  let shortest = config.upstream_connect_timeout_ms;
  for (const route of config.routes) if (route.upstream) shortest = Math.min(shortest, route.timeout_ms);
  return Math.min(MAX_DEADLINE_SWEEP_MS, Math.max(MIN_DEADLINE_SWEEP_MS, Math.floor(shortest / 8)));
}

export class Upstreams {
  private groups: (UpstreamGroup | null)[] = [];
  private readonly pools = new Map<string, ConnectionPool>();
  /** Each target's pool (the key includes TLS settings, which the target alone does not know). */
  private readonly poolOf = new WeakMap<Target, ConnectionPool>();
  private readonly idleSweepTimer: NodeJS.Timeout;
  private deadlineSweepTimer: NodeJS.Timeout | undefined;
  private readonly health = new BroadcastChannel(HEALTH_CHANNEL);

  constructor(
    config: ZproxyConfig,
    private generation: number,
    private readonly allocBuffer: (size: number) => Buffer,
  ) {
    this.load(config, generation);
    this.idleSweepTimer = setInterval(() => this.sweepIdle(), IDLE_SWEEP_INTERVAL_MS);
    this.idleSweepTimer.unref();
    this.health.onmessage = (event) => this.applyVerdict((event as { data: HealthVerdict }).data);
    (this.health as unknown as { unref(): void }).unref();
  }

  /** A new config: new targets and balancers; pools (and their connections) are kept per peer. */
  load(config: ZproxyConfig, generation: number): void {
    this.generation = generation;
    // Each ca_file is read once per load.
    const caBundles = new Map<string, string>();
    const caps = new Map<string, number>();
    this.groups = config.routes.map((route) => {
      if (!route.upstream) return null;
      const targets = Target.fromConfig(route.upstream);
      for (const target of targets) this.poolFor(target, config, route.upstream, caBundles, caps);
      return {
        config: route.upstream,
        targets,
        balancer: createBalancer(route.upstream, targets),
        hashHeader: hashHeaderOf(route.upstream),
        http2: targets[0].http2,
      };
    });
    clearInterval(this.deadlineSweepTimer);
    this.deadlineSweepTimer = setInterval(() => this.checkDeadlines(), deadlineSweepInterval(config));
    this.deadlineSweepTimer.unref();
  }

  group(routeIndex: number): UpstreamGroup | null {
    return this.groups[routeIndex] ?? null;
  }

  pool(target: Target): ConnectionPool {
    return this.poolOf.get(target)!;
  }

  close(): void {
    clearInterval(this.idleSweepTimer);
    clearInterval(this.deadlineSweepTimer);
    this.health.close();
    for (const pool of this.pools.values()) pool.closeAll();
  }

  /** `caps`: the smallest max_connections seen so far in this load, per pool. */
  private poolFor(target: Target, config: ZproxyConfig, upstream: UpstreamConfig, caBundles: Map<string, string>, caps: Map<string, number>): void {
    const key = poolKey(target, upstream);
    const maxConnections = Math.min(caps.get(key) ?? Infinity, upstream.max_connections);
    caps.set(key, maxConnections);
    const settings = {
      connectTimeoutMs: config.upstream_connect_timeout_ms,
      keepAliveTimeoutMs: upstream.keepalive_timeout_ms,
      maxConnections,
      allocBuffer: this.allocBuffer,
      tls: upstreamTlsOptions(target, upstream, caBundles),
    };
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

  private sweepIdle(): void {
    const now = Date.now();
    for (const pool of this.pools.values()) pool.sweepIdle(now);
  }

  private checkDeadlines(): void {
    const now = Date.now();
    for (const pool of this.pools.values()) pool.checkDeadlines(now);
  }
}
