/**
 * One HTTP/2 request stream, as a codec adapter of the pipeline
 * (pipeline/handle-request.ts): the stream's headers become a
 * RequestContext, and what the pipeline decides is written in HTTP/2's
 * terms — zproxy's own answer, the response of an HTTP/1.1 upstream through
 * a ProxyExchange (H2ClientSide), stream to stream to an `h2c://` or `h2://`
 * upstream (gRPC), or a WebSocket tunnel (RFC 8441 extended CONNECT).
 *
 * Plain CONNECT (no `:protocol`) is refused (501): zproxy is no forward
 * proxy. A direct answer to a request whose body is still arriving is
 * followed by RST_STREAM NO_ERROR (stream-end.ts). An exception in one of a
 * stream's callbacks ends that stream (`failStream`: 500, or a reset once
 * the response head went) and is logged; it never leaves the stream open.
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
import { webSocketUpstream } from './h2-websocket';
import { guarded, type StreamCloser } from './stream-failure';
import { endedByPeer } from './stream-end';
import type { ResponseHead } from '../http1/response-head';
import type { ExchangeHandle } from '../../pipeline/client-side';
import { RequestContext, type RequestHeaders } from '../../pipeline/request-context';
import { endRequest, handleRequest, type Downstream, type UpstreamRequest } from '../../pipeline/handle-request';
import { responseEdits } from '../../pipeline/edits';
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

export type { StreamCloser };

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
  const hasBody = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) === 0;
  const request = new RequestContext('HTTP/2', method, path, query, authority || null, new H2Headers(headers), conn.address, conn.proto, requestId, clientRequestId !== undefined, hasBody);
  request.tunnel = method === 'CONNECT' && headers[':protocol'] === 'websocket';
  const downstream = new H2Request(ctx, stream, headers, raw, request);
  const limit = ctx.config.max_body_bytes;
  // Plain CONNECT asks for a TCP tunnel to :authority (RFC 9113 §8.5): zproxy is a reverse proxy, not a forward one;
  // extended CONNECT (RFC 8441) for anything but WebSocket is not supported.
  if (method === 'CONNECT' && !request.tunnel) {
    const what = headers[':protocol'] === undefined ? 'CONNECT' : `CONNECT with :protocol ${String(headers[':protocol'])}`;
    downstream.answer(request, errorResponse(new NotImplementedError(what), requestId));
  } else if (limit !== null && downstream.declaredLength > limit) downstream.answer(request, errorResponse(new BodyTooLargeError(), requestId));
  else handleRequest(request, downstream);
  return downstream.closer;
}

/** One stream's request through the pipeline: the Downstream the pipeline answers through. */
class H2Request extends H2ClientSide implements Downstream {
  /** The exchange or tunnel carrying the request, cancelled when the stream closes. */
  private carrier: StreamCloser | null = null;
  /** Called once by the listener when the stream closes, whatever happened. */
  readonly closer: StreamCloser = { abort: () => this.streamClosed() };
  /** HTTP/2 upstreams are reached stream to stream (the pipeline's proxyToH2Upstream). */
  readonly http2: { readonly stream: ServerHttp2Stream; readonly raw: string[]; carriedBy(carrier: StreamCloser): void };

  constructor(
    private readonly ctx: WorkerContext,
    stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly raw: string[],
    private readonly request: RequestContext,
  ) {
    super(stream, request.requestIdText, ctx.log);
    this.http2 = { stream, raw, carriedBy: (carrier) => (this.carrier = carrier) };
  }

  /** The HEADERS frame did not end the stream: a body follows. */
  private get hasBody(): boolean {
    return this.request.hasBody;
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

  startExchange(_request: RequestContext, exchange: ExchangeHandle, upstream: UpstreamRequest): void {
    this.carrier = exchange;
    this.attach(exchange);
    // A tunnel's bytes flow once it is open (h2-websocket.ts): they are no request body.
    if (!this.hasBody || upstream.upgrade) return;
    const { ctx, stream, requestId } = this;
    const chunked = this.declaredLength < 0;
    const limit = ctx.config.max_body_bytes;
    let received = 0;
    stream.on(
      'data',
      guarded(ctx, stream, requestId, exchange, (data: Buffer) => {
        received += data.length;
        if (limit !== null && received > limit) {
          exchange.abort();
          return respondError(stream, new BodyTooLargeError(), requestId);
        }
        exchange.sendBody(chunked ? Buffer.concat([Buffer.from(data.length.toString(16) + '\r\n', 'latin1'), data, CRLF]) : data);
      }),
    );
    stream.once(
      'end',
      guarded(ctx, stream, requestId, exchange, () => {
        // A reset is no end of the body: the last chunk would make a cut-short upload look complete.
        if (!endedByPeer(stream)) return exchange.abort();
        if (chunked) exchange.sendBody(LAST_CHUNK);
        exchange.requestBodyDone();
      }),
    );
  }

  /** Extended CONNECT (RFC 8441): the HTTP/1.1 Upgrade request, and the side that turns its 101 into a tunnel. */
  webSocketUpstream(request: RequestContext, edits: FieldEdits | null): ReturnType<typeof webSocketUpstream> {
    return webSocketUpstream(this.ctx, this.stream, this.raw, {
      route: request.route!,
      path: upstreamPath(request.match!, request.query),
      authority: request.authority ?? '',
      peer: request.peer,
      proto: request.scheme,
      requestId: this.requestId,
      addRequestId: !request.clientRequestId,
      edits,
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
