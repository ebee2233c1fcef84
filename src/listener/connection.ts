/**
 * A client connection on a worker: wraps the socket, detects the protocol
 * from the first bytes, dispatches to the protocol's session, and owns the
 * client-side timeouts, all checked by one sweep per worker (no timer per
 * connection, no clock read per request):
 * - `connection_timeout_ms` on idle keep-alive connections and on request
 *   heads that arrive too slowly (slowloris);
 * - while a request is active, `client_body_timeout_ms` on a request body
 *   that stops arriving, and `send_timeout_ms` on a response the client
 *   stops reading (unsent bytes that make no progress), as nginx's
 *   client_body_timeout and send_timeout do.
 */
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { detectProtocol } from '../protocol/detect';
import { listenerHandler, type ProtocolSession } from '../protocol/registry';
import type { WorkerContext } from '../server/worker-context';
import type { IncomingConnection } from './acceptor';

/** A deadline the next sweep sets (see Connection.setIdle). */
const IDLE_FROM_NEXT_SWEEP = -1;

/**
 * `detecting`: nothing parsed yet; `idle`: between requests; `head`: a request
 * head is partly received; `active`: a request is being served; `closing`:
 * the last response is being written.
 */
export type ConnectionState = 'detecting' | 'idle' | 'head' | 'active' | 'closing' | 'closed';

export class Connection {
  state: ConnectionState = 'detecting';
  /**
   * When the current idle, head or closing period ends (ms since epoch);
   * 0 = none; IDLE_FROM_NEXT_SWEEP = idle since a moment the next sweep
   * stands for.
   */
  deadline: number;
  protocol = 'unknown';
  /** `https` once TLS is terminated on this connection (X-Forwarded-Proto). */
  proto: 'http' | 'https' = 'http';
  private session: ProtocolSession | undefined;
  private detectBuffer: Buffer | undefined;
  /** Bytes arrived since the last sweep: the request body's activity mark. */
  private heard = false;
  /** When a request body that has not moved since times out (0: not timing). */
  private bodyDeadline = 0;
  /** When unsent response bytes that have not moved since time out (0: not timing). */
  private sendDeadline = 0;
  /** Bytes the socket had flushed at the sweep that set `sendDeadline`. */
  private flushedMark = 0;

  constructor(
    /** The client socket; after a TLS handshake, the TLS socket (the raw one stays underneath). */
    public socket: net.Socket,
    private readonly set: ConnectionSet,
  ) {
    this.deadline = Date.now() + set.ctx.config.connection_timeout_ms;
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? '';
  }

  /**
   * Between requests: the idle timeout runs, from the next sweep (no clock
   * read per request): it fires between connection_timeout_ms and that plus
   * two sweep intervals after the response, never early.
   */
  setIdle(): void {
    this.state = 'idle';
    this.deadline = IDLE_FROM_NEXT_SWEEP;
  }

  /** The first bytes of a request head arrived: the head timeout runs. */
  setReadingHead(): void {
    if (this.state === 'head') return;
    this.state = 'head';
    this.deadline = Date.now() + this.set.ctx.config.connection_timeout_ms;
  }

  /** The last response is on its way out: a client that does not read it loses the connection at the deadline. */
  setClosing(): void {
    this.state = 'closing';
    this.deadline = Date.now() + this.set.ctx.config.connection_timeout_ms;
  }

  /** A request is being served: no connection timeout (route timeouts apply). */
  setActive(): void {
    this.state = 'active';
    this.deadline = 0;
  }

  /** The socket's 'data' listener (fresh chunks, when not reading into the worker's buffer). */
  readonly onSocketData = (chunk: Buffer): void => this.receive(chunk, 0, chunk.length);

  /**
   * Hands the socket to a protocol server that reads it itself (HTTP/2, TLS):
   * no more bytes come through here, and `initial` (already read) goes back
   * in front. The server's own timeouts apply from now on.
   */
  handOver(initial: Buffer | null): net.Socket {
    this.socket.off('data', this.onSocketData);
    this.socket.pause();
    if (initial && initial.length > 0) this.socket.unshift(initial);
    this.setActive();
    return this.socket;
  }

  /** TLS is terminated: sessions read and write the TLS socket from now on. */
  useSecureSocket(socket: TLSSocket): void {
    this.socket = socket;
    this.proto = 'https';
  }

  /** Set while the connection lives outside its JS socket (a splice tunnel): ends it there. */
  private outsideClose: (() => void) | null = null;

  /** The connection lives on outside its JS socket, which closing does not end. */
  get outside(): boolean {
    return this.outsideClose !== null;
  }

  /**
   * The connection goes on outside its JS socket (a splice tunnel works on a
   * dup of the fd): the socket may be destroyed now without ending the
   * connection or freeing its max_connections slot. `close` ends it from
   * here (drain timeout, worker exit); call the returned function once it has
   * really ended.
   */
  moveOutside(close: () => void): () => void {
    this.outsideClose = close;
    this.setActive();
    return () => {
      if (this.outsideClose === null) return;
      this.outsideClose = null;
      this.set.outsideEnded(this);
    };
  }

  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.outsideClose) return this.outsideClose();
    this.socket.destroy();
  }

  /** Bytes from the socket, before or after detection. */
  receive(buf: Buffer, start: number, end: number): void {
    this.heard = true;
    if (this.session) return this.session.onData(buf, start, end);
    this.detect(buf, start, end);
  }

  endOfInput(): void {
    if (this.session) this.session.onEnd();
    else this.close();
  }

  timedOut(): void {
    if (this.session && this.state === 'head') this.session.onHeadTimeout();
    else this.close();
  }

  /**
   * The sweep, while a request is active: its body must keep arriving and
   * its response must keep leaving. Each fires after its timeout without
   * progress, at most two sweep intervals late, never early.
   */
  checkProgress(now: number): void {
    const config = this.set.ctx.config;
    if (this.session?.awaitingBody) {
      if (this.heard || this.bodyDeadline === 0) {
        this.heard = false;
        this.bodyDeadline = now + config.client_body_timeout_ms;
      } else if (now >= this.bodyDeadline) {
        this.bodyDeadline = 0;
        this.set.ctx.log.info({ remote: this.remoteAddress }, 'request body timed out');
        return this.session.onBodyTimeout?.();
      }
    } else this.bodyDeadline = 0;
    const socket = this.socket;
    if (socket.writableLength === 0 || this.outside) {
      this.sendDeadline = 0;
      return;
    }
    const flushed = socket.bytesWritten - socket.writableLength;
    if (flushed !== this.flushedMark || this.sendDeadline === 0) {
      this.flushedMark = flushed;
      this.sendDeadline = now + config.send_timeout_ms;
    } else if (now >= this.sendDeadline) {
      this.set.ctx.log.info({ remote: this.remoteAddress, unsent: socket.writableLength }, 'client stopped reading: send timed out');
      this.close();
    }
  }

  drain(): void {
    if (this.session) this.session.drain();
    else this.close();
  }

  /** The socket is gone. */
  closed(): void {
    this.state = 'closed';
    this.session?.onClose();
  }

  /** Classifies the first bytes (peeked by the acceptor, or read here) and opens a session. */
  private detect(buf: Buffer, start: number, end: number): void {
    const bytes = this.detectBuffer
      ? Buffer.concat([this.detectBuffer, buf.subarray(start, end)])
      : buf.subarray(start, end);
    const kind = detectProtocol(bytes);
    if (kind === 'incomplete') {
      this.detectBuffer = Buffer.from(bytes);
      return;
    }
    this.detectBuffer = undefined;
    const handler = kind === 'unknown' ? undefined : listenerHandler(kind, this.set.ctx);
    if (!handler) {
      this.set.ctx.log.debug({ remote: this.remoteAddress, protocol: kind }, 'protocol refused');
      return this.close();
    }
    this.protocol = kind;
    this.session = handler.open(this, this.set.ctx);
    this.session.onData(bytes, 0, bytes.length);
  }

  /** The acceptor's peek already told the protocol: open the session before any read. */
  openPeeked(kind: string): boolean {
    const handler = listenerHandler(kind, this.set.ctx);
    if (!handler) return false;
    this.protocol = kind;
    this.session = handler.open(this, this.set.ctx);
    return true;
  }
}

const NOTHING_READ = Buffer.alloc(0);

/** The connections of one worker, with one sweep timer for all their deadlines. */
export class ConnectionSet {
  private readonly connections = new Set<Connection>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweepEveryMs = 0;
  private draining = false;
  private onEmpty: (() => void) | undefined;

  constructor(
    readonly ctx: WorkerContext,
    private readonly release: () => void,
  ) {
    this.scheduleSweep();
  }

  /** (Re)starts the sweep at the interval the current config asks for (a reload may change the timeout). */
  private scheduleSweep(): void {
    // An eighth of the shortest timeout: a period starts at a sweep, so a timeout fires at most a quarter late (20 ms under 80 ms).
    const { connection_timeout_ms, client_body_timeout_ms, send_timeout_ms } = this.ctx.config;
    const every = Math.min(1000, Math.max(10, Math.floor(Math.min(connection_timeout_ms, client_body_timeout_ms, send_timeout_ms) / 8)));
    if (every === this.sweepEveryMs) return;
    clearInterval(this.sweepTimer);
    this.sweepEveryMs = every;
    this.sweepTimer = setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
  }

  get size(): number {
    return this.connections.size;
  }

  /** Takes a connection from the listener stage. */
  accept(incoming: IncomingConnection): void {
    const peekedKind = incoming.peeked ? detectProtocol(incoming.peeked) : 'incomplete';
    if (this.draining || peekedKind === 'unknown') {
      // Wrapping the fd lets Node close it as its own (fs.close on it would warn in a worker).
      (incoming.socket ?? new net.Socket({ fd: incoming.fd })).destroy();
      this.release();
      return;
    }
    const readsIntoPool = peekedKind === 'http1';
    // A peeked ClientHello stays unread in the kernel: the worker's TLS server reads the socket from its first byte.
    const handsOverUnread = peekedKind === 'tls';
    let conn: Connection | undefined;
    // One options shape for every socket keeps Node's Socket constructor on its fast path.
    const socket =
      incoming.socket ??
      new net.Socket({
        fd: incoming.fd,
        readable: true,
        writable: true,
        allowHalfOpen: true,
        pauseOnCreate: handsOverUnread,
        // HTTP/1 parses straight out of the worker's node-local read buffer.
        onread: readsIntoPool ? { buffer: this.ctx.readBuffer, callback: (n: number, b: Buffer) => void conn!.receive(b, 0, n) } : null,
      } as net.SocketConstructorOpts);
    conn = new Connection(socket, this);
    this.connections.add(conn);
    const current = conn;
    socket.on('error', (err) => this.ctx.log.debug({ err, remote: current.remoteAddress }, 'client socket error'));
    socket.once('close', () => {
      if (!current.outside) this.forget(current);
    });
    socket.on('end', () => current.endOfInput());
    if (!readsIntoPool && !handsOverUnread) socket.on('data', current.onSocketData);
    if ((readsIntoPool || handsOverUnread) && !conn.openPeeked(peekedKind)) return conn.close();
    // Zero bytes read: the TLS session hands the untouched socket to the TLS server.
    if (handsOverUnread) conn.receive(NOTHING_READ, 0, 0);
    if (incoming.socket) socket.resume();
  }

  /** Stops taking connections, closes idle ones, lets active ones finish; calls back when none is left. */
  drain(onEmpty: () => void): void {
    this.draining = true;
    this.onEmpty = onEmpty;
    for (const conn of this.connections) conn.drain();
    this.checkEmpty();
  }

  /** Closes every connection at once (drain timeout). */
  closeAll(): void {
    for (const conn of this.connections) conn.close();
  }

  stop(): void {
    clearInterval(this.sweepTimer);
  }

  /** A connection that had moved outside its socket (see Connection.moveOutside) has ended. */
  outsideEnded(conn: Connection): void {
    this.forget(conn);
  }

  private forget(conn: Connection): void {
    conn.closed();
    if (this.connections.delete(conn)) this.release();
    this.checkEmpty();
  }

  private checkEmpty(): void {
    if (this.draining && this.connections.size === 0 && this.onEmpty) {
      const done = this.onEmpty;
      this.onEmpty = undefined;
      done();
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const conn of this.connections) {
      if (conn.deadline === IDLE_FROM_NEXT_SWEEP) conn.deadline = now + this.ctx.config.connection_timeout_ms;
      else if (conn.state === 'active') conn.checkProgress(now);
      else if (conn.deadline !== 0 && conn.deadline <= now) conn.timedOut();
    }
    this.scheduleSweep();
  }
}
