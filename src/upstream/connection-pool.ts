/**
 * The keep-alive connections of one worker to one upstream peer (identity:
 * scheme, host, port, and for https the TLS settings: tls-connect.ts poolKey). Idle connections are reused most-recent first and
 * closed after `keepalive_timeout_ms` of idleness, before the typical
 * upstream keep-alive timeout would close them under us.
 */
import { isIP } from 'node:net';
import { UpstreamConnection } from './upstream-connection';
import { HostResolver } from './dns';
import type { Target } from './target';
import type { UpstreamTlsOptions } from './tls-connect';

/** Read buffer of each upstream connection: one socket read of a large body. */
const READ_BUFFER_BYTES = 64 * 1024;
/** Idle connections kept per peer and worker (nginx's `keepalive` directive). */
const MAX_IDLE = 128;

export interface PoolSettings {
  connectTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Node-local memory for read buffers. */
  allocBuffer: (size: number) => Buffer;
  /** For https:// targets. */
  tls?: UpstreamTlsOptions;
}

export class ConnectionPool {
  private readonly idle: UpstreamConnection[] = [];
  /** Every open connection, for the response-timeout sweep. */
  private readonly all = new Set<UpstreamConnection>();
  private readonly resolver: HostResolver | null;

  constructor(
    readonly target: Target,
    private settings: PoolSettings,
  ) {
    this.resolver = isIP(target.host) ? null : new HostResolver(target.host);
  }

  /** New settings on reload; existing connections keep going. */
  update(settings: PoolSettings): void {
    this.settings = settings;
  }

  /** An idle connection (reused) or a new one (connecting). */
  acquire(): UpstreamConnection {
    while (this.idle.length > 0) {
      const conn = this.idle.pop()!;
      if (conn.state === 'idle') return conn;
    }
    return this.connect();
  }

  /** A new connection, never an idle one (WebSocket upgrades: it never comes back to the pool). */
  connect(): UpstreamConnection {
    const host = this.resolver?.address() ?? this.target.host;
    // A buffer per connection, never handed on: a client write may still hold a view of it.
    const buffer = this.settings.allocBuffer(READ_BUFFER_BYTES);
    const conn = new UpstreamConnection(host, this.target.port, buffer, this.settings.connectTimeoutMs, (closed) => this.onClosed(closed), this.settings.tls);
    this.all.add(conn);
    return conn;
  }

  /** The exchange is done with `conn`: keep it for the next request, or close it. */
  release(conn: UpstreamConnection): void {
    if (conn.release() && this.settings.keepAliveTimeoutMs > 0 && this.idle.length < MAX_IDLE) {
      this.idle.push(conn);
      return;
    }
    conn.destroy();
  }

  /** Fails exchanges whose upstream has been silent past the response timeout. */
  checkDeadlines(now: number): void {
    for (const conn of this.all) conn.checkDeadline(now);
  }

  /** Closes connections idle for longer than the keep-alive timeout. */
  sweepIdle(now: number): void {
    const limit = this.settings.keepAliveTimeoutMs;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const conn = this.idle[i];
      if (conn.state === 'idle' && now - conn.idleSince < limit) continue;
      this.idle.splice(i, 1);
      conn.destroy();
    }
  }

  closeAll(): void {
    for (const conn of this.idle.splice(0)) conn.destroy();
  }

  private onClosed(conn: UpstreamConnection): void {
    this.all.delete(conn);
    const at = this.idle.indexOf(conn);
    if (at >= 0) this.idle.splice(at, 1);
  }
}
