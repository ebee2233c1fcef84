/**
 * Translation between HTTP/2 requests and HTTP/1.1 upstream messages
 * (SPEC §5, RFC 9113 §8.2.2): pseudo-headers become the request line and
 * Host, cookies are joined, connection-specific fields never cross, and the
 * proxy's own X-Forwarded-* and X-Request-Id are set as for HTTP/1.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { MessageHead } from '../http1/field-lines';
import type { ResponseHead } from '../http1/response-head';
import { equalsIgnoreCase } from '../http1/chars';
import { FORWARDED_UPGRADE, HOP_BY_HOP, NOT_IN_TRAILERS, SET_BY_PROXY, contentLengthLine, hasUnderscore, namedAwayByConnection } from '../../http/forwarding-rules';
import { forwardedLines } from '../../http/forwarded-fields';
import type { FieldEdits } from '../../pipeline/phases';

/**
 * Fields that never go from an HTTP/2 request to an HTTP/1.1 upstream as
 * they came: connection-specific and proxy-set ones (forwarding-rules.ts),
 * Host (from :authority), Content-Length (written from the parsed value)
 * and Cookie (joined into one line).
 */
const REQUEST_SKIP: ReadonlySet<string> = new Set([...HOP_BY_HOP, ...SET_BY_PROXY, 'host', 'content-length', 'cookie']);
/**
 * Connection-specific fields an HTTP/2 response must not carry (RFC 9113
 * §8.2.2; node:http2 refuses to send them): they are left out.
 */
const RESPONSE_SKIP: ReadonlySet<string> = new Set(HOP_BY_HOP);

/**
 * Regular fields node:http2 sends at most once per message (its
 * kSingleValueHeaders): a repeat with the same value is dropped, one with a
 * different value makes the message untranslatable.
 */
const SINGLE_VALUE = new Set([
  'access-control-allow-credentials', 'access-control-max-age', 'access-control-request-method', 'age', 'authorization',
  'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type',
  'date', 'dnt', 'etag', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'range', 'referer', 'retry-after',
  'tk', 'upgrade-insecure-requests', 'user-agent', 'x-content-type-options',
]);

/**
 * An upstream message HTTP/2 cannot carry as it is (a single-value field
 * repeated with different values): the client gets a 502, or a reset once
 * the response has started.
 */
export class UntranslatableError extends Error {}

export interface H1HeadOptions {
  method: string;
  path: string;
  authority: string;
  /** Leave Host out and the head open: the exchange adds the target's Host and the blank line. */
  hostFromTarget: boolean;
  clientIp: string;
  proto: string;
  requestId: string;
  addRequestId: boolean;
  /** The request's content-length (as nghttp2 checked it against the DATA), or -1 when it has none: a body then goes chunked. */
  contentLength: number;
  /** The request has a body (the HEADERS frame did not end the stream). */
  hasBody: boolean;
  /** The upstream-request phases' edits (null: none). */
  edits: FieldEdits | null;
  /** A WebSocket over HTTP/2 (RFC 8441): sent as an HTTP/1.1 Upgrade with this Sec-WebSocket-Key of the proxy's own. */
  webSocketKey?: string;
}

/** The HTTP/1.1 request head for an HTTP/2 request (`raw`: the stream's raw header pairs). */
export function h1RequestHead(raw: readonly string[], options: H1HeadOptions): Buffer {
  const removed = options.edits?.removed;
  let head = `${options.method} ${options.path} HTTP/1.1\r\n`;
  if (!options.hostFromTarget) head += `host: ${options.authority}\r\n`;
  let cookie: string | null = null;
  let forwardedFor: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name.charCodeAt(0) === 0x3a /* ':' */ || hasUnderscore(name) || removed?.has(name) || (options.webSocketKey !== undefined && name === 'sec-websocket-key')) continue;
    if (!REQUEST_SKIP.has(name)) head += `${name}: ${value}\r\n`;
    else if (name === 'cookie') cookie = cookie === null ? value : `${cookie}; ${value}`;
    else if (name === 'x-forwarded-for') forwardedFor = forwardedFor === null ? value : `${forwardedFor}, ${value}`;
  }
  if (cookie !== null) head += `cookie: ${cookie}\r\n`;
  if (options.edits) for (const [name, value] of options.edits.added) head += `${name}: ${value}\r\n`;
  head += forwardedLines(options.clientIp, options.proto, options.authority, forwardedFor);
  if (options.addRequestId) head += `x-request-id: ${options.requestId}\r\n`;
  if (options.webSocketKey !== undefined) head += `connection: upgrade\r\nupgrade: ${FORWARDED_UPGRADE}\r\nsec-websocket-key: ${options.webSocketKey}\r\n`;
  else if (options.contentLength >= 0) head += contentLengthLine(options.contentLength);
  else if (options.hasBody) head += 'transfer-encoding: chunked\r\n';
  return Buffer.from(options.hostFromTarget ? head : `${head}\r\n`, 'latin1');
}

/**
 * Common response field names, lower-case, by length: a name found here is
 * neither decoded nor lower-cased, and the header object gets an
 * internalised key.
 */
const KNOWN_NAMES: string[][] = [];
for (const name of [
  'age', 'date', 'etag', 'link', 'vary', 'server', 'expires', 'location', 'connection', 'keep-alive', 'set-cookie',
  'content-type', 'accept-ranges', 'cache-control', 'last-modified', 'content-length', 'content-encoding',
  'transfer-encoding', 'x-request-id', 'content-language', 'content-disposition', 'strict-transport-security',
]) {
  (KNOWN_NAMES[name.length] ??= []).push(name);
}

/** Header `i`'s name in lower case. */
function lowerName(head: MessageHead, i: number): string {
  const s = head.headers[i * 4];
  const e = head.headers[i * 4 + 1];
  const known = KNOWN_NAMES[e - s];
  if (known !== undefined) {
    for (let k = 0; k < known.length; k++) if (equalsIgnoreCase(head.buf, s, e, known[k])) return known[k];
  }
  return head.headerName(i).toLowerCase();
}

/**
 * The fields of an HTTP/1 head as HTTP/2 headers: lower-case names, repeated
 * fields as arrays, connection-specific fields (and those Connection names)
 * left out, a single-value field's identical repeats merged. Throws
 * UntranslatableError for a single-value field repeated with another value.
 */
export function h2Fields(head: MessageHead, into: OutgoingHttpHeaders, skip: ReadonlySet<string>): OutgoingHttpHeaders {
  const tokens = namedAwayByConnection(head.connectionTokens, skip);
  for (let i = 0; i < head.headerCount; i++) {
    const name = lowerName(head, i);
    if (skip.has(name) || (tokens.length !== 0 && tokens.includes(name))) continue;
    const value = head.headerValue(i);
    const prior = into[name];
    if (prior === undefined) into[name] = value;
    else if (SINGLE_VALUE.has(name)) {
      if (prior !== value) throw new UntranslatableError(`${name} repeated with different values`);
    } else if (Array.isArray(prior)) prior.push(value);
    else into[name] = [String(prior), value];
  }
  return into;
}

/** An HTTP/1.1 upstream response head as HTTP/2 response headers (throws UntranslatableError, see h2Fields). */
export function h2ResponseHeaders(head: ResponseHead, requestId: string): OutgoingHttpHeaders {
  const headers = h2Fields(head, { ':status': head.status }, RESPONSE_SKIP);
  // The framing is zproxy's own: the parsed length, and none where a response may not carry one.
  if (head.contentLength !== null) {
    if (head.status < 200 || head.status === 204) delete headers['content-length'];
    else headers['content-length'] = String(head.contentLength);
  }
  if (headers['x-request-id'] === undefined) headers['x-request-id'] = requestId;
  return headers;
}

/** Trailer fields of a chunked upstream response, for HTTP/2 trailers (throws UntranslatableError, see h2Fields). */
export function h2Trailers(trailers: MessageHead | null): OutgoingHttpHeaders {
  return trailers ? h2Fields(trailers, {}, NOT_IN_TRAILERS) : {};
}

/** One header value of an HTTP/2 request, joined when repeated. */
export function h2HeaderValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
