/**
 * Byte constants and character-class tables shared by the HTTP/1.x codec
 * (request heads, response heads, chunked bodies and their trailers).
 *
 * Every scanning loop in the codec works on Buffer bytes and looks classes
 * up in these Uint8Array(256) tables: no regexes, no per-byte calls.
 * Grammar references are RFC 9110 §5.6 (tokens, field values) and RFC 3986
 * (request-target, authority).
 */

export const HT = 0x09;
export const LF = 0x0a;
export const CR = 0x0d;
export const SP = 0x20;
export const DQUOTE = 0x22;
export const PERCENT = 0x25;
export const COMMA = 0x2c;
export const SLASH = 0x2f;
export const COLON = 0x3a;
export const SEMICOLON = 0x3b;
export const EQUALS = 0x3d;
export const QUESTION = 0x3f;
export const LBRACKET = 0x5b;
export const BACKSLASH = 0x5c;
export const RBRACKET = 0x5d;
export const ASTERISK = 0x2a;
export const DIGIT_0 = 0x30;

function table(fill: (c: number) => number): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = fill(c);
  return t;
}

const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isVchar = (c: number): boolean => c >= 0x21 && c <= 0x7e;
const isObsText = (c: number): boolean => c >= 0x80;
const inSet = (set: string) => (c: number): boolean => set.indexOf(String.fromCharCode(c)) >= 0;

/** tchar (RFC 9110 §5.6.2): method names, field names, tokens. 1 = allowed. */
export const TCHAR = table((c) => (isAlpha(c) || isDigit(c) || inSet("!#$%&'*+-.^_`|~")(c) ? 1 : 0));

/** OWS bytes (SP, HTAB). */
export const FIELD_OWS = 1;
/** Visible field-value bytes (VCHAR, obs-text). */
export const FIELD_VISIBLE = 2;
/**
 * Field-value bytes (RFC 9110 §5.5): 0 = forbidden (NUL, CR, LF, other CTLs,
 * DEL), FIELD_OWS = SP/HTAB, FIELD_VISIBLE = VCHAR and obs-text.
 */
export const FIELD_VALUE = table((c) => (c === SP || c === HT ? FIELD_OWS : isVchar(c) || isObsText(c) ? FIELD_VISIBLE : 0));

/**
 * request-target bytes: VCHAR only (RFC 3986; Node's llhttp agrees). SP,
 * HTAB, NUL, DEL, other CTLs and raw non-ASCII bytes are forbidden.
 */
export const TARGET_CHAR = table((c) => (isVchar(c) ? 1 : 0));

/**
 * reg-name / IP-literal bytes of an authority (RFC 3986 §3.2.2) plus ':'
 * for the port: unreserved, sub-delims, '%', ':', '[' and ']'. No '@'
 * (userinfo is an error in http URIs, RFC 9110 §4.2.4), no '/', '?', '#'.
 */
export const AUTHORITY_CHAR = table((c) => (isAlpha(c) || isDigit(c) || inSet("-._~!$&'()*+,;=%:[]")(c) ? 1 : 0));

/** Hex digit values; 0xff = not a hex digit. */
export const HEX_VALUE = table((c) => (isDigit(c) ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : 0xff));

/**
 * qdtext of a quoted-string (RFC 9110 §5.6.4): HTAB, SP, '!', '#'-'[',
 * ']'-'~', obs-text. DQUOTE and backslash are handled by the caller.
 */
export const QDTEXT = table((c) => (c === HT || c === SP || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || isObsText(c) ? 1 : 0));

/** ASCII lower-casing of a byte (letters only). */
export const LOWER = table((c) => (c >= 0x41 && c <= 0x5a ? c + 0x20 : c));

/**
 * Whether buf[s, e) equals `lower` ignoring ASCII case. `lower` must be
 * lower-case ASCII.
 */
export function equalsIgnoreCase(buf: Buffer, s: number, e: number, lower: string): boolean {
  const n = lower.length;
  if (e - s !== n) return false;
  for (let i = 0; i < n; i++) {
    if (LOWER[buf[s + i]] !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * A lower-case ASCII name as bytes, for the hottest comparisons (framing
 * fields, the hop-by-hop names): byte against byte costs about half of
 * byte against a string's char codes.
 */
export function lowerBytes(text: string): Uint8Array {
  if (text !== text.toLowerCase() || !/^[\x21-\x7e]+$/.test(text)) throw new Error(`not a lower-case ASCII name: ${text}`);
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** equalsIgnoreCase against a lowerBytes name. */
export function equalsLowerBytes(buf: Buffer, s: number, e: number, lower: Uint8Array): boolean {
  const n = lower.length;
  if (e - s !== n) return false;
  for (let i = 0; i < n; i++) {
    if (LOWER[buf[s + i]] !== lower[i]) return false;
  }
  return true;
}

/** Index of the first OWS-trimmed byte in [s, e). */
export function skipOws(buf: Buffer, s: number, e: number): number {
  while (s < e && (buf[s] === SP || buf[s] === HT)) s++;
  return s;
}

/** End of [s, e) with trailing OWS removed. */
export function trimOwsEnd(buf: Buffer, s: number, e: number): number {
  while (e > s && (buf[e - 1] === SP || buf[e - 1] === HT)) e--;
  return e;
}
