/**
 * Checks a route's `upstream` (SPEC §3): the URL string, array and object
 * forms, each target's URL and weight, load balancing and its `hash_key`,
 * passive ejection limits, the connection cap and `health_check`. Always
 * returns the object form.
 */
import { DEFAULT_LOAD_BALANCING, DEFAULT_TARGET_WEIGHT, HEALTH_CHECK_DEFAULTS, UPSTREAM_DEFAULTS } from './defaults';
import type { HealthCheckConfig, LoadBalancing, UpstreamConfig, UpstreamTarget } from './types';
import {
  type Check,
  type Context,
  Fields,
  TOKEN,
  boolean,
  describe,
  duration,
  integer,
  isPlainObject,
  listOf,
  oneOf,
  prune,
  quote,
  uniqueString,
} from './checks';
import { filePath, parseUrl } from './domain-checks';

const LOAD_BALANCING: readonly LoadBalancing[] = ['round_robin', 'least_connections', 'random', 'ip_hash', 'consistent_hash'];
const UPSTREAM_KEYS = ['targets', 'load_balancing', 'hash_key', 'health_check', 'max_fails', 'fail_timeout_ms', 'keepalive_timeout_ms', 'max_connections', 'tls_verify', 'ca_file'];
const TARGET_KEYS = ['url', 'weight'];
const HEALTH_CHECK_KEYS = Object.keys(HEALTH_CHECK_DEFAULTS);

const TARGET_SCHEMES = ['http:', 'https:', 'h2c:', 'h2:'];
/** Default ports the URL parser does not drop itself (it does for http: and https: only). */
const HTTP2_DEFAULT_PORTS: Readonly<Record<string, string>> = { 'h2c:': '80', 'h2:': '443' };

/**
 * An upstream target: http://, https://, h2c:// or h2:// with a host and optional
 * port, and nothing else. A path, query, fragment or user:password@ is
 * rejected (paths are the route's `rewrite`/`strip_prefix` business).
 * Normalised to `scheme://host[:port]`, host lower-cased, default port dropped.
 */
const targetUrl: Check<string> = (value, path, ctx) => {
  const url = parseUrl(value);
  if (url === undefined) return ctx.add(path, `expected a URL like "http://127.0.0.1:3000", got ${describe(value)}`);
  if (!TARGET_SCHEMES.includes(url.protocol)) return ctx.add(path, `unsupported scheme "${url.protocol}//" (use http://, https://, h2c:// or h2://)`);
  if (url.hostname === '') return ctx.add(path, `expected a host after "${url.protocol}//", got ${describe(value)}`);
  const before = ctx.problems.length;
  if (url.username !== '' || url.password !== '') ctx.add(path, 'must not contain user:password@ (set an Authorization header with the headers middleware)');
  if (url.pathname !== '' && url.pathname !== '/') ctx.add(path, `must not have a path (${quote(url.pathname)}); use the route's "rewrite" or "strip_prefix"`);
  if (url.search !== '') ctx.add(path, `must not have a query (${quote(url.search)})`);
  if (url.hash !== '') ctx.add(path, `must not have a fragment (${quote(url.hash)})`);
  const host = url.port === HTTP2_DEFAULT_PORTS[url.protocol] ? url.hostname : url.host;
  return ctx.problems.length === before ? `${url.protocol}//${host.toLowerCase()}` : undefined;
};

/** `header:NAME` or `cookie:NAME`. */
const hashKey: Check<string> = (value, path, ctx) => {
  const match = typeof value === 'string' ? /^(header|cookie):(.*)$/.exec(value) : null;
  return match && TOKEN.test(match[2]) ? (value as string) : ctx.add(path, `expected "header:NAME" or "cookie:NAME", got ${describe(value)}`);
};

/** A request path for health checks: starts with "/", no spaces. */
const requestPath: Check<string> = (value, path, ctx) =>
  typeof value === 'string' && value.startsWith('/') && !/[\s#]/.test(value)
    ? value
    : ctx.add(path, `expected a path starting with "/", got ${describe(value)}`);

const healthCheck: Check<HealthCheckConfig> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, HEALTH_CHECK_KEYS);
  if (!f) return undefined;
  const d = HEALTH_CHECK_DEFAULTS;
  const check: HealthCheckConfig = {
    interval_ms: f.get('interval_ms', duration(0), d.interval_ms),
    path: f.get('path', requestPath, d.path),
    timeout_ms: f.get('timeout_ms', duration(1), d.timeout_ms),
    expected_status: f.get('expected_status', integer(100, 599), d.expected_status),
    healthy_threshold: f.get('healthy_threshold', integer(1, 100), d.healthy_threshold),
    unhealthy_threshold: f.get('unhealthy_threshold', integer(1, 100), d.unhealthy_threshold),
  };
  if (check.interval_ms > 0 && check.timeout_ms >= check.interval_ms) {
    f.problem(`must be less than interval_ms (${check.interval_ms}), got ${check.timeout_ms}`, 'timeout_ms');
  }
  return check;
};

const target: Check<UpstreamTarget> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, TARGET_KEYS, 'an object {url, weight}');
  if (!f) return undefined;
  const url = f.required('url', targetUrl);
  const weight = f.get('weight', integer(1, 1000), DEFAULT_TARGET_WEIGHT);
  return url === undefined ? undefined : { url, weight };
};

const uniqueTarget = (t: UpstreamTarget): string => t.url;

const isHttp2Url = (url: string): boolean => url.startsWith('h2c:') || url.startsWith('h2:');

/** An upstream's targets are all HTTP/2 or all HTTP/1.1: requests take one path through the proxy per route. */
function oneProtocol(urls: readonly string[], path: string, ctx: Context): void {
  const http2 = urls.filter(isHttp2Url).length;
  if (http2 > 0 && http2 < urls.length) {
    ctx.add(path, 'mixes HTTP/2 targets (h2c://, h2://) with HTTP/1.1 ones (http://, https://); use one kind per upstream');
  }
}

function upstreamWithDefaults(targets: UpstreamTarget[]): UpstreamConfig {
  return { targets, load_balancing: DEFAULT_LOAD_BALANCING, ...UPSTREAM_DEFAULTS };
}

/** The object form `{targets, load_balancing, hash_key, health_check, ...}`. */
function upstreamObject(value: Record<string, unknown>, path: string, ctx: Context): UpstreamConfig | undefined {
  const f = Fields.read(value, path, ctx, UPSTREAM_KEYS)!;
  const targets = f.required('targets', listOf(target, { nonEmpty: 'expected at least one target', uniqueBy: uniqueTarget }));
  if (targets) oneProtocol(targets.map(uniqueTarget), `${path}.targets`, ctx);
  const load_balancing = f.get('load_balancing', oneOf(LOAD_BALANCING), DEFAULT_LOAD_BALANCING);
  const hash_key = f.optional('hash_key', hashKey);
  if (load_balancing === 'consistent_hash' && !f.mentions('hash_key')) {
    f.problem('required with load_balancing "consistent_hash" ("header:NAME" or "cookie:NAME")', 'hash_key');
  }
  if (load_balancing !== 'consistent_hash' && f.has('hash_key')) {
    f.problem(`only used with load_balancing "consistent_hash", not ${quote(load_balancing)}`, 'hash_key');
  }
  const d = UPSTREAM_DEFAULTS;
  return prune({
    targets: targets ?? [],
    load_balancing,
    hash_key,
    health_check: f.optional('health_check', healthCheck),
    max_fails: f.get('max_fails', integer(0, 1000), d.max_fails),
    fail_timeout_ms: f.get('fail_timeout_ms', duration(1), d.fail_timeout_ms),
    keepalive_timeout_ms: f.get('keepalive_timeout_ms', duration(0), d.keepalive_timeout_ms),
    max_connections: f.get('max_connections', integer(1, 10_000_000), d.max_connections),
    tls_verify: f.get('tls_verify', boolean, d.tls_verify),
    ca_file: f.optional('ca_file', filePath),
  });
}

/** A URL string, an array of URL strings (round robin), or the object form; always returned as the object form. */
export const upstream: Check<UpstreamConfig> = (value, path, ctx) => {
  if (typeof value === 'string') {
    const url = targetUrl(value, path, ctx);
    return url === undefined ? undefined : upstreamWithDefaults([{ url, weight: DEFAULT_TARGET_WEIGHT }]);
  }
  if (Array.isArray(value)) {
    const urls = listOf(targetUrl, { nonEmpty: 'expected at least one URL', uniqueBy: uniqueString })(value, path, ctx);
    if (urls) oneProtocol(urls, path, ctx);
    return urls && upstreamWithDefaults(urls.map((url) => ({ url, weight: DEFAULT_TARGET_WEIGHT })));
  }
  if (isPlainObject(value)) return upstreamObject(value, path, ctx);
  return ctx.add(path, `expected a URL string, an array of URL strings or an object {targets, load_balancing, ...}, got ${describe(value)}`);
};
