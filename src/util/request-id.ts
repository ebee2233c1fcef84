/**
 * Ids for requests that arrive without `X-Request-Id`: a random prefix per
 * thread (this module is loaded once per worker) and a counter. Unique across
 * workers and restarts, without a CSPRNG call per request (randomUUID cost
 * more than building the rest of the forwarded head).
 */
import { randomBytes } from 'node:crypto';

const prefix = `${randomBytes(8).toString('hex')}-`;
let counter = 0;

export function nextRequestId(): string {
  counter++;
  return prefix + counter.toString(16);
}
