/**
 * Every default of the configuration, in one place (SPEC §3, §8; the seed's
 * server keys keep the seed's values except `thread_count`, now "auto").
 * `validate.ts` and its section files (`validate-*.ts`) fill these in; docs/config-reference.md lists them.
 */
import type {
  AdminConfig,
  AuthMiddlewareConfig,
  CacheMiddlewareConfig,
  DirectResponse,
  HealthCheckConfig,
  LoadBalancing,
  ProtocolName,
  RateLimitMiddlewareConfig,
  RouteConfig,
  UpstreamConfig,
  ZproxyConfig,
} from './types';

/** Largest delay Node's timers accept (2^31 - 1 ms, about 24.8 days): the ceiling of every `*_ms` key. */
export const MAX_TIMER_MS = 2_147_483_647;

type TopLevelScalars = Omit<ZproxyConfig, 'protocols' | 'tls' | 'routes' | 'middlewares' | 'admin' | 'trusted_proxies' | (typeof TIMEOUTS_DEFAULTING_TO_CONNECTION)[number]>;

/**
 * Timeouts of a request in progress that default to `connection_timeout_ms`
 * (nginx's client_body_timeout and send_timeout, both 60 s there): a request
 * body that stops arriving, and a response the client stops reading.
 */
export const TIMEOUTS_DEFAULTING_TO_CONNECTION = ['client_body_timeout_ms', 'send_timeout_ms'] as const;

export const TOP_LEVEL_DEFAULTS: Readonly<TopLevelScalars> = Object.freeze({
  host: '0.0.0.0',
  port: 8000,
  thread_count: 'auto',
  backlog: 128,
  max_connections: 1000,
  connection_timeout_ms: 30_000,
  numa_aware: true,
  /** 64 KiB of request line + headers; beyond it the client gets 431. */
  max_header_bytes: 65_536,
  /** null = no limit on request bodies. */
  max_body_bytes: null,
  drain_timeout_ms: 30_000,
  upstream_connect_timeout_ms: 5_000,
  /**
   * 5 minutes without a frame in either direction closes a WebSocket tunnel.
   * Longer than nginx's 60 s proxy_read_timeout (which cuts quiet sockets
   * that ping every minute or so), short enough to reap dead peers.
   */
  websocket_idle_timeout_ms: 300_000,
  max_concurrent_streams: 100,
  log_level: 'info',
});

export const DEFAULT_PROTOCOLS: readonly ProtocolName[] = Object.freeze(['http1', 'http2', 'websocket']);

export const DEFAULT_ADMIN: Readonly<AdminConfig> = Object.freeze({ host: '127.0.0.1', port: 9901 });

export const TLS_DEFAULTS = Object.freeze({ enabled: false });

type RouteScalars = Pick<RouteConfig, 'strip_prefix' | 'timeout_ms' | 'retries' | 'preserve_host'>;

/** Per route; `methods` absent = all methods, `middlewares` = []. */
export const ROUTE_DEFAULTS: Readonly<RouteScalars> = Object.freeze({
  strip_prefix: false,
  /** Time for the upstream to answer (504 after it). */
  timeout_ms: 60_000,
  /**
   * One more attempt on another target after a connection failure, like
   * nginx's proxy_next_upstream (which tries the next server once by default).
   * Only requests that are safe to replay are retried.
   */
  retries: 1,
  preserve_host: true,
});

export const RESPOND_DEFAULTS: Readonly<Pick<DirectResponse, 'status' | 'body'>> = Object.freeze({ status: 200, body: '' });

type UpstreamScalars = Pick<UpstreamConfig, 'max_fails' | 'fail_timeout_ms' | 'keepalive_timeout_ms' | 'max_connections' | 'tls_verify'>;

export const DEFAULT_LOAD_BALANCING: LoadBalancing = 'round_robin';
export const DEFAULT_TARGET_WEIGHT = 1;

export const UPSTREAM_DEFAULTS: Readonly<UpstreamScalars> = Object.freeze({
  max_fails: 3,
  fail_timeout_ms: 10_000,
  /** Below the 5 s keep-alive of Node and many app servers, so we close an idle connection before they do. */
  keepalive_timeout_ms: 4_000,
  /**
   * Open connections per target and worker, Envoy's default for its
   * max_connections (nginx's max_conns has none): far above what a healthy
   * upstream needs, low enough that one HTTP/2 client's streams cannot open
   * thousands of sockets.
   */
  max_connections: 1024,
  tls_verify: true,
});

export const HEALTH_CHECK_DEFAULTS: Readonly<HealthCheckConfig> = Object.freeze({
  interval_ms: 5_000,
  path: '/',
  timeout_ms: 2_000,
  expected_status: 200,
  healthy_threshold: 2,
  unhealthy_threshold: 3,
});

/* Middleware (SPEC §8). rate_limit's `burst` defaults to its requests_per_minute. */

export const RATE_LIMIT_DEFAULTS = Object.freeze({
  key: 'ip',
  store: 'memory',
  /** 65536 buckets: 1 MiB of shared memory per memory-store entry (nginx's limit_req zone of 1m holds about 16000). */
  max_keys: 65_536,
  /**
   * 10 ms: Redis on the same network answers in well under 1 ms, and a dead
   * one fails at once (the connection is down), so this only bounds a hung
   * Redis; short enough that requests barely notice, long enough that an
   * event-loop pause of a busy worker does not fail decisions that were
   * answered in time.
   */
  redis_timeout_ms: 10,
  /** Redis down: allow (with a warning and a counter) rather than take the whole API down with it. */
  store_failure: 'allow',
} as const satisfies Partial<RateLimitMiddlewareConfig>);

/** The arrays are copied when filled in, so the validated config never shares them. */
export const CORS_DEFAULTS = Object.freeze({
  allowed_origins: Object.freeze(['*']),
  allowed_methods: Object.freeze(['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE']),
  /** "*" = any header a preflight asks for. */
  allowed_headers: Object.freeze(['*']),
  exposed_headers: Object.freeze([] as string[]),
  allow_credentials: false,
  /** Seconds browsers may cache a preflight answer. */
  max_age: 600 as number | null,
});

export const AUTH_DEFAULTS: Readonly<Pick<AuthMiddlewareConfig, 'header_name'>> = Object.freeze({ header_name: 'X-API-Key' });

/** When `algorithms` is omitted: HS256 for a shared secret, RS256 for a public key or JWKS. */
export const JWT_DEFAULT_ALGORITHMS = Object.freeze({ secret: 'HS256', key: 'RS256' } as const);

export const CACHE_DEFAULTS: Readonly<CacheMiddlewareConfig> = Object.freeze({
  ttl_seconds: 60,
  /** 64 MiB of cached bodies per cache middleware instance. */
  max_bytes: 67_108_864,
});
