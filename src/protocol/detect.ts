/**
 * Protocol detection from a connection's first bytes (SPEC §7): a TLS
 * ClientHello, the HTTP/2 preface, or an HTTP/1 request line.
 */

export type DetectedProtocol = 'tls' | 'http2' | 'http1' | 'unknown' | 'incomplete';

export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** Longest method we wait for before giving up on HTTP/1. */
const MAX_METHOD_LENGTH = 24;
const TLS_HANDSHAKE = 0x16;
const TLS_MAJOR = 0x03;
const SPACE = 0x20;

/** RFC 9110 tchar. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

export function detectProtocol(bytes: Buffer): DetectedProtocol {
  if (bytes.length === 0) return 'incomplete';
  if (bytes[0] === TLS_HANDSHAKE) {
    if (bytes.length === 1) return 'incomplete';
    return bytes[1] === TLS_MAJOR ? 'tls' : 'unknown';
  }
  const prefaceBytes = Math.min(bytes.length, HTTP2_PREFACE.length);
  if (HTTP2_PREFACE.compare(bytes, 0, prefaceBytes, 0, prefaceBytes) === 0) {
    return prefaceBytes === HTTP2_PREFACE.length ? 'http2' : 'incomplete';
  }
  return detectHttp1(bytes);
}

/**
 * A method token followed by a space; CR/LF before it are tolerated (RFC
 * 9112 §2.2). Decided as soon as the method is seen, with one exception
 * for the bytes already there: a line whose second part is no request
 * target at all (not `/…`, not `*`, no `:` as in `http://…` or
 * `host:port`) and whose third part is no HTTP version (not `HTTP/`, in any
 * case) is no HTTP/1 request, e.g. a broken HTTP/2 preface (`INVALID
 * CONNECTION PREFACE`, h2spec 3.5/2): it is closed without an answer, as an
 * HTTP/2 endpoint must. Anything more HTTP-like (a bad target or a bad
 * version alone) still gets its 400 or 505 from the HTTP/1 parser.
 */
function detectHttp1(bytes: Buffer): DetectedProtocol {
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x0d || bytes[i] === 0x0a) && i < 4) i++;
  const methodStart = i;
  while (i < bytes.length && TCHAR[bytes[i]] === 1) i++;
  if (i === bytes.length) return i - methodStart < MAX_METHOD_LENGTH ? 'incomplete' : 'unknown';
  if (bytes[i] !== SPACE || i === methodStart) return 'unknown';
  // The request target: up to the next space (a CR or LF first leaves the line to the HTTP/1 parser).
  const targetStart = ++i;
  let colon = false;
  while (i < bytes.length && bytes[i] !== SPACE && bytes[i] !== 0x0d && bytes[i] !== 0x0a) {
    if (bytes[i] === 0x3a) colon = true;
    i++;
  }
  if (i === bytes.length || bytes[i] !== SPACE || i === targetStart) return 'http1';
  const first = bytes[targetStart];
  if (first === 0x2f /* / */ || first === 0x2a /* * */ || colon) return 'http1';
  i++;
  for (let k = 0; k < HTTP_SLASH.length && i + k < bytes.length; k++) {
    if ((bytes[i + k] | 0x20) !== HTTP_SLASH[k]) return 'unknown';
  }
  return 'http1';
}

/** `http/`, compared with the bytes lower-cased (`/` is unchanged by | 0x20). */
const HTTP_SLASH = Buffer.from('http/', 'latin1');
