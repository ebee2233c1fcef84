/**
 * Strict parser of HTTP/1.x response heads from upstreams (RFC 9112 §4).
 * Same calling convention and field-line rules as parseRequestHead; any
 * malformation is an `error` the proxy answers with 502.
 *
 * Status line: `HTTP/1.0` or `HTTP/1.1`, SP, three digits 100-599, then
 * SP and a reason phrase (HTAB, SP, VCHAR, obs-text), or directly CRLF
 * (a missing reason is tolerated). No empty lines are skipped before it.
 * Framing (RFC 9112 §6.3): Content-Length with Transfer-Encoding, a
 * duplicate or invalid Content-Length, Transfer-Encoding on HTTP/1.0, or
 * `chunked` anywhere but last are errors; a Transfer-Encoding that does not
 * end in `chunked` means the body runs until the connection closes.
 */

import { CR, SP, FIELD_VALUE } from './chars';
import {
  type HeadLimits,
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
  takeOffsets,
  versionSupported,
} from './field-lines';

/** How a response body is delimited. */
export type BodyFraming = 'none' | 'length' | 'chunked' | 'close';

export class ResponseHead extends MessageHead {
  status = 0;
  reasonStart = 0;
  reasonEnd = 0;
  /** No usable length: if this response has a body, it ends when the connection closes. */
  closeDelimited = false;

  /** The reason phrase (decoded on demand). */
  get reason(): string {
    return this.buf.toString('latin1', this.reasonStart, this.reasonEnd);
  }

  /** How the body of this response to `requestMethod` is delimited. */
  bodyFraming(requestMethod: string): BodyFraming {
    if (!responseHasBody(requestMethod, this.status)) return 'none';
    if (this.chunked) return 'chunked';
    if (this.closeDelimited) return 'close';
    return 'length';
  }

  /** Whether the upstream connection can be reused after this response to `requestMethod`. */
  reusable(requestMethod: string): boolean {
    return this.keepAlive && this.bodyFraming(requestMethod) !== 'close' && this.status !== 101;
  }
}

export type ResponseParseResult =
  | { kind: 'incomplete' }
  | { kind: 'error'; status: 502; reason: string }
  | { kind: 'head'; head: ResponseHead; headEnd: number };

const INCOMPLETE_RESULT: { kind: 'incomplete' } = Object.freeze({ kind: 'incomplete' as const });

function error(reason: string): ResponseParseResult {
  return { kind: 'error', status: 502, reason };
}

/** HEAD responses, 1xx, 204, 304 and 2xx answers to CONNECT have no body. */
export function responseHasBody(requestMethod: string, status: number): boolean {
  if (requestMethod === 'HEAD') return false;
  if (status < 200 || status === 204 || status === 304) return false;
  if (requestMethod === 'CONNECT' && status < 300) return false;
  return true;
}

/** Parses the response head in buf[start, end). The head keeps references into `buf`. */
export function parseResponseHead(buf: Buffer, start: number, end: number, limits: HeadLimits): ResponseParseResult {
  const s = scanState;
  const headEnd = scanHeadAndFacts(buf, start, start, end, limits.maxHeaderBytes, scanResponse, s);
  if (headEnd === INCOMPLETE) return INCOMPLETE_RESULT;
  if (headEnd === TOO_LARGE) return error('response head too large');
  if (headEnd === MALFORMED) return error(s.reason);

  const minor = s.versionMinor;
  const f = fieldFacts;
  if (f.codings > 0) {
    if (f.contentLength >= 0) return error('content-length with transfer-encoding');
    if (minor === 0) return error('transfer-encoding on HTTP/1.0');
  }
  const head = new ResponseHead(buf, takeOffsets(s));
  head.start = start;
  head.fieldsStart = s.fieldsStart;
  head.headEnd = headEnd;
  head.versionMinor = minor as 0 | 1;
  head.status = s.statusCode;
  head.reasonStart = s.middleStart;
  head.reasonEnd = s.middleEnd;
  applyFacts(head, f, minor);
  head.closeDelimited = !head.chunked && head.contentLength === null;
  return { kind: 'head', head, headEnd };
}

/** Status line + field lines: the status, the reason and the first field line go to `s`. */
function scanResponse(buf: Buffer, p: number, end: number, s: ScanState): number {
  s.count = 0;
  p = scanVersion(buf, p, end, s);
  if (p < 0) return p;
  if (!versionSupported(s)) return s.fail(p, 400, 'unsupported HTTP version');
  if (p >= end) return INCOMPLETE;
  if (buf[p] !== SP) return s.fail(p, 400, 'invalid status line');
  p++;
  let status = 0;
  for (let i = 0; i < 3; i++, p++) {
    if (p >= end) return INCOMPLETE;
    const d = buf[p] - 0x30;
    if (d < 0 || d > 9) return s.fail(p, 400, 'invalid status code');
    status = status * 10 + d;
  }
  if (status < 100 || status > 599) return s.fail(p - 1, 400, 'invalid status code');
  s.statusCode = status;
  if (p >= end) return INCOMPLETE;
  if (buf[p] === SP) p++;
  else if (buf[p] !== CR) return s.fail(p, 400, 'invalid status line');
  s.middleStart = p;
  for (;;) {
    if (p >= end) return INCOMPLETE;
    if (FIELD_VALUE[buf[p]] === 0) break;
    p++;
  }
  s.middleEnd = p;
  const next = expectCrlf(buf, p, end, s, 'invalid character in reason phrase');
  if (next < 0) return next;
  s.fieldsStart = next;
  return scanFieldLines(buf, next, end, s);
}
