/**
 * The connections of one worker to one upstream peer (identity: scheme,
 * host, port, and for https the TLS settings: tls-connect.ts poolKey), kept
 * as Envoy keeps them: each connection a small state machine
 * (upstream-connection.ts: connecting -> busy <-> idle -> closed), the pool
 * one list per state it acts on: `idle` (reused most recent first, closed
 * after `keepalive_timeout_ms` of idleness, before the typical upstream
 * keep-alive timeout would close them under us), `all` (every open one,
 * counted against `max_connections` and swept for response deadlines) and
 * `waiting` (requests in line for a connection).
 *
 * At `max_connections` a request waits in line, first come first served:
 * a connection released goes to the first in line, one that closes makes
 * room for it to connect. Nobody waits longer than the connect timeout
 * (checked on the deadline sweep), and at most MAX_WAITING wait; beyond
 * either, the request gets a 503. Each HTTP/2 stream to an HTTP/1 upstream
 * takes a connection here too, so the cap also bounds what one client's
 * streams can open.
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
/** Requests that may wait per peer and worker (Envoy's default max_pending_requests); past it, a 503 at once. */
const MAX_WAITING = 1024;

export interface PoolSettings {
  connectTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Open connections at most (the smallest `max_connections` of the upstreams reaching this peer). */
  maxConnections: number;
  /** Node-local memory for read buffers. */
  allocBuffer: (size: number) => Buffer;
  /** For https:// targets. */
  tls?: UpstreamTlsOptions;
}

/** A request in line for a connection of a full pool. */
export interface ConnectionWaiter {
  /** Its connection: idle (reused) or new (connecting). */
  connectionReady(conn: UpstreamConnection): void;
  /** None came within the connect timeout. */
  waitTimedOut(): void;
}

interface Waiting {
  /** When it joined the line (ms). */
  since: number;
  /** It needs a connection of its own (an upgrade), never an idle one. */
  fresh: boolean;
}

export class ConnectionPool {
  private readonly idle: UpstreamConnection[] = [];
  /** Every open connection. */
  private readonly all = new Set<UpstreamConnection>();
  /** Requests in line, in the order they came. */
  private readonly waiting = new Map<ConnectionWaiter, Waiting>();
  private readonly resolver: HostResolver | null;

  constructor(
    readonly target: Target,
    private settings: PoolSettings,
  ) {
    this.resolver = isIP(target.host) ? null : new HostResolver(target.host);
  }

  /** New settings on reload; existing connections keep going, and a higher cap lets waiters in. */
  update(settings: PoolSettings): void {
    this.settings = settings;
    this.serveWaiting();
  }

  /**
   * A connection for `waiter`'s request: an idle one (not when `fresh`: a
   * WebSocket upgrade never shares one), else a new one while the pool is
   * under max_connections. At the cap the request waits in line (`queued`:
   * connectionReady or waitTimedOut follows), unless the line is full.
   */
  acquire(waiter: ConnectionWaiter, fresh = false): UpstreamConnection | 'queued' | 'full' {
    const conn = this.available(fresh);
    if (conn !== null) return conn;
    if (this.waiting.size >= MAX_WAITING) return 'full';
    this.waiting.set(waiter, { since: Date.now(), fresh });
    if (fresh) this.makeRoom();
    return 'queued';
  }

  /** `waiter` no longer wants a connection (its client went away). */
  cancel(waiter: ConnectionWaiter): void {
    this.waiting.delete(waiter);
  }

  /** The exchange is done with `conn`: the first in line gets it, or it is kept for the next request, or closed. */
  release(conn: UpstreamConnection): void {
    if (conn.release() && this.settings.keepAliveTimeoutMs > 0 && this.idle.length < MAX_IDLE) {
      this.idle.push(conn);
      return this.serveWaiting();
    }
    conn.destroy(); // its close makes room for the first in line
  }

  /** Fails exchanges whose upstream has been silent past the response timeout, and waits past the connect timeout. */
  checkDeadlines(now: number): void {
    for (const conn of this.all) conn.checkDeadline(now);
    if (this.waiting.size === 0) return;
    for (const [waiter, waiting] of this.waiting) {
      if (now - waiting.since < this.settings.connectTimeoutMs) return;
      this.waiting.delete(waiter);
      waiter.waitTimedOut();
    }
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

  /** An idle connection (unless `fresh`), else a new one under the cap; null at the cap. */
  private available(fresh: boolean): UpstreamConnection | null {
    while (!fresh && this.idle.length > 0) {
      const conn = this.idle.pop()!;
      if (conn.state === 'idle') return conn;
    }
    return this.all.size < this.settings.maxConnections ? this.open() : null;
  }

  private open(): UpstreamConnection {
    const host = this.resolver?.address() ?? this.target.host;
    // A buffer per connection, never handed on: a client write may still hold a view of it.
    const buffer = this.settings.allocBuffer(READ_BUFFER_BYTES);
    const conn = new UpstreamConnection(host, this.target.port, buffer, this.settings.connectTimeoutMs, (closed) => this.onClosed(closed), this.settings.tls);
    this.all.add(conn);
    return conn;
  }

  /** Gives the line what the pool has now: released connections, then room to connect. */
  private serveWaiting(): void {
    while (this.waiting.size > 0) {
      const [waiter, waiting] = this.waiting.entries().next().value!;
      const conn = this.available(waiting.fresh);
      if (conn === null) {
        if (waiting.fresh) this.makeRoom();
        return;
      }
      this.waiting.delete(waiter);
      waiter.connectionReady(conn);
    }
  }

  /** At the cap, an upgrade needs a connection of its own: an idle one closes, and its close lets the line in. */
  private makeRoom(): void {
    this.idle.pop()?.destroy();
  }

  private onClosed(conn: UpstreamConnection): void {
    this.all.delete(conn);
    const at = this.idle.indexOf(conn);
    if (at >= 0) this.idle.splice(at, 1);
    this.serveWaiting();
  }
}
