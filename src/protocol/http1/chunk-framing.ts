/**
 * The chunked framing zproxy writes (RFC 9112 §7.1): sizes in lower-case hex
 * without leading zeros, no chunk extensions, and a trailer section of the
 * fields forwarding-rules.ts lets pass. Whatever chunking a peer sent is
 * decoded (chunked.ts) and framed anew here, so a chunk-size or extension
 * that parsers read differently never crosses the proxy.
 */
import type { MessageHead } from './field-lines';
import { equalsIgnoreCase } from './chars';
import { NOT_IN_TRAILERS } from '../../http/forwarding-rules';

export const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/** `<size in hex>\r\n`. */
export function chunkSizeLine(size: number): Buffer {
  return Buffer.from(size.toString(16) + '\r\n', 'latin1');
}

/** buf[start, end) as one chunk: size line, data, CRLF (a copy). */
export function frameChunk(buf: Buffer, start: number, end: number): Buffer {
  const size = (end - start).toString(16);
  const out = Buffer.allocUnsafe(size.length + 2 + (end - start) + 2);
  let at = out.write(size, 0, 'latin1');
  out[at++] = 0x0d;
  out[at++] = 0x0a;
  at += buf.copy(out, at, start, end);
  out[at++] = 0x0d;
  out[at] = 0x0a;
  return out;
}

/** The last chunk and the trailer section: the fields of `trailers` that may pass, as they came. */
export function lastChunk(trailers: MessageHead | null): Buffer {
  if (trailers === null || trailers.headerCount === 0) return LAST_CHUNK;
  let text = '0\r\n';
  for (let i = 0; i < trailers.headerCount; i++) {
    if (!passes(trailers, i)) continue;
    text += trailers.buf.toString('latin1', trailers.headers[i * 4], trailers.headerLineEnd(i));
  }
  return Buffer.from(text + '\r\n', 'latin1');
}

function passes(trailers: MessageHead, i: number): boolean {
  const start = trailers.headers[i * 4];
  const end = trailers.headers[i * 4 + 1];
  for (const name of NOT_IN_TRAILERS) if (name.length === end - start && equalsIgnoreCase(trailers.buf, start, end, name)) return false;
  return true;
}
