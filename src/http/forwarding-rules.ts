/**
 * What may cross the proxy, in one place (SPEC §5, RFC 9110 §7.6.1): every
 * path that forwards a message — HTTP/1 to HTTP/1 both ways, HTTP/2 to
 * HTTP/1, HTTP/2 to HTTP/2, WebSocket over HTTP/1 and HTTP/2 — asks here.
 *
 * The rule that closes request smuggling: the framing of a message zproxy
 * writes is zproxy's own, from its own parse. `Content-Length` is written
 * normalised (digits, no leading zero), `Transfer-Encoding: chunked` is
 * written by the proxy with chunks it frames itself, and a field listed in
 * `Connection` never removes the framing, the Host, or a field the proxy
 * sets (nginx and HAProxy behave the same way). `Connection` removes
 * ordinary end-to-end fields only.
 */

/**
 * Connection-specific fields (RFC 9110 §7.6.1, RFC 9113 §8.2.2): never
 * forwarded as received. HTTP2-Settings belongs to an `h2c` upgrade, which
 * zproxy never forwards.
 */
export const HOP_BY_HOP: readonly string[] = Object.freeze(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'http2-settings']);

/**
 * Request fields the proxy sets itself from what it knows: X-Forwarded-*
 * (never trusted from the client; X-Forwarded-For is appended to), and
 * Expect (zproxy answers `100-continue` itself, as nginx does).
 */
export const SET_BY_PROXY: readonly string[] = Object.freeze(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'expect']);

/**
 * Fields a `Connection` list can never remove: the message's framing and
 * routing, and what the proxy sets or passes both ways (X-Request-Id).
 */
const NEVER_NAMED_AWAY: ReadonlySet<string> = new Set(['host', 'content-length', 'transfer-encoding', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id']);

/**
 * Fields that never pass in a trailer section: framing, routing, and
 * connection-specific fields (RFC 9110 §6.5.1 lists what a trailer must
 * not carry; a recipient that merges trailers into the head would read them).
 */
export const NOT_IN_TRAILERS: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'content-length', 'host', 'trailer', 'content-type', 'content-encoding', 'content-range', 'authorization', 'set-cookie', 'cookie', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id']);

const NONE: readonly string[] = Object.freeze([]);

/**
 * The field names a message's `Connection` list removes (lower-case): its
 * tokens, less the ones it may not name away and less those `alsoDropped`
 * (already dropped for another reason). No array is made for the usual
 * `keep-alive` or `close`.
 */
export function namedAwayByConnection(tokens: readonly string[], alsoDropped: ReadonlySet<string>): readonly string[] {
  let kept: string[] | null = null;
  for (let k = 0; k < tokens.length; k++) {
    const token = tokens[k];
    const removes = !alsoDropped.has(token) && !NEVER_NAMED_AWAY.has(token);
    if (removes && kept === null) kept = [];
    if (removes) kept!.push(token);
  }
  return kept ?? NONE;
}

/** Whether a trailer field (lower-case name) may be passed on. */
export function trailerFieldPasses(lowerName: string): boolean {
  return !NOT_IN_TRAILERS.has(lowerName);
}

/** The `content-length` field line zproxy writes for a body of `length` bytes. */
export function contentLengthLine(length: number): string {
  return `content-length: ${length}\r\n`;
}

/**
 * Is the upstream-facing Upgrade the one zproxy tunnels? Only `websocket`
 * is ever forwarded (never `h2c` or anything else the client offers).
 */
export const FORWARDED_UPGRADE = 'websocket';

/** Does an Upgrade value (a comma list) offer WebSocket? */
export function offersWebSocket(upgrade: string | null): boolean {
  if (upgrade === null) return false;
  return upgrade.split(',').some((token) => token.trim().toLowerCase() === FORWARDED_UPGRADE);
}

/**
 * Whether a middleware may set or remove a field (lower-case name): never
 * the framing, Host, connection-specific fields or those the proxy sets.
 */
export function mayEditField(lowerName: string): boolean {
  return !NEVER_NAMED_AWAY.has(lowerName) && !HOP_BY_HOP.includes(lowerName) && !SET_BY_PROXY.includes(lowerName);
}

/**
 * Request fields whose names hold `_` are never forwarded (nginx's
 * `underscores_in_headers off`): an upstream that maps `_` to `-` (CGI)
 * would read `X_Forwarded_For` or `Transfer_Encoding` as the real field.
 * (The HTTP/1 head builder checks the same on bytes: forward-head.ts.)
 */
export function hasUnderscore(name: string): boolean {
  return name.includes('_');
}
