/**
 * The configuration as users write it (JSON file or `createProxy(config)`),
 * and as it is after validation: the same snake_case keys, every default
 * filled in, upstreams in their object form, then deeply frozen.
 * SPEC §3; the README's config reference lists every key.
 */

export type ProtocolName = 'http1' | 'http2' | 'websocket';
export type LoadBalancing = 'round_robin' | 'least_connections' | 'random' | 'ip_hash' | 'consistent_hash';

export interface TlsCertificate {
  server_names: string[];
  cert_file: string;
  key_file: string;
}

export interface TlsConfig {
  enabled: boolean;
  cert_file?: string;
  key_file?: string;
  certificates: TlsCertificate[];
}

export interface MiddlewareConfig {
  type: 'rate_limit' | 'cors' | 'auth' | 'jwt' | 'cache' | 'headers' | 'module';
  config: Record<string, unknown>;
}

export interface HealthCheckConfig {
  /** 0 disables active checks. */
  interval_ms: number;
  path: string;
  timeout_ms: number;
  expected_status: number;
  healthy_threshold: number;
  unhealthy_threshold: number;
}

export interface UpstreamTarget {
  url: string;
  weight: number;
}

export interface UpstreamConfig {
  targets: UpstreamTarget[];
  load_balancing: LoadBalancing;
  /** For consistent_hash: `header:NAME` or `cookie:NAME`. */
  hash_key?: string;
  health_check?: HealthCheckConfig;
  /** Consecutive failures that eject a target passively; 0 disables. */
  max_fails: number;
  /** How long an ejected target stays out before it is tried again. */
  fail_timeout_ms: number;
  /** Idle pooled connections are closed after this long. */
  keepalive_timeout_ms: number;
  /** Open connections per target and worker; requests beyond wait up to upstream_connect_timeout_ms, then 503. */
  max_connections: number;
  /** For https:// targets. */
  tls_verify: boolean;
  ca_file?: string;
}

export interface DirectResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RouteConfig {
  path: string;
  /** Absent only when `respond` is set. */
  upstream?: UpstreamConfig;
  /** Upper-case method names; absent = all methods. */
  methods?: string[];
  host?: string;
  /** Header match: every listed header must be present with this exact value. */
  headers?: Record<string, string>;
  strip_prefix: boolean;
  /** Replacement path; may use `:param` and `*` captures of `path`. */
  rewrite?: string;
  timeout_ms: number;
  retries: number;
  preserve_host: boolean;
  middlewares: MiddlewareConfig[];
  respond?: DirectResponse;
}

export interface AdminConfig {
  host: string;
  port: number;
  token?: string;
}

export interface ZproxyConfig {
  host: string;
  port: number;
  thread_count: number | 'auto';
  backlog: number;
  max_connections: number;
  connection_timeout_ms: number;
  /** A request body that stops arriving for this long closes the connection (408 when no response has started). */
  client_body_timeout_ms: number;
  /** A response the client stops reading for this long closes the connection. */
  send_timeout_ms: number;
  numa_aware: boolean;
  protocols: ProtocolName[];
  tls: TlsConfig;
  routes: RouteConfig[];
  middlewares: MiddlewareConfig[];
  admin: AdminConfig | null;
  max_header_bytes: number;
  /** null = no limit. */
  max_body_bytes: number | null;
  drain_timeout_ms: number;
  upstream_connect_timeout_ms: number;
  websocket_idle_timeout_ms: number;
  max_concurrent_streams: number;
  /** Addresses (or CIDRs) whose X-Forwarded-For is believed. */
  trusted_proxies: string[];
  log_level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
}

/*
 * Each built-in middleware's `config` after validation, defaults filled.
 * `MiddlewareConfig.config` stays a plain record; a middleware narrows it
 * with the matching interface below (SPEC §8, docs/config-reference.md).
 */

export type MiddlewareType = MiddlewareConfig['type'];
export type LogLevel = ZproxyConfig['log_level'];

export interface RateLimitMiddlewareConfig {
  requests_per_minute: number;
  /** Bucket size; defaults to `requests_per_minute`. */
  burst: number;
  /** `ip` or `header:NAME`. */
  key: string;
  store: 'memory' | 'redis';
  /** Memory store only: buckets kept at once (rounded up to whole sets of 8, a power of two of them). */
  max_keys?: number;
  /** Redis store only (required there): `redis://` or `rediss://`, with credentials and database if needed. */
  redis_url?: string;
  /** Redis store only: a decision Redis has not answered within this long counts as a store failure. */
  redis_timeout_ms?: number;
  /** Redis store only: what a request gets when Redis is down or slow. */
  store_failure?: 'allow' | 'deny';
}

export interface CorsMiddlewareConfig {
  /** `"*"` or exact origins (`https://app.example.com`). */
  allowed_origins: string[];
  /** Upper-case method names. */
  allowed_methods: string[];
  /** `["*"]` = any header the preflight asks for. */
  allowed_headers: string[];
  exposed_headers: string[];
  allow_credentials: boolean;
  /** Seconds a preflight answer may be cached; null = header not sent. */
  max_age: number | null;
}

export interface AuthMiddlewareConfig {
  api_keys: string[];
  header_name: string;
}

export type JwtAlgorithm =
  | 'HS256' | 'HS384' | 'HS512'
  | 'RS256' | 'RS384' | 'RS512'
  | 'PS256' | 'PS384' | 'PS512'
  | 'ES256' | 'ES384' | 'ES512'
  | 'EdDSA';

export interface JwtMiddlewareConfig {
  /** Exactly one of secret, public_key_file, jwks_url is set. */
  secret?: string;
  public_key_file?: string;
  jwks_url?: string;
  algorithms: JwtAlgorithm[];
  issuer?: string;
  /** Accepted audiences (any one must match); absent = not checked. */
  audience?: string[];
}

export interface CacheMiddlewareConfig {
  /** Freshness when the response carries no max-age. */
  ttl_seconds: number;
  /** Total bytes of stored bodies; a larger response is passed through uncached. */
  max_bytes: number;
}

export interface HeaderEdits {
  set: Record<string, string>;
  remove: string[];
}

export interface HeadersMiddlewareConfig {
  request: HeaderEdits;
  response: HeaderEdits;
}

export interface ModuleMiddlewareConfig {
  /** The module file; every other key is the module's own, passed through untouched. */
  path: string;
  [key: string]: unknown;
}
