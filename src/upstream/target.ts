/**
 * One upstream target of a group: where it is, how much traffic it should
 * get, how busy it is, and whether it may be used.
 *
 * Two independent kinds of health decide `available(now)`:
 * - active checks (HealthChecker): healthy/unhealthy, flipped only after
 *   `unhealthy_threshold` failed or `healthy_threshold` passed checks in a row;
 *   a target starts healthy;
 * - passive ejection (the proxy's own requests): `max_fails` failures in a row
 *   eject the target for `fail_timeout_ms` (logged at warn); after that one
 *   probe request is let through (half-open); its success restores the
 *   target, its failure ejects it again at once. Never the last target of its
 *   group still serving: like nginx, which never marks a lone server down,
 *   failures alone do not leave an upstream with nothing to try (every
 *   request would get a 503 for `fail_timeout_ms`, even once the target is
 *   back).
 */
import type { HealthCheckConfig, UpstreamConfig } from '../config/types';
import { logger } from '../util/log';

export type TargetScheme = 'http' | 'https' | 'h2c' | 'h2';

const DEFAULT_PORTS: Readonly<Record<TargetScheme, number>> = { http: 80, https: 443, h2c: 80, h2: 443 };

function isTargetScheme(scheme: string): scheme is TargetScheme {
  return Object.hasOwn(DEFAULT_PORTS, scheme);
}

export type PassiveHealthOptions = Pick<UpstreamConfig, 'max_fails' | 'fail_timeout_ms'>;
export type HealthThresholds = Pick<HealthCheckConfig, 'healthy_threshold' | 'unhealthy_threshold'>;

/** Told when a target's `active` count changes (the least-connections heap listens). */
export interface LoadObserver {
  loadChanged(target: Target): void;
}

export class Target {
  readonly url: string;
  readonly scheme: TargetScheme;
  /** Host to connect to: a name or IP literal, IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
  /** `host[:port]` as sent in the Host header; the port only when not the scheme's default. */
  readonly authority: string;
  /** `scheme://host:port`: connections are reused only between targets with the same key. */
  readonly key: string;
  readonly weight: number;
  /** Requests in flight, counted by the caller with begin()/end(). */
  active = 0;
  /** Active-check verdict. */
  healthy = true;

  private readonly maxFails: number;
  private readonly failTimeoutMs: number;
  private checkStreak = 0;
  private failures = 0;
  /** 0 = not ejected; otherwise when the cooldown ends (same clock as `now`). */
  private ejectedUntil = 0;
  private probing = false;
  private observers: LoadObserver[] = [];
  /** The targets of its upstream, itself included (see `group`). */
  private peers: readonly Target[] = [this];

  constructor(url: string, weight = 1, passive: PassiveHealthOptions = { max_fails: 3, fail_timeout_ms: 10_000 }) {
    const parsed = new URL(url);
    const scheme = parsed.protocol.slice(0, -1);
    if (!isTargetScheme(scheme)) throw new TypeError(`unsupported target scheme in ${url}`);
    if (!Number.isInteger(weight) || weight < 1) throw new TypeError(`target weight must be a positive integer, got ${weight}`);
    const bracketed = parsed.hostname.toLowerCase();
    this.scheme = scheme;
    this.host = bracketed.startsWith('[') ? bracketed.slice(1, -1) : bracketed;
    this.port = parsed.port === '' ? DEFAULT_PORTS[scheme] : Number(parsed.port);
    this.authority = this.port === DEFAULT_PORTS[scheme] ? bracketed : `${bracketed}:${this.port}`;
    this.key = `${scheme}://${bracketed}:${this.port}`;
    this.url = `${scheme}://${this.authority}`;
    this.weight = weight;
    this.maxFails = passive.max_fails;
    this.failTimeoutMs = passive.fail_timeout_ms;
  }

  /** The targets of an upstream, in config order, as one group. */
  static fromConfig(upstream: UpstreamConfig): Target[] {
    return Target.group(upstream.targets.map((t) => new Target(t.url, t.weight, upstream)));
  }

  /** Makes `targets` one group, whose last target serving is never ejected (a target is a group of one until then). */
  static group(targets: Target[]): Target[] {
    for (const target of targets) target.peers = targets;
    return targets;
  }

  /** Spoken to over TLS: https:// and h2://. */
  get secure(): boolean {
    return this.scheme === 'https' || this.scheme === 'h2';
  }

  /** Spoken to in HTTP/2: h2c:// (prior knowledge) and h2:// (TLS with ALPN h2). */
  get http2(): boolean {
    return this.scheme === 'h2c' || this.scheme === 'h2';
  }

  /** Healthy and not ejected: available whatever the time. */
  get serving(): boolean {
    return this.healthy && this.ejectedUntil === 0;
  }

  /** May a new request go here at `now`? */
  available(now: number): boolean {
    if (!this.healthy) return false;
    return this.ejectedUntil === 0 || (now >= this.ejectedUntil && !this.probing);
  }

  /** A request starts. A start while ejected (the cooldown is over) is the half-open probe. */
  begin(): void {
    this.active++;
    if (this.ejectedUntil !== 0) this.probing = true;
    this.notify();
  }

  /** A request ends, whatever its outcome. A probe that ended without a verdict lets the next one through. */
  end(): void {
    if (this.active > 0) this.active--;
    this.probing = false;
    this.notify();
  }

  recordSuccess(): void {
    this.failures = 0;
    this.ejectedUntil = 0;
    this.probing = false;
  }

  /**
   * Counts a failed request; returns true when this failure ejects the
   * target. The last target of the group serving stays in (a failed probe
   * of it ends its ejection): failures alone never empty a group.
   */
  recordFailure(now: number): boolean {
    if (this.maxFails === 0) return false;
    this.failures++;
    if (this.ejectedUntil === 0 && this.failures < this.maxFails) return false;
    this.probing = false;
    if (!this.anotherServing()) {
      this.ejectedUntil = 0;
      return false;
    }
    this.ejectedUntil = now + this.failTimeoutMs;
    logger().warn({ target: this.url, failures: this.failures, ejected_ms: this.failTimeoutMs }, 'upstream target ejected after failed requests');
    return true;
  }

  /** Counts one active check; returns true when it flips `healthy`. */
  recordCheck(passed: boolean, thresholds: HealthThresholds): boolean {
    if (passed === this.healthy) {
      this.checkStreak = 0;
      return false;
    }
    this.checkStreak++;
    if (this.checkStreak < (passed ? thresholds.healthy_threshold : thresholds.unhealthy_threshold)) return false;
    this.healthy = passed;
    this.checkStreak = 0;
    return true;
  }

  observe(observer: LoadObserver): void {
    if (!this.observers.includes(observer)) this.observers.push(observer);
  }

  private anotherServing(): boolean {
    for (const peer of this.peers) if (peer !== this && peer.serving) return true;
    return false;
  }

  private notify(): void {
    const observers = this.observers;
    for (let i = 0; i < observers.length; i++) observers[i].loadChanged(this);
  }
}
