/**
 * One HTTP/2 request stream: routed like any request, answered directly
 * (`respond` routes, errors) or proxied — to an HTTP/1.1 upstream through a
 * ProxyExchange, or stream to stream to an `h2c://` or `h2://` upstream (gRPC).
 *
 * Plain CONNECT (no `:protocol`) is refused (501): zproxy is no forward
 * proxy. A direct answer to a request whose body is still arriving is
 * followed by RST_STREAM NO_ERROR (stream-end.ts). An exception in one of a
 * stream's callbacks ends that stream (`failStream`: 500, or a reset once
 * the response head went) and is logged; it never leaves the stream open.
 */
import { nextRequestId, requestIdText } from '../../util/request-id';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { WorkerContext } from '../../server/worker-context';
import { splitTarget } from '../../router/request-path';
import { upstreamPath } from '../../router/rewrite';
import type { RouteHit } from '../../router/compile';
import type { UpstreamGroup } from '../../upstream/upstreams';
import { ProxyExchange } from '../../proxy/proxy-exchange';
import { BadPathError, BodyTooLargeError, InternalError, MethodNotAllowedError, NotFoundError, NotImplementedError } from '../../errors';
import { H2ClientSide, respondError } from './h2-client-side';
import { endAnswered, endedByPeer } from './stream-end';
import { h1RequestHead, h2HeaderValue } from './translate';
import { proxyToH2Upstream } from '../../proxy/h2-stream-proxy';
import { startAtEndOfTurn } from '../../proxy/start-batch';
import { tunnelH2WebSocket } from './h2-websocket';

const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
/** Fields of a `respond` route an HTTP/2 response does not carry (connection-specific ones; content-length is set here). */
const DIRECT_SKIP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings', 'content-length']);
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

/**
 * An exception escaped one of the stream's callbacks (a bug): logged, and the
 * stream ends — a 500 if no response head went yet, else a reset — with
 * whatever it fed (`cancel`: the upstream request) cancelled.
 */
export function failStream(ctx: WorkerContext, stream: ServerHttp2Stream, requestId: string, err: unknown, cancel?: StreamCloser): void {
  ctx.log.error({ err, requestId }, 'HTTP/2 stream handling failed');
  try {
    cancel?.abort();
  } catch (abortErr) {
    ctx.log.error({ err: abortErr, requestId }, 'HTTP/2 stream handling failed while cancelling');
  }
  try {
    respondError(stream, new InternalError(), requestId);
  } catch {
    if (!stream.destroyed) stream.destroy();
  }
}

/** `fn` as a stream callback that cannot leave the stream open by throwing. */
function guarded<A extends unknown[]>(ctx: WorkerContext, stream: ServerHttp2Stream, requestId: string, cancel: StreamCloser | undefined, fn: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      failStream(ctx, stream, requestId, err, cancel);
    }
  };
}

export function handleStream(ctx: WorkerContext, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[], conn: H2Peer): StreamCloser | undefined {
  const method = headers[':method'] ?? 'GET';
  const target = headers[':path'] ?? '/';
  const authority = headers[':authority'] ?? h2HeaderValue(headers, 'host') ?? '';
  const clientRequestId = h2HeaderValue(headers, 'x-request-id');
  const requestId = clientRequestId ?? requestIdText(nextRequestId());
  const hasBody = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) === 0;

  // Plain CONNECT asks for a TCP tunnel to :authority (RFC 9113 §8.5): zproxy is a reverse proxy, not a forward one.
  if (method === 'CONNECT' && headers[':protocol'] === undefined) return void respondError(stream, new NotImplementedError('CONNECT'), requestId);

  const { path, query } = splitTarget(target);
  const match = ctx.router.match(method, authority || null, path, (name) => h2HeaderValue(headers, name));
  if (match.kind === 'bad_path') return void respondError(stream, new BadPathError(), requestId);
  if (match.kind === 'not_found') return void respondError(stream, new NotFoundError(), requestId);
  if (match.kind === 'method_not_allowed') return void respondError(stream, new MethodNotAllowedError(), requestId, { allow: match.allow.join(', ') });

  const declared = Number(h2HeaderValue(headers, 'content-length') ?? -1);
  const limit = ctx.config.max_body_bytes;
  if (limit !== null && declared > limit) return void respondError(stream, new BodyTooLargeError(), requestId);

  const route = match.route;
  if (route.respond) return void respondDirect(stream, route.respond, method, hasBody);
  const group = ctx.upstreams.group(match.index)!;
  const upstreamTarget = upstreamPath(match, path, query);
  const peer = conn.address;
  if (method === 'CONNECT') {
    // Extended CONNECT (RFC 8441) for anything but WebSocket is not supported.
    if (headers[':protocol'] !== 'websocket') return void respondError(stream, new NotImplementedError(`CONNECT with :protocol ${String(headers[':protocol'])}`), requestId);
    // The tunnel speaks HTTP/1.1 Upgrade upstream: refused here, so an HTTP/2 target is not blamed for it.
    if (group.http2) return void respondError(stream, new NotImplementedError('WebSocket tunnels to HTTP/2 upstreams'), requestId);
    return tunnelH2WebSocket(ctx, stream, headers, { route, group, path: upstreamTarget, authority, peer, proto: conn.proto, requestId, addRequestId: clientRequestId === undefined });
  }
  if (group.http2) {
    return proxyToH2Upstream(ctx, stream, raw, { route, group, method, path: upstreamTarget, authority, requestId, addRequestId: clientRequestId === undefined, clientIp: peer, proto: conn.proto, hasBody });
  }
  return proxyToH1Upstream(ctx, stream, headers, raw, { match, group, method, upstreamTarget, authority, peer, proto: conn.proto, requestId, addRequestId: clientRequestId === undefined, hasBody, declared });
}

function respondDirect(stream: ServerHttp2Stream, respond: { status: number; headers: Record<string, string>; body: string }, method: string, hasBody: boolean): void {
  const headers: Record<string, string | number> = { ':status': respond.status };
  for (const [name, value] of Object.entries(respond.headers)) {
    const lower = name.toLowerCase();
    if (!DIRECT_SKIP.has(lower)) headers[lower] = value;
  }
  const body = Buffer.from(respond.body, 'utf8');
  headers['content-length'] = body.length;
  stream.respond(headers);
  stream.end(method === 'HEAD' ? undefined : body);
  // The request body, if any, is not wanted: a body still arriving is cut short after the response.
  if (hasBody) endAnswered(stream);
}

interface H1ProxyOptions {
  match: RouteHit;
  group: UpstreamGroup;
  method: string;
  upstreamTarget: string;
  authority: string;
  /** The client's address (the HTTP/2 connection's peer). */
  peer: string;
  proto: 'http' | 'https';
  requestId: string;
  addRequestId: boolean;
  hasBody: boolean;
  /** content-length as sent, or -1. */
  declared: number;
}

function proxyToH1Upstream(ctx: WorkerContext, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, raw: string[], o: H1ProxyOptions): StreamCloser {
  const route = o.match.route;
  const chunked = o.hasBody && o.declared < 0;
  const hostFromTarget = !route.preserve_host || o.authority === '';
  const trusted = ctx.trustedProxies;
  const clientIp = trusted.empty ? o.peer : trusted.clientAddress(o.peer, h2HeaderValue(headers, 'x-forwarded-for') ?? null);
  const hashHeader = o.group.hashHeader;
  const client = new H2ClientSide(stream, o.requestId, ctx.log);
  const exchange = new ProxyExchange(client, ctx, route, o.group, {
    method: o.method,
    head: h1RequestHead(raw, {
      method: o.method,
      path: o.upstreamTarget,
      authority: o.authority,
      hostFromTarget,
      clientIp: o.peer,
      proto: o.proto,
      requestId: o.requestId,
      addRequestId: o.addRequestId,
      chunked,
    }),
    hostFromTarget,
    requestId: o.requestId,
    hasBody: o.hasBody,
    clientIp,
    hashHeader,
    hashValue: hashHeader === null ? undefined : h2HeaderValue(headers, hashHeader),
  });
  client.attach(exchange);
  if (!o.hasBody) {
    startAtEndOfTurn(exchange);
    return exchange;
  }
  exchange.start();
  const limit = ctx.config.max_body_bytes;
  let received = 0;
  stream.on(
    'data',
    guarded(ctx, stream, o.requestId, exchange, (data: Buffer) => {
      received += data.length;
      if (limit !== null && received > limit) {
        exchange.abort();
        return respondError(stream, new BodyTooLargeError(), o.requestId);
      }
      exchange.sendBody(chunked ? Buffer.concat([Buffer.from(data.length.toString(16) + '\r\n', 'latin1'), data, CRLF]) : data);
    }),
  );
  stream.once(
    'end',
    guarded(ctx, stream, o.requestId, exchange, () => {
      // A reset is no end of the body: the last chunk would make a cut-short upload look complete.
      if (!endedByPeer(stream)) return exchange.abort();
      if (chunked) exchange.sendBody(LAST_CHUNK);
      exchange.requestBodyDone();
    }),
  );
  return exchange;
}
