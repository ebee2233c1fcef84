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
  private readonly resolver: HostResolver | null;
  /** Connections open (any state). */
  open = 0;

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
    this.open++;
    const host = this.resolver?.address() ?? this.target.host;
    // A buffer per connection, never handed on: a client write may still hold a view of it.
    const buffer = this.settings.allocBuffer(READ_BUFFER_BYTES);
    return new UpstreamConnection(host, this.target.port, buffer, this.settings.connectTimeoutMs, (closed) => this.onClosed(closed), this.settings.tls);
  }

  /** The exchange is done with `conn`: keep it for the next request, or close it. */
  release(conn: UpstreamConnection): void {
    if (conn.release() && this.settings.keepAliveTimeoutMs > 0 && this.idle.length < MAX_IDLE) {
      this.idle.push(conn);
      return;
    }
    conn.destroy();
  }

  /** Closes connections idle for longer than the keep-alive timeout. */
  sweep(now: number): void {
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
    this.open--;
    const at = this.idle.indexOf(conn);
    if (at >= 0) this.idle.splice(at, 1);
  }
}
