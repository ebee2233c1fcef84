/**
 * HTTP/2 on the listener: one `http2` server per worker that never listens
 * itself; the connection stage hands it sockets — cleartext with prior
 * knowledge (detected from the preface), or TLS sockets that negotiated h2.
 *
 * Limits: `max_concurrent_streams`, a header list of at most
 * `max_header_bytes`, and a cap on streams the client resets (rapid reset,
 * CVE-2023-44487): a session whose client resets more than
 * MAX_RESETS_PER_SECOND streams in a second is closed with
 * ENHANCE_YOUR_CALM. CONTINUATION floods are stopped by nghttp2 itself.
 * Draining sends GOAWAY and lets the open streams finish.
 */
import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type net from 'node:net';
import type { Connection } from '../../listener/connection';
import type { WorkerContext } from '../../server/worker-context';
import type { ProtocolSession } from '../registry';
import { handleStream, type H2Peer, type StreamCloser } from './h2-stream';
import { peerAddress } from '../../http/client-ip';
import { installStreamTable } from './stream-table';

const MAX_RESETS_PER_SECOND = 200;
const { NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

export class Http2Listener {
  private readonly server: http2.Http2Server;
  private readonly sessions = new WeakMap<net.Socket, ServerHttp2Session>();
  private adopting: net.Socket | null = null;

  constructor(private readonly ctx: WorkerContext) {
    const config = ctx.config;
    this.server = http2.createServer({
      settings: {
        maxConcurrentStreams: config.max_concurrent_streams,
        maxHeaderListSize: config.max_header_bytes,
        enableConnectProtocol: config.protocols.includes('websocket'),
      },
      maxSessionInvalidFrames: 100,
      maxSessionRejectedStreams: 100,
    });
    this.server.on('session', (session) => this.onSession(session));
    this.server.on('sessionError', (err) => this.ctx.log.debug({ err }, 'HTTP/2 session error'));
  }

  /** Takes over a connection whose first bytes (`initial`) are already read. */
  adopt(conn: Connection, initial: Buffer | null): void {
    this.adoptSocket(conn.handOver(initial));
  }

  /** Takes a socket already set up, e.g. TLS that negotiated h2. */
  adoptSocket(socket: net.Socket): void {
    // The session is created within emit(); `session.socket` is only a proxy of this socket.
    this.adopting = socket;
    try {
      this.server.emit('connection', socket);
    } finally {
      this.adopting = null;
    }
  }

  /** GOAWAY: no new streams; the open ones finish. */
  drain(socket: net.Socket): void {
    const session = this.sessions.get(socket);
    if (session && !session.closed) session.close();
    else socket.destroy();
  }

  private readonly onStreamError = (err: Error): void => this.ctx.log.debug({ err }, 'HTTP/2 stream error');

  private onSession(session: ServerHttp2Session): void {
    const socket = this.adopting ?? (session.socket as net.Socket);
    this.sessions.set(socket, session);
    installStreamTable(session);
    if (this.ctx.draining) session.close();
    session.setTimeout(this.ctx.config.connection_timeout_ms, () => {
      // Idle: no frame in either direction for connection_timeout_ms.
      session.close();
      session.destroy();
    });
    const peer: H2Peer = { address: peerAddress(socket.remoteAddress), proto: session.encrypted ? 'https' : 'http' };
    let windowStart = Date.now();
    let resets = 0;
    // Closed before the response was complete (the client reset it, or we did): a flood of these closes the connection.
    const countReset = (): void => {
      const now = Date.now();
      if (now - windowStart > 1000) {
        windowStart = now;
        resets = 0;
      }
      if (++resets > MAX_RESETS_PER_SECOND && !session.destroyed) {
        this.ctx.log.warn({ remote: socket.remoteAddress }, 'HTTP/2 rapid reset: closing the connection');
        session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
        session.destroy();
      }
    };
    // One listener per session, and per stream only 'error' (shared) and 'close'.
    session.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]) => {
      // A stream the client reset: its 'error' is the end of it, not a fault of the worker.
      stream.on('error', this.onStreamError);
      // Reset before the stream event came round: nothing to answer.
      if (stream.destroyed) {
        if (stream.aborted) countReset();
        return;
      }
      let closer: StreamCloser | undefined;
      try {
        closer = handleStream(this.ctx, stream, headers, flags, raw, peer);
      } catch (err) {
        this.ctx.log.error({ err }, 'HTTP/2 stream handling failed');
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      }
      stream.on('close', () => {
        if (stream.aborted) countReset();
        closer?.abort();
      });
    });
    session.on('error', (err) => this.ctx.log.debug({ err }, 'HTTP/2 session error'));
  }
}

/** The registry's view: the first bytes hand the connection to the worker's HTTP/2 server. */
export function openHttp2Session(listener: Http2Listener, conn: Connection): ProtocolSession {
  let adopted = false;
  return {
    onData(buf, start, end) {
      if (adopted) return;
      adopted = true;
      listener.adopt(conn, Buffer.from(buf.subarray(start, end)));
    },
    onEnd: () => undefined,
    onClose: () => undefined,
    onHeadTimeout: () => conn.close(),
    drain: () => listener.drain(conn.socket),
  };
}
