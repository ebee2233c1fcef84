/**
 * Strict, allocation-light parser of HTTP/1.x request heads (RFC 9112).
 *
 * parseRequestHead(): when it answers `incomplete`, the caller appends bytes
 * and calls again with the same `start`. A complete head is scanned once,
 * left to right, recording offsets (see MessageHead); an incomplete one is
 * validated only in its first EARLY_SCAN_BYTES, so garbage fails early.
 * Given a HeadProgress (a connection's PendingHead), each call resumes where
 * the last one stopped, so a head sent a byte at a time costs linear work;
 * without one the call is stateless and starts over.
 *
 * Decisions (each a 400 unless noted; SPEC §6):
 *   - Empty lines (CRLF) before the request line are skipped (RFC 9112
 *     §2.2); they count towards maxHeaderBytes. A bare LF is never a line
 *     terminator, anywhere (llhttp in its default mode agrees for heads).
 *   - Request line: method SP request-target SP HTTP-version CRLF with
 *     exactly one SP. The method is any token (RFC 9110 §9.1), case kept.
 *   - request-target: origin-form ("/..."); absolute-form only for http://
 *     and https:// with a non-empty authority without userinfo; authority-
 *     form (host:port) only and always with CONNECT; "*" only with OPTIONS.
 *     Bytes: VCHAR only; SP, HTAB, NUL, other CTLs and non-ASCII are errors.
 *   - Version: exactly HTTP/1.0 or HTTP/1.1; another HTTP/d.d is 505.
 *   - HTTP/1.1 needs exactly one Host; more than one Host is an error on
 *     HTTP/1.0 too. Host must be a valid authority (uri-host[:port]) or
 *     empty. With absolute-form the Host must equal the target's authority
 *     (ASCII case-insensitive): a reverse proxy must not route on one name
 *     and forward another.
 *   - Content-Length: 1*DIGIT up to 2^53-1, at most one field (identical
 *     duplicates and comma lists are rejected, as llhttp does).
 *   - Transfer-Encoding: only exactly `chunked` (one element over all TE
 *     fields); anything else (`gzip, chunked`, `chunked, chunked`, empty
 *     elements) is 400, not 501. TE together with Content-Length, or on
 *     HTTP/1.0, is 400.
 *   - Connection: a list of tokens (empty elements ignored).
 * The head is larger than limits.maxHeaderBytes (counted from `start`):
 * 431, unless a malformation was proven within those bytes.
 */

import { ASTERISK, AUTHORITY_CHAR, COLON, HEX_VALUE, LBRACKET, PERCENT, QUESTION, RBRACKET, SLASH, SP, TARGET_CHAR, TCHAR, equalsIgnoreCase } from './chars';
import {
  type HeadLimits,
  HeadProgress,
  INCOMPLETE,
  MALFORMED,
  MessageHead,
  ScanState,
  TOO_LARGE,
  applyFacts,
  expectCrlf,
  fieldFacts,
  scanFieldLines,
  scanHeadAndFacts,
  scanState,
  scanVersion,
  skipEmptyLines,
  takeOffsets,
  versionSupported,
} from './field-lines';

export type { HeadLimits };

export type RequestTargetForm = 'origin' | 'absolute' | 'authority' | 'asterisk';

export class RequestHead extends MessageHead {
  /** Interned for GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, CONNECT, TRACE. */
  method = '';
  target = '';
  targetStart = 0;
  targetEnd = 0;
  targetForm: RequestTargetForm = 'origin';
  /** Exactly one `Expect: 100-continue` on HTTP/1.1. */
  expectContinue = false;
  /** The Host value (OWS-trimmed), or null when there is none (HTTP/1.0 only). */
  host: string | null = null;

  /** Whether a body follows the head. */
  get hasBody(): boolean {
    return this.chunked || (this.contentLength !== null && this.contentLength > 0);
  }

  /**
   * The same head over a copy of its bytes: for a request that must outlive
   * the read whose buffer holds it (an asynchronous middleware phase).
   */
  detached(): RequestHead {
    const shift = this.start;
    const head = new RequestHead(Buffer.from(this.buf.subarray(shift, this.headEnd)), this.headers.map((offset) => offset - shift));
    this.copyFactsTo(head, shift);
    head.method = this.method;
    head.target = this.target;
    head.targetStart = this.targetStart - shift;
    head.targetEnd = this.targetEnd - shift;
    head.targetForm = this.targetForm;
    head.expectContinue = this.expectContinue;
    head.host = this.host;
    return head;
  }
}

export type RequestParseResult =
  | { kind: 'incomplete' }
  | { kind: 'error'; status: 400 | 431 | 501 | 505; reason: string }
  | { kind: 'head'; head: RequestHead; headEnd: number };

const INCOMPLETE_RESULT: { kind: 'incomplete' } = Object.freeze({ kind: 'incomplete' as const });

function error(status: number, reason: string): RequestParseResult {
  return { kind: 'error', status: status as 400 | 431 | 505, reason };
}

/**
 * Parses the request head in buf[start, end). See the file comment for the
 * rules. The returned head keeps references into `buf`. `progress`: where
 * the previous call for this head (same bytes from `start`) stopped; it is
 * reset when the answer is not `incomplete`.
 */
export function parseRequestHead(buf: Buffer, start: number, end: number, limits: HeadLimits, progress: HeadProgress | null = null): RequestParseResult {
  const result = parseHead(buf, start, end, limits, progress);
  if (progress !== null && result !== INCOMPLETE_RESULT) progress.reset();
  return result;
}

function parseHead(buf: Buffer, start: number, end: number, limits: HeadLimits, progress: HeadProgress | null): RequestParseResult {
  const s = scanState;
  const max = limits.maxHeaderBytes;
  const p = skipEmptyLines(buf, progress === null ? start : start + progress.emptyLines, end, s);
  if (p === MALFORMED) return error(400, s.reason);
  if (p === INCOMPLETE) return end - start > max ? error(431, 'request head too large') : INCOMPLETE_RESULT;
  if (p - start > max) return error(431, 'request head too large');
  if (progress !== null) progress.emptyLines = p - start;

  const headEnd = scanHeadAndFacts(buf, start, p, end, max, scanRequest, s, progress);
  if (headEnd === INCOMPLETE) return INCOMPLETE_RESULT;
  if (headEnd === TOO_LARGE) return error(431, 'request head too large');
  if (headEnd === MALFORMED) return error(s.status, s.reason);

  const minor = s.versionMinor;
  const f = fieldFacts;
  if (f.codings > 0) {
    if (f.contentLength >= 0) return error(400, 'content-length with transfer-encoding');
    if (minor === 0) return error(400, 'transfer-encoding on HTTP/1.0');
    if (f.codings !== 1 || !f.chunkedLast) return error(400, 'unsupported transfer-encoding');
  }
  if (f.hostCount > 1) return error(400, 'multiple host headers');
  if (f.hostCount === 0 && minor === 1) return error(400, 'missing host header');

  const head = new RequestHead(buf, takeOffsets(s));
  head.start = p;
  head.fieldsStart = s.fieldsStart;
  head.headEnd = headEnd;
  head.versionMinor = minor as 0 | 1;
  head.method = internMethod(buf, p, s.methodEnd);
  head.targetStart = s.middleStart;
  head.targetEnd = s.middleEnd;
  head.target = buf.toString('latin1', s.middleStart, s.middleEnd);
  applyFacts(head, f, minor);
  head.expectContinue = f.expectContinue && minor === 1;

  const reason = checkTarget(buf, head, f.hostIndex);
  if (reason !== null) return error(400, reason);
  return { kind: 'head', head, headEnd };
}

/** The first buffer of a pending head holds at least this much (a head split once fits without growing). */
const PENDING_MIN_BYTES = 1024;
const NOTHING = Buffer.alloc(0);

/**
 * A request head arriving in pieces (a connection keeps one): its bytes so
 * far, and how far parseRequestHead has looked at them (`progress`). Each
 * read copies only its own bytes, into a buffer that grows by doubling,
 * and the scan resumes where it stopped: a client sending a 64 KiB head a
 * byte per packet costs O(n) copying and scanning. (Before: every read
 * copied everything so far twice, Buffer.concat then Buffer.from, and
 * rescanned it, which is quadratic.)
 *
 * A buffer serves one head only. Once parsing went past its start (the head
 * was complete: it, and the body bytes after it, may still be referenced
 * by the request in flight), the next pending head gets a buffer of its own.
 */
export class PendingHead {
  readonly progress = new HeadProgress();
  private storage: Buffer = NOTHING;
  /** What hold/append last returned: storage[0, its length). */
  private held: Buffer | null = null;

  /** Keeps buf[start, end), a head not complete yet; returns the bytes kept. */
  hold(buf: Buffer, start: number, end: number): Buffer {
    // The bytes kept last, parsed again from their start and still incomplete: they stay where they are.
    if (buf === this.held && start === 0 && end === buf.length) return buf;
    this.storage = Buffer.allocUnsafe(Math.max(PENDING_MIN_BYTES, 2 * (end - start)));
    buf.copy(this.storage, 0, start, end);
    return (this.held = this.storage.subarray(0, end - start));
  }

  /** `kept` (bytes kept earlier: what hold returned, or another copy) followed by buf[start, end). */
  append(kept: Buffer, buf: Buffer, start: number, end: number): Buffer {
    if (kept !== this.held) kept = this.hold(kept, 0, kept.length);
    const length = kept.length + end - start;
    if (length > this.storage.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.storage.length, length));
      kept.copy(grown, 0);
      this.storage = grown;
    }
    buf.copy(this.storage, kept.length, start, end);
    return (this.held = this.storage.subarray(0, length));
  }
}

/** Request line + field lines: the method end, the target and the first field line go to `s`. */
function scanRequest(buf: Buffer, p: number, end: number, s: ScanState): number {
  s.count = 0;
  const methodStart = p;
  let c = 0;
  for (;;) {
    if (p >= end) return INCOMPLETE;
    c = buf[p];
    if (TCHAR[c] !== 1) break;
    p++;
  }
  if (c !== SP || p === methodStart) return s.fail(p, 400, 'invalid method');
  s.methodEnd = p++;
  const targetStart = p;
  for (;;) {
    if (p >= end) return INCOMPLETE;
    c = buf[p];
    if (TARGET_CHAR[c] !== 1) break;
    p++;
  }
  if (p === targetStart) return s.fail(p, 400, 'invalid request-target');
  if (c !== SP) return s.fail(p, 400, c <= SP ? 'invalid request line' : 'invalid character in request-target');
  s.middleStart = targetStart;
  s.middleEnd = p++;
  p = scanVersion(buf, p, end, s);
  if (p < 0) return p;
  const next = expectCrlf(buf, p, end, s, 'invalid request line');
  if (next < 0) return next;
  if (!versionSupported(s)) return s.fail(p, 505, 'HTTP version not supported');
  s.fieldsStart = next;
  return scanFieldLines(buf, next, end, s);
}

function internMethod(buf: Buffer, s: number, e: number): string {
  const c = buf[s];
  switch (e - s) {
    case 3:
      if (c === 0x47 && buf[s + 1] === 0x45 && buf[s + 2] === 0x54) return 'GET';
      if (c === 0x50 && buf[s + 1] === 0x55 && buf[s + 2] === 0x54) return 'PUT';
      break;
    case 4:
      if (c === 0x50 && equalsBytes(buf, s, 'POST')) return 'POST';
      if (c === 0x48 && equalsBytes(buf, s, 'HEAD')) return 'HEAD';
      break;
    case 5:
      if (c === 0x50 && equalsBytes(buf, s, 'PATCH')) return 'PATCH';
      if (c === 0x54 && equalsBytes(buf, s, 'TRACE')) return 'TRACE';
      break;
    case 6:
      if (c === 0x44 && equalsBytes(buf, s, 'DELETE')) return 'DELETE';
      break;
    case 7:
      if (c === 0x4f && equalsBytes(buf, s, 'OPTIONS')) return 'OPTIONS';
      if (c === 0x43 && equalsBytes(buf, s, 'CONNECT')) return 'CONNECT';
      break;
  }
  return buf.toString('latin1', s, e);
}

function equalsBytes(buf: Buffer, s: number, str: string): boolean {
  for (let i = 1; i < str.length; i++) if (buf[s + i] !== str.charCodeAt(i)) return false;
  return true;
}

/** Checks the target's form against the method and Host; returns an error reason or null. */
function checkTarget(buf: Buffer, head: RequestHead, hostIndex: number): string | null {
  const ts = head.targetStart;
  const te = head.targetEnd;
  const o = head.headers;
  const hs = hostIndex >= 0 ? o[hostIndex * 4 + 2] : 0;
  const he = hostIndex >= 0 ? o[hostIndex * 4 + 3] : 0;
  if (hostIndex >= 0) {
    if (he > hs && authorityEnd(buf, hs, he, false) !== he) return 'invalid host header';
    head.host = internHost(buf, hs, he);
  }
  const c = buf[ts];
  if (head.method === 'CONNECT') {
    head.targetForm = 'authority';
    return authorityEnd(buf, ts, te, true) === te ? null : 'invalid authority-form target';
  }
  if (c === SLASH) return null;
  if (c === ASTERISK) {
    head.targetForm = 'asterisk';
    return te - ts === 1 && head.method === 'OPTIONS' ? null : 'asterisk-form only with OPTIONS';
  }
  // absolute-form: http:// or https:// authority [path-abempty] [? query]
  let p = ts;
  if (te - p > 7 && equalsIgnoreCase(buf, p, p + 7, 'http://')) p += 7;
  else if (te - p > 8 && equalsIgnoreCase(buf, p, p + 8, 'https://')) p += 8;
  else return 'invalid request-target';
  head.targetForm = 'absolute';
  const ae = authorityEnd(buf, p, te, false);
  if (ae <= p) return 'invalid authority in request-target';
  if (ae < te && buf[ae] !== SLASH && buf[ae] !== QUESTION) return 'invalid authority in request-target';
  if (hostIndex >= 0 && !sameBytesIgnoreCase(buf, p, ae, hs, he)) return 'host header does not match request-target';
  return null;
}

/**
 * The last Host values seen in this thread, handed out again for the same
 * bytes (a worker serves a few names, request after request): no string is
 * made, and the one handed out keeps its hash for the router's lookups.
 */
const recentHosts = ['', '', '', ''];
let nextHostSlot = 0;

function internHost(buf: Buffer, s: number, e: number): string {
  for (let k = 0; k < recentHosts.length; k++) {
    const host = recentHosts[k];
    if (host.length === e - s && sameLatin1(buf, s, host)) return host;
  }
  const host = buf.toString('latin1', s, e);
  recentHosts[nextHostSlot] = host;
  nextHostSlot = (nextHostSlot + 1) % recentHosts.length;
  return host;
}

function sameLatin1(buf: Buffer, s: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (buf[s + i] !== text.charCodeAt(i)) return false;
  return true;
}

function sameBytesIgnoreCase(buf: Buffer, a: number, ae: number, b: number, be: number): boolean {
  if (ae - a !== be - b) return false;
  for (let i = 0; i < ae - a; i++) {
    if ((buf[a + i] | 0x20) !== (buf[b + i] | 0x20)) return false;
  }
  return true;
}

/**
 * Reads uri-host [":" port] from [p, e) (RFC 3986: IP-literal in brackets,
 * or reg-name / IPv4 with pct-encoding checked). Returns the index where
 * the authority ends (the first byte that cannot continue it), or -1 when
 * it is malformed. `requirePort`: the port must be present and non-empty
 * (authority-form of CONNECT).
 */
function authorityEnd(buf: Buffer, p: number, e: number, requirePort: boolean): number {
  const hostStart = p;
  if (p < e && buf[p] === LBRACKET) {
    p++;
    while (p < e && buf[p] !== RBRACKET) {
      const c = buf[p];
      if (AUTHORITY_CHAR[c] !== 1 || c === LBRACKET) return -1;
      p++;
    }
    if (p >= e || p === hostStart + 1) return -1;
    p++;
  } else {
    while (p < e) {
      const c = buf[p];
      if (AUTHORITY_CHAR[c] !== 1 || c === COLON || c === LBRACKET || c === RBRACKET) break;
      if (c === PERCENT) {
        if (p + 2 >= e || HEX_VALUE[buf[p + 1]] === 0xff || HEX_VALUE[buf[p + 2]] === 0xff) return -1;
        p += 2;
      }
      p++;
    }
    if (p === hostStart) return -1;
  }
  if (p < e && buf[p] === COLON) {
    const portStart = ++p;
    while (p < e && buf[p] >= 0x30 && buf[p] <= 0x39) p++;
    if (requirePort && p === portStart) return -1;
  } else if (requirePort) return -1;
  return p;
}
