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
 *
 * The server reads each connection through a FrameGuard (frame-guard.ts):
 * frames node:http2 lets through that RFC 9113 forbids end the connection,
 * and a stream whose request carries a field nghttp2 would silently drop
 * (RFC 9113 §8.2.1 malformed) is refused with RST_STREAM PROTOCOL_ERROR.
 * The client's FIN, a socket error or a close ends the session and its
 * streams at once (their upstream requests are cancelled): an HTTP/2
 * connection is never left half-closed.
 */
import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type net from 'node:net';
import type { Connection } from '../../listener/connection';
import type { WorkerContext } from '../../server/worker-context';
import type { ProtocolSession } from '../registry';
import { handleStream, type H2Peer } from './h2-stream';
import { failStream, type StreamCloser } from './stream-failure';
import { peerAddress } from '../../http/client-ip';
import { installStreamTable } from './stream-table';
import { FrameGuard } from './frame-guard';
import { resetStream } from './stream-end';

const MAX_RESETS_PER_SECOND = 200;
const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_PROTOCOL_ERROR } = http2.constants;

/** What the listener keeps per connection while its session is being set up, and after. */
interface Adopted {
  readonly socket: net.Socket;
  readonly guard: FrameGuard;
  readonly proto: 'http' | 'https';
  session: ServerHttp2Session | null;
  /** Streams whose request carried a field nghttp2 would drop, waiting for their 'stream' event (ids ascending). */
  malformed: number[];
}

export class Http2Listener {
  private readonly server: http2.Http2Server;
  private readonly sessions = new WeakMap<net.Socket, ServerHttp2Session>();
  private adopting: Adopted | null = null;

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
    const config = this.ctx.config;
    // The largest header block worth examining: one past this would exceed max_header_bytes decoded anyway.
    const maxBlockBytes = 2 * config.max_header_bytes + 16384;
    const adopted: Adopted = {
      socket,
      proto: (socket as net.Socket & { encrypted?: boolean }).encrypted === true ? 'https' : 'http',
      session: null,
      malformed: [],
      guard: new FrameGuard(
        socket,
        {
          connectionError: (code, reason) => this.connectionError(adopted, code, reason),
          malformed: (id, trailers) => this.malformedStream(adopted, id, trailers),
        },
        maxBlockBytes,
      ),
    };
    // The guard, not the socket, reads and writes for the codec: node wraps it in a JS stream socket.
    socket.setNoDelay(true);
    // The session is created within emit(); `session.socket` is a proxy of node's wrapper, not of this socket.
    this.adopting = adopted;
    try {
      this.server.emit('connection', adopted.guard);
    } finally {
      this.adopting = null;
    }
    // The peer's FIN, an error or a close: the connection is over, with every stream on it.
    const end = (): void => {
      const session = adopted.session;
      if (session && !session.destroyed) session.destroy();
      if (!socket.destroyed) socket.destroy();
    };
    socket.once('end', end);
    socket.once('close', end);
  }

  /** The guard found a frame the protocol forbids: GOAWAY with its code, and the connection closes. */
  private connectionError(adopted: Adopted, code: number, reason: string): void {
    this.ctx.log.debug({ remote: adopted.socket.remoteAddress, code, reason }, 'HTTP/2 connection error');
    closeWithGoaway(adopted, code);
  }

  /** A request carries a field nghttp2 drops: the stream is refused (RST_STREAM PROTOCOL_ERROR) once it exists. */
  private malformedStream(adopted: Adopted, id: number, trailers: boolean): void {
    this.ctx.log.debug({ remote: adopted.socket.remoteAddress, stream: id, trailers }, 'HTTP/2 malformed request field: stream refused');
    if (trailers) {
      // The stream is open already: reset it now (nghttp2 then ignores the rest of it).
      const stream = streamById(adopted.session, id);
      if (stream) return resetStream(stream, NGHTTP2_PROTOCOL_ERROR);
    }
    adopted.malformed.push(id);
  }

  /** GOAWAY: no new streams; the open ones finish. */
  drain(socket: net.Socket): void {
    const session = this.sessions.get(socket);
    if (session && !session.closed) session.close();
    else socket.destroy();
  }

  private readonly onStreamError = (err: Error): void => this.ctx.log.debug({ err }, 'HTTP/2 stream error');

  private onSession(session: ServerHttp2Session): void {
    const adopted = this.adopting;
    if (!adopted) {
      // Only adoptSocket() emits connections.
      session.destroy();
      return;
    }
    adopted.session = session;
    const socket = adopted.socket;
    this.sessions.set(socket, session);
    installStreamTable(session);
    if (this.ctx.draining) session.close();
    session.setTimeout(this.ctx.config.connection_timeout_ms, () => {
      // Idle: no frame in either direction for connection_timeout_ms.
      session.close();
      session.destroy();
    });
    const peer: H2Peer = { address: peerAddress(socket.remoteAddress), proto: adopted.proto };
    let windowStart = Date.now();
    let resets = 0;
    // A stream the client reset before its response was complete (resets of zproxy's own do not count): a flood of these closes the connection.
    const countReset = (): void => {
      const now = Date.now();
      if (now - windowStart > 1000) {
        windowStart = now;
        resets = 0;
      }
      if (++resets > MAX_RESETS_PER_SECOND && !session.destroyed) {
        this.ctx.log.warn({ remote: socket.remoteAddress }, 'HTTP/2 rapid reset: closing the connection');
        closeWithGoaway(adopted, NGHTTP2_ENHANCE_YOUR_CALM);
      }
    };
    // One listener per session, and per stream only 'error' (shared) and 'close'.
    session.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]) => {
      // A stream the client reset: its 'error' is the end of it, not a fault of the worker.
      stream.on('error', this.onStreamError);
      // Reset before the stream event came round: nothing to answer.
      if (stream.destroyed || stream.closed) {
        if (stream.aborted) countReset();
        return;
      }
      if (adopted.malformed.length !== 0 && takeMalformed(adopted.malformed, stream.id ?? 0)) {
        resetStream(stream, NGHTTP2_PROTOCOL_ERROR);
        return;
      }
      let closer: StreamCloser | undefined;
      try {
        closer = handleStream(this.ctx, stream, headers, flags, raw, peer);
      } catch (err) {
        failStream(this.ctx, stream, h2RequestId(headers), err);
      }
      stream.on('close', () => {
        if (stream.aborted) countReset();
        try {
          closer?.abort();
        } catch (err) {
          this.ctx.log.error({ err }, 'HTTP/2 stream cleanup failed');
        }
      });
    });
    session.on('error', (err) => this.ctx.log.debug({ err }, 'HTTP/2 session error'));
  }
}

/** A connection error: GOAWAY(`code`) goes out, the session and its streams end, the socket closes once it is sent. */
function closeWithGoaway(adopted: Adopted, code: number): void {
  const session = adopted.session;
  let lastStreamId = 0;
  try {
    lastStreamId = session && !session.destroyed ? (session.state.lastProcStreamID ?? 0) : 0;
  } catch {
    // no state: 0
  }
  adopted.guard.goAway(lastStreamId, code);
  if (session && !session.destroyed) session.destroy();
}

/**
 * Whether stream `id` was found malformed; ids below it whose stream never
 * came (nghttp2 refused it) are dropped on the way, so the list stays short.
 */
function takeMalformed(malformed: number[], id: number): boolean {
  let found = false;
  let keep = 0;
  for (const m of malformed) {
    if (m === id) found = true;
    else if (m > id) malformed[keep++] = m;
  }
  malformed.length = keep;
  return found;
}

/** An open stream of `session` by id (node keeps them in the session's table). */
function streamById(session: ServerHttp2Session | null, id: number): ServerHttp2Stream | undefined {
  if (!session) return undefined;
  const symbol = Object.getOwnPropertySymbols(session).find((s) => s.description === 'state');
  const state = symbol && (session as unknown as Record<symbol, { streams?: { get(id: number): unknown } }>)[symbol];
  const stream = state?.streams?.get(id);
  return stream as ServerHttp2Stream | undefined;
}

/** The request id a failure is reported under (the client's, when it sent one). */
function h2RequestId(headers: IncomingHttpHeaders): string {
  const id = headers['x-request-id'];
  return typeof id === 'string' ? id : '-';
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
