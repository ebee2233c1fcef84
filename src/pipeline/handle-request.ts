/**
 * The one way a request goes through zproxy, whatever protocol brought it
 * (issue 11):
 *
 *   route -> request phases -> pick target -> upstream exchange
 *         -> response phases -> log
 *
 * A codec (the HTTP/1 session, the HTTP/2 stream) parses a request into a
 * RequestContext and calls `handleRequest`; what the pipeline decides comes
 * back through the codec's `Downstream`: answer it (an error, a route's
 * `respond`, a phase's answer), or forward it, with a head the codec builds
 * in its own terms and a body it feeds to the exchange. The codec calls
 * `endRequest` once the request is over, whatever happened: the log phase
 * and the end event always run, exactly once.
 */
import type { ZproxyError } from '../errors';
import { BadPathError, HttpVersionError, InternalError, MethodNotAllowedError, NotFoundError, NotImplementedError } from '../errors';
import type { ServerHttp2Stream } from 'node:http2';
import { proxyToH2Upstream } from '../proxy/h2-stream-proxy';
import { upstreamPath } from '../router/rewrite';
import type { WorkerContext } from '../server/worker-context';
import type { UpstreamGroup } from '../upstream/upstreams';
import { ProxyExchange, type ExchangeRequest } from '../proxy/proxy-exchange';
import { startAtEndOfTurn } from './start-batch';
import type { ClientSide, ExchangeHandle } from './client-side';
import type { RequestContext } from './request-context';
import type { FieldEdits, Answer, RequestVerdict } from './phases';
import { upstreamEdits } from './edits';
import { errorResponse, phaseResponse, routeResponse, type OwnResponse } from './own-response';
import { publishEnd, publishRoute, publishStart } from './diagnostics';

/** The forwarded request as the codec builds it, for an HTTP/1.1 upstream. */
export interface UpstreamRequest {
  /** The head; open (no Host, no blank line) when `hostFromTarget`. */
  readonly head: Buffer;
  readonly hostFromTarget: boolean;
  readonly hasBody: boolean;
  /** A WebSocket upgrade: a fresh upstream connection, and a 101 becomes a tunnel. */
  readonly upgrade: boolean;
}

/** What the pipeline asks of the codec a request came through. */
export interface Downstream extends ClientSide {
  readonly worker: WorkerContext;
  /** zproxy answers the request itself (its body, if any, is read and dropped first). */
  answer(request: RequestContext, response: OwnResponse): void;
  /**
   * A phase went asynchronous: the request must outlive the current read
   * (copy what points into a reused buffer) and nothing more is read from
   * the client until the pipeline has decided.
   */
  hold(request: RequestContext): void;
  /** The pipeline has decided (answered or forwarded) a held request: reading goes on. */
  release(request: RequestContext): void;
  /** The client is gone: a held request's phases end there. */
  readonly gone: boolean;
  /** The head for an HTTP/1.1 upstream, with the upstream-request phases' edits. */
  upstreamRequest(request: RequestContext, group: UpstreamGroup, edits: FieldEdits | null): UpstreamRequest;
  /** The exchange carries the request from now on: the codec feeds it the body. */
  startExchange(request: RequestContext, exchange: ExchangeHandle, upstream: UpstreamRequest): void;
  /**
   * The HTTP/2 stream, for a stream-to-stream exchange with an HTTP/2
   * upstream (null for HTTP/1 clients: 505); `carriedBy` is told what to
   * cancel when the stream closes.
   */
  readonly http2: { readonly stream: ServerHttp2Stream; readonly raw: string[]; carriedBy(carrier: { abort(): void }): void } | null;
  /**
   * A WebSocket tunnel asked for in the codec's own way (`request.tunnel`:
   * HTTP/2's extended CONNECT): its Upgrade request, and the client side
   * that turns the upstream's 101 into the codec's tunnel.
   */
  webSocketUpstream?(request: RequestContext, edits: FieldEdits | null): { side: ClientSide & { attach(exchange: ExchangeHandle): void }; upstream: UpstreamRequest };
}

export function handleRequest(request: RequestContext, downstream: Downstream): void {
  publishStart(request);
  const worker = downstream.worker;
  const match = worker.router.match(request.method, request.authority, request.path, (name) => request.headers.get(name));
  if (match.kind !== 'route') return downstream.answer(request, errorResponse(routeError(match), request.requestId, match.kind === 'method_not_allowed' ? [['allow', match.allow.join(', ')]] : []));
  request.match = match;
  request.phases = worker.phases.of(match.index);
  const trusted = worker.trustedProxies;
  if (!trusted.empty) request.clientIp = trusted.clientAddress(request.peer, request.headers.joined('x-forwarded-for') ?? null);
  publishRoute(request);
  if (request.phases.onRequest.length === 0) return proceed(request, downstream);
  runRequestPhases(request, downstream, 0, false);
}

function routeError(match: { kind: 'not_found' | 'method_not_allowed' | 'bad_path' }): ZproxyError {
  if (match.kind === 'bad_path') return new BadPathError();
  return match.kind === 'not_found' ? new NotFoundError() : new MethodNotAllowedError();
}

/**
 * Runs the request phases from `from`. The first that answers ends the
 * request there; the first that returns a promise holds the request until
 * it settles. A phase that throws or rejects costs its request a 500 and a
 * log line, never the worker.
 */
function runRequestPhases(request: RequestContext, downstream: Downstream, from: number, held: boolean): void {
  const phases = request.phases.onRequest;
  for (let i = from; i < phases.length; i++) {
    let verdict: RequestVerdict | Promise<RequestVerdict>;
    try {
      verdict = phases[i](request);
    } catch (err) {
      return phaseFailed(request, downstream, err, held);
    }
    if (verdict === undefined || verdict === null) continue;
    if (typeof (verdict as Promise<RequestVerdict>).then === 'function') {
      if (!held) downstream.hold(request);
      (verdict as Promise<RequestVerdict>).then(
        (settled) => {
          if (downstream.gone) return;
          if (settled) return decide(request, downstream, () => answerWith(request, downstream, settled));
          runRequestPhases(request, downstream, i + 1, true);
        },
        (err: unknown) => {
          if (!downstream.gone) phaseFailed(request, downstream, err, true);
        },
      );
      return;
    }
    return decide(request, downstream, () => answerWith(request, downstream, verdict as Answer), held);
  }
  decide(request, downstream, () => proceed(request, downstream), held);
}

/** Runs the decision, then lets a held request's client be read again. */
function decide(request: RequestContext, downstream: Downstream, decision: () => void, held = true): void {
  decision();
  if (held) downstream.release(request);
}

function answerWith(request: RequestContext, downstream: Downstream, answer: Answer): void {
  downstream.answer(request, phaseResponse(answer));
}

function phaseFailed(request: RequestContext, downstream: Downstream, err: unknown, held: boolean): void {
  downstream.worker.log.error({ err, route: request.route?.path, request_id: request.requestIdText }, 'middleware failed: the request gets a 500');
  decide(request, downstream, () => downstream.answer(request, errorResponse(new InternalError('middleware failed'), request.requestId)), held);
}

/** After the request phases: the route's own answer, or the upstream. */
function proceed(request: RequestContext, downstream: Downstream): void {
  const match = request.match!;
  const route = match.route;
  if (route.respond) return downstream.answer(request, routeResponse(route.respond));
  const worker = downstream.worker;
  const group = worker.upstreams.group(match.index)!;
  const edits = upstreamEdits(request);
  if (request.tunnel && downstream.webSocketUpstream !== undefined) {
    // The tunnel speaks HTTP/1.1 Upgrade upstream: refused here, so an HTTP/2 target is not blamed for it.
    if (group.http2) return downstream.answer(request, errorResponse(new NotImplementedError('WebSocket tunnels to HTTP/2 upstreams'), request.requestId));
    const { side, upstream } = downstream.webSocketUpstream(request, edits);
    const exchange = exchangeFor(request, side, worker, group, upstream);
    side.attach(exchange);
    downstream.startExchange(request, exchange, upstream);
    return exchange.start();
  }
  if (group.http2) {
    if (downstream.http2 === null) return downstream.answer(request, errorResponse(new HttpVersionError("this route's upstream speaks HTTP/2 only"), request.requestId));
    const http2 = downstream.http2;
    const proxy = proxyToH2Upstream(worker, http2.stream, http2.raw, {
      context: request,
      edits,
      route,
      group,
      method: request.method,
      path: upstreamPath(match, request.query),
      authority: request.authority ?? '',
      requestId: request.requestIdText,
      addRequestId: !request.clientRequestId,
      clientIp: request.clientIp,
      proto: request.scheme,
      hasBody: request.hasBody,
    });
    return http2.carriedBy(proxy);
  }
  const upstream = downstream.upstreamRequest(request, group, edits);
  const exchange = exchangeFor(request, downstream, worker, group, upstream);
  downstream.startExchange(request, exchange, upstream);
  if (upstream.hasBody) exchange.start();
  else startAtEndOfTurn(exchange);
}

/** The exchange that carries `request` to an HTTP/1.1 upstream of `group`, answering through `client`. */
function exchangeFor(request: RequestContext, client: ClientSide, worker: WorkerContext, group: UpstreamGroup, upstream: UpstreamRequest): ProxyExchange {
  const hashHeader = group.hashHeader;
  const exchangeRequest: ExchangeRequest = {
    context: request,
    method: request.method,
    head: upstream.head,
    hostFromTarget: upstream.hostFromTarget,
    requestId: request.requestId,
    hasBody: upstream.hasBody,
    clientIp: request.clientIp,
    hashHeader,
    hashValue: hashHeader === null ? undefined : request.headers.joined(hashHeader),
    upgrade: upstream.upgrade,
  };
  return new ProxyExchange(client, worker, request.match!.route, group, exchangeRequest);
}

/** The request is over, whatever happened: the log phases and the end event, once. */
export function endRequest(request: RequestContext, worker: WorkerContext): void {
  if (request.ended) return;
  request.ended = true;
  const phases = request.phases.onLog;
  for (let i = 0; i < phases.length; i++) {
    try {
      phases[i](request);
    } catch (err) {
      worker.log.error({ err, request_id: request.requestIdText }, 'middleware log phase failed');
    }
  }
  publishEnd(request);
}
