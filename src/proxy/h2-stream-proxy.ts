/**
 * An HTTP/2 request proxied stream to stream to an `h2c://` or `h2://`
 * target (gRPC end to end): headers, DATA with backpressure both ways, and
 * trailers pass through; a trailers-only response stays one HEADERS frame.
 * `:scheme` is the target's (`https` for h2://). Failures before
 * the response starts are retried like HTTP/1 ones (connect failures; resets
 * of bodiless idempotent requests), afterwards the client stream is reset
 * (RST_STREAM, never END_STREAM: protocol/http2/stream-end.ts). A client that
 * goes away resets the upstream stream with CANCEL, so a cut-short upload
 * never looks complete upstream. A response that completes while the
 * request body is still arriving is followed by RST_STREAM NO_ERROR. An
 * exception in any of the callbacks ends the client stream (500, or a reset)
 * and cancels the upstream stream.
 */
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { RouteConfig } from '../config/types';
import type { WorkerContext } from '../server/worker-context';
import type { UpstreamGroup } from '../upstream/upstreams';
import type { Target } from '../upstream/target';
import type { BalancerInput } from '../balancer/balancer-base';
import { NoHealthyTargetError, UpstreamBadResponseError, UpstreamConnectError, UpstreamResetError, UpstreamTimeoutError, timedOut, type ZproxyError } from '../errors';
import { respondError } from '../protocol/http2/h2-client-side';
import { endAnswered, endedByPeer, resetStream } from '../protocol/http2/stream-end';
import { failStream, type StreamCloser } from '../protocol/http2/stream-failure';
import { IDEMPOTENT } from './retry-policy';
import { connectFailureOf } from '../upstream/h2-sessions';
import { HOP_BY_HOP, SET_BY_PROXY, hasUnderscore } from '../http/forwarding-rules';
import { forwardedFields } from '../http/forwarded-fields';
import type { RequestContext } from '../pipeline/request-context';
import type { FieldEdits, ResponseEdits } from '../pipeline/phases';
import { responseEdits } from '../pipeline/edits';
import { publishResponseHead } from '../pipeline/diagnostics';

export interface H2ProxyRequest {
  /** The request as the pipeline sees it (its phases, the target that answers). */
  context: RequestContext;
  /** The upstream-request phases' edits (null: none). */
  edits: FieldEdits | null;
  route: RouteConfig;
  group: UpstreamGroup;
  method: string;
  /** Path and query for the upstream. */
  path: string;
  authority: string;
  requestId: string;
  addRequestId: boolean;
  clientIp: string;
  /** The client connection's scheme, for X-Forwarded-Proto. */
  proto: 'http' | 'https';
  hasBody: boolean;
}

/**
 * Request fields that never go upstream, or that the proxy sets
 * (forwarding-rules.ts). `te` passes: on HTTP/2 it can only be `trailers`
 * (nghttp2 refuses anything else), which gRPC needs end to end; `expect` is
 * the upstream's to answer on a stream.
 */
const SKIP: ReadonlySet<string> = new Set([...HOP_BY_HOP.filter((name) => name !== 'te'), ...SET_BY_PROXY.filter((name) => name !== 'expect'), 'host']);
const { NGHTTP2_FLAG_END_STREAM, NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;

/** What a 502 says went wrong: the error's code, else its message. */
function errorDetail(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}

export function proxyToH2Upstream(ctx: WorkerContext, stream: ServerHttp2Stream, raw: string[], request: H2ProxyRequest): StreamCloser {
  const proxy = new H2StreamProxy(ctx, stream, raw, request);
  proxy.guard(() => proxy.attempt(null));
  return proxy;
}

class H2StreamProxy implements BalancerInput, StreamCloser {
  readonly clientIp: string;
  private upstream: ClientHttp2Stream | null = null;
  private target: Target | null = null;
  private attempts = 0;
  private responded = false;
  private done = false;
  private trailers: IncomingHttpHeaders | null = null;
  /** The response's content-length (-1: none) and the body bytes relayed so far. */
  private declaredLength = -1;
  private received = 0;

  constructor(
    private readonly ctx: WorkerContext,
    private readonly client: ServerHttp2Stream,
    private readonly raw: string[],
    private readonly request: H2ProxyRequest,
  ) {
    this.clientIp = request.clientIp;
    client.on('drain', () => this.guard(() => this.upstream?.resume()));
    if (request.hasBody) this.pipeRequestBody();
  }

  /** The client stream closed (the listener's 'close' listener). */
  abort(): void {
    this.cancel();
  }

  /** Runs `fn`; an exception ends the client stream and cancels the upstream one. */
  guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      failStream(this.ctx, this.client, this.request.requestId, err, { abort: () => this.cancel() });
    }
  }

  getHeader(lowerName: string): string | undefined {
    for (let i = 0; i < this.raw.length; i += 2) if (this.raw[i] === lowerName) return this.raw[i + 1];
    return undefined;
  }

  attempt(exclude: Target | null): void {
    const target = this.request.group.balancer.pick(this, exclude);
    if (!target) return this.fail(new NoHealthyTargetError());
    this.attempts++;
    this.target = target;
    target.begin();
    let upstream: ClientHttp2Stream;
    try {
      upstream = this.ctx.h2Sessions.get(target, this.request.group.config).request(this.upstreamHeaders(target), { endStream: !this.request.hasBody });
    } catch (err) {
      return this.onUpstreamError(err as Error);
    }
    this.upstream = upstream;
    // Once a stream has failed (and maybe been replaced by a retry's), its late events are not this request's.
    const current = () => this.upstream === upstream;
    upstream.setTimeout(this.request.route.timeout_ms, () =>
      this.guard(() => {
        if (current()) this.onUpstreamError(timedOut('upstream response timed out'), true);
      }),
    );
    upstream.on('response', (headers, flags) => this.guard(() => this.onResponse(headers, flags)));
    upstream.on('trailers', (trailers) => (this.trailers = trailers));
    upstream.on('data', (chunk: Buffer) =>
      this.guard(() => {
        if (this.done || this.client.destroyed || this.client.closed) return;
        this.received += chunk.length;
        if (!this.client.write(chunk)) upstream.pause();
      }),
    );
    upstream.on('end', () => this.guard(() => this.onEnd(upstream)));
    upstream.on('error', (err) =>
      this.guard(() => {
        if (current()) this.onUpstreamError(err);
      }),
    );
    upstream.on('close', () =>
      this.guard(() => {
        if (!current() || this.done) return;
        if (!this.responded) return this.onUpstreamError(new Error(`upstream stream closed (code ${upstream.rstCode})`));
        this.target?.end();
        this.reset();
      }),
    );
  }

  private upstreamHeaders(target: Target): OutgoingHttpHeaders {
    const { route, path, authority, method, requestId, addRequestId } = this.request;
    const headers: OutgoingHttpHeaders = {
      ':method': method,
      ':path': path,
      ':scheme': target.secure ? 'https' : 'http',
      ':authority': route.preserve_host && authority !== '' ? authority : target.authority,
    };
    const removed = this.request.edits?.removed;
    let forwardedFor: string | null = null;
    for (let i = 0; i < this.raw.length; i += 2) {
      const name = this.raw[i];
      if (name.charCodeAt(0) === 0x3a || SKIP.has(name) || hasUnderscore(name) || removed?.has(name)) {
        if (name === 'x-forwarded-for') forwardedFor = forwardedFor ? `${forwardedFor}, ${this.raw[i + 1]}` : this.raw[i + 1];
        continue;
      }
      addField(headers, name, this.raw[i + 1]);
    }
    if (this.request.edits) for (const [name, value] of this.request.edits.added) addField(headers, name.toLowerCase(), value);
    for (const [name, value] of forwardedFields(this.request.context.peer, this.request.proto, authority, forwardedFor)) headers[name] = value;
    if (addRequestId) headers['x-request-id'] = requestId;
    return headers;
  }

  private pipeRequestBody(): void {
    this.client.on('data', (chunk: Buffer) =>
      this.guard(() => {
        const upstream = this.upstream;
        if (upstream && !upstream.write(chunk)) {
          this.client.pause();
          upstream.once('drain', () => this.client.resume());
        }
      }),
    );
    this.client.once('end', () =>
      this.guard(() => {
        // A reset is no END_STREAM: the upstream stream is reset, so a cut-short upload never looks complete.
        if (!endedByPeer(this.client)) return this.cancel();
        if (this.upstream && !this.upstream.destroyed && !this.upstream.closed) this.upstream.end();
      }),
    );
  }

  private onResponse(headers: IncomingHttpHeaders, flags: number): void {
    if (this.done || this.client.destroyed || this.client.closed) return;
    const outgoing: OutgoingHttpHeaders = { ...headers };
    if (outgoing['x-request-id'] === undefined) outgoing['x-request-id'] = this.request.requestId;
    const edits = responseEdits(this.request.context, Number(headers[':status']), this.ctx);
    if (edits !== null) applyEdits(outgoing, edits);
    publishResponseHead(this.request.context, Number(outgoing[':status']));
    const trailersOnly = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    try {
      this.client.respond(outgoing, { endStream: trailersOnly, waitForTrailers: !trailersOnly });
    } catch (err) {
      // A head node:http2 will not send as it is: 502, and the upstream stream is cancelled.
      this.ctx.log.warn({ err, requestId: this.request.requestId }, 'HTTP/2: upstream response cannot be relayed; answered 502');
      this.cancel();
      return respondError(this.client, new UpstreamBadResponseError((err as Error).message), this.request.requestId);
    }
    this.responded = true;
    // The body length to expect: content-length, except where no body follows whatever it says.
    const length = headers['content-length'];
    const status = Number(headers[':status']);
    const bodiless = this.request.method === 'HEAD' || status === 204 || status === 304;
    this.declaredLength = !bodiless && typeof length === 'string' && /^\d+$/.test(length) ? Number(length) : -1;
    if (trailersOnly) {
      this.finish();
      endAnswered(this.client);
      return;
    }
    this.client.once('wantTrailers', () => {
      try {
        this.client.sendTrailers(this.trailers ?? {});
      } catch (err) {
        this.ctx.log.warn({ err, requestId: this.request.requestId }, 'HTTP/2: upstream trailers cannot be relayed; stream reset');
        resetStream(this.client, NGHTTP2_INTERNAL_ERROR);
      }
    });
  }

  private onEnd(upstream: ClientHttp2Stream): void {
    if (this.done || this.upstream !== upstream) return;
    // node ends the readable side of the streams of a session it destroys, before any response too.
    if (!this.responded) return this.onUpstreamError(new Error(`upstream stream ended without a response (code ${upstream.rstCode})`));
    if (this.cutShort(upstream)) {
      // No END_STREAM from the upstream: the client's stream is reset, never ended.
      this.target?.end();
      this.target?.recordFailure(Date.now());
      return this.reset();
    }
    this.finish();
    if (this.client.destroyed || this.client.closed) return;
    if (!this.client.writableEnded) this.client.end();
    endAnswered(this.client);
  }

  /**
   * Whether an 'end' of the upstream stream is no complete response: a body
   * shorter (or longer) than its content-length; or, without one, an 'end'
   * node made up: it destroys the streams of a session whose connection
   * drops and ends their readable side on the way, with a non-zero code.
   * Trailers mean the response arrived whole.
   */
  private cutShort(upstream: ClientHttp2Stream): boolean {
    if (this.declaredLength >= 0) return this.received !== this.declaredLength;
    if (this.trailers !== null) return false;
    return upstream.destroyed && (upstream.rstCode ?? NGHTTP2_NO_ERROR) !== NGHTTP2_NO_ERROR;
  }

  /** The upstream response is complete. */
  private finish(): void {
    this.done = true;
    this.target?.recordSuccess();
    this.target?.end();
  }

  private onUpstreamError(err: Error, timedOut = false): void {
    if (this.done) return;
    const target = this.target;
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream) resetStream(upstream, NGHTTP2_CANCEL);
    target?.end();
    target?.recordFailure(Date.now());
    this.ctx.log.debug({ err, target: target?.url, attempt: this.attempts }, 'h2 upstream stream failed');
    if (this.responded) return this.reset();
    const connectFailure = connectFailureOf(err);
    const retryable = !timedOut && !this.request.hasBody && (connectFailure !== undefined || IDEMPOTENT.has(this.request.method));
    if (retryable && this.attempts <= this.request.route.retries) return this.attempt(target);
    this.fail(timedOut ? new UpstreamTimeoutError() : connectFailure ? new UpstreamConnectError(errorDetail(connectFailure)) : new UpstreamResetError(errorDetail(err)));
  }

  private fail(error: ZproxyError): void {
    this.done = true;
    respondError(this.client, error, this.request.requestId);
  }

  /** The response broke off: reset this stream only (RST_STREAM, never END_STREAM). */
  private reset(): void {
    this.done = true;
    resetStream(this.client, NGHTTP2_INTERNAL_ERROR);
  }

  /** The client went away (or the response cannot be relayed): the upstream stream is reset, never ended. */
  private cancel(): void {
    if (this.done) return;
    this.done = true;
    this.target?.end();
    if (this.upstream) resetStream(this.upstream, NGHTTP2_CANCEL);
  }
}

/** Adds a field to an HTTP/2 header object (a repeated one becomes a list). */
function addField(headers: OutgoingHttpHeaders, name: string, value: string): void {
  const prior = headers[name];
  headers[name] = prior === undefined ? value : ([] as string[]).concat(prior as string | string[], value);
}

/** A response phase's edits on an HTTP/2 response's fields. */
function applyEdits(headers: OutgoingHttpHeaders, edits: ResponseEdits): void {
  for (const name of edits.removed) delete headers[name];
  for (const [name, value] of edits.added) addField(headers, name.toLowerCase(), value);
  headers[':status'] = edits.status;
}
