/**
 * One request proxied to an upstream over HTTP/1.1: picks a target with the
 * route's balancer, takes a pooled connection, sends the head and streams
 * the body, relays the response to the client, and decides retries.
 *
 * Retries (SPEC §5, issue 3): a connect failure is retried on another target
 * up to the route's `retries`, since nothing was sent; a connection that
 * resets before the response starts is retried only for idempotent requests
 * whose body has not been streamed yet (a stale pooled connection once more,
 * transparently). Nothing is retried once the response has started.
 *
 * At the target's max_connections the request waits in line for a
 * connection (connection-pool.ts), as the pool's ConnectionWaiter, and gets
 * a 503 when none comes within the connect timeout.
 *
 * A retry replays the whole request, or is not made. Body bytes that arrive
 * before the request has a connected upstream (waiting in line, or
 * connecting) are held (`unsent`; past HOLD_BODY_BYTES the client's reading
 * pauses), so a connect failure sends them all to the next target; once a
 * body byte went to a connected upstream, nothing can replay it, and a reset
 * is a 502. Pausing the client's reading is this exchange's business alone
 * (holdClient), and every way it ends undoes its pause: a keep-alive
 * connection always goes on to its next request, or closes.
 *
 * An upstream that answers before the whole body arrived (a 413; python's
 * http.server answering a POST with 501) gets no more of it, as nginx stops
 * sending once the response head is out: the rest is read and dropped, and
 * the client connection closes after the response.
 *
 * The route's timeout_ms bounds silence (upstream-connection.ts): the
 * upstream's, or while the client has not taken what was relayed, the
 * client's, which ends the exchange without blaming the target.
 */
import type { RouteConfig } from '../config/types';
import type { WorkerContext } from '../server/worker-context';
import type { UpstreamGroup } from '../upstream/upstreams';
import type { Target } from '../upstream/target';
import type { ConnectionPool, ConnectionWaiter } from '../upstream/connection-pool';
import type { UpstreamConnection, UpstreamExchange } from '../upstream/upstream-connection';
import type { RequestId } from '../util/request-id';
import type { ResponseHead, BodyFraming } from '../protocol/http1/response-head';
import type { MessageHead } from '../protocol/http1/field-lines';
import type { ClientSide } from '../pipeline/client-side';
import type { RequestContext } from '../pipeline/request-context';
import { markUpstream } from '../pipeline/diagnostics';
import { closeHeadWithHost } from '../protocol/http1/forward-head';
import { InternalError, NoHealthyTargetError, UpstreamBusyError, UpstreamResetError, type ZproxyError } from '../errors';
import type { BalancerInput } from '../balancer/balancer-base';
import type { TunnelResult } from '../native/addon-types';
import { bodySpliceAvailable, BodySplice, SPLICE_MIN_BYTES } from './body-splice';
import { IDEMPOTENT, blamesTarget, mayRetry } from './retry-policy';

/**
 * Request body bytes held while the request has no connected upstream
 * before reading from the client pauses: one read of a client connection.
 * The reads already under way may add one more, so a request holds at most
 * about twice this, and always all it has received: a retry replays it whole.
 */
const HOLD_BODY_BYTES = 64 * 1024;

export interface ExchangeRequest {
  /** The request as the pipeline sees it (the target that answers is noted on it). */
  readonly context?: RequestContext;
  readonly method: string;
  /** The forwarded head; open (no Host, no blank line) when `hostFromTarget`. */
  readonly head: Buffer;
  readonly hostFromTarget: boolean;
  readonly requestId: RequestId;
  readonly hasBody: boolean;
  readonly clientIp: string;
  /** The one request header a consistent-hash balancer reads (captured: the parsed head does not outlive the read). */
  readonly hashHeader: string | null;
  readonly hashValue: string | undefined;
  /** A WebSocket upgrade: a fresh upstream connection, a 101 becomes a tunnel. */
  readonly upgrade?: boolean;
}

export class ProxyExchange implements UpstreamExchange, ConnectionWaiter, BalancerInput {
  readonly method: string;
  readonly clientIp: string;
  readonly upgrading: boolean;
  private target: Target | null = null;
  private conn: UpstreamConnection | null = null;
  /** The pool whose line this request waits in, if it does. */
  private waitingIn: ConnectionPool | null = null;
  private attempts = 0;
  private staleRetried = false;
  /** Body bytes not yet written to a connected upstream (a retry sends them all); null once connected, and without a body. */
  private unsent: Buffer[] | null;
  private unsentBytes = 0;
  /** A body byte went to a connected upstream: nothing can replay it any more. */
  private bodySent = false;
  /** The upstream answered before the whole body: the rest is dropped. */
  private bodyDropped = false;
  /** This exchange paused the client's reading (see holdClient). */
  private clientPaused = false;
  private requestComplete: boolean;
  private responseStarted = false;
  private upstreamPaused = false;
  /** Relayed body writes that still point into the connection's buffer. */
  private relaysInFlight = 0;
  /** Their flush callback, made at the first relay: most responses are copied whole and never need it. */
  private onClientFlushed: (() => void) | null = null;
  /** The rest of the body is moving in the kernel; null before, after, or never. */
  private bodySplice: BodySplice | null = null;
  private spliceTried = false;
  private done = false;

  constructor(
    private readonly client: ClientSide,
    private readonly ctx: WorkerContext,
    private readonly route: RouteConfig,
    private readonly group: UpstreamGroup,
    private readonly request: ExchangeRequest,
  ) {
    this.method = request.method;
    this.clientIp = request.clientIp;
    this.upgrading = request.upgrade === true;
    this.requestComplete = !request.hasBody;
    this.unsent = request.hasBody ? [] : null;
  }

  getHeader(lowerName: string): string | undefined {
    return lowerName === this.request.hashHeader ? this.request.hashValue : undefined;
  }

  /** Sends the request (not if it was aborted before starting); a bug here costs this request a 500, not the worker. */
  start(): void {
    if (this.done) return;
    try {
      this.attempt(null);
    } catch (err) {
      this.ctx.log.error({ err }, 'request handling failed');
      this.abort();
      this.client.exchangeFailed(new InternalError(), true);
    }
  }

  /** Raw request body bytes, framing included, in memory the exchange may keep. */
  sendBody(chunk: Buffer): void {
    if (this.done || this.bodyDropped) return;
    const unsent = this.unsent;
    if (unsent !== null) {
      unsent.push(chunk);
      this.unsentBytes += chunk.length;
      if (this.unsentBytes >= HOLD_BODY_BYTES) this.holdClient(true);
      return;
    }
    this.bodySent = true;
    if (!this.conn!.write(chunk)) this.holdClient(true);
  }

  requestBodyDone(): void {
    this.requestComplete = true;
  }

  /** The client went away, or its side gave up on the request: cancel the upstream request. */
  abort(): void {
    if (this.done) return;
    this.finish();
    this.waitingIn?.cancel(this);
    this.bodySplice?.cancel();
    this.target?.end();
    this.conn?.destroy();
    this.conn = null;
  }

  // --- ConnectionWaiter: what the pool reports to a request in line -------

  connectionReady(conn: UpstreamConnection): void {
    this.waitingIn = null;
    this.use(conn);
  }

  waitTimedOut(): void {
    this.waitingIn = null;
    this.refuseBusy();
  }

  // --- UpstreamExchange: what the connection reports -----------------------

  onConnected(): void {
    if (!this.done && this.conn !== null) this.sendUnsent(this.conn);
  }

  onWritable(): void {
    if (this.unsent === null) this.holdClient(false);
  }

  onInterim(head: ResponseHead): void {
    // 100 Continue was already given by zproxy itself (Expect is not forwarded).
    if (head.status !== 100) this.client.sendInterim(head);
  }

  onResponseHead(head: ResponseHead, framing: BodyFraming): void {
    this.responseStarted = true;
    if (!this.requestComplete) {
      this.bodyDropped = true;
      this.holdClient(false);
    }
    this.client.sendResponseHead(head, framing, this.request.requestId, this.requestComplete);
  }

  /** Relays body bytes that live in the upstream connection's buffer, pausing it until the client has them. */
  onResponseBody(buf: Buffer, start: number, end: number): void {
    const relays = this.client.sendBody(buf, start, end, (this.onClientFlushed ??= () => this.clientFlushed()));
    this.relaysInFlight += relays;
    // Paused only with a relay in flight, whose flush resumes it; a copy is small and needs no wait.
    if (relays > 0 && this.client.pendingBytes > 0 && !this.upstreamPaused && this.conn) {
      this.upstreamPaused = true;
      this.conn.pause();
    }
  }

  onReadDone(): void {
    this.client.flush?.();
    if (!this.spliceTried && !this.done && this.conn !== null && this.conn.spliceableBody >= SPLICE_MIN_BYTES) this.offerSplice(this.conn);
  }

  onResponseEnd(trailers: MessageHead | null): void {
    if (this.done) return;
    this.finish();
    const target = this.target!;
    target.recordSuccess();
    target.end();
    // An upgrade refused (any status but 101) leaves a connection that was never meant for reuse.
    if (!this.requestComplete || this.bodyDropped || this.upgrading) this.conn!.spoil();
    // The connection's buffer may still back a client write: hand it back once flushed.
    if (this.relaysInFlight === 0) this.releaseConnection();
    this.client.exchangeDone(trailers);
  }

  onSwitchingProtocols(head: ResponseHead, rest: Buffer): void {
    if (this.done) return;
    this.done = true;
    this.responseStarted = true;
    const target = this.target!;
    const conn = this.conn!;
    this.conn = null;
    target.recordSuccess();
    if (!this.client.switchProtocols) {
      target.end();
      conn.destroy();
      return this.client.abort();
    }
    // The tunnel stays one of the target's active connections (least_connections) until it closes.
    this.client.switchProtocols({ head, upstream: conn, rest, requestId: this.request.requestId, onClosed: () => target.end() });
  }

  onUpstreamError(error: ZproxyError): void {
    if (this.done) return;
    this.bodySplice?.cancel();
    const target = this.target!;
    const reused = this.conn !== null && this.conn.requests > 1;
    this.conn = null;
    target.end();
    if (blamesTarget(error)) target.recordFailure(Date.now());
    this.ctx.log.debug({ code: error.code, detail: error.message, target: target.url, attempt: this.attempts }, 'upstream exchange failed');
    if (this.responseStarted) {
      this.finish();
      return this.client.abort();
    }
    if (this.staleConnection(error, reused) || mayRetry(error, { method: this.method, attempts: this.attempts, retries: this.route.retries, bodySent: this.bodySent })) return this.attempt(target);
    this.fail(error);
  }

  // --- internals -------------------------------------------------------------

  private attempt(exclude: Target | null): void {
    const target = this.group.balancer.pick(this, exclude);
    if (!target) return this.fail(new NoHealthyTargetError());
    this.attempts++;
    this.target = target;
    target.begin();
    const context = this.request.context;
    if (context !== undefined) {
      context.upstream = target.url;
      markUpstream(context);
    }
    // Retried after a reset, the request had sent no body byte: the new connection gets the body from its start.
    if (this.request.hasBody && this.unsent === null) this.unsent = [];
    const pool = this.ctx.upstreams.pool(target);
    const acquired = pool.acquire(this, this.upgrading);
    if (acquired === 'queued') this.waitingIn = pool;
    else if (acquired === 'full') this.refuseBusy();
    else this.use(acquired);
  }

  /** No connection to the target within its max_connections: not the target's failure. */
  private refuseBusy(): void {
    this.target!.end();
    this.fail(new UpstreamBusyError());
  }

  /** Sends the request on `conn`: the head at once, the body held so far once it is connected. */
  private use(conn: UpstreamConnection): void {
    this.conn = conn;
    conn.assign(this, this.route.timeout_ms);
    conn.write(this.request.hostFromTarget ? closeHeadWithHost(this.request.head, this.target!.authority) : this.request.head);
    if (conn.state !== 'connecting') this.sendUnsent(conn);
  }

  /** The request's upstream is connected: the body held so far goes out, and the client may send more unless the upstream is full. */
  private sendUnsent(conn: UpstreamConnection): void {
    const unsent = this.unsent;
    if (unsent === null) return;
    this.unsent = null;
    this.unsentBytes = 0;
    let writable = true;
    for (let i = 0; i < unsent.length; i++) writable = conn.write(unsent[i]);
    if (unsent.length > 0) this.bodySent = true;
    this.holdClient(!writable);
  }

  /** Pauses or resumes the client's reading, as far as this exchange is concerned. */
  private holdClient(paused: boolean): void {
    if (paused === this.clientPaused) return;
    this.clientPaused = paused;
    if (paused) this.client.pauseReading();
    else this.client.resumeReading();
  }

  /** The exchange is over for the client: whatever it paused goes on. */
  private finish(): void {
    this.done = true;
    this.holdClient(false);
  }

  /** The exchange failed before any response byte. */
  private fail(error: ZproxyError): void {
    this.finish();
    this.client.exchangeFailed(error, !this.requestComplete);
  }

  /**
   * A pooled connection the upstream had already closed (a reset of a reused
   * connection, for a request safe to send again): once more on a fresh
   * connection, uncounted, whatever `retries` says — the upstream never saw it.
   */
  private staleConnection(error: ZproxyError, reused: boolean): boolean {
    if (!reused || this.staleRetried || !(error instanceof UpstreamResetError) || this.bodySent || !IDEMPOTENT.has(this.method)) return false;
    this.staleRetried = true;
    this.attempts--;
    return true;
  }

  private clientFlushed(): void {
    this.relaysInFlight--;
    if (this.done) {
      if (this.relaysInFlight === 0) this.releaseConnection();
      return;
    }
    this.conn?.markProgress();
    if (this.client.pendingBytes > 0 || this.bodySplice !== null) return;
    this.resumeUpstream();
  }

  private resumeUpstream(): void {
    if (!this.upstreamPaused) return;
    this.upstreamPaused = false;
    this.conn?.resume();
  }

  /** Hands the rest of a large body to the kernel when the client side can take it that way. */
  private offerSplice(conn: UpstreamConnection): void {
    this.spliceTried = true;
    const socket = this.client.spliceTarget?.() ?? null;
    if (socket === null || !bodySpliceAvailable()) return;
    if (!this.upstreamPaused) {
      this.upstreamPaused = true;
      conn.pause();
    }
    // In the kernel no one sees which side stalls: the shorter of the upstream's and the client's timeouts bounds both.
    const idleMs = Math.min(this.route.timeout_ms, this.ctx.config.send_timeout_ms);
    this.bodySplice = new BodySplice(
      conn.socket,
      socket,
      conn.spliceableBody,
      idleMs,
      (result, error) => this.onSpliced(conn, result, error),
      () => conn.transferRunning(),
    );
    this.bodySplice.start();
  }

  private onSpliced(conn: UpstreamConnection, result: TunnelResult | null, error?: Error): void {
    this.bodySplice = null;
    if (this.done || this.conn !== conn) return;
    if (result === null) {
      // No transfer ran: JavaScript relays the body (and a socket already gone is seen closing).
      if (error) this.ctx.log.warn({ err: error }, 'body splice refused; the body is relayed through JavaScript');
      if (this.client.pendingBytes === 0) this.resumeUpstream();
      return;
    }
    if (result.side === 'destination') {
      // The client went away or stopped reading mid-body: nothing to blame the upstream for.
      this.abort();
      return this.client.abort();
    }
    conn.bodySpliced(result);
  }

  private releaseConnection(): void {
    const conn = this.conn;
    if (!conn) return;
    this.conn = null;
    if (this.upstreamPaused) conn.resume();
    this.ctx.upstreams.pool(this.target!).release(conn);
  }
}
