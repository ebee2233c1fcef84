/**
 * TLS on the listener (SPEC §3 `tls`, §7): one `tls.Server` per worker that
 * never listens itself; a connection whose first bytes are a ClientHello is
 * handed to it with `emit('connection', socket)` (NODE-NOTES "Handing a
 * socket to a protocol server without losing bytes"), and after the
 * handshake it goes on by ALPN: `h2` to the registry's `http2` handler,
 * anything else (`http/1.1`, or no ALPN) to an HTTP/1 session on the TLS
 * socket, with X-Forwarded-Proto `https`.
 *
 * How the raw socket reaches the TLS server:
 * - native acceptor: it peeked at the ClientHello without reading it, and
 *   the socket is created without reading (`pauseOnCreate`), so the TLS
 *   server reads every byte of the handshake itself;
 * - TypeScript fallback (or a peek too short to tell): the first bytes were
 *   read in JS to detect the protocol. They are put back with `unshift()`
 *   (Connection.handOver) and the same raw net.Socket is emitted: Node's
 *   TLSSocket drains the readable buffer into the TLS engine before its first
 *   read (its `initRead`), and it keeps the fast path (the TLS engine sits on
 *   the socket's own libuv handle). A Duplex that replays the bytes under a
 *   hand-made `new tls.TLSSocket(duplex, {isServer: true})` would work for
 *   HTTP/1 too, but goes through JSStreamSocket and hangs for h2 (NODE-NOTES).
 *
 * Handshake errors close that connection only and are logged at debug; the
 * handshake must finish within `connection_timeout_ms` (the server's
 * handshakeTimeout, and the connection's own deadline, which follows reloads).
 *
 * Cleartext on the TLS listener (registry.ts `listenerHandler`): an HTTP/1
 * request is answered 400 at its first bytes, as nginx does, and closed
 * (PlainHttpRefusal); it never reaches routing or an upstream.
 *
 * Certificates: SecureContexts per worker (secure-contexts.ts), chosen by
 * SNI; on reload a new table is swapped in for new handshakes and the default
 * context replaced with `setSecureContext`; established connections keep the
 * context they were made with.
 */
import tls, { type TLSSocket } from 'node:tls';
import type net from 'node:net';
import type { Connection } from './connection';
import type { ZproxyConfig, ProtocolName } from '../config/types';
import type { WorkerContext } from '../server/worker-context';
import type { Logger } from '../util/log';
import { protocolHandler, type ProtocolSession } from '../protocol/registry';
import { renderOwnResponse } from '../protocol/http1/response-writer';
import { errorResponse } from '../pipeline/own-response';
import { PlainHttpOnTlsError } from '../errors';
import { nextRequestId } from '../util/request-id';
import { MIN_TLS_VERSION, SniTable, type TlsMaterial } from './secure-contexts';

/** The ALPN protocols offered, in the server's order of preference. */
export function alpnOffer(protocols: readonly ProtocolName[]): string[] {
  const offer: string[] = [];
  if (protocols.includes('http2')) offer.push('h2');
  if (protocols.includes('http1')) offer.push('http/1.1');
  return offer;
}

/** The worker's TLS server and certificates. */
export class TlsAcceptor {
  private server: tls.Server | null = null;
  private table: SniTable | null = null;
  private offer: string[] = [];
  /** Raw sockets in their handshake, to find the session when the TLS socket is ready. */
  private readonly handshaking = new WeakMap<net.Socket, TlsSession>();

  constructor(
    private readonly log: Logger,
    /** Shared by all workers (see WorkerData.ticketKeys). */
    private readonly ticketKeys: Buffer,
  ) {}

  /**
   * At start and on reload. `material`: the certificates the main thread read;
   * `undefined` keeps the running ones (it could not read new ones), `null`
   * means TLS is off.
   */
  update(config: ZproxyConfig, material: TlsMaterial | null | undefined): void {
    this.offer = alpnOffer(config.protocols);
    if (!material) return;
    try {
      const table = new SniTable(material);
      const defaults = { cert: material.default.cert, key: material.default.key, minVersion: MIN_TLS_VERSION } as const;
      if (this.server) this.server.setSecureContext(defaults);
      else this.server = this.createServer(config, defaults);
      this.table = table;
    } catch (err) {
      this.log.error({ err }, 'TLS certificates not loaded: the running ones are kept');
    }
  }

  /** Gives the connection's socket to the TLS server; `initial` = bytes already read from it. */
  handOver(session: TlsSession, conn: Connection, initial: Buffer): void {
    if (!this.server) return conn.close();
    const raw = conn.handOver(initial.length > 0 ? Buffer.from(initial) : null);
    // handOver stops the connection's timeouts; the handshake keeps one.
    conn.setIdle();
    this.handshaking.set(raw, session);
    this.server.emit('connection', raw);
  }

  private createServer(config: ZproxyConfig, defaults: tls.SecureContextOptions): tls.Server {
    const server = tls.createServer({
      ...defaults,
      SNICallback: (servername, done) => done(null, this.table?.select(servername)),
      // Chosen per handshake, so a reload of `protocols` applies to new connections.
      // No protocol in common: the handshake fails (no_application_protocol), as RFC 7301 asks.
      ALPNCallback: ({ protocols }) => this.offer.find((p) => protocols.includes(p)),
      handshakeTimeout: config.connection_timeout_ms,
      ticketKeys: this.ticketKeys,
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      // The TLSSocket wraps the raw socket's own handle; Node keeps the raw socket as `_parent`.
      const raw = (socket as unknown as { _parent?: net.Socket })._parent;
      const session = raw ? this.handshaking.get(raw) : undefined;
      if (raw) this.handshaking.delete(raw);
      if (!session) return void socket.destroy();
      session.secured(socket);
    });
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      this.log.debug({ code: err.code, detail: err.message.split('\n')[0], remote: socket.remoteAddress }, 'TLS handshake failed');
    });
    return server;
  }
}

/** A connection in (and after) its TLS handshake; after it, a thin shell around the negotiated protocol's session. */
export class TlsSession implements ProtocolSession {
  private inner: ProtocolSession | null = null;
  private started = false;

  constructor(
    private readonly conn: Connection,
    private readonly ctx: WorkerContext,
    private readonly acceptor: TlsAcceptor,
  ) {}

  /**
   * Before the handshake: the bytes read to detect TLS (none when the acceptor
   * peeked); they start it. After it: decrypted bytes for the HTTP/1 session.
   */
  onData(buf: Buffer, start: number, end: number): void {
    if (this.inner) return this.inner.onData(buf, start, end);
    if (this.started) return;
    this.started = true;
    this.acceptor.handOver(this, this.conn, buf.subarray(start, end));
  }

  onEnd(): void {
    if (this.inner) this.inner.onEnd();
    else this.conn.close();
  }

  drain(): void {
    if (this.inner) this.inner.drain();
    else this.conn.close();
  }

  onHeadTimeout(): void {
    if (this.inner) this.inner.onHeadTimeout();
    else this.conn.close();
  }

  onClose(): void {
    this.inner?.onClose();
  }

  /** The handshake is done: dispatch by ALPN. */
  secured(socket: TLSSocket): void {
    const { conn, ctx } = this;
    if (conn.state === 'closed') return void socket.destroy();
    socket.on('error', (err) => ctx.log.debug({ err, remote: conn.remoteAddress }, 'client TLS socket error'));
    socket.on('end', () => conn.endOfInput());
    conn.useSecureSocket(socket);
    const name = socket.alpnProtocol === 'h2' ? 'http2' : 'http1';
    const handler = protocolHandler(name);
    if (!handler || !handler.enabled(ctx)) {
      ctx.log.debug({ remote: conn.remoteAddress, protocol: name, alpn: socket.alpnProtocol }, 'protocol refused after the TLS handshake');
      return conn.close();
    }
    if (handler.adoptSocket) {
      // The protocol's server reads the TLS socket itself and times it out; the session is kept for drain().
      this.inner = handler.open(conn, ctx);
      conn.setActive();
      handler.adoptSocket(socket);
      return;
    }
    conn.setIdle();
    socket.on('data', conn.onSocketData);
    this.inner = handler.open(conn, ctx);
  }
}

export function openTlsSession(conn: Connection, ctx: WorkerContext): ProtocolSession {
  return new TlsSession(conn, ctx, ctx.tls);
}

/**
 * Cleartext HTTP/1 on a TLS listener: 400 at the first bytes, then our FIN.
 * What the client still sends is read and dropped until it closes too (the
 * connection's deadline bounds the wait), so unread bytes cannot turn the
 * close into a reset that destroys the answer.
 */
class PlainHttpRefusal implements ProtocolSession {
  private answered = false;

  constructor(
    private readonly conn: Connection,
    private readonly ctx: WorkerContext,
  ) {}

  onData(): void {
    if (this.answered) return;
    this.answered = true;
    const { conn, ctx } = this;
    const error = new PlainHttpOnTlsError();
    ctx.log.debug({ code: error.code, remote: conn.remoteAddress }, 'request rejected');
    const response = errorResponse(error, nextRequestId());
    conn.socket.end(renderOwnResponse(response, { date: ctx.httpDate, close: true, keepAliveHeader: false, headOnly: false }));
    conn.setClosing();
  }

  onEnd(): void {
    this.conn.close();
  }

  drain(): void {
    this.conn.close();
  }

  onHeadTimeout(): void {
    this.conn.close();
  }

  onClose(): void {}
}

export function openPlainHttpRefusal(conn: Connection, ctx: WorkerContext): ProtocolSession {
  return new PlainHttpRefusal(conn, ctx);
}
