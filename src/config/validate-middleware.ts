/**
 * Checks middleware entries (SPEC §8): `{type, config}`, each type's config
 * (rate_limit, cors, auth, jwt, cache, headers, module) read by its own check.
 */
import { resolve as resolvePath } from 'node:path';
import { AUTH_DEFAULTS, CACHE_DEFAULTS, CORS_DEFAULTS, JWT_DEFAULT_ALGORITHMS, RATE_LIMIT_DEFAULTS } from './defaults';
import type {
  AuthMiddlewareConfig,
  CacheMiddlewareConfig,
  CorsMiddlewareConfig,
  HeaderEdits,
  HeadersMiddlewareConfig,
  JwtAlgorithm,
  JwtMiddlewareConfig,
  MiddlewareConfig,
  MiddlewareType,
  ModuleMiddlewareConfig,
  RateLimitMiddlewareConfig,
} from './types';
import {
  type Check,
  Fields,
  NOT_EMPTY,
  NO_MAX,
  TOKEN,
  boolean,
  describe,
  integer,
  integerOrNull,
  isPlainObject,
  keyPath,
  listOf,
  nonEmptyString,
  oneOf,
  prune,
  quote,
  quoteAll,
  uniqueIgnoringCase,
  uniqueString,
} from './checks';
import { filePath, headerMap, headerName, method, parseUrl } from './domain-checks';

const MIDDLEWARE_TYPES: readonly MiddlewareType[] = ['rate_limit', 'cors', 'auth', 'jwt', 'cache', 'headers', 'module'];

/** A URL of one of `schemes`; http:// is accepted only for loopback hosts when `loopbackHttp`. */
function serviceUrl(schemes: readonly string[], example: string, loopbackHttp = false): Check<string> {
  return (value, path, ctx) => {
    const url = parseUrl(value);
    if (url === undefined || url.hostname === '') return ctx.add(path, `expected a URL like ${quote(example)}, got ${describe(value)}`);
    const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
    if (schemes.includes(url.protocol) || (loopbackHttp && loopback && url.protocol === 'http:')) return value as string;
    const allowed = schemes.map((scheme) => `${scheme}//`).join(' or ');
    return ctx.add(path, `unsupported scheme "${url.protocol}//" (use ${allowed}${loopbackHttp ? '; http:// only for localhost' : ''})`);
  };
}

const rateLimitKey: Check<string> = (value, path, ctx) =>
  value === 'ip' || (typeof value === 'string' && /^header:/.test(value) && TOKEN.test(value.slice(7)))
    ? value
    : ctx.add(path, `expected "ip" or "header:NAME", got ${describe(value)}`);

/**
 * `redis://` or `rediss://`, host, optional port, user and password, and
 * database (`/0`); nothing else — a query would pass options to the client
 * behind zproxy's back. Problems never echo the URL: it may hold a password.
 */
const redisUrl: Check<string> = (value, path, ctx) => {
  const url = parseUrl(value);
  if (url === undefined || url.hostname === '') {
    const got = typeof value === 'string' ? 'a string that is not one (not shown: it may hold a password)' : describe(value);
    return ctx.add(path, `expected a URL like "redis://127.0.0.1:6379" or "rediss://:PASSWORD@redis.example.com:6380/0", got ${got}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return ctx.add(path, `unsupported scheme "${url.protocol}//" (use redis:// or rediss://)`);
  if (url.search !== '' || url.hash !== '') return ctx.add(path, 'must not have a query or fragment (the timeout and failure policy have their own keys)');
  if (!/^\/?(?:\d{1,5})?$/.test(url.pathname)) return ctx.add(path, 'the path, if any, is the database number (e.g. "/0")');
  return value as string;
};

const RATE_LIMIT_KEYS = ['requests_per_minute', 'burst', 'key', 'store', 'max_keys', 'redis_url', 'redis_timeout_ms', 'store_failure'] as const;
const REDIS_ONLY = ['redis_url', 'redis_timeout_ms', 'store_failure'] as const;

const rateLimit: Check<RateLimitMiddlewareConfig> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, RATE_LIMIT_KEYS);
  if (!f) return undefined;
  const d = RATE_LIMIT_DEFAULTS;
  // 100000 a second per key at most: faster intervals fall below the resolution of a TAT in ms since 1970 (gcra.ts).
  const perMinute = f.required('requests_per_minute', integer(1, 6_000_000));
  const store = f.get('store', oneOf(['memory', 'redis'] as const), d.store);
  const common = {
    requests_per_minute: perMinute ?? 1,
    burst: f.get('burst', integer(1, 1_000_000_000), perMinute ?? 1),
    key: f.get('key', rateLimitKey, d.key),
    store,
  };
  if (store === 'memory') {
    for (const key of REDIS_ONLY) if (f.has(key)) f.problem('only used with store "redis"', key);
    return { ...common, max_keys: f.get('max_keys', integer(8, 16_777_216), d.max_keys) };
  }
  if (f.has('max_keys')) f.problem('only used with store "memory" (Redis keeps its own keys; they expire once full)', 'max_keys');
  if (!f.mentions('redis_url')) f.problem('required with store "redis"', 'redis_url');
  return {
    ...common,
    redis_url: f.optional('redis_url', redisUrl) ?? '',
    redis_timeout_ms: f.get('redis_timeout_ms', integer(1, 60_000), d.redis_timeout_ms),
    store_failure: f.get('store_failure', oneOf(['allow', 'deny'] as const), d.store_failure),
  };
};

/** `"*"` or an exact origin: scheme, host and optional port, nothing more. */
const origin: Check<string> = (value, path, ctx) => {
  const url = parseUrl(value);
  if (value === '*' || (url !== undefined && url.origin !== 'null' && url.origin === value)) return value as string;
  return ctx.add(path, `expected "*" or an origin like "https://app.example.com" (no path or trailing "/"), got ${describe(value)}`);
};

const headerNameOrAny: Check<string> = (value, path, ctx) => (value === '*' ? value : headerName(value, path, ctx));

const methodList = listOf(method, { nonEmpty: NOT_EMPTY, uniqueBy: uniqueString });

const cors: Check<CorsMiddlewareConfig> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, ['allowed_origins', 'allowed_methods', 'allowed_headers', 'exposed_headers', 'allow_credentials', 'max_age']);
  if (!f) return undefined;
  const d = CORS_DEFAULTS;
  const config: CorsMiddlewareConfig = {
    allowed_origins: f.get('allowed_origins', listOf(origin, { nonEmpty: NOT_EMPTY, uniqueBy: uniqueString }), [...d.allowed_origins]),
    allowed_methods: f.get('allowed_methods', methodList, [...d.allowed_methods]),
    allowed_headers: f.get('allowed_headers', listOf(headerNameOrAny, { uniqueBy: uniqueIgnoringCase }), [...d.allowed_headers]),
    exposed_headers: f.get('exposed_headers', listOf(headerName, { uniqueBy: uniqueIgnoringCase }), [...d.exposed_headers]),
    allow_credentials: f.get('allow_credentials', boolean, d.allow_credentials),
    max_age: f.get('max_age', integerOrNull(0, 86_400), d.max_age),
  };
  if (config.allow_credentials && config.allowed_origins.includes('*')) {
    f.problem('cannot be true while allowed_origins contains "*" (browsers reject it); list the origins', 'allow_credentials');
  }
  return config;
};

const auth: Check<AuthMiddlewareConfig> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, ['api_keys', 'header_name']);
  if (!f) return undefined;
  return {
    api_keys: f.required('api_keys', listOf(nonEmptyString, { nonEmpty: NOT_EMPTY, uniqueBy: uniqueString })) ?? [],
    header_name: f.get('header_name', headerName, AUTH_DEFAULTS.header_name),
  };
};

const JWT_ALGORITHMS: readonly JwtAlgorithm[] = [
  'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
];
const JWT_KEY_SOURCES = ['secret', 'public_key_file', 'jwks_url'] as const;

const stringOrStrings: Check<string[]> = (value, path, ctx) => {
  if (typeof value === 'string' && value !== '') return [value];
  if (Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string' && item !== '')) return [...value];
  return ctx.add(path, `expected a non-empty string or array of non-empty strings, got ${describe(value)}`);
};

const jwt: Check<JwtMiddlewareConfig> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, [...JWT_KEY_SOURCES, 'algorithms', 'issuer', 'audience']);
  if (!f) return undefined;
  const sources = JWT_KEY_SOURCES.filter((key) => f.has(key));
  if (!JWT_KEY_SOURCES.some((key) => f.mentions(key))) f.problem(`needs one of ${quoteAll(JWT_KEY_SOURCES)}`);
  if (sources.length > 1) f.problem(`use only one of ${quoteAll(JWT_KEY_SOURCES)} (got ${sources.map(quote).join(' and ')})`);
  const symmetric = sources[0] === 'secret';
  const algorithms = f.get(
    'algorithms',
    listOf(oneOf(JWT_ALGORITHMS), { nonEmpty: NOT_EMPTY, uniqueBy: uniqueString }),
    [symmetric ? JWT_DEFAULT_ALGORITHMS.secret : JWT_DEFAULT_ALGORITHMS.key],
  );
  if (sources.length === 1 && f.has('algorithms')) {
    algorithms.forEach((algorithm, index) => {
      if (algorithm.startsWith('HS') === symmetric) return;
      const needs = symmetric ? '"public_key_file" or "jwks_url"' : '"secret"';
      ctx.add(`${f.at('algorithms')}[${index}]`, `${quote(algorithm)} needs ${needs}, not ${quote(sources[0])}`);
    });
  }
  return prune({
    secret: f.optional('secret', nonEmptyString),
    public_key_file: f.optional('public_key_file', filePath),
    jwks_url: f.optional('jwks_url', serviceUrl(['https:'], 'https://login.example.com/.well-known/jwks.json', true)),
    algorithms,
    issuer: f.optional('issuer', nonEmptyString),
    audience: f.optional('audience', stringOrStrings),
  });
};

const cache: Check<CacheMiddlewareConfig> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, ['ttl_seconds', 'max_bytes']);
  if (!f) return undefined;
  return {
    ttl_seconds: f.get('ttl_seconds', integer(1, 31_536_000), CACHE_DEFAULTS.ttl_seconds),
    max_bytes: f.get('max_bytes', integer(1, NO_MAX), CACHE_DEFAULTS.max_bytes),
  };
};

const lowerCaseHeaderName: Check<string> = (value, path, ctx) => headerName(value, path, ctx)?.toLowerCase();

const headerEdits: Check<HeaderEdits> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, ['set', 'remove'], 'an object {set, remove}');
  if (!f) return undefined;
  return {
    set: f.get('set', headerMap(false), {}),
    remove: f.get('remove', listOf(lowerCaseHeaderName, { uniqueBy: uniqueString }), []),
  };
};

const headers: Check<HeadersMiddlewareConfig> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, ['request', 'response']);
  if (!f) return undefined;
  return {
    request: f.get('request', headerEdits, { set: {}, remove: [] }),
    response: f.get('response', headerEdits, { set: {}, remove: [] }),
  };
};

/** A deep copy of plain JSON data (free-form module config), so freezing never reaches the caller's objects. */
const jsonValue: Check<unknown> = (value, path, ctx) => {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : ctx.add(path, `expected a finite number, got ${describe(value)}`);
  if (Array.isArray(value)) return listOf(jsonValue)(value, path, ctx);
  if (!isPlainObject(value)) return ctx.add(path, `expected a JSON value, got ${describe(value)}`);
  const copy: Record<string, unknown> = {};
  let valid = true;
  for (const [key, item] of Object.entries(value)) {
    if (item === undefined) continue;
    copy[key] = jsonValue(item, keyPath(path, key), ctx);
    if (copy[key] === undefined) valid = false;
  }
  return valid ? copy : undefined;
};

/** `path` to the module (a `./relative` one follows baseDir; a bare name is a package), every other key is the module's own. */
const moduleMiddleware: Check<ModuleMiddlewareConfig> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, undefined);
  if (!f) return undefined;
  const modulePath = f.required('path', nonEmptyString);
  const own = jsonValue(value, path, ctx) as Record<string, unknown> | undefined;
  const resolved = modulePath !== undefined && ctx.baseDir && modulePath.startsWith('.') ? resolvePath(ctx.baseDir, modulePath) : modulePath;
  return own && { ...own, path: resolved ?? '' };
};

const MIDDLEWARE_CONFIG: Record<MiddlewareType, Check<object>> = {
  rate_limit: rateLimit,
  cors,
  auth,
  jwt,
  cache,
  headers,
  module: moduleMiddleware,
};

const middleware: Check<MiddlewareConfig> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, ['type', 'config'], 'an object {type, config}');
  if (!f) return undefined;
  const type = f.required('type', oneOf(MIDDLEWARE_TYPES));
  if (type === undefined) return undefined;
  // A missing config is checked as {} so each required key is named.
  const config = MIDDLEWARE_CONFIG[type](f.raw('config') ?? {}, f.at('config'), ctx);
  return config && { type, config: config as Record<string, unknown> };
};

/** A `middlewares` list, of a route or of the top level. */
export const middlewareList = listOf(middleware);
