/**
 * Active health checks: every `interval_ms`, a `GET path` to each target
 * (Host = the target's authority, `Connection: close`, User-Agent
 * `zproxy-health-check`) that must answer `expected_status` within
 * `timeout_ms`. Results move each Target's healthy state through its
 * thresholds; flips are reported to `onChange`.
 *
 * http:// and https:// targets get HTTP/1.1 through node:http(s) (checks are
 * rare, so the comfortable client is fine). h2c:// and h2:// targets get
 * HTTP/2 through node:http2 (prior knowledge, or TLS with ALPN `h2`), because
 * that is all many of them (gRPC servers) speak; a plain HTTP/1.1 GET would
 * mark them down. TLS is checked as for requests: SNI = the host name (not an
 * IP), the upstream's `tls_verify` and `ca_file`.
 *
 * A target with a check still in flight is not checked again. Timers are
 * unref'd, so the checker never keeps a process alive; stop() clears them
 * and aborts the checks in flight, whose results are then ignored.
 */
import http from 'node:http';
import https from 'node:https';
import type { HealthCheckConfig } from '../config/types';
import type { Target } from './target';
import { connectHttp2 } from './h2-sessions';
import { serverName, type TlsPeerCheck } from './tls-connect';

export const HEALTH_CHECK_USER_AGENT = 'zproxy-health-check';

export type HealthChangeListener = (target: Target, healthy: boolean) => void;

export interface HealthCheckTls {
  /** Verify https:// and h2:// targets' certificates (the upstream's `tls_verify`). */
  verify: boolean;
  /** Extra trusted CA certificates (the contents of `ca_file`). */
  ca?: string | Buffer;
}

export class HealthChecker {
  private timer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Map<Target, AbortController>();

  constructor(
    readonly targets: readonly Target[],
    readonly config: HealthCheckConfig,
    private readonly onChange: HealthChangeListener = () => {},
    private readonly tls: HealthCheckTls = { verify: true },
  ) {}

  get running(): boolean {
    return this.timer !== null;
  }

  /** Checks every target now, then every `interval_ms`. Does nothing when interval_ms is 0. */
  start(): void {
    if (this.timer !== null || this.config.interval_ms === 0) return;
    this.timer = setInterval(() => this.checkAll(), this.config.interval_ms).unref();
    this.checkAll();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const controller of this.inFlight.values()) controller.abort();
    this.inFlight.clear();
  }

  private checkAll(): void {
    for (const target of this.targets) {
      if (!this.inFlight.has(target)) void this.checkOne(target);
    }
  }

  private async checkOne(target: Target): Promise<void> {
    const controller = new AbortController();
    this.inFlight.set(target, controller);
    const timeout = setTimeout(() => controller.abort(), this.config.timeout_ms).unref();
    let status: number | null = null;
    try {
      status = await this.probe(target, controller.signal);
    } catch {
      status = null;
    } finally {
      clearTimeout(timeout);
    }
    if (this.inFlight.get(target) !== controller) return; // stopped meanwhile
    this.inFlight.delete(target);
    if (!target.recordCheck(status === this.config.expected_status, this.config)) return;
    try {
      this.onChange(target, target.healthy);
    } catch {
      // A listener's failure must not stop the checks.
    }
  }

  /** The status the target answers, or a rejection. */
  private probe(target: Target, signal: AbortSignal): Promise<number> {
    return target.http2 ? this.probeHttp2(target, signal) : this.probeHttp1(target, signal);
  }

  private probeHttp1(target: Target, signal: AbortSignal): Promise<number> {
    const client = target.secure ? https : http;
    return new Promise((resolve, reject) => {
      const request = client.request({
        host: target.host,
        port: target.port,
        method: 'GET',
        path: this.config.path,
        headers: { host: target.authority, connection: 'close', 'user-agent': HEALTH_CHECK_USER_AGENT },
        agent: false,
        signal,
        ...(target.secure ? this.peerCheck(target) : {}),
      });
      request.once('response', (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.once('error', reject);
      request.end();
    });
  }

  private probeHttp2(target: Target, signal: AbortSignal): Promise<number> {
    return new Promise((resolve, reject) => {
      const session = connectHttp2(target, target.secure ? this.peerCheck(target) : undefined);
      const close = (): void => {
        signal.removeEventListener('abort', abort);
        session.destroy();
      };
      const abort = (): void => {
        close();
        reject(new Error('health check aborted'));
      };
      signal.addEventListener('abort', abort);
      session.once('error', (error) => {
        close();
        reject(error);
      });
      const stream = session.request({ ':method': 'GET', ':path': this.config.path, ':authority': target.authority, 'user-agent': HEALTH_CHECK_USER_AGENT }, { endStream: true });
      stream.once('response', (headers) => {
        close();
        resolve(Number(headers[':status']));
      });
      stream.once('error', (error) => {
        close();
        reject(error);
      });
    });
  }

  private peerCheck(target: Target): TlsPeerCheck {
    return { servername: serverName(target.host), rejectUnauthorized: this.tls.verify, ca: this.tls.ca };
  }
}
