/**
 * When a failed request goes to another target (SPEC §5), for every proxy
 * (HTTP/1.1 upstreams through ProxyExchange, HTTP/2 ones stream to stream):
 * read from the failure itself (errors.ts), never from its message.
 *
 * - A failure that is not `retryable` (a timeout, an invalid or broken
 *   response, no target) is final: the upstream may have acted, or another
 *   target would fare no better.
 * - One that never reached the upstream (a refused connect) goes again, up
 *   to the route's `retries`: nothing was sent, and the body held so far is
 *   replayed whole.
 * - One that may have reached it (a reset before any response byte) goes
 *   again only for a method safe to repeat (RFC 9110 §9.2.2) whose body has
 *   not started to leave.
 */
import type { ZproxyError } from '../errors';

/** Methods a proxy may send again after a failure (RFC 9110 §9.2.2). */
export const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export interface RetryState {
  readonly method: string;
  /** Attempts made so far, the failed one included. */
  readonly attempts: number;
  /** The route's `retries`. */
  readonly retries: number;
  /** A byte of the request body went to an upstream (it could not be replayed as it was). */
  readonly bodySent: boolean;
}

export function mayRetry(error: ZproxyError, state: RetryState): boolean {
  if (!error.retryable || state.attempts > state.retries) return false;
  if (!error.reachedUpstream) return true;
  return IDEMPOTENT.has(state.method) && !state.bodySent;
}

/** Does this failure count against the target (passive health, ejection)? A bad response or a stalled client does not. */
export function blamesTarget(error: ZproxyError): boolean {
  return error.side === 'upstream' && error.code !== 'ZP_ERR_UPSTREAM_BAD_RESPONSE' && error.code !== 'ZP_ERR_UPSTREAM_BUSY' && error.code !== 'ZP_ERR_NO_HEALTHY_TARGET';
}
