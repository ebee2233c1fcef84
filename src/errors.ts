/**
 * Every error zproxy reports, one class per code (`ZP_ERR_*`), in this one
 * file. Each says which side failed and whether the request may be retried
 * on another target; retry logic reads those fields, never messages.
 * The client sees `{"error", "status", "request_id"}` (SPEC §6).
 */

export type FailedSide = 'downstream' | 'upstream' | 'internal';

export abstract class ZproxyError extends Error {
  abstract readonly code: string;
  /** The HTTP status the client receives. */
  abstract readonly status: number;
  abstract readonly side: FailedSide;
  /** May the request be sent to another target? */
  abstract readonly retryable: boolean;
}

interface ErrorSpec {
  status: number;
  side: FailedSide;
  retryable: boolean;
  message: string;
}

function defineError(code: string, spec: ErrorSpec) {
  return class extends ZproxyError {
    readonly code = code;
    readonly status = spec.status;
    readonly side = spec.side;
    readonly retryable = spec.retryable;
    constructor(detail?: string) {
      super(detail ? `${spec.message}: ${detail}` : spec.message);
      this.name = code;
    }
  };
}

/** The registry, also read by the test that checks every code is documented. */
export const errorSpecs = {
  ZP_ERR_BAD_REQUEST: { status: 400, side: 'downstream', retryable: false, message: 'bad request' },
  ZP_ERR_BAD_PATH: { status: 400, side: 'downstream', retryable: false, message: 'bad request path' },
  ZP_ERR_PLAIN_HTTP_ON_TLS: { status: 400, side: 'downstream', retryable: false, message: 'the plain HTTP request was sent to a TLS port' },
  ZP_ERR_NOT_FOUND: { status: 404, side: 'downstream', retryable: false, message: 'no route' },
  ZP_ERR_METHOD_NOT_ALLOWED: { status: 405, side: 'downstream', retryable: false, message: 'method not allowed' },
  ZP_ERR_REQUEST_TIMEOUT: { status: 408, side: 'downstream', retryable: false, message: 'request head not received in time' },
  ZP_ERR_BODY_TIMEOUT: { status: 408, side: 'downstream', retryable: false, message: 'request body not received in time' },
  ZP_ERR_BODY_TOO_LARGE: { status: 413, side: 'downstream', retryable: false, message: 'request body too large' },
  ZP_ERR_RATE_LIMITED: { status: 429, side: 'downstream', retryable: false, message: 'rate limit exceeded' },
  ZP_ERR_HEADERS_TOO_LARGE: { status: 431, side: 'downstream', retryable: false, message: 'request header fields too large' },
  ZP_ERR_HTTP_VERSION: { status: 505, side: 'downstream', retryable: false, message: 'HTTP version not supported' },
  ZP_ERR_INTERNAL: { status: 500, side: 'internal', retryable: false, message: 'internal error' },
  ZP_ERR_NOT_IMPLEMENTED: { status: 501, side: 'downstream', retryable: false, message: 'not supported on this route' },
  ZP_ERR_UPSTREAM_CONNECT: { status: 502, side: 'upstream', retryable: true, message: 'upstream connection failed' },
  ZP_ERR_UPSTREAM_RESET: { status: 502, side: 'upstream', retryable: true, message: 'upstream closed the connection before responding' },
  ZP_ERR_UPSTREAM_BAD_RESPONSE: { status: 502, side: 'upstream', retryable: false, message: 'upstream sent an invalid response' },
  ZP_ERR_RATE_LIMIT_STORE: { status: 503, side: 'internal', retryable: false, message: 'the rate limit store is unavailable' },
  ZP_ERR_NO_HEALTHY_TARGET: { status: 503, side: 'upstream', retryable: false, message: 'no healthy upstream target' },
  ZP_ERR_UPSTREAM_BUSY: { status: 503, side: 'upstream', retryable: false, message: 'upstream connection limit reached' },
  ZP_ERR_UPSTREAM_TIMEOUT: { status: 504, side: 'upstream', retryable: false, message: 'upstream did not respond in time' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorSpecs;

export const BadRequestError = defineError('ZP_ERR_BAD_REQUEST', errorSpecs.ZP_ERR_BAD_REQUEST);
export const BadPathError = defineError('ZP_ERR_BAD_PATH', errorSpecs.ZP_ERR_BAD_PATH);
export const PlainHttpOnTlsError = defineError('ZP_ERR_PLAIN_HTTP_ON_TLS', errorSpecs.ZP_ERR_PLAIN_HTTP_ON_TLS);
export const NotFoundError = defineError('ZP_ERR_NOT_FOUND', errorSpecs.ZP_ERR_NOT_FOUND);
export const MethodNotAllowedError = defineError('ZP_ERR_METHOD_NOT_ALLOWED', errorSpecs.ZP_ERR_METHOD_NOT_ALLOWED);
export const RequestTimeoutError = defineError('ZP_ERR_REQUEST_TIMEOUT', errorSpecs.ZP_ERR_REQUEST_TIMEOUT);
export const BodyTimeoutError = defineError('ZP_ERR_BODY_TIMEOUT', errorSpecs.ZP_ERR_BODY_TIMEOUT);
export const BodyTooLargeError = defineError('ZP_ERR_BODY_TOO_LARGE', errorSpecs.ZP_ERR_BODY_TOO_LARGE);
export const RateLimitedError = defineError('ZP_ERR_RATE_LIMITED', errorSpecs.ZP_ERR_RATE_LIMITED);
export const HeadersTooLargeError = defineError('ZP_ERR_HEADERS_TOO_LARGE', errorSpecs.ZP_ERR_HEADERS_TOO_LARGE);
export const HttpVersionError = defineError('ZP_ERR_HTTP_VERSION', errorSpecs.ZP_ERR_HTTP_VERSION);
export const InternalError = defineError('ZP_ERR_INTERNAL', errorSpecs.ZP_ERR_INTERNAL);
export const NotImplementedError = defineError('ZP_ERR_NOT_IMPLEMENTED', errorSpecs.ZP_ERR_NOT_IMPLEMENTED);
export const UpstreamConnectError = defineError('ZP_ERR_UPSTREAM_CONNECT', errorSpecs.ZP_ERR_UPSTREAM_CONNECT);
export const UpstreamResetError = defineError('ZP_ERR_UPSTREAM_RESET', errorSpecs.ZP_ERR_UPSTREAM_RESET);
export const UpstreamBadResponseError = defineError('ZP_ERR_UPSTREAM_BAD_RESPONSE', errorSpecs.ZP_ERR_UPSTREAM_BAD_RESPONSE);
export const RateLimitStoreError = defineError('ZP_ERR_RATE_LIMIT_STORE', errorSpecs.ZP_ERR_RATE_LIMIT_STORE);
export const NoHealthyTargetError = defineError('ZP_ERR_NO_HEALTHY_TARGET', errorSpecs.ZP_ERR_NO_HEALTHY_TARGET);
export const UpstreamBusyError = defineError('ZP_ERR_UPSTREAM_BUSY', errorSpecs.ZP_ERR_UPSTREAM_BUSY);
export const UpstreamTimeoutError = defineError('ZP_ERR_UPSTREAM_TIMEOUT', errorSpecs.ZP_ERR_UPSTREAM_TIMEOUT);

/** The JSON body the client receives for an error. */
export function errorBody(error: ZproxyError, requestId: string): string {
  return JSON.stringify({ error: error.message, status: error.status, request_id: requestId });
}

/** A socket-level ETIMEDOUT error (what zproxy's own timers report, shaped like the kernel's). */
export function timedOut(message: string): Error {
  return Object.assign(new Error(message), { code: 'ETIMEDOUT' });
}
