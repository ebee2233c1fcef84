/**
 * What request heads, response heads and chunked trailers share: the field
 * line scanner, the head-size driver, the `HTTP/x.y` reader, the framing
 * facts (Content-Length, Transfer-Encoding, Connection, Host, Upgrade,
 * Expect) and the MessageHead view with its header helpers.
 *
 * Scanning is one left-to-right pass over the bytes that records offsets
 * only; strings are made for what the proxy always needs (method, target,
 * Host, Connection tokens) and nothing else. Rules (RFC 9112 §5, RFC 9110
 * §5.5), each a malformation:
 *   - a field name is 1*tchar followed directly by ':' (no whitespace before
 *     the colon, no empty name);
 *   - a field value holds HTAB, SP, VCHAR and obs-text only (no NUL, no other
 *     CTL, no DEL); leading/trailing OWS is excluded from the value offsets;
 *   - lines end with CRLF: a bare CR or a bare LF anywhere is an error;
 *   - a line starting with SP/HTAB (obs-fold, or whitespace before the
 *     first field line) is an error.
 */

import {
  COLON,
  COMMA,
  CR,
  FIELD_VALUE,
  FIELD_OWS,
  HT,
  LF,
  LOWER,
  SP,
  TCHAR,
  equalsIgnoreCase,
  equalsLowerBytes,
  lowerBytes,
} from './chars';

export interface HeadLimits {
  /** Largest head accepted, in bytes from `start` (skipped empty lines included). */
  maxHeaderBytes: number;
}

/** Scanner results below zero. */
export const INCOMPLETE = -1;
export const MALFORMED = -2;
export const TOO_LARGE = -3;

/**
 * Heads that are not complete yet are validated only in their first
 * EARLY_SCAN_BYTES (so garbage fails before the head ends, and a client
 * dribbling a large head cannot make us rescan 64 KiB per byte it sends); a
 * complete head is scanned once. With a HeadProgress the early window is
 * validated again only each time it has doubled.
 */
export const EARLY_SCAN_BYTES = 4096;

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/**
 * Scratch shared by every scan in this thread (the codec is synchronous, so
 * one scan never overlaps another). Offsets of field lines go to `offsets`
 * as [nameStart, nameEnd, valueStart, valueEnd] per line; what the start
 * line holds goes to the named fields below.
 */
export class ScanState {
  /** A plain SMI array: slicing it is ~20x cheaper than allocating a typed array in Node 20. */
  offsets: number[] = new Array<number>(4 * 64).fill(0);
  count = 0;
  status = 400;
  reason = '';
  errorPos = 0;
  major = 1;
  versionMinor = 1;
  /** A request line's method end. */
  methodEnd = 0;
  /** A status line's status code (`status` above is the error to answer with). */
  statusCode = 0;
  /** The middle of the start line: the request-target, or the reason phrase. */
  middleStart = 0;
  middleEnd = 0;
  /** Where the first field line starts. */
  fieldsStart = 0;
  /**
   * Bytes this thread's head scans have looked at, ever: the scanner's
   * spans, the head-end searches and skipped empty lines (one addition per
   * call). A test reads it to show that a head sent byte by byte costs
   * linear work.
   */
  bytesExamined = 0;

  fail(pos: number, status: number, reason: string): number {
    this.errorPos = pos;
    this.status = status;
    this.reason = reason;
    return MALFORMED;
  }
}

export const scanState = new ScanState();

/**
 * How far the bytes of an incomplete request head were looked at, so that
 * the next call for the same head resumes there instead of starting over
 * (see PendingHead in request-head.ts). Offsets count from the message's
 * `start`; all zero = a new head. The parser resets it once the head is
 * complete or rejected.
 */
export class HeadProgress {
  /** Bytes of empty lines (CRLF) before the start line; fixed once the start line began. */
  emptyLines = 0;
  /** Bytes from the start line on in which no CRLFCRLF ends (the next search starts 3 before their end). */
  searched = 0;
  /** Bytes from the start line on the scanner last found valid, at most EARLY_SCAN_BYTES. */
  validated = 0;

  reset(): void {
    this.emptyLines = 0;
    this.searched = 0;
    this.validated = 0;
  }
}

/**
 * Scans field lines from p (the start of a line) through the empty line.
 * Returns the index after the empty line's CRLF (s.count lines recorded),
 * INCOMPLETE when bytes run out first, or MALFORMED (s.reason, s.errorPos).
 */
export function scanFieldLines(buf: Buffer, p: number, end: number, s: ScanState): number {
  const offsets = s.offsets; // grows by appending at its length, staying a packed SMI array
  const tchar = TCHAR; // locals: the loops must not reload module exports per byte
  const fieldValue = FIELD_VALUE;
  let n = 0;
  for (;;) {
    if (p >= end) return INCOMPLETE;
    let c = buf[p];
    if (c === CR) {
      if (p + 1 >= end) return INCOMPLETE;
      if (buf[p + 1] !== LF) return s.fail(p + 1, 400, 'bare CR');
      s.count = n >> 2;
      return p + 2;
    }
    if (c === SP || c === HT) return s.fail(p, 400, n === 0 ? 'whitespace before first field line' : 'obs-fold');
    const nameStart = p;
    while (tchar[c] === 1) {
      if (++p >= end) return INCOMPLETE;
      c = buf[p];
    }
    if (c !== COLON) {
      return s.fail(p, 400, c === SP || c === HT ? 'whitespace before colon' : c === LF ? 'bare LF' : 'invalid character in field name');
    }
    if (p === nameStart) return s.fail(p, 400, 'empty field name');
    const nameEnd = p;
    do {
      if (++p >= end) return INCOMPLETE;
      c = buf[p];
    } while (c === SP || c === HT);
    const valueStart = p;
    while (fieldValue[c] !== 0) {
      if (++p >= end) return INCOMPLETE;
      c = buf[p];
    }
    if (c !== CR) return s.fail(p, 400, c === LF ? 'bare LF' : 'invalid character in field value');
    if (p + 1 >= end) return INCOMPLETE;
    if (buf[p + 1] !== LF) return s.fail(p + 1, 400, 'bare CR');
    let valueEnd = p;
    while (valueEnd > valueStart && FIELD_VALUE[buf[valueEnd - 1]] === FIELD_OWS) valueEnd--;
    p += 2;
    offsets[n] = nameStart;
    offsets[n + 1] = nameEnd;
    offsets[n + 2] = valueStart;
    offsets[n + 3] = valueEnd;
    n += 4;
  }
}

/**
 * Reads `HTTP/` DIGIT `.` DIGIT at p. Returns the index after it (digits in
 * s.major / s.versionMinor), INCOMPLETE or MALFORMED. Whether
 * the version is supported is the caller's decision (505 vs 400).
 */
export function scanVersion(buf: Buffer, p: number, end: number, s: ScanState): number {
  if (p + 8 > end) {
    // Validate what is there so garbage fails early.
    for (let i = 0; p + i < end; i++) {
      if (!versionByteOk(buf[p + i], i)) return s.fail(p + i, 400, 'invalid HTTP version');
    }
    return INCOMPLETE;
  }
  for (let i = 0; i < 8; i++) {
    if (!versionByteOk(buf[p + i], i)) return s.fail(p + i, 400, 'invalid HTTP version');
  }
  s.major = buf[p + 5] - 0x30;
  s.versionMinor = buf[p + 7] - 0x30;
  return p + 8;
}

const HTTP_SLASH = [0x48, 0x54, 0x54, 0x50, 0x2f, 0, 0x2e, 0];

function versionByteOk(c: number, i: number): boolean {
  return i === 5 || i === 7 ? c >= 0x30 && c <= 0x39 : c === HTTP_SLASH[i];
}

/** Whether the version read by scanVersion is HTTP/1.0 or HTTP/1.1. */
export function versionSupported(s: ScanState): boolean {
  return s.major === 1 && s.versionMinor <= 1;
}

/** Expects CRLF at p: index after it, INCOMPLETE or MALFORMED. */
export function expectCrlf(buf: Buffer, p: number, end: number, s: ScanState, what: string): number {
  if (p >= end) return INCOMPLETE;
  const c = buf[p];
  if (c !== CR) return s.fail(p, 400, c === LF ? 'bare LF' : what);
  if (p + 1 >= end) return INCOMPLETE;
  if (buf[p + 1] !== LF) return s.fail(p + 1, 400, 'bare CR');
  return p + 2;
}

/** A start line + field lines scanner (request or response). */
export type HeadScanner = (buf: Buffer, p: number, end: number, s: ScanState) => number;

/** Bytes no head holds anywhere: CTLs other than HTAB, CR and LF, and DEL. */
const NEVER_IN_HEAD = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) if (c !== HT && c !== CR && c !== LF) NEVER_IN_HEAD[c] = 1;
NEVER_IN_HEAD[0x7f] = 1;

/**
 * Whether the new bytes buf[from, end) (from > the head's first byte) prove
 * the head malformed whatever surrounds them: a byte no head holds, a bare
 * LF or a bare CR. Cheap (each byte once), it keeps rejecting such garbage
 * as soon as it arrives without rescanning the head; the scanner then says
 * exactly what is wrong. Malformations that depend on where a byte stands
 * wait for the early window's next validation (earlyWindowGrew).
 */
function provesMalformed(buf: Buffer, from: number, end: number, s: ScanState): boolean {
  s.bytesExamined += end - from;
  for (let i = from; i < end; i++) {
    const c = buf[i];
    // A CR must be followed by LF, and an LF preceded by CR.
    if (NEVER_IN_HEAD[c] === 1 || (c === LF) !== (buf[i - 1] === CR)) return true;
  }
  return false;
}

/** Whether a CRLFCRLF lies within buf[from, end): the bytes after end (a reused buffer's stale tail) are never searched. */
function findHeadEnd(buf: Buffer, from: number, end: number, s: ScanState): boolean {
  s.bytesExamined += end - from;
  return buf.subarray(from, end).indexOf(CRLFCRLF) >= 0;
}

/** The early window is validated again when it has doubled since, or has just reached its full size: no more than 3 × EARLY_SCAN_BYTES of scanning per head. */
function earlyWindowGrew(window: number, validated: number): boolean {
  return window > validated && (window >= 2 * validated || window === EARLY_SCAN_BYTES);
}

function scanSpan(scanner: HeadScanner, buf: Buffer, p: number, end: number, s: ScanState): number {
  s.bytesExamined += end - p;
  return scanner(buf, p, end, s);
}

/**
 * Runs `scanner` over a head that starts at p (after skipped empty lines)
 * of a message whose bytes began at `start`, applying the size limit so
 * that any split of the same bytes gives the same answer:
 *   - a malformation proven by a byte within the first `max` bytes wins;
 *   - otherwise a head (complete or not) longer than `max` is TOO_LARGE.
 * Returns the head end, INCOMPLETE, MALFORMED or TOO_LARGE.
 *
 * With `progress` (a head arriving in pieces), a call after an incomplete
 * one searches only the new bytes for the head's end (from 3 before them),
 * scans the head once it is complete, and meanwhile validates the early
 * window again only when it has doubled: a head of n bytes costs O(n) over
 * all its calls, however it is split.
 */
export function scanHead(
  buf: Buffer,
  start: number,
  p: number,
  end: number,
  max: number,
  scanner: HeadScanner,
  s: ScanState,
  progress: HeadProgress | null = null,
): number {
  const length = end - p;
  const window = Math.min(length, EARLY_SCAN_BYTES);
  let r: number;
  let validated = -1;
  if (progress === null || progress.searched === 0) {
    // A first look (the usual head, read whole): one scan, over the early window only when no head end is in sight.
    if (length <= EARLY_SCAN_BYTES || findHeadEnd(buf, p, end, s)) r = scanSpan(scanner, buf, p, end, s);
    else r = scanSpan(scanner, buf, p, p + EARLY_SCAN_BYTES, s);
    validated = window;
  } else if (findHeadEnd(buf, p + Math.max(0, progress.searched - 3), end, s)) {
    r = scanSpan(scanner, buf, p, end, s);
  } else if (earlyWindowGrew(window, progress.validated) || provesMalformed(buf, p + Math.min(progress.searched, window), p + window, s)) {
    r = scanSpan(scanner, buf, p, p + window, s);
    validated = window;
  } else {
    r = INCOMPLETE;
  }
  if (progress !== null && r === INCOMPLETE) {
    progress.searched = length;
    if (validated >= 0) progress.validated = validated;
  }
  if (r === MALFORMED) return s.errorPos - start < max ? MALFORMED : TOO_LARGE;
  if (r === INCOMPLETE) {
    if (end - start <= max) return INCOMPLETE;
    // Too large: one full scan of the allowed bytes, to report an earlier malformation first.
    r = p < start + max ? scanSpan(scanner, buf, p, start + max, s) : INCOMPLETE;
    return r === MALFORMED ? MALFORMED : TOO_LARGE;
  }
  return r - start > max ? TOO_LARGE : r;
}

/**
 * scanHead, then the framing facts (into fieldFacts). Returns the head end,
 * INCOMPLETE, TOO_LARGE, or MALFORMED with s.status / s.reason set.
 */
export function scanHeadAndFacts(
  buf: Buffer,
  start: number,
  p: number,
  end: number,
  max: number,
  scanner: HeadScanner,
  s: ScanState,
  progress: HeadProgress | null = null,
): number {
  const headEnd = scanHead(buf, start, p, end, max, scanner, s, progress);
  if (headEnd < 0) return headEnd;
  if (!collectFieldFacts(buf, s.offsets, s.count, fieldFacts)) return s.fail(headEnd, 400, fieldFacts.reason);
  return headEnd;
}

/** A new head's header offsets: a copy of the scratch. */
export function takeOffsets(s: ScanState): number[] {
  return s.offsets.slice(0, s.count * 4);
}

/**
 * Skips empty lines (CRLF) before a request line (RFC 9112 §2.2). Returns
 * the index of the first other byte, INCOMPLETE when the bytes end inside
 * the empty lines, or MALFORMED for a bare CR.
 */
export function skipEmptyLines(buf: Buffer, p: number, end: number, s: ScanState): number {
  const from = p;
  while (p + 1 < end && buf[p] === CR) {
    if (buf[p + 1] !== LF) return s.fail(p + 1, 400, 'bare CR');
    p += 2;
  }
  s.bytesExamined += p - from;
  // A CR as the last byte: its LF may come with the next read.
  return p < end && buf[p] === CR ? INCOMPLETE : p;
}

// ---------------------------------------------------------------------------
// Framing facts

const NO_TOKENS: readonly string[] = Object.freeze([]);
const KNOWN_TOKENS = ['close', 'keep-alive', 'upgrade', 'te', 'http2-settings', 'transfer-encoding', 'proxy-connection'];
const KNOWN_TOKEN_BYTES = KNOWN_TOKENS.map(lowerBytes);
const HOST = lowerBytes('host');
const EXPECT = lowerBytes('expect');
const CONTINUE_100 = lowerBytes('100-continue');
const UPGRADE = lowerBytes('upgrade');
const CONNECTION = lowerBytes('connection');
const CONTENT_LENGTH = lowerBytes('content-length');
const TRANSFER_ENCODING = lowerBytes('transfer-encoding');
const CHUNKED = lowerBytes('chunked');
const KEEP_ALIVE = lowerBytes('keep-alive');
const CLOSE = lowerBytes('close');

/** Facts gathered from the field lines in one pass over the offsets. */
export class FieldFacts {
  reason = '';
  contentLength = -1;
  contentLengthIndex = -1;
  /** Number of Transfer-Encoding list elements over all TE fields. */
  codings = 0;
  /** The last coding is `chunked` (and `chunked` appears nowhere else). */
  chunkedLast = false;
  close = false;
  keepAliveToken = false;
  upgradeToken = false;
  connectionTokens: readonly string[] | null = null;
  hostIndex = -1;
  hostCount = 0;
  upgradeIndex = -1;
  upgradeCount = 0;
  expectContinue = false;

  reset(): void {
    this.reason = '';
    this.contentLength = -1;
    this.contentLengthIndex = -1;
    this.codings = 0;
    this.chunkedLast = false;
    this.close = false;
    this.keepAliveToken = false;
    this.upgradeToken = false;
    this.connectionTokens = null;
    this.hostIndex = -1;
    this.hostCount = 0;
    this.upgradeIndex = -1;
    this.upgradeCount = 0;
    this.expectContinue = false;
  }
}

export const fieldFacts = new FieldFacts();

/**
 * Collects the framing facts of `count` field lines. Returns false with
 * f.reason set for a malformed framing field: a duplicate or invalid
 * Content-Length, an invalid Transfer-Encoding list (empty elements,
 * non-tokens, anything after `chunked`), or an invalid Connection list.
 */
export function collectFieldFacts(buf: Buffer, o: readonly number[], count: number, f: FieldFacts): boolean {
  f.reset();
  for (let i = 0, j = 0; i < count; i++, j += 4) {
    const ns = o[j];
    const len = o[j + 1] - ns;
    if (len < 4 || len > 17) continue;
    const first = LOWER[buf[ns]];
    if (len === 4 && first === 0x68 && equalsLowerBytes(buf, ns, ns + 4, HOST)) {
      f.hostCount++;
      f.hostIndex = i;
    } else if (len === 6 && first === 0x65 && equalsLowerBytes(buf, ns, ns + 6, EXPECT)) {
      if (equalsLowerBytes(buf, o[j + 2], o[j + 3], CONTINUE_100)) f.expectContinue = true;
    } else if (len === 7 && first === 0x75 && equalsLowerBytes(buf, ns, ns + 7, UPGRADE)) {
      f.upgradeCount++;
      if (f.upgradeIndex < 0) f.upgradeIndex = i;
    } else if (len === 10 && first === 0x63 && equalsLowerBytes(buf, ns, ns + 10, CONNECTION)) {
      if (!connectionList(buf, o[j + 2], o[j + 3], f)) return false;
    } else if (len === 14 && first === 0x63 && equalsLowerBytes(buf, ns, ns + 14, CONTENT_LENGTH)) {
      if (f.contentLength >= 0) return fact(f, 'duplicate content-length');
      const v = parseContentLength(buf, o[j + 2], o[j + 3]);
      if (v < 0) return fact(f, 'invalid content-length');
      f.contentLength = v;
      f.contentLengthIndex = i;
    } else if (len === 17 && first === 0x74 && equalsLowerBytes(buf, ns, ns + 17, TRANSFER_ENCODING)) {
      if (!codingList(buf, o[j + 2], o[j + 3], f)) return false;
    }
  }
  return true;
}

function fact(f: FieldFacts, reason: string): boolean {
  f.reason = reason;
  return false;
}

/** 1*DIGIT up to 2^53-1, or -1. */
export function parseContentLength(buf: Buffer, s: number, e: number): number {
  if (s >= e) return -1;
  let v = 0;
  for (let p = s; p < e; p++) {
    const d = buf[p] - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
    if (v > Number.MAX_SAFE_INTEGER) return -1;
  }
  return v;
}

/** Where a list element lies: [start, end), OWS-trimmed (one per thread: the scan is synchronous). */
const element = { start: 0, end: 0 };

/** Reads the next list element of [p, e) into `el`; returns where the one after it starts. */
function nextElement(buf: Buffer, p: number, e: number, el: { start: number; end: number }): number {
  while (p < e && (buf[p] === SP || buf[p] === HT)) p++;
  el.start = p;
  while (p < e && buf[p] !== COMMA) p++;
  let q = p;
  while (q > el.start && (buf[q - 1] === SP || buf[q - 1] === HT)) q--;
  el.end = q;
  return p + 1; // past the comma (or past e: the loop ends)
}

function isToken(buf: Buffer, s: number, e: number): boolean {
  if (s >= e) return false;
  for (let p = s; p < e; p++) if (TCHAR[buf[p]] !== 1) return false;
  return true;
}

function codingList(buf: Buffer, s: number, e: number, f: FieldFacts): boolean {
  for (let p = s; p <= e; ) {
    p = nextElement(buf, p, e, element);
    if (!isToken(buf, element.start, element.end)) return fact(f, 'invalid transfer-encoding');
    if (f.chunkedLast) return fact(f, 'chunked is not the final transfer-coding');
    f.codings++;
    f.chunkedLast = equalsLowerBytes(buf, element.start, element.end, CHUNKED);
  }
  return true;
}

/** `Connection: keep-alive` and `Connection: close`, the usual lists: shared, never written to. */
const KEEP_ALIVE_ONLY: readonly string[] = Object.freeze(['keep-alive']);
const CLOSE_ONLY: readonly string[] = Object.freeze(['close']);

function connectionList(buf: Buffer, s: number, e: number, f: FieldFacts): boolean {
  const prior = f.connectionTokens;
  if (prior === null) {
    // The usual single token, matched whole: no list walk, no array made.
    if (equalsLowerBytes(buf, s, e, KEEP_ALIVE)) {
      f.keepAliveToken = true;
      f.connectionTokens = KEEP_ALIVE_ONLY;
      return true;
    }
    if (equalsLowerBytes(buf, s, e, CLOSE)) {
      f.close = true;
      f.connectionTokens = CLOSE_ONLY;
      return true;
    }
  }
  const tokens = prior === null ? [] : prior.slice();
  f.connectionTokens = tokens;
  for (let p = s; p <= e; ) {
    p = nextElement(buf, p, e, element);
    if (element.start === element.end) continue; // empty list elements are ignored (RFC 9110 §5.6.1.2)
    if (!isToken(buf, element.start, element.end)) return fact(f, 'invalid connection header');
    let name: string | undefined;
    for (let k = 0; k < KNOWN_TOKENS.length; k++) {
      if (equalsLowerBytes(buf, element.start, element.end, KNOWN_TOKEN_BYTES[k])) {
        name = KNOWN_TOKENS[k];
        break;
      }
    }
    if (name === undefined) name = buf.toString('latin1', element.start, element.end).toLowerCase();
    if (name === 'close') f.close = true;
    else if (name === 'keep-alive') f.keepAliveToken = true;
    else if (name === 'upgrade') f.upgradeToken = true;
    if (tokens.indexOf(name) < 0) tokens.push(name);
  }
  return true;
}

// ---------------------------------------------------------------------------
// The head view

/**
 * A parsed head: offsets into `buf` plus framing facts. Header i's name is
 * buf[headers[4i], headers[4i+1]), its OWS-trimmed value
 * buf[headers[4i+2], headers[4i+3]); its whole line including CRLF is
 * buf[headers[4i], headerLineEnd(i)), so the proxy can copy lines verbatim.
 * The helpers read `buf`: they are valid while the caller keeps those bytes.
 */
export class MessageHead {
  /** Index of the start line's first byte (after skipped empty lines). */
  start = 0;
  /** Index after the start line's CRLF (the first field line). */
  fieldsStart = 0;
  /** Index after the head's final CRLFCRLF. */
  headEnd = 0;
  versionMinor: 0 | 1 = 1;
  readonly headers: readonly number[];
  headerCount = 0;
  /** Content-Length value, or null when absent. */
  contentLength: number | null = null;
  /** Index of the Content-Length field line, or -1. */
  contentLengthIndex = -1;
  /** Transfer-Encoding ends with chunked (for requests: is exactly chunked). */
  chunked = false;
  /** Whether the connection may be reused after this message. */
  keepAlive = true;
  /** Lower-case names listed in Connection (hop-by-hop), in order, deduplicated. */
  connectionTokens: readonly string[] = NO_TOKENS;
  /** The Upgrade value when Connection lists `upgrade`, else null. */
  upgrade: string | null = null;

  constructor(
    readonly buf: Buffer,
    headers: readonly number[],
  ) {
    this.headers = headers;
    this.headerCount = headers.length >> 2;
  }

  headerName(i: number): string {
    return this.buf.toString('latin1', this.headers[i * 4], this.headers[i * 4 + 1]);
  }

  headerValue(i: number): string {
    return this.buf.toString('latin1', this.headers[i * 4 + 2], this.headers[i * 4 + 3]);
  }

  /** Index just past header i's CRLF. */
  headerLineEnd(i: number): number {
    return i + 1 < this.headerCount ? this.headers[(i + 1) * 4] : this.headEnd - 2;
  }

  /** Index of the first header named `lowerName` (ASCII case-insensitive) at or after `from`, or -1. */
  indexOfHeader(lowerName: string, from = 0): number {
    const o = this.headers;
    const n = lowerName.length;
    for (let i = from; i < this.headerCount; i++) {
      const s = o[i * 4];
      if (o[i * 4 + 1] - s === n && equalsIgnoreCase(this.buf, s, s + n, lowerName)) return i;
    }
    return -1;
  }

  /** Value of the first header named `lowerName`, or null. */
  getHeader(lowerName: string): string | null {
    const i = this.indexOfHeader(lowerName);
    return i < 0 ? null : this.headerValue(i);
  }

  /** Values of every header named `lowerName`, in order, joined with ", " (null when absent). */
  getHeaderJoined(lowerName: string): string | null {
    let out: string | null = null;
    for (let i = this.indexOfHeader(lowerName); i >= 0; i = this.indexOfHeader(lowerName, i + 1)) {
      out = out === null ? this.headerValue(i) : out + ', ' + this.headerValue(i);
    }
    return out;
  }

  // The pipeline's view (pipeline/request-context.ts RequestHeaders): undefined for absent.

  get(lowerName: string): string | undefined {
    return this.getHeader(lowerName) ?? undefined;
  }

  joined(lowerName: string): string | undefined {
    return this.getHeaderJoined(lowerName) ?? undefined;
  }

  /** Copies this head's facts to `other`, a head over the same bytes moved by `shift`. */
  protected copyFactsTo(other: MessageHead, shift: number): void {
    other.start = this.start - shift;
    other.fieldsStart = this.fieldsStart - shift;
    other.headEnd = this.headEnd - shift;
    other.versionMinor = this.versionMinor;
    other.contentLength = this.contentLength;
    other.contentLengthIndex = this.contentLengthIndex;
    other.chunked = this.chunked;
    other.keepAlive = this.keepAlive;
    other.connectionTokens = this.connectionTokens;
    other.upgrade = this.upgrade;
  }
}

/** Fills the facts common to requests and responses. */
export function applyFacts(head: MessageHead, f: FieldFacts, versionMinor: number): void {
  head.contentLength = f.contentLength >= 0 ? f.contentLength : null;
  head.contentLengthIndex = f.contentLengthIndex;
  head.chunked = f.chunkedLast;
  head.keepAlive = !f.close && (versionMinor === 1 || f.keepAliveToken);
  if (f.connectionTokens !== null) head.connectionTokens = f.connectionTokens;
  if (f.upgradeToken && f.upgradeIndex >= 0) head.upgrade = f.upgradeCount === 1 ? head.headerValue(f.upgradeIndex) : head.getHeaderJoined('upgrade');
}
