/**
 * One HTTP/1.x client connection, as a codec adapter of the pipeline
 * (pipeline/handle-request.ts): it reads request heads and bodies in order,
 * makes each request a RequestContext, and writes what the pipeline
 * decides — zproxy's own answer, or the upstream's response through a
 * proxy exchange — in HTTP/1's terms (its heads, its framing, its close).
 * Pipelined requests are answered in order: bytes that arrive while a
 * request is being answered (or waits on an asynchronous phase) are kept
 * (copied) and reading pauses until it is done.
 *
 * Bytes arrive either straight from the worker's reused read buffer
 * (onread) or as fresh chunks; anything kept across reads is copied.
 */
import type net from 'node:net';
import { nextRequestId, type RequestId } from '../../util/request-id';
import { writeThrough, writeThroughReused } from '../../util/socket-fd';
import type { Connection } from '../../listener/connection';
import type { WorkerContext } from '../../server/worker-context';
import type { ProtocolSession } from '../registry';
import { PendingHead, parseRequestHead, type RequestHead } from './request-head';
import { BodyReader } from './body-reader';
import { renderOwnResponse } from './response-writer';
import { BadRequestError, BodyTimeoutError, BodyTooLargeError, HeadersTooLargeError, HttpVersionError, InternalError, RequestTimeoutError, type ZproxyError } from '../../errors';
import { splitTarget } from '../../router/request-path';
import { upstreamPath } from '../../router/rewrite';
import { peerAddress } from '../../http/client-ip';
import { ForwardedFields } from '../../http/forwarded-fields';
import { forwardInterimHead, forwardRequestHead, forwardResponseHead, forwardSwitchingHead, rewriteResponseHead, type ForwardResponseOptions } from './forward-head';
import { isWebSocketUpgrade, openTunnel, type ClientTunnel, type TunnelUpgrade } from '../../tunnel/upgrade';
import { chunkSizeLine, frameChunk, lastChunk, CRLF } from './chunk-framing';
import type { MessageHead } from './field-lines';
import type { BodyFraming, ResponseHead } from './response-head';
import type { UpstreamGroup } from '../../upstream/upstreams';
import { COPY_BODY_MAX_BYTES, type ExchangeHandle } from '../../pipeline/client-side';
import { RequestContext } from '../../pipeline/request-context';
import { endRequest, handleRequest, type Downstream, type UpstreamRequest } from '../../pipeline/handle-request';
import { responseEdits } from '../../pipeline/edits';
import { editedResponse, errorResponse, type OwnResponse } from '../../pipeline/own-response';
import type { FieldEdits } from '../../pipeline/phases';
import { publishResponseHead } from '../../pipeline/diagnostics';

export class Http1Session implements ProtocolSession, Downstream {
  /** Unparsed bytes kept between reads (a partial head, or pipelined requests). */
  private buffered: Buffer | null = null;
  /** Where a partial head's bytes are kept, and how far they were scanned (linear work for a slow client). */
  private readonly pendingHead = new PendingHead();
  /** The current request's body, still arriving. */
  private body: BodyReader | null = null;
  /** zproxy's own answer, waiting for the request body to be read. */
  private direct: OwnResponse | null = null;
  private exchange: ExchangeHandle | null = null;
  /** The request being answered (null between requests). */
  private request: RequestContext | null = null;
  /** Its head: valid during the read that brought it, unless detached (`hold`). */
  private head: RequestHead | null = null;
  /** A request waiting on an asynchronous phase: nothing more is read until the pipeline has decided. */
  private held: RequestContext | null = null;
  private requestKeepAlive = true;
  private requestVersion: 0 | 1 = 1;
  private requestMethod = 'GET';
  private requestId: RequestId = 0;
  /** The current request's response head has been sent (or is held to go with its body). */
  private responseStarted = false;
  private closing = false;
  private draining = false;
  private processing = false;
  private pausedForUpstream = false;
  private pausedForPipeline = false;
  /** The socket was paused for either reason and not resumed since. */
  private socketPaused = false;
  /** The proxied response in progress ends the connection. */
  private closeAfterResponse = false;
  /** Its body is delimited by the close of the connection (no length, no chunks). */
  private closeDelimited = false;
  /**
   * The response body is framed chunked by zproxy: the upstream's chunked
   * body arrives decoded, and goes out in chunks of zproxy's own framing
   * (false for an HTTP/1.0 client, which gets the data delimited by the close).
   */
  private rechunk = false;
  /** After a 101: the connection is a WebSocket tunnel. */
  private tunnel: ClientTunnel | null = null;
  /**
   * A proxied response head waiting for the body bytes of the same upstream
   * read, so both are built into one buffer and leave in one write: one
   * segment and one wake-up of the client instead of two. It is held parsed
   * (its bytes are in the upstream connection's buffer, valid until the end
   * of that read): the exchange calls `flush` at the end of the read, so a
   * head never waits for a body that comes later.
   */
  private heldHead: ResponseHead | null = null;
  /** How the current response's head is forwarded (one response at a time per connection: filled per response). */
  private readonly responseOptions: ForwardResponseOptions = { requestId: 0, addRequestId: false, chunked: false, close: false, keepAliveHeader: false, edits: null };
  /** This connection's X-Forwarded-* lines (made at its first proxied request: TLS is set up by then). */
  private forwarded: ForwardedFields | null = null;

  constructor(
    private readonly conn: Connection,
    private readonly ctx: WorkerContext,
  ) {}

  get worker(): WorkerContext {
    return this.ctx;
  }

  get gone(): boolean {
    return this.conn.state === 'closed';
  }

  /** No HTTP/2 upstream for an HTTP/1 client: the pipeline answers 505. */
  readonly http2 = null;

  // --- ProtocolSession -------------------------------------------------------

  onData(buf: Buffer, start: number, end: number): void {
    if (this.tunnel) return this.tunnel.fromClient(buf, start, end, buf.buffer === this.ctx.readBuffer.buffer);
    if (this.closing) return;
    if (this.buffered) {
      const joined = this.pendingHead.append(this.buffered, buf, start, end);
      this.buffered = null;
      this.process(joined, 0, joined.length);
    } else {
      this.process(buf, start, end);
    }
  }

  onEnd(): void {
    if (this.tunnel) return; // the tunnel passes the half-close on
    // The client is gone (or half-closed, which nginx treats the same): whatever is in flight is abandoned.
    if (this.body || this.buffered || this.exchange) return this.conn.close();
    // Ended already (a response with `connection: close`): a second end() would only build an Error.
    if (!this.conn.socket.writableEnded) this.conn.socket.end();
  }

  onClose(): void {
    this.closing = true;
    this.tunnel?.clientClosed();
    this.exchange?.abort();
    this.exchange = null;
    this.endCurrent();
  }

  drain(): void {
    this.draining = true;
    if (this.conn.state !== 'active' && this.conn.state !== 'closing') this.conn.close();
  }

  onHeadTimeout(): void {
    this.fail(new RequestTimeoutError(), nextRequestId());
  }

  get awaitingBody(): boolean {
    return this.body !== null && !this.pausedForUpstream;
  }

  /** The body stopped arriving: 408 while nothing of the response has gone, else the close is the only signal left. */
  onBodyTimeout(): void {
    if (this.responseStarted) return this.conn.close();
    this.fail(new BodyTimeoutError(), this.requestId);
  }

  // --- ClientSide (what a ProxyExchange sees) ---------------------------------

  get pendingBytes(): number {
    return this.conn.socket.writableLength;
  }

  private get keepAlive(): boolean {
    return this.requestKeepAlive && !this.draining && !this.ctx.draining;
  }

  private write(data: Buffer, onFlushed?: () => void): void {
    if (this.heldHead) this.flush();
    this.conn.socket.write(data, onFlushed);
  }

  /** Writes the held response head, if any (the exchange's upstream read is done). */
  flush(): void {
    if (this.heldHead === null) return;
    if (!this.conn.socket.destroyed) return this.sendHeldHead();
    this.heldHead = null;
  }

  /**
   * Sends the held head, followed by buf[start..end) when given, in one
   * write. It is made in place in the upstream's read buffer when the body
   * bytes follow it there (the usual small response, read whole: what lies
   * behind them is past the response and never used), and only what the
   * socket does not take at once is copied out; else it is built in a buffer
   * of its own.
   */
  private sendHeldHead(buf?: Buffer, start = 0, end = 0): void {
    const head = this.heldHead!;
    const options = this.responseOptions;
    this.heldHead = null;
    const socket = this.conn.socket;
    // In place only with the body bytes of this read: without them, bytes behind the head may still be on their way out.
    const messageEnd = buf === head.buf && start === head.headEnd ? rewriteResponseHead(head, options, end) : -1;
    if (messageEnd >= 0) writeThroughReused(socket, head.buf, head.start, messageEnd);
    else writeThrough(socket, forwardResponseHead(head, options, buf, start, end));
  }

  sendInterim(head: ResponseHead): void {
    if (this.requestVersion === 1) this.write(forwardInterimHead(head));
  }

  sendResponseHead(head: ResponseHead, framing: BodyFraming, requestId: RequestId, requestComplete: boolean): void {
    const http10 = this.requestVersion === 0;
    // An HTTP/1.0 client cannot take chunked: it gets the data, delimited by the close.
    const dechunk = http10 && framing === 'chunked';
    this.responseStarted = true;
    this.closeDelimited = framing === 'close' || dechunk;
    this.closeAfterResponse = !this.keepAlive || framing === 'close' || !requestComplete || dechunk;
    this.rechunk = framing === 'chunked' && !http10;
    const options = this.responseOptions;
    options.requestId = requestId;
    options.addRequestId = head.indexOfHeader('x-request-id') < 0;
    options.chunked = this.rechunk;
    options.close = this.closeAfterResponse;
    options.keepAliveHeader = http10 && !this.closeAfterResponse;
    const request = this.request!;
    options.edits = responseEdits(request, head.status, this.ctx);
    publishResponseHead(request, options.edits?.status ?? head.status);
    if (framing === 'none' || dechunk) return this.write(forwardResponseHead(head, options));
    this.heldHead = head;
  }

  sendBody(buf: Buffer, start: number, end: number, onFlushed: () => void): number {
    if (this.rechunk) return this.sendChunk(buf, start, end, onFlushed);
    if (this.heldHead !== null && end - start <= COPY_BODY_MAX_BYTES) {
      // Copied behind the held head (larger chunks follow it in their own write).
      this.sendHeldHead(buf, start, end);
      return 0;
    }
    this.write(buf.subarray(start, end), onFlushed);
    return 1;
  }

  /**
   * Body data as one chunk of zproxy's framing: copied when small and
   * nothing waits to be written, else relayed between its size line and
   * CRLF. (A copy written behind a relay still in flight would leave the
   * exchange waiting for a flush callback that never comes: the relay's
   * callback runs while the copy is still pending.)
   */
  private sendChunk(buf: Buffer, start: number, end: number, onFlushed: () => void): number {
    const socket = this.conn.socket;
    if (end - start <= COPY_BODY_MAX_BYTES && (this.heldHead !== null || socket.writableLength === 0)) {
      const chunk = frameChunk(buf, start, end);
      if (this.heldHead !== null) this.sendHeldHead(chunk, 0, chunk.length);
      else this.write(chunk);
      return 0;
    }
    if (this.heldHead) this.flush();
    // The flush callback goes with the last write: it runs once all three have left (a TLS socket calls each write back on its own).
    socket.cork();
    socket.write(chunkSizeLine(end - start));
    socket.write(buf.subarray(start, end));
    socket.write(CRLF, onFlushed);
    socket.uncork();
    return 1;
  }

  spliceTarget(): net.Socket | null {
    // Plain TCP only, and bytes passed on as they come (a length-framed body).
    if (this.rechunk || this.closing || this.conn.proto !== 'http') return null;
    this.flush();
    return this.conn.socket;
  }

  pauseReading(): void {
    this.pausedForUpstream = true;
    this.pauseSocket();
  }

  resumeReading(): void {
    this.pausedForUpstream = false;
    this.maybeResume();
  }

  exchangeDone(trailers: MessageHead | null): void {
    this.exchange = null;
    this.flush();
    if (this.rechunk) this.write(lastChunk(trailers));
    this.endCurrent();
    if (this.closeAfterResponse) return this.closeAfterWrite();
    this.requestDone();
  }

  exchangeFailed(error: ZproxyError, close: boolean): void {
    this.exchange = null;
    this.ctx.log.debug({ code: error.code, detail: error.message }, 'proxied request failed');
    const closeNow = close || !this.keepAlive;
    this.writeResponse(errorResponse(error, this.requestId), closeNow);
    this.endCurrent();
    if (closeNow) return this.closeAfterWrite();
    this.requestDone();
  }

  /**
   * The response broke off midway. Earlier answers still queued on the
   * socket are complete and go out first (a close would drop them); then
   * the connection ends, which the client reads as a cut-off body by its
   * framing. A body delimited by the close has no framing to tell: it is
   * reset, so a truncated one never looks complete.
   */
  abort(): void {
    this.exchange = null;
    this.endCurrent();
    if (this.closeDelimited) {
      this.closing = true;
      if (!this.conn.socket.destroyed) this.conn.socket.resetAndDestroy();
      return;
    }
    this.closeAfterWrite(true);
  }

  switchProtocols(upgrade: TunnelUpgrade): void {
    this.exchange = null;
    this.write(forwardSwitchingHead(upgrade.head, { requestId: upgrade.requestId, addRequestId: upgrade.head.indexOfHeader('x-request-id') < 0 }));
    const request = this.request!;
    this.request = null;
    publishResponseHead(request, 101);
    const clientPending = this.buffered;
    this.buffered = null;
    this.pausedForPipeline = false;
    const remote = this.conn.remoteAddress;
    this.tunnel = openTunnel({
      ctx: this.ctx,
      conn: this.conn,
      clientPending,
      upstream: upgrade.upstream,
      upstreamPending: upgrade.rest.length > 0 ? Buffer.from(upgrade.rest) : null,
      onClose: (result, kind) => {
        upgrade.onClosed();
        this.ctx.log.debug({ remote, tunnel: kind, ...result }, 'websocket tunnel closed');
        endRequest(request, this.ctx);
      },
    });
  }

  // --- reading requests -------------------------------------------------------

  private process(buf: Buffer, start: number, end: number): void {
    this.processing = true;
    const shared = buf.buffer === this.ctx.readBuffer.buffer;
    let at = start;
    while (at < end && !this.closing) {
      if (this.body) {
        at = this.readBody(buf, at, end, shared);
        continue;
      }
      if (this.exchange !== null || this.conn.socket.writableLength > UNSENT_HIGH_WATER) {
        // Pipelined bytes while a response is on its way, or while the client
        // leaves its answers unread: keep them, read no more until it is done
        // (or they have left), so memory stays bounded whatever it sends.
        this.buffered = Buffer.from(buf.subarray(at, end));
        this.pausedForPipeline = true;
        this.pauseSocket();
        if (this.exchange === null) this.conn.socket.once('drain', this.onOutputDrained);
        break;
      }
      const parsed = parseRequestHead(buf, at, end, { maxHeaderBytes: this.ctx.config.max_header_bytes }, this.pendingHead.progress);
      if (parsed.kind === 'incomplete') {
        // The head timeout runs from its first bytes (a head read whole never needs it).
        this.conn.setReadingHead();
        this.buffered = this.pendingHead.hold(buf, at, end);
        break;
      }
      if (parsed.kind === 'error') {
        this.fail(headError(parsed.status, parsed.reason), nextRequestId());
        break;
      }
      at = parsed.headEnd;
      try {
        this.startRequest(parsed.head);
      } catch (err) {
        // A bug must cost one request, not the worker.
        this.ctx.log.error({ err }, 'request handling failed');
        this.fail(new InternalError(), this.requestId);
      }
      if (this.held !== null && at < end && !this.closing) {
        // An asynchronous phase holds the request: its body and what follows wait, read no more.
        this.buffered = Buffer.from(buf.subarray(at, end));
        this.pausedForPipeline = true;
        this.pauseSocket();
        break;
      }
    }
    this.processing = false;
  }

  private readBody(buf: Buffer, start: number, end: number, shared: boolean): number {
    const { consumed, outcome } = this.body!.consume(buf, start, end);
    if ('error' in outcome) {
      this.fail(outcome.error === 'too_large' ? new BodyTooLargeError(outcome.detail) : new BadRequestError(outcome.detail), this.requestId);
      return end;
    }
    if (this.exchange && consumed > 0) {
      const forwarded = this.body!.forwardable(buf, start, start + consumed, shared);
      if (forwarded !== null) this.exchange.sendBody(forwarded);
    }
    if (outcome.done) {
      this.body = null;
      if (this.exchange) this.exchange.requestBodyDone();
      else if (this.direct) this.answerDirect();
    }
    return start + consumed;
  }

  /** A request head was read: a context for the pipeline, which decides through the Downstream methods below. */
  private startRequest(head: RequestHead): void {
    this.conn.setActive();
    this.responseStarted = false;
    this.requestKeepAlive = head.keepAlive;
    this.requestVersion = head.versionMinor;
    this.requestMethod = head.method;
    const clientRequestId = head.getHeader('x-request-id');
    this.requestId = clientRequestId ?? nextRequestId();
    const body = head.hasBody ? new BodyReader(head.contentLength, head.chunked, this.ctx.config.max_body_bytes) : null;
    if (body?.declaredTooLarge) return this.fail(new BodyTooLargeError(), this.requestId);
    this.body = body;
    this.head = head;
    const { path, query } = splitTarget(head.target);
    const forwarded = (this.forwarded ??= new ForwardedFields(peerAddress(this.conn.remoteAddress), this.conn.proto));
    this.request = new RequestContext(head.versionMinor === 1 ? 'HTTP/1.1' : 'HTTP/1.0', head.method, path, query, head.host, head, forwarded.peer, this.conn.proto, this.requestId, clientRequestId !== null, body !== null);
    handleRequest(this.request, this);
  }

  // --- Downstream (what the pipeline decides) ---------------------------------

  answer(request: RequestContext, response: OwnResponse): void {
    if (request !== this.request) return;
    this.direct = response;
    if (!this.body) this.answerDirect();
    // zproxy gives the 100 itself, as nginx does: the body is read (and dropped) either way.
    else if (this.head!.expectContinue) this.write(CONTINUE);
  }

  hold(request: RequestContext): void {
    this.held = request;
    // The head lives in a buffer the next read reuses: the request keeps a copy.
    this.head = this.head!.detached();
    request.headers = this.head;
  }

  release(request: RequestContext): void {
    if (this.held !== request) return;
    this.held = null;
    if (this.closing || this.processing) return;
    this.pausedForPipeline = false;
    const pending = this.buffered;
    if (pending) {
      this.buffered = null;
      this.process(pending, 0, pending.length);
    }
    this.maybeResume();
  }

  upstreamRequest(request: RequestContext, _group: UpstreamGroup, edits: FieldEdits | null): UpstreamRequest {
    const head = this.head!;
    const route = request.route!;
    const hostFromTarget = !route.preserve_host || head.host === null;
    const forwarded = this.forwarded!;
    // `websocket` left out of `protocols`: the request goes on as a plain one (Upgrade is hop-by-hop), as nginx does.
    const upgrade = this.body === null && isWebSocketUpgrade(head) && this.ctx.config.protocols.includes('websocket');
    return {
      head: forwardRequestHead(head, {
        path: upstreamPathOf(request),
        hostFromTarget,
        forwarded: forwarded.lines(head.host, head.getHeaderJoined('x-forwarded-for')),
        requestId: this.requestId,
        addRequestId: !request.clientRequestId,
        upgrade,
        edits,
      }),
      hostFromTarget,
      hasBody: this.body !== null,
      upgrade,
    };
  }

  startExchange(request: RequestContext, exchange: ExchangeHandle): void {
    if (request !== this.request) return exchange.abort();
    this.exchange = exchange;
    if (this.body === null) return;
    this.body.forward();
    // zproxy gives the 100 itself (Expect is not forwarded), as nginx does.
    if (this.head!.expectContinue) this.write(CONTINUE);
  }

  // --- answering --------------------------------------------------------------

  /** The request was read in full: give zproxy's own answer, then wait for the next one or close. */
  private answerDirect(): void {
    const response = this.direct!;
    this.direct = null;
    const close = !this.keepAlive;
    this.writeResponse(response, close);
    this.endCurrent();
    if (close) return this.closeAfterWrite();
    this.requestDone();
  }

  private writeResponse(response: OwnResponse, close: boolean): void {
    const request = this.request;
    if (request !== null) {
      const edits = responseEdits(request, response.status, this.ctx);
      if (edits !== null) response = editedResponse(response, edits);
      request.errorCode = response.error?.code ?? null;
      publishResponseHead(request, response.status);
    }
    this.write(
      renderOwnResponse(response, {
        date: this.ctx.httpDate,
        close,
        keepAliveHeader: this.requestVersion === 0,
        headOnly: this.requestMethod === 'HEAD',
      }),
    );
  }

  /** The current request is over (answered, failed or abandoned): the pipeline's log step. */
  private endCurrent(): void {
    const request = this.request;
    if (request === null) return;
    this.request = null;
    this.head = null;
    endRequest(request, this.ctx);
  }

  private readonly onOutputDrained = (): void => {
    if (!this.closing && this.exchange === null) this.requestDone();
  };

  /** Between requests: idle, then whatever the client pipelined. */
  private requestDone(): void {
    this.conn.setIdle();
    // Inside a read, its loop goes on; while a request is held, `release` goes on.
    if (this.processing || this.held !== null) return;
    this.pausedForPipeline = false;
    const pending = this.buffered;
    if (pending) {
      this.buffered = null;
      this.process(pending, 0, pending.length);
    }
    this.maybeResume();
  }

  private pauseSocket(): void {
    this.socketPaused = true;
    this.conn.socket.pause();
  }

  private maybeResume(): void {
    if (!this.socketPaused || this.pausedForUpstream || this.pausedForPipeline || this.closing) return;
    this.socketPaused = false;
    this.conn.socket.resume();
  }

  /** Answers with an error and closes this connection only. */
  private fail(error: ZproxyError, requestId: RequestId): void {
    if (this.closing) return;
    this.ctx.log.debug({ code: error.code, remote: this.conn.remoteAddress, detail: error.message }, 'request rejected');
    this.body = null;
    this.direct = null;
    this.buffered = null;
    this.exchange?.abort();
    this.exchange = null;
    this.held = null;
    this.conn.setActive();
    if (this.request !== null) {
      this.request.errorCode = error.code;
      publishResponseHead(this.request, error.status);
    }
    this.write(renderOwnResponse(errorResponse(error, requestId), { date: this.ctx.httpDate, close: true, keepAliveHeader: false, headOnly: false }));
    this.endCurrent();
    this.closeAfterWrite(true);
  }

  /**
   * Ends the connection after the last response. A client that asked for the
   * close and left nothing unread is done: the socket closes as soon as the
   * response is out, as nginx does; otherwise zproxy waits for the client's
   * own end (always after a rejected request: its rest may still be
   * coming), so late bytes cannot turn the close into a reset that destroys
   * the response. Either way the connection's deadline bounds it.
   */
  private closeAfterWrite(rejected = false): void {
    this.closing = true;
    const socket = this.conn.socket;
    // Whatever comes now is dropped (onData), but it must be read: a paused socket would never see the client's FIN or reset.
    if (this.socketPaused) {
      this.socketPaused = false;
      socket.resume();
    }
    if (rejected || this.requestKeepAlive || this.body !== null || this.buffered !== null) socket.end();
    // Plain TCP with nothing left in user space: close() sends it, then FIN. TLS ends properly (close_notify).
    else if (socket.writableLength === 0 && this.conn.proto === 'http') socket.destroy();
    else socket.end(() => socket.destroy());
    this.conn.setClosing();
  }
}

/** The path and query the upstream gets: the routed path, after strip_prefix/rewrite. */
function upstreamPathOf(request: RequestContext): string {
  return upstreamPath(request.match!, request.query);
}

/** The error for a request head the parser rejected. */
function headError(status: number, reason: string): ZproxyError {
  if (status === 431) return new HeadersTooLargeError();
  if (status === 505) return new HttpVersionError(reason);
  return new BadRequestError(reason);
}

const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

/**
 * Unsent response bytes past which a pipelining client's further requests
 * are not read until the socket drains (nginx reads one request at a time;
 * this keeps a client that never reads from making zproxy buffer answers).
 */
const UNSENT_HIGH_WATER = 256 * 1024;

export function openHttp1Session(conn: Connection, ctx: WorkerContext): ProtocolSession {
  return new Http1Session(conn, ctx);
}
