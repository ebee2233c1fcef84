/**
 * Ids for requests that arrive without `X-Request-Id`: a random prefix per
 * thread (this module is loaded once per worker) and a counter. Unique across
 * workers and restarts, without a CSPRNG call per request (randomUUID cost
 * more than building the rest of the forwarded head).
 *
 * A generated id is kept as its counter value and written into heads digit
 * by digit; its text is made only where a string is needed (error bodies,
 * HTTP/2 headers, logs). Making the string and writing it with Buffer#write
 * cost a proxied request about 0.2 µs, twice over (upstream and client head).
 */
import { randomBytes } from 'node:crypto';

/** A generated id (its counter value), or the client's own X-Request-Id. */
export type RequestId = number | string;

const prefix = `${randomBytes(8).toString('hex')}-`;
const PREFIX_BYTES = Buffer.from(prefix, 'latin1');
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
let counter = 0;

export function nextRequestId(): number {
  return ++counter;
}

export function requestIdText(id: RequestId): string {
  return typeof id === 'string' ? id : prefix + id.toString(16);
}

/** Hex digits of a counter value (bit arithmetic below 2^31, the usual case). */
function digitCount(n: number): number {
  if (n < 0x80000000) return n === 0 ? 1 : 8 - (Math.clz32(n) >> 2);
  let count = 8;
  for (let rest = Math.floor(n / 0x100000000); rest >= 1; rest = Math.floor(rest / 16)) count++;
  return count;
}

/** Bytes `writeRequestId` writes for `id`. */
export function requestIdLength(id: RequestId): number {
  return typeof id === 'string' ? Buffer.byteLength(id, 'latin1') : PREFIX_BYTES.length + digitCount(id);
}

/** Writes `id` (latin1) into `out` at `at`; returns the offset after it. */
export function writeRequestId(out: Buffer, at: number, id: RequestId): number {
  if (typeof id === 'string') return at + out.write(id, at, 'latin1');
  for (let i = 0; i < PREFIX_BYTES.length; i++) out[at++] = PREFIX_BYTES[i];
  const end = at + digitCount(id);
  if (id < 0x80000000) {
    for (let p = end - 1, n = id; p >= at; p--, n >>>= 4) out[p] = HEX_DIGITS[n & 15];
  } else {
    for (let p = end - 1, n = id; p >= at; p--, n = Math.floor(n / 16)) out[p] = HEX_DIGITS[n % 16];
  }
  return end;
}
