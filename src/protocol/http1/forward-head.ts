/**
 * Builds the heads zproxy forwards, from the parsed ones, by copying the
 * original header lines byte for byte (names keep their case and order)
 * and leaving out what must not cross a proxy (forwarding-rules.ts):
 * - hop-by-hop fields, and the fields `Connection` names (never the
 *   framing, Host, or the proxy's own fields); a WebSocket upgrade names
 *   itself again (`upgrade` option, forwardSwitchingHead);
 * - fields the proxy sets itself: X-Forwarded-* and Expect;
 * - request fields whose names hold `_` (nginx's `underscores_in_headers off`).
 * The framing is the proxy's own: `Transfer-Encoding: chunked` is written
 * by the proxy (which frames the chunks), and a `Content-Length` line is
 * copied only as zproxy would write it (digits, no leading zero; otherwise
 * it is written anew from the parsed value).
 * At most one Buffer is allocated per head (none for a response made in
 * place); no header string is decoded unless it is needed (X-Forwarded-For,
 * Host).
 */
import { STATUS_CODES } from 'node:http';
import { equalsIgnoreCase, equalsLowerBytes, lowerBytes } from './chars';
import type { MessageHead } from './field-lines';
import type { RequestHead } from './request-head';
import type { ResponseHead } from './response-head';
import { requestIdLength, writeRequestId, type RequestId } from '../../util/request-id';
import { FORWARDED_UPGRADE, HOP_BY_HOP, SET_BY_PROXY, contentLengthLine, namedAwayByConnection } from '../../http/forwarding-rules';
import type { FieldEdits, ResponseEdits } from '../../pipeline/phases';

/** Names to drop, bucketed by length so most headers are rejected by one lookup. */
interface DropTable {
  /** By name length; an empty bucket for lengths no name has. */
  byLength: (readonly Uint8Array[])[];
  names: ReadonlySet<string>;
  /**
   * Drop names with `_`: an upstream that maps `_` to `-` (CGI) would
   * otherwise read `Transfer_Encoding` or `X_Forwarded_For` as the real thing.
   */
  underscores: boolean;
}

const NO_NAMES: readonly Uint8Array[] = Object.freeze([]);

function dropTable(names: readonly string[], underscores: boolean): DropTable {
  const byLength: Uint8Array[][] = [];
  for (let length = 0; length <= Math.max(...names.map((name) => name.length)); length++) byLength.push([]);
  for (const name of names) byLength[name.length].push(lowerBytes(name));
  return { byLength: byLength.map((bucket) => (bucket.length === 0 ? NO_NAMES : bucket)), names: new Set(names), underscores };
}
const REQUEST_DROP = dropTable([...HOP_BY_HOP, ...SET_BY_PROXY], true);
const REQUEST_DROP_WITH_HOST = dropTable([...HOP_BY_HOP, ...SET_BY_PROXY, 'host'], true);
const RESPONSE_DROP = dropTable(HOP_BY_HOP, false);

function inTable(head: MessageHead, i: number, table: DropTable): boolean {
  const start = head.headers[i * 4];
  const end = head.headers[i * 4 + 1];
  if (end - start >= table.byLength.length) return false;
  const bucket = table.byLength[end - start];
  for (let k = 0; k < bucket.length; k++) if (equalsLowerBytes(head.buf, start, end, bucket[k])) return true;
  return false;
}

function namedIn(head: MessageHead, i: number, tokens: readonly string[]): boolean {
  const start = head.headers[i * 4];
  const end = head.headers[i * 4 + 1];
  for (let k = 0; k < tokens.length; k++) if (equalsIgnoreCase(head.buf, start, end, tokens[k])) return true;
  return false;
}

/**
 * The index of a Content-Length line not copied as it came: one with a
 * leading zero (written anew from the parsed value), or any in a message
 * that must not carry one (`keep` false: 1xx and 204 responses); -1 for none.
 */
function lengthNotCopied(head: MessageHead, keep: boolean): number {
  const i = head.contentLengthIndex;
  if (i < 0 || !keep) return i;
  const start = head.headers[i * 4 + 2];
  return head.headers[i * 4 + 3] - start > 1 && head.buf[start] === 0x30 ? i : -1;
}

/** The Content-Length line written anew for a line `lengthNotCopied` left out ('' for none). */
function rewrittenLength(head: MessageHead, notCopied: number, keep: boolean): string {
  return notCopied >= 0 && keep ? contentLengthLine(head.contentLength!) : '';
}

const UNDERSCORE = 0x5f;

/** Does header i's name hold `_`? Such fields are dropped from requests (forwarding-rules.ts hasUnderscore), on bytes. */
function hasUnderscore(head: MessageHead, i: number): boolean {
  const end = head.headers[i * 4 + 1];
  for (let at = head.headers[i * 4]; at < end; at++) if (head.buf[at] === UNDERSCORE) return true;
  return false;
}

/** Is header i one the proxy handles itself (not copied verbatim)? `rewritten`: a line written anew. */
function dropped(head: MessageHead, i: number, table: DropTable, tokens: readonly string[], rewritten: number): boolean {
  return inTable(head, i, table) || i === rewritten || (tokens.length > 0 && namedIn(head, i, tokens)) || (table.underscores && hasUnderscore(head, i));
}

/**
 * Runs of header lines that survive, as [start, end) pairs (neighbours
 * joined: a line runs up to the next one's start). Scratch shared by every
 * call in this thread (the codec is synchronous); returns the pair count.
 */
const runs: number[] = [];
function keptRuns(head: MessageHead, table: DropTable, rewritten: number, edits: FieldEdits | null): number {
  const tokens = removedNames(head, table, edits);
  let count = 0;
  let runStart = -1;
  for (let i = 0; i < head.headerCount; i++) {
    if (!dropped(head, i, table, tokens, rewritten)) {
      if (runStart < 0) runStart = head.headers[i * 4];
    } else if (runStart >= 0) {
      runs[count * 2] = runStart;
      runs[count * 2 + 1] = head.headers[i * 4];
      count++;
      runStart = -1;
    }
  }
  if (runStart >= 0) {
    runs[count * 2] = runStart;
    runs[count * 2 + 1] = head.headEnd - 2;
    count++;
  }
  return count;
}

/** The names dropped by name: those `Connection` lists, and those a middleware removes. */
function removedNames(head: MessageHead, table: DropTable, edits: FieldEdits | null): readonly string[] {
  const tokens = namedAwayByConnection(head.connectionTokens, table.names);
  return edits === null || edits.removed.size === 0 ? tokens : [...tokens, ...edits.removed];
}

/** The field lines a middleware adds ('' for none). */
function editedLines(edits: FieldEdits | null): string {
  if (edits === null) return '';
  let lines = '';
  for (const [name, value] of edits.added) lines += `${name}: ${value}\r\n`;
  return lines;
}

/** Fixed field lines the proxy adds, as bytes (copied, never written from strings per request). */
const CRLF = Buffer.from('\r\n', 'latin1');
const REQUEST_ID_NAME = Buffer.from('x-request-id: ', 'latin1');
const CONNECTION_CLOSE = 'connection: close\r\n';
const CONNECTION_KEEP_ALIVE = 'connection: keep-alive\r\n';
const TE_CHUNKED = 'transfer-encoding: chunked\r\n';
/** Response fields by [chunked][connection: none, close, keep-alive]. */
const RESPONSE_FIELDS = [false, true].map((chunked) =>
  ['', CONNECTION_CLOSE, CONNECTION_KEEP_ALIVE].map((connection) => Buffer.from((chunked ? TE_CHUNKED : '') + connection, 'latin1')),
);

/** What a built head holds besides its start line and the kept header lines, in this order. */
interface AddedFields {
  /** Prepared field lines (X-Forwarded-*, or framing and Connection). */
  lines: Buffer | null;
  /** `x-request-id: <id>` when not null. */
  requestId: RequestId | null;
  /** Rare fields made per head (a WebSocket upgrade, a re-chunked request): '' mostly. */
  text: string;
  /** End the head with its blank line (false: the caller appends Host first). */
  close: boolean;
}

/** The added fields of the head being built: every build is synchronous, so one object per thread, filled per head. */
const addedScratch: AddedFields = { lines: null, requestId: null, text: '', close: true };

function addedFields(lines: Buffer | null, requestId: RequestId | null, text: string, close: boolean): AddedFields {
  addedScratch.lines = lines;
  addedScratch.requestId = requestId;
  addedScratch.text = text;
  addedScratch.close = close;
  return addedScratch;
}

/** Bytes of the added fields but the closing blank line. */
function addedLength(added: AddedFields): number {
  const lines = added.lines === null ? 0 : added.lines.length;
  const requestId = added.requestId === null ? 0 : REQUEST_ID_NAME.length + requestIdLength(added.requestId) + 2;
  return lines + requestId + added.text.length;
}

/** Writes the added fields but the closing blank line at `at`; returns the offset after them. */
function writeAdded(out: Buffer, at: number, added: AddedFields): number {
  if (added.lines !== null) {
    out.set(added.lines, at); // a whole buffer: no view of it is made
    at += added.lines.length;
  }
  if (added.requestId !== null) {
    at = copyBytes(REQUEST_ID_NAME, 0, REQUEST_ID_NAME.length, out, at);
    at = copyBytes(CRLF, 0, 2, out, writeRequestId(out, at, added.requestId));
  }
  if (added.text.length > 0) at += out.write(added.text, at, 'latin1');
  return at;
}

/**
 * The head in one allocation of the exact size: `line` (the start line;
 * null: the original one, copied as is), the kept header lines (all but
 * `rewritten` and the table's), the added fields, then `tail[tailStart, tailEnd)`
 * (a small body sent with its head).
 */
function assemble(head: MessageHead, table: DropTable, rewritten: number, edits: FieldEdits | null, line: string | null, added: AddedFields, tail?: Buffer, tailStart = 0, tailEnd = 0): Buffer {
  const runCount = keptRuns(head, table, rewritten, edits);
  let size = line === null ? head.fieldsStart - head.start : line.length;
  for (let k = 0; k < runCount; k++) size += runs[k * 2 + 1] - runs[k * 2];
  const out = Buffer.allocUnsafe(size + addedLength(added) + (added.close ? 2 : 0) + (tailEnd - tailStart));
  let at: number;
  let k = 0;
  if (line === null) {
    // The original start line and a run right behind it are one copy.
    const end = runCount > 0 && runs[0] === head.fieldsStart ? runs[k++ * 2 + 1] : head.fieldsStart;
    at = copyBytes(head.buf, head.start, end, out, 0);
  } else {
    at = out.write(line, 0, 'latin1');
  }
  for (; k < runCount; k++) at = copyBytes(head.buf, runs[k * 2], runs[k * 2 + 1], out, at);
  at = writeAdded(out, at, added);
  if (added.close) at = copyBytes(CRLF, 0, 2, out, at);
  if (tail !== undefined) copyBytes(tail, tailStart, tailEnd, out, at);
  return out;
}

/**
 * Copies src[start..end) to dst at `at`; returns the offset after it. Short
 * runs byte by byte: Buffer#copy creates a view of the source per call, which
 * costs more than copying a few dozen bytes.
 */
function copyBytes(src: Buffer, start: number, end: number, dst: Buffer, at: number): number {
  if (end - start > 32) return at + src.copy(dst, at, start, end);
  for (let i = start; i < end; i++) dst[at++] = src[i];
  return at;
}

export interface ForwardRequestOptions {
  /** Path and query to send upstream (after strip_prefix/rewrite). */
  path: string;
  /**
   * Leave the client's Host out and the head open (no final blank line): the
   * caller appends `host: <target authority>` and the blank line once the
   * target is chosen (preserve_host false, or an HTTP/1.0 client without Host).
   */
  hostFromTarget: boolean;
  /** The X-Forwarded-For, -Proto and -Host lines (forwarded-fields.ts). */
  forwarded: Buffer;
  requestId: RequestId;
  /** Whether X-Request-Id must be added (the client sent none). */
  addRequestId: boolean;
  /** A WebSocket upgrade: `Connection: upgrade` and `Upgrade: websocket` (only that, whatever else the client offered). */
  upgrade: boolean;
  /** The upstream-request phases' edits (null: none). */
  edits: FieldEdits | null;
}

/**
 * The upstream request head, framed by zproxy's parse: Content-Length (as
 * parsed) or chunked (the session re-frames the chunks).
 */
export function forwardRequestHead(head: RequestHead, options: ForwardRequestOptions): Buffer {
  const notCopied = lengthNotCopied(head, true);
  let text = (head.chunked ? TE_CHUNKED : rewrittenLength(head, notCopied, true)) + editedLines(options.edits);
  if (options.upgrade) text += UPGRADE_FIELDS;
  // An HTTP/1.1 request line whose target goes upstream unchanged is copied as the client sent it.
  const line = head.versionMinor === 1 && options.path === head.target ? null : `${head.method} ${options.path} HTTP/1.1\r\n`;
  const table = options.hostFromTarget ? REQUEST_DROP_WITH_HOST : REQUEST_DROP;
  return assemble(head, table, notCopied, options.edits, line, addedFields(options.forwarded, options.addRequestId ? options.requestId : null, text, !options.hostFromTarget));
}

const UPGRADE_FIELDS = `connection: upgrade\r\nupgrade: ${FORWARDED_UPGRADE}\r\n`;

/** Closes an open head (see `hostFromTarget`) with the target's Host. */
export function closeHeadWithHost(openHead: Buffer, authority: string): Buffer {
  return Buffer.concat([openHead, Buffer.from(`host: ${authority}\r\n\r\n`, 'latin1')]);
}

export interface ForwardResponseOptions {
  requestId: RequestId;
  /** Add X-Request-Id (the upstream response has none). */
  addRequestId: boolean;
  /** The body is relayed chunked to the client. */
  chunked: boolean;
  /** `Connection: close` (the client connection ends after this response). */
  close: boolean;
  /** An HTTP/1.0 client kept alive: say so. */
  keepAliveHeader: boolean;
  /** The response phases' edits (null: none; the in-place path needs none that change the status). */
  edits: ResponseEdits | null;
}

/**
 * The client response head: always HTTP/1.1, status and reason as the
 * upstream sent them; followed by `body[bodyStart..bodyEnd)` when given.
 */
export function forwardResponseHead(head: ResponseHead, options: ForwardResponseOptions, body?: Buffer, bodyStart = 0, bodyEnd = 0): Buffer {
  const keep = mayCarryLength(head);
  const notCopied = lengthNotCopied(head, keep);
  return assemble(head, RESPONSE_DROP, notCopied, options.edits, statusLine(head, options.edits), responseFields(options, rewrittenLength(head, notCopied, keep)), body, bodyStart, bodyEnd);
}

/** 1xx and 204 responses carry no Content-Length (RFC 9110 §8.6); 304 and HEAD answers keep theirs. */
function mayCarryLength(head: ResponseHead): boolean {
  return head.status >= 200 && head.status !== 204;
}

/**
 * forwardResponseHead made in place, in the buffer the upstream head was read
 * into, when the body bytes that go with it (if any) follow the head there
 * (`bodyEnd`: their end; `head.headEnd` for none): the kept lines close up
 * over the dropped ones, the added fields follow, and the blank line and the
 * body move behind them. Nothing is copied but what moves. Returns where the
 * message ends (it starts at `head.start`), or -1 when it cannot be made
 * there (a start line to rewrite, or no room behind the body); the buffer is
 * untouched then. The head's offsets are void afterwards.
 */
export function rewriteResponseHead(head: ResponseHead, options: ForwardResponseOptions, bodyEnd: number): number {
  if (statusLine(head, options.edits) !== null) return -1;
  const buf = head.buf;
  const keep = mayCarryLength(head);
  const notCopied = lengthNotCopied(head, keep);
  const added = responseFields(options, rewrittenLength(head, notCopied, keep));
  const count = keptRuns(head, RESPONSE_DROP, notCopied, options.edits);
  let kept = 0;
  for (let k = 0; k < count; k++) kept += runs[k * 2 + 1] - runs[k * 2];
  const tailFrom = head.headEnd - 2; // the blank line, then the body
  const tailAt = head.fieldsStart + kept + addedLength(added);
  if (tailAt + (bodyEnd - tailFrom) > buf.length) return -1;
  let at = head.fieldsStart;
  for (let k = 0; k < count; k++) {
    if (runs[k * 2] !== at) buf.copyWithin(at, runs[k * 2], runs[k * 2 + 1]);
    at += runs[k * 2 + 1] - runs[k * 2];
  }
  if (tailAt !== tailFrom) buf.copyWithin(tailAt, tailFrom, bodyEnd);
  writeAdded(buf, at, added);
  return tailAt + (bodyEnd - tailFrom);
}

function responseFields(options: ForwardResponseOptions, lengthLine: string): AddedFields {
  const lines = RESPONSE_FIELDS[options.chunked ? 1 : 0][options.close ? 1 : options.keepAliveHeader ? 2 : 0];
  return addedFields(lines, options.addRequestId ? options.requestId : null, lengthLine + editedLines(options.edits), true);
}

/** The status line to send, or null when the upstream's own (HTTP/1.1, with a reason, the status kept) can be copied. */
function statusLine(head: ResponseHead, edits: ResponseEdits | null): string | null {
  if (edits !== null && edits.status !== head.status) return `HTTP/1.1 ${edits.status} ${STATUS_CODES[edits.status] ?? ''}\r\n`;
  if (head.versionMinor === 1 && head.reasonEnd > head.reasonStart) return null;
  return `HTTP/1.1 ${head.status} ${head.reasonEnd > head.reasonStart ? head.reason : (STATUS_CODES[head.status] ?? '')}\r\n`;
}

/**
 * The upstream's 101 relayed to the client: hop-by-hop fields dropped like any
 * response's, then the upgrade named again (`Connection: upgrade`, `Upgrade`);
 * every other field (Sec-WebSocket-*) as the upstream sent it.
 */
export function forwardSwitchingHead(head: ResponseHead, options: { requestId: RequestId; addRequestId: boolean }): Buffer {
  const line = `HTTP/1.1 101 ${head.reason || STATUS_CODES[101]}\r\n`;
  return assemble(head, RESPONSE_DROP, head.contentLengthIndex, null, line, addedFields(null, options.addRequestId ? options.requestId : null, UPGRADE_FIELDS, true));
}

/** An interim (1xx) response relayed as is, minus hop-by-hop fields and any Content-Length. */
export function forwardInterimHead(head: ResponseHead): Buffer {
  return assemble(head, RESPONSE_DROP, head.contentLengthIndex, null, `HTTP/1.1 ${head.status} ${head.reason || STATUS_CODES[head.status] || ''}\r\n`, addedFields(null, null, '', true));
}
