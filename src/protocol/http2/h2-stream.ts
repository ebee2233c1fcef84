/**
 * One HTTP/2 request stream, as a codec adapter of the pipeline
 * (pipeline/handle-request.ts): the stream's headers become a
 * RequestContext, and what the pipeline decides is written in HTTP/2's
 * terms — zproxy's own answer, the response of an HTTP/1.1 upstream through
 * a ProxyExchange (H2ClientSide), stream to stream to an `h2c://` or `h2://`
 * upstream (gRPC), or a WebSocket tunnel (RFC 8441 extended CONNECT).
 */
import { nextRequestId, requestIdText } from '../../util/request-id';
import http2, { type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { WorkerContext } from '../../server/worker-context';
import { splitTarget } from '../../router/request-path';
import { upstreamPath } from '../../router/rewrite';
import type { UpstreamGroup } from '../../upstream/upstreams';
import { BodyTooLargeError, NotImplementedError } from '../../errors';
import { H2ClientSide, respondError, respondOwn } from './h2-client-side';
import { h1RequestHead, h2HeaderValue } from './translate';
import { proxyToH2Upstream } from '../../proxy/h2-stream-proxy';
import { tunnelH2WebSocket } from './h2-websocket';
import type { ResponseHead } from '../http1/response-head';
import type { ExchangeHandle } from '../../pipeline/client-side';
import { RequestContext, type RequestHeaders } from '../../pipeline/request-context';
import { endRequest, handleRequest, responseEdits, type Downstream, type UpstreamRequest } from '../../pipeline/handle-request';
import { editedResponse, errorResponse, type OwnResponse } from '../../pipeline/own-response';
import type { FieldEdits } from '../../pipeline/phases';
import { publishResponseHead } from '../../pipeline/diagnostics';

const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');

/** The connection a stream came on, worked out once per session. */
export interface H2Peer {
  /** The client's address (the HTTP/2 connection's peer). */
  readonly address: string;
  readonly proto: 'http' | 'https';
}

/** What to stop when the stream closes (the listener's one 'close' listener calls it). */
export interface StreamCloser {
  abort(): void;
}

/** An HTTP/2 request's fields as the pipeline reads them. */
class H2Headers implements RequestHeaders {
  constructor(private readonly headers: IncomingHttpHeaders) {}

  get(lowerName: string): string | undefined {
    const value = this.headers[lowerName];
    return Array.isArray(value) ? value[0] : value;
  }

  joined(lowerName: string): string | undefined {
    return h2HeaderValue(this.headers, lowerName);
  }
}

export function handleStream(ctx: WorkerContext, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[], conn: H2Peer): StreamCloser {
  const method = headers[':method'] ?? 'GET';
  const authority = headers[':authority'] ?? h2HeaderValue(headers, 'host') ?? '';
  const clientRequestId = h2HeaderValue(headers, 'x-request-id');
  const requestId = clientRequestId ?? requestIdText(nextRequestId());
  const { path, query } = splitTarget(headers[':path'] ?? '/');
  const request = new RequestContext('HTTP/2', method, path, query, authority || null, new H2Headers(headers), conn.address, conn.proto, requestId, clientRequestId !== undefined);
  request.tunnel = method === 'CONNECT' && headers[':protocol'] === 'websocket';
  const downstream = new H2Request(ctx, stream, headers, raw, request, (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) === 0);
  const limit = ctx.config.max_body_bytes;
  // Plain CONNECT asks for a TCP tunnel to :authority (RFC 9113 §8.5): zproxy is a reverse proxy, not a forward one.
  if (method === 'CONNECT' && !request.tunnel) downstream.answer(request, errorResponse(new NotImplementedError('CONNECT'), requestId));
  else if (limit !== null && downstream.declaredLength > limit) downstream.answer(request, errorResponse(new BodyTooLargeError(), requestId));
  else handleRequest(request, downstream);
  return downstream.closer;
}

/** One stream's request through the pipeline: the Downstream the pipeline answers through. */
class H2Request extends H2ClientSide implements Downstream {
  /** The exchange or tunnel carrying the request, cancelled when the stream closes. */
  private carrier: StreamCloser | null = null;
  /** Called once by the listener when the stream closes, whatever happened. */
  readonly closer: StreamCloser = { abort: () => this.streamClosed() };
  /** An HTTP/1 client side's 505; HTTP/2 upstreams are reached stream to stream. */
  readonly proxyToHttp2 = (request: RequestContext, group: UpstreamGroup, edits: FieldEdits | null): void => {
    const route = request.route!;
    // The stream proxy cancels its upstream stream itself when this stream closes.
    proxyToH2Upstream(this.ctx, this.stream, this.raw, {
      context: request,
      edits,
      route,
      group,
      method: request.method,
      path: upstreamPath(request.match!, request.query),
      authority: request.authority ?? '',
      requestId: this.requestId,
      addRequestId: !request.clientRequestId,
      clientIp: request.clientIp,
      hasBody: this.hasBody,
    });
  };

  constructor(
    private readonly ctx: WorkerContext,
    stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly raw: string[],
    private readonly request: RequestContext,
    /** The HEADERS frame did not end the stream: a body follows. */
    private readonly hasBody: boolean,
  ) {
    super(stream, request.requestIdText);
  }

  get worker(): WorkerContext {
    return this.ctx;
  }

  get gone(): boolean {
    return this.stream.destroyed;
  }

  /** content-length as sent (nghttp2 checks it against the DATA), or -1. */
  get declaredLength(): number {
    return Number(h2HeaderValue(this.headers, 'content-length') ?? -1);
  }

  answer(request: RequestContext, response: OwnResponse): void {
    const edits = responseEdits(request, response.status, this.ctx);
    if (edits !== null) response = editedResponse(response, edits);
    request.errorCode = response.error?.code ?? null;
    publishResponseHead(request, response.status);
    // The request body, if any, is not wanted: reading it keeps flow control moving.
    if (this.hasBody) this.stream.resume();
    respondOwn(this.stream, response, request.method);
  }

  /** The fields live in the headers object, not in a reused buffer: only the body waits. */
  hold(): void {
    this.stream.pause();
  }

  release(): void {
    this.stream.resume();
  }

  upstreamRequest(request: RequestContext, _group: UpstreamGroup, edits: FieldEdits | null): UpstreamRequest {
    const route = request.route!;
    const authority = request.authority ?? '';
    const hostFromTarget = !route.preserve_host || authority === '';
    const head = h1RequestHead(this.raw, {
      method: request.method,
      path: upstreamPath(request.match!, request.query),
      authority,
      hostFromTarget,
      clientIp: request.peer,
      proto: request.scheme,
      requestId: this.requestId,
      addRequestId: !request.clientRequestId,
      contentLength: this.declaredLength,
      hasBody: this.hasBody,
      edits,
    });
    return { head, hostFromTarget, hasBody: this.hasBody, upgrade: false };
  }

  startExchange(_request: RequestContext, exchange: ExchangeHandle): void {
    this.carrier = exchange;
    if (!this.hasBody) return;
    const chunked = this.declaredLength < 0;
    const limit = this.ctx.config.max_body_bytes;
    let received = 0;
    this.stream.on('data', (data: Buffer) => {
      received += data.length;
      if (limit !== null && received > limit) {
        exchange.abort();
        return respondError(this.stream, new BodyTooLargeError(), this.requestId);
      }
      exchange.sendBody(chunked ? Buffer.concat([Buffer.from(data.length.toString(16) + '\r\n', 'latin1'), data, CRLF]) : data);
    });
    this.stream.once('end', () => {
      if (chunked) exchange.sendBody(LAST_CHUNK);
      exchange.requestBodyDone();
    });
  }

  /** Extended CONNECT (RFC 8441): a WebSocket tunnel to an HTTP/1.1 upstream. */
  tunnelWebSocket(request: RequestContext, group: UpstreamGroup): void {
    // The tunnel speaks HTTP/1.1 Upgrade upstream: refused here, so an HTTP/2 target is not blamed for it.
    if (group.http2) return this.answer(request, errorResponse(new NotImplementedError('WebSocket tunnels to HTTP/2 upstreams'), request.requestId));
    tunnelH2WebSocket(this.ctx, this.stream, this.headers, {
      group,
      path: upstreamPath(request.match!, request.query),
      authority: request.authority ?? '',
      preserveHost: request.route!.preserve_host,
      clientIp: request.peer,
      requestId: this.requestId,
    });
  }

  protected override responseHeaders(head: ResponseHead): OutgoingHttpHeaders {
    const headers = super.responseHeaders(head);
    const edits = responseEdits(this.request, head.status, this.ctx);
    if (edits !== null) {
      for (const name of edits.removed) delete headers[name];
      for (const [name, value] of edits.added) headers[name.toLowerCase()] = value;
      headers[':status'] = edits.status;
    }
    publishResponseHead(this.request, Number(headers[':status']));
    return headers;
  }

  private streamClosed(): void {
    this.carrier?.abort();
    this.carrier = null;
    endRequest(this.request, this.ctx);
  }
}
