/**
 * One request as the pipeline sees it, whatever protocol brought it: made
 * by the codec (HTTP/1 session, HTTP/2 stream) from what it parsed, filled
 * by the pipeline as the request goes (route, client IP, outcome), and read
 * by every phase, the access log and the metrics.
 *
 * The header view may point into a read buffer that is reused after the
 * read (HTTP/1): a step that goes asynchronous asks the codec to detach it
 * first (`Downstream.hold`), so the context outlives the read only then.
 */
import type { RouteConfig } from '../config/types';
import type { RouteHit } from '../router/compile';
import { requestIdText, type RequestId } from '../util/request-id';
import { NO_PHASES, type RoutePhases } from './phases';

/** A request's fields, by lower-case name. */
export interface RequestHeaders {
  /** The first field of that name. */
  get(lowerName: string): string | undefined;
  /** Every field of that name, joined with ", " (cookies with "; " on HTTP/2). */
  joined(lowerName: string): string | undefined;
}

export type ClientProtocol = 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2';

export class RequestContext {
  /** The route's hit (params, matched prefix, normalised path), once routed. */
  match: RouteHit | null = null;
  /** The route's phases, once routed. */
  phases: RoutePhases = NO_PHASES;
  /** A WebSocket tunnel asked for by HTTP/2's extended CONNECT (RFC 8441), set by the codec. */
  tunnel = false;
  /** The client as policies see it: the peer, or what trusted proxies say (`trusted_proxies`). */
  clientIp: string;
  /** State a middleware keeps for this request (made on first use). */
  private ownLocals: Record<string, unknown> | null = null;

  // What happened, for onLog, the access log and the metrics.
  /** The status sent to the client (0 while none was). */
  status = 0;
  /** The error code of a response zproxy made itself (`ZP_ERR_*`), or null. */
  errorCode: string | null = null;
  /** The upstream target that answered (its URL), or null. */
  upstream: string | null = null;
  /** When the request started and its upstream exchange began, in ms from `performance.now()`; 0 when not observed. */
  startedAt = 0;
  upstreamAt = 0;
  /** The request ended (answered, failed or abandoned): its log phase ran. */
  ended = false;

  constructor(
    readonly protocol: ClientProtocol,
    readonly method: string,
    /** The path as sent (before normalisation), without the query. */
    readonly path: string,
    /** With its "?" ("" when absent), as sent. */
    readonly query: string,
    /** Host or :authority (null when an HTTP/1.0 request has none). */
    readonly authority: string | null,
    public headers: RequestHeaders,
    /** The connection's peer address (IPv4-mapped IPv6 as IPv4). */
    readonly peer: string,
    /** How the client reached zproxy. */
    readonly scheme: 'http' | 'https',
    readonly requestId: RequestId,
    /** The client sent its own X-Request-Id (passed on as it came). */
    readonly clientRequestId: boolean,
    /** A body follows the head (Content-Length above 0 or chunked; on HTTP/2, no END_STREAM on HEADERS). */
    readonly hasBody: boolean,
  ) {
    this.clientIp = peer;
  }

  get route(): RouteConfig | null {
    return this.match === null ? null : this.match.route;
  }

  /** The request id as text (made on demand: a generated id is a counter until a string is needed). */
  get requestIdText(): string {
    return requestIdText(this.requestId);
  }

  /** A place for middleware state (one object per request, made on first use). */
  get locals(): Record<string, unknown> {
    return (this.ownLocals ??= {});
  }
}
