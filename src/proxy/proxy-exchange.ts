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
 */
import type net from 'node:net';
import type { RouteConfig } from '../config/types';
import type { WorkerContext } from '../server/worker-context';
import type { UpstreamGroup } from '../upstream/upstreams';
import type { Target } from '../upstream/target';
import type { UpstreamConnection, UpstreamExchange, UpstreamFailure } from '../upstream/upstream-connection';
import type { TunnelUpgrade } from '../tunnel/upgrade';
import type { RequestId } from '../util/request-id';
import type { ResponseHead, BodyFraming } from '../protocol/http1/response-head';
import type { MessageHead } from '../protocol/http1/field-lines';
import { closeHeadWithHost } from './forward-head';
import {
  InternalError,
  NoHealthyTargetError,
  UpstreamBadResponseError,
  UpstreamConnectError,
  UpstreamResetError,
  UpstreamTimeoutError,
  type ZproxyError,
} from '../errors';
import type { BalancerInput } from '../balancer/balancer-base';
import type { TunnelResult } from '../native/addon-types';
import { bodySpliceAvailable, BodySplice, SPLICE_MIN_BYTES } from './body-splice';

/**
 * Response body chunks up to this size may be copied by a client side
 * (sendBody returning 0): the upstream's buffer is free at once and the
 * upstream need not pause; larger ones are relayed from that buffer.
 */
export const COPY_BODY_MAX_BYTES = 16 * 1024;

/**
 * The client side of an exchange: the protocol session that asked (HTTP/1
 * today), which owns the client's wire format and connection decisions.
 */
export interface ClientSide {
  /** Bytes written to the client and not yet flushed. */
  readonly pendingBytes: number;
  pauseReading(): void;
  resumeReading(): void;
  /** A 1xx response other than 100 and 101. */
  sendInterim(head: ResponseHead): void;
  /** The final response head; `requestComplete` says whether the whole request body was read. */
  sendResponseHead(head: ResponseHead, framing: BodyFraming, requestId: RequestId, requestComplete: boolean): void;
  /**
   * Response body bytes without the upstream's framing (the client side
   * writes its own), living in the upstream connection's buffer. Returns how
   * many writes will call `onFlushed` once the client no longer needs that
   * memory (0: the bytes were copied).
   */
  sendBody(buf: Buffer, start: number, end: number, onFlushed: () => void): number;
  /** An upstream read was fully relayed: write anything held back to join it. */
  flush?(): void;
  /**
   * The client socket the rest of a response body may be spliced into (see
   * body-splice.ts), with anything held back written first; null when the
   * body must pass through JS (TLS, a changed framing, closing).
   */
  spliceTarget?(): net.Socket | null;
  /** The response is complete; `trailers`: a chunked body's trailer section, if any. */
  exchangeDone(trailers: MessageHead | null): void;
  /** The exchange failed before any response byte: answer with `error`; close the connection if `close`. */
  exchangeFailed(error: ZproxyError, close: boolean): void;
  /** The response broke off midway: the only honest signal left is closing the connection. */
  abort(): void;
  /** The upstream accepted the upgrade (101): relay it and tunnel (only asked of sides that send upgrades). */
  switchProtocols?(upgrade: TunnelUpgrade): void;
}

export interface ExchangeRequest {
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

/** Methods a proxy may send again after a failure (RFC 9110 §9.2.2). */
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export class ProxyExchange implements UpstreamExchange, BalancerInput {
  readonly method: string;
  readonly clientIp: string;
  readonly upgrading: boolean;
  private target: Target | null = null;
  private conn: UpstreamConnection | null = null;
  private attempts = 0;
  private staleRetried = false;
  /** Body chunks written while the connection was still connecting (replayable); null once connected. */
  private held: Buffer[] | null = null;
  private bodyStreamed = false;
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
    if (this.done || !this.conn) return;
    if (this.held) this.held.push(chunk);
    else this.bodyStreamed = true;
    if (!this.conn.write(chunk)) this.client.pauseReading();
  }

  requestBodyDone(): void {
    this.requestComplete = true;
  }

  /** The client went away: cancel the upstream request. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    this.bodySplice?.cancel();
    this.target?.end();
    this.conn?.destroy();
    this.conn = null;
  }

  // --- UpstreamExchange: what the connection reports -----------------------

  onConnected(): void {
    this.held = null;
  }

  onWritable(): void {
    this.client.resumeReading();
  }

  onInterim(head: ResponseHead): void {
    // 100 Continue was already given by zproxy itself (Expect is not forwarded).
    if (head.status !== 100) this.client.sendInterim(head);
  }

  onResponseHead(head: ResponseHead, framing: BodyFraming): void {
    this.responseStarted = true;
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
    this.done = true;
    const target = this.target!;
    target.recordSuccess();
    target.end();
    // An upgrade refused (any status but 101) leaves a connection that was never meant for reuse.
    if (!this.requestComplete || this.upgrading) this.conn!.spoil();
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

  onUpstreamError(failure: UpstreamFailure, error: Error): void {
    if (this.done) return;
    this.bodySplice?.cancel();
    const target = this.target!;
    const reused = this.conn !== null && this.conn.requests > 1;
    this.conn = null;
    target.end();
    if (failure !== 'bad_response') target.recordFailure(Date.now());
    this.ctx.log.debug({ failure, err: error, target: target.url, attempt: this.attempts }, 'upstream exchange failed');
    if (this.responseStarted) {
      this.done = true;
      return this.client.abort();
    }
    if (this.mayRetry(failure, reused)) return this.attempt(target);
    this.done = true;
    this.client.exchangeFailed(errorFor(failure, error), !this.requestComplete);
  }

  // --- internals -------------------------------------------------------------

  private attempt(exclude: Target | null): void {
    const target = this.group.balancer.pick(this, exclude);
    if (!target) {
      this.done = true;
      return this.client.exchangeFailed(new NoHealthyTargetError(), !this.requestComplete);
    }
    this.attempts++;
    this.target = target;
    target.begin();
    const pool = this.ctx.upstreams.pool(target);
    const conn = this.upgrading ? pool.connect() : pool.acquire();
    this.conn = conn;
    const replay = this.held;
    this.held = conn.state === 'connecting' ? [] : null;
    conn.assign(this, this.route.timeout_ms);
    conn.write(this.request.hostFromTarget ? closeHeadWithHost(this.request.head, target.authority) : this.request.head);
    if (replay) for (const chunk of replay) this.sendBody(chunk);
  }

  private mayRetry(failure: UpstreamFailure, reused: boolean): boolean {
    if (failure === 'connect') return this.attempts <= this.route.retries;
    if (failure !== 'reset' || this.bodyStreamed || !IDEMPOTENT.has(this.method)) return false;
    if (reused && !this.staleRetried) {
      // A pooled connection the upstream had already closed: once more on a fresh one, uncounted.
      this.staleRetried = true;
      this.attempts--;
      return true;
    }
    return this.attempts <= this.route.retries;
  }

  private clientFlushed(): void {
    this.relaysInFlight--;
    if (this.done) {
      if (this.relaysInFlight === 0) this.releaseConnection();
      return;
    }
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
    this.bodySplice = new BodySplice(conn.socket, socket, conn.spliceableBody, idleMs, (result, error) => this.onSpliced(conn, result, error));
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

function errorFor(failure: UpstreamFailure, error: Error): ZproxyError {
  const detail = (error as NodeJS.ErrnoException).code ?? error.message;
  switch (failure) {
    case 'connect':
      return new UpstreamConnectError(detail);
    case 'timeout':
      return new UpstreamTimeoutError();
    case 'bad_response':
      return new UpstreamBadResponseError(error.message);
    default:
      return new UpstreamResetError(detail);
  }
}
