/**
 * Every error zproxy reports, one class per code (`ZP_ERR_*`), in this one
 * file. Each says which side failed, whether the request may be retried on
 * another target, and whether it may have reached the upstream; retry logic
 * (proxy/retry-policy.ts) reads those fields, never messages. A failure
 * becomes one of these where it happens. The client sees `{"error",
 * "status", "request_id"}` (SPEC §6); the configuration and TLS setup
 * errors (status null) stop a start or a reload instead.
 */

export type FailedSide = 'downstream' | 'upstream' | 'internal';

export abstract class ZproxyError extends Error {
  abstract readonly code: string;
  /** The HTTP status the client receives (null: no client sees it — a start or reload fails). */
  abstract readonly status: number;
  abstract readonly side: FailedSide;
  /** May the request be sent to another target (when it is safe to send again, retry-policy.ts)? */
  abstract readonly retryable: boolean;
  /** May bytes of the request have reached the upstream (so that it may have acted on it)? */
  abstract readonly reachedUpstream: boolean;
}

interface ErrorSpec {
  status: number | null;
  side: FailedSide;
  retryable: boolean;
  /** See ZproxyError.reachedUpstream. */
  reached: boolean;
  message: string;
}

function defineError(code: string, spec: ErrorSpec) {
  return class extends ZproxyError {
    readonly code = code;
    readonly status = spec.status ?? 500;
    readonly side = spec.side;
    readonly retryable = spec.retryable;
    readonly reachedUpstream = spec.reached;
    constructor(detail?: string) {
      super(detail ? `${spec.message}: ${detail}` : spec.message);
      this.name = code;
    }
  };
}

/** The registry, also read by the test that checks every code is documented. */
export const errorSpecs = {
  ZP_ERR_BAD_REQUEST: { status: 400, side: 'downstream', retryable: false, reached: false, message: 'bad request' },
  ZP_ERR_BAD_PATH: { status: 400, side: 'downstream', retryable: false, reached: false, message: 'bad request path' },
  ZP_ERR_PLAIN_HTTP_ON_TLS: { status: 400, side: 'downstream', retryable: false, reached: false, message: 'the plain HTTP request was sent to a TLS port' },
  ZP_ERR_NOT_FOUND: { status: 404, side: 'downstream', retryable: false, reached: false, message: 'no route' },
  ZP_ERR_METHOD_NOT_ALLOWED: { status: 405, side: 'downstream', retryable: false, reached: false, message: 'method not allowed' },
  ZP_ERR_REQUEST_TIMEOUT: { status: 408, side: 'downstream', retryable: false, reached: false, message: 'request head not received in time' },
  ZP_ERR_BODY_TIMEOUT: { status: 408, side: 'downstream', retryable: false, reached: false, message: 'request body not received in time' },
  ZP_ERR_BODY_TOO_LARGE: { status: 413, side: 'downstream', retryable: false, reached: false, message: 'request body too large' },
  ZP_ERR_HEADERS_TOO_LARGE: { status: 431, side: 'downstream', retryable: false, reached: false, message: 'request header fields too large' },
  ZP_ERR_HTTP_VERSION: { status: 505, side: 'downstream', retryable: false, reached: false, message: 'HTTP version not supported' },
  ZP_ERR_INTERNAL: { status: 500, side: 'internal', retryable: false, reached: false, message: 'internal error' },
  ZP_ERR_NOT_IMPLEMENTED: { status: 501, side: 'downstream', retryable: false, reached: false, message: 'not supported on this route' },
  ZP_ERR_UPSTREAM_CONNECT: { status: 502, side: 'upstream', retryable: true, reached: false, message: 'upstream connection failed' },
  ZP_ERR_UPSTREAM_RESET: { status: 502, side: 'upstream', retryable: true, reached: true, message: 'upstream closed the connection before responding' },
  ZP_ERR_UPSTREAM_BAD_RESPONSE: { status: 502, side: 'upstream', retryable: false, reached: true, message: 'upstream sent an invalid response' },
  ZP_ERR_NO_HEALTHY_TARGET: { status: 503, side: 'upstream', retryable: false, reached: false, message: 'no healthy upstream target' },
  ZP_ERR_UPSTREAM_BUSY: { status: 503, side: 'upstream', retryable: false, reached: false, message: 'upstream connection limit reached' },
  ZP_ERR_UPSTREAM_TRUNCATED: { status: 502, side: 'upstream', retryable: false, reached: true, message: 'upstream broke the response off' },
  ZP_ERR_CLIENT_STALLED: { status: 408, side: 'downstream', retryable: false, reached: true, message: 'the client took none of the response in time' },
  ZP_ERR_CONFIG: { status: null, side: 'internal', retryable: false, reached: false, message: 'invalid configuration' },
  ZP_ERR_TLS_SETUP: { status: null, side: 'internal', retryable: false, reached: false, message: 'TLS certificates cannot be used' },
  ZP_ERR_RATE_LIMITED: { status: 429, side: 'downstream', retryable: false, reached: false, message: 'rate limit exceeded' },
  ZP_ERR_RATE_LIMIT_STORE: { status: 503, side: 'internal', retryable: false, reached: false, message: 'the rate limit store is unavailable' },
  ZP_ERR_UPSTREAM_TIMEOUT: { status: 504, side: 'upstream', retryable: false, reached: true, message: 'upstream did not respond in time' },
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
export const UpstreamTruncatedError = defineError('ZP_ERR_UPSTREAM_TRUNCATED', errorSpecs.ZP_ERR_UPSTREAM_TRUNCATED);
export const ClientStalledError = defineError('ZP_ERR_CLIENT_STALLED', errorSpecs.ZP_ERR_CLIENT_STALLED);
/** Certificates the listener or an upstream cannot use; the message names the config path and the file. */
export class TlsSetupError extends defineError('ZP_ERR_TLS_SETUP', errorSpecs.ZP_ERR_TLS_SETUP) {
  constructor(message?: string) {
    super();
    if (message !== undefined) this.message = message;
  }
}

/** A configuration zproxy refuses: `errors` holds one `<path>: <message>` line per problem. */
export class ConfigError extends defineError('ZP_ERR_CONFIG', errorSpecs.ZP_ERR_CONFIG) {
  readonly errors: readonly string[];

  constructor(errors: readonly string[] = [], source = 'config') {
    super();
    this.message = `invalid ${source}:\n  ${errors.join('\n  ')}`;
    this.name = 'ConfigError';
    this.errors = Object.freeze([...errors]);
  }
}

/** The JSON body the client receives for an error. */
export function errorBody(error: ZproxyError, requestId: string): string {
  return JSON.stringify({ error: error.message, status: error.status, request_id: requestId });
}

/** A socket-level ETIMEDOUT error (what zproxy's own timers report, shaped like the kernel's). */
export function timedOut(message: string): Error {
  return Object.assign(new Error(message), { code: 'ETIMEDOUT' });
}
