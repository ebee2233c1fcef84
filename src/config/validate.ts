/**
 * Validates a configuration once, fills every default, normalises it and
 * deep-freezes it (SPEC §3, §8, §9; docs/config-reference.md).
 *
 * Every problem is reported, not only the first, as one line
 * `<json path>: <message>`, e.g. `routes[0].upstream.targets[1].weight:
 * expected an integer from 1 to 1000, got 0`. Unknown keys are errors at
 * every level and are told the closest known key.
 *
 * Reading order: the small shared checks, the object reader (`Fields`), the
 * value checks of the domain (addresses, URLs, paths, headers), then
 * upstream, route, middleware and top level, and the public functions last.
 */
import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import {
  AUTH_DEFAULTS,
  CACHE_DEFAULTS,
  CORS_DEFAULTS,
  DEFAULT_ADMIN,
  DEFAULT_LOAD_BALANCING,
  DEFAULT_PROTOCOLS,
  DEFAULT_TARGET_WEIGHT,
  HEALTH_CHECK_DEFAULTS,
  JWT_DEFAULT_ALGORITHMS,
  MAX_TIMER_MS,
  RATE_LIMIT_DEFAULTS,
  RESPOND_DEFAULTS,
  ROUTE_DEFAULTS,
  TLS_DEFAULTS,
  TOP_LEVEL_DEFAULTS,
  UPSTREAM_DEFAULTS,
} from './defaults';
import type {
  AdminConfig,
  AuthMiddlewareConfig,
  CacheMiddlewareConfig,
  CorsMiddlewareConfig,
  DirectResponse,
  HeaderEdits,
  HeadersMiddlewareConfig,
  HealthCheckConfig,
  JwtAlgorithm,
  JwtMiddlewareConfig,
  LoadBalancing,
  LogLevel,
  MiddlewareConfig,
  MiddlewareType,
  ModuleMiddlewareConfig,
  ProtocolName,
  RateLimitMiddlewareConfig,
  RouteConfig,
  TlsCertificate,
  TlsConfig,
  UpstreamConfig,
  UpstreamTarget,
  ZproxyConfig,
} from './types';

// ---------------------------------------------------------------------------
// Problems, paths and the words of messages

export interface ValidateOptions {
  /**
   * Relative file paths in the config (TLS files, `ca_file`,
   * `public_key_file`, a module's `./path`) are resolved against this folder,
   * normally the config file's. Without it they are kept as written.
   */
  baseDir?: string;
}

/** What every check writes its problems to. */
class Context {
  readonly problems: string[] = [];
  constructor(readonly baseDir: string | undefined) {}

  /** Records one problem; returns undefined so a check can `return ctx.add(...)`. */
  add(path: string, message: string): undefined {
    this.problems.push(`${path === '' ? 'config' : path}: ${message}`);
    return undefined;
  }
}

/** Returns the value, or undefined after recording why it is invalid. */
type Check<T> = (value: unknown, path: string, ctx: Context) => T | undefined;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** RFC 9110 token: method names, header names, cookie names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const NO_MAX = Number.MAX_SAFE_INTEGER;

function keyPath(path: string, key: string): string {
  if (!IDENTIFIER.test(key)) return `${path === '' ? 'config' : path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

/** How a found value is shown after "got". */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
    case 'number':
    case 'boolean':
      return String(value);
    case 'object':
      return 'an object';
    default:
      return `a ${typeof value}`;
  }
}

const quote = (text: string): string => JSON.stringify(text);
const quoteAll = (texts: readonly string[]): string => texts.map(quote).join(', ');

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Drops keys whose value is undefined, so optional keys are absent rather than undefined. */
function prune<T extends object>(object: T): T {
  for (const key of Object.keys(object) as (keyof T)[]) if (object[key] === undefined) delete object[key];
  return object;
}

/** Optimal string alignment distance (edits, counting a swap of neighbours as one). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The known key a misspelt one most likely meant, if any is close. */
function closestKey(key: string, known: readonly string[]): string | undefined {
  const typed = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const isPrefix = typed.length >= 4 && (candidate.startsWith(typed) || typed.startsWith(candidate));
    const distance = isPrefix ? 1 : editDistance(typed, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

// ---------------------------------------------------------------------------
// Shared checks

const rangeText = (min: number, max: number): string => (max === NO_MAX ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`);

function integer(min: number, max: number, expected = rangeText(min, max)): Check<number> {
  return (value, path, ctx) =>
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
      ? value
      : ctx.add(path, `expected ${expected}, got ${describe(value)}`);
}

/** An integer where `null` means "none" (no limit, header not sent). */
function integerOrNull(min: number, max: number): Check<number | null> {
  const check = integer(min, max, `null or ${rangeText(min, max)}`);
  return (value, path, ctx) => (value === null ? null : check(value, path, ctx));
}

/** A `*_ms` duration: an integer number of milliseconds Node's timers accept. */
const duration = (min: 0 | 1): Check<number> => integer(min, MAX_TIMER_MS);

const boolean: Check<boolean> = (value, path, ctx) =>
  typeof value === 'boolean' ? value : ctx.add(path, `expected true or false, got ${describe(value)}`);

const anyString: Check<string> = (value, path, ctx) =>
  typeof value === 'string' ? value : ctx.add(path, `expected a string, got ${describe(value)}`);

const nonEmptyString: Check<string> = (value, path, ctx) =>
  typeof value === 'string' && value !== '' ? value : ctx.add(path, `expected a non-empty string, got ${describe(value)}`);

function oneOf<T extends string>(options: readonly T[]): Check<T> {
  return (value, path, ctx) =>
    options.includes(value as T) ? (value as T) : ctx.add(path, `expected one of ${quoteAll(options)}, got ${describe(value)}`);
}

interface ListOptions<T> {
  /** Message when the array is empty; absent = empty is fine. */
  nonEmpty?: string;
  /** Items with the same key are duplicates (reported without echoing the value, which may be a secret). */
  uniqueBy?: (item: T) => string;
}

function listOf<T>(item: Check<T>, options: ListOptions<T> = {}): Check<T[]> {
  return (value, path, ctx) => {
    if (!Array.isArray(value)) return ctx.add(path, `expected an array, got ${describe(value)}`);
    if (value.length === 0 && options.nonEmpty) return ctx.add(path, options.nonEmpty);
    const items: T[] = [];
    const firstIndex = new Map<string, number>();
    let valid = true;
    value.forEach((raw, index) => {
      const checked = item(raw, `${path}[${index}]`, ctx);
      if (checked === undefined) {
        valid = false;
        return;
      }
      items.push(checked);
      if (!options.uniqueBy) return;
      const key = options.uniqueBy(checked);
      const first = firstIndex.get(key);
      if (first === undefined) {
        firstIndex.set(key, index);
        return;
      }
      ctx.add(`${path}[${index}]`, `duplicate of [${first}]`);
      valid = false;
    });
    return valid ? items : undefined;
  };
}

const NOT_EMPTY = 'expected a non-empty array';
const uniqueString = (text: string): string => text;
const uniqueIgnoringCase = (text: string): string => text.toLowerCase();

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

// ---------------------------------------------------------------------------
// Reading an object: unknown keys, required keys, defaults

class Fields {
  /** Known keys that an unknown key was reported as a likely misspelling of. */
  private readonly suggested = new Set<string>();

  private constructor(
    readonly path: string,
    private readonly object: Record<string, unknown>,
    private readonly ctx: Context,
  ) {}

  /**
   * Checks that `value` is an object and reports its unknown keys.
   * `known` = undefined accepts any key (a module's own config).
   */
  static read(value: unknown, path: string, ctx: Context, known: readonly string[] | undefined, expected = 'an object'): Fields | undefined {
    if (!isPlainObject(value)) return ctx.add(path, `expected ${expected}, got ${describe(value)}`);
    const fields = new Fields(path, value, ctx);
    for (const key of known ? Object.keys(value) : []) {
      if (known!.includes(key)) continue;
      const suggestion = closestKey(key, known!);
      if (suggestion !== undefined) fields.suggested.add(suggestion);
      ctx.add(keyPath(path, key), suggestion ? `unknown key (did you mean ${quote(suggestion)}?)` : 'unknown key');
    }
    return fields;
  }

  /** An explicit `undefined` (possible from JavaScript) counts as absent; `null` does not. */
  has(key: string): boolean {
    return this.object[key] !== undefined;
  }

  /** Present, or written misspelt (already reported): a "missing" problem would repeat that report. */
  mentions(key: string): boolean {
    return this.has(key) || this.suggested.has(key);
  }

  raw(key: string): unknown {
    return this.object[key];
  }

  at(key: string): string {
    return keyPath(this.path, key);
  }

  optional<T>(key: string, check: Check<T>): T | undefined {
    return this.has(key) ? check(this.object[key], this.at(key), this.ctx) : undefined;
  }

  /** The checked value, or `fallback` when absent (or invalid: the problem is recorded and the result discarded). */
  get<T>(key: string, check: Check<T>, fallback: T): T {
    const checked = this.optional(key, check);
    return checked === undefined ? fallback : checked;
  }

  required<T>(key: string, check: Check<T>, hint?: string): T | undefined {
    if (!this.has(key)) return this.mentions(key) ? undefined : this.ctx.add(this.at(key), hint ? `required (${hint})` : 'required');
    return this.optional(key, check);
  }

  /** A problem with the object as a whole, or (`key` given) with one of its keys. */
  problem(message: string, key?: string): undefined {
    return this.ctx.add(key === undefined ? this.path : this.at(key), message);
  }
}

// ---------------------------------------------------------------------------
// Domain checks: addresses, names, URLs, paths, headers

/** A listen address. "localhost" is accepted and normalised to 127.0.0.1 (the acceptor binds numeric addresses only). */
const listenAddress: Check<string> = (value, path, ctx) => {
  if (value === 'localhost') return '127.0.0.1';
  if (typeof value === 'string' && isIP(value) !== 0) return value;
  return ctx.add(path, `expected an IPv4 or IPv6 address or "localhost", got ${describe(value)}`);
};

const port = integer(0, 65535);

const threadCount: Check<number | 'auto'> = (value, path, ctx) => {
  if (value === 'auto' || (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 1024)) return value;
  return ctx.add(path, `expected "auto" or an integer from 1 to 1024, got ${describe(value)}`);
};

const ipOrCidr: Check<string> = (value, path, ctx) => {
  if (typeof value === 'string') {
    const [address, bits, extra] = value.split('/');
    const family = isIP(address);
    const maxBits = family === 4 ? 32 : 128;
    if (family !== 0 && extra === undefined && (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= maxBits))) return value;
  }
  return ctx.add(path, `expected an IP address or a CIDR like "10.0.0.0/8", got ${describe(value)}`);
};

const HOST_LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const HOST_NAME = new RegExp(`^(?:\\*\\.)?${HOST_LABEL}(?:\\.${HOST_LABEL})*$`);

/** A Host to match (`api.example.com`, `*.example.com`, `[::1]`), lower-cased. */
const hostName: Check<string> = (value, path, ctx) => {
  if (typeof value === 'string') {
    const host = value.toLowerCase();
    if (HOST_NAME.test(host) || (/^\[.*\]$/.test(host) && isIP(host.slice(1, -1)) === 6)) return host;
    if (/:\d+$/.test(host) && !host.startsWith('[')) return ctx.add(path, `must not include a port (it is ignored when matching), got ${describe(value)}`);
  }
  return ctx.add(path, `expected a host name like "api.example.com" or "*.example.com", got ${describe(value)}`);
};

/** A route's `host`: a host name, a `*.suffix` pattern, or "*" (any host, the same as leaving it out). */
const routeHost: Check<string> = (value, path, ctx) => (value === '*' ? value : hostName(value, path, ctx));

const method: Check<string> = (value, path, ctx) =>
  typeof value === 'string' && TOKEN.test(value) ? value.toUpperCase() : ctx.add(path, `expected an HTTP method name like "GET", got ${describe(value)}`);

const methodList = listOf(method, { nonEmpty: NOT_EMPTY, uniqueBy: uniqueString });
const routeMethods = listOf(method, { nonEmpty: 'expected at least one method (leave "methods" out to allow every method)', uniqueBy: uniqueString });

const headerName: Check<string> = (value, path, ctx) =>
  typeof value === 'string' && TOKEN.test(value) ? value : ctx.add(path, `expected a header name, got ${describe(value)}`);

const lowerCaseHeaderName: Check<string> = (value, path, ctx) => headerName(value, path, ctx)?.toLowerCase();

const headerValue: Check<string> = (value, path, ctx) => {
  if (typeof value !== 'string') return ctx.add(path, `expected a string, got ${describe(value)}`);
  return /[\r\n\0]/.test(value) ? ctx.add(path, 'must not contain CR, LF or NUL') : value;
};

/** `{ "Header-Name": "value" }`; names lower-cased when `lowerCase` (headers to match). */
function headerMap(lowerCase: boolean): Check<Record<string, string>> {
  return (value, path, ctx) => {
    if (!isPlainObject(value)) return ctx.add(path, `expected an object of header names to strings, got ${describe(value)}`);
    const headers: Record<string, string> = {};
    let valid = true;
    for (const [name, raw] of Object.entries(value)) {
      const entryPath = keyPath(path, name);
      const checkedName = TOKEN.test(name) ? (lowerCase ? name.toLowerCase() : name) : ctx.add(entryPath, 'invalid header name');
      const checkedValue = headerValue(raw, entryPath, ctx);
      if (checkedName === undefined || checkedValue === undefined) valid = false;
      else headers[checkedName] = checkedValue;
    }
    return valid ? headers : undefined;
  };
}

/** A file name; relative names are resolved against the config file's folder when it is known. */
const filePath: Check<string> = (value, path, ctx) => {
  const file = nonEmptyString(value, path, ctx);
  return file !== undefined && ctx.baseDir ? resolvePath(ctx.baseDir, file) : file;
};

const URL_SHAPE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

function parseUrl(value: unknown): URL | undefined {
  if (typeof value !== 'string' || !URL_SHAPE.test(value)) return undefined;
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

const TARGET_SCHEMES = ['http:', 'https:', 'h2c:'];

/**
 * An upstream target: http://, https:// or h2c:// with a host and optional
 * port, and nothing else. A path, query, fragment or user:password@ is
 * rejected (paths are the route's `rewrite`/`strip_prefix` business).
 * Normalised to `scheme://host[:port]`, host lower-cased.
 */
const targetUrl: Check<string> = (value, path, ctx) => {
  const url = parseUrl(value);
  if (url === undefined) return ctx.add(path, `expected a URL like "http://127.0.0.1:3000", got ${describe(value)}`);
  if (!TARGET_SCHEMES.includes(url.protocol)) return ctx.add(path, `unsupported scheme "${url.protocol}//" (use http://, https:// or h2c://)`);
  if (url.hostname === '') return ctx.add(path, `expected a host after "${url.protocol}//", got ${describe(value)}`);
  const before = ctx.problems.length;
  if (url.username !== '' || url.password !== '') ctx.add(path, 'must not contain user:password@ (set an Authorization header with the headers middleware)');
  if (url.pathname !== '' && url.pathname !== '/') ctx.add(path, `must not have a path (${quote(url.pathname)}); use the route's "rewrite" or "strip_prefix"`);
  if (url.search !== '') ctx.add(path, `must not have a query (${quote(url.search)})`);
  if (url.hash !== '') ctx.add(path, `must not have a fragment (${quote(url.hash)})`);
  return ctx.problems.length === before ? `${url.protocol}//${url.host.toLowerCase()}` : undefined;
};

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

interface Captures {
  params: string[];
  wildcard: boolean;
}

/** The `:name` and `*` captures of a route pattern (already validated). */
function capturesOf(pattern: string): Captures {
  const segments = pattern.split('/');
  return {
    params: segments.filter((segment) => segment.startsWith(':')).map((segment) => segment.slice(1)),
    wildcard: segments[segments.length - 1] === '*',
  };
}

/**
 * A route `path` or a `rewrite`: starts with "/", no empty segment, `:name`
 * segments with identifier names, `*` only as the whole last segment.
 * A route path may not capture the same name twice; a rewrite may reuse one.
 */
function pathPattern(kind: 'path' | 'rewrite'): Check<string> {
  return (value, path, ctx) => {
    if (typeof value !== 'string') return ctx.add(path, `expected a string starting with "/", got ${describe(value)}`);
    if (!value.startsWith('/')) return ctx.add(path, `must start with "/", got ${describe(value)}`);
    const invalid = /[\s?#]/.exec(value);
    if (invalid) return ctx.add(path, `must not contain ${quote(invalid[0])}, got ${describe(value)}`);
    if (value.includes('//')) return ctx.add(path, `must not contain an empty segment ("//"), got ${describe(value)}`);
    const segments = value.split('/').slice(1);
    const seen = new Set<string>();
    for (const [index, segment] of segments.entries()) {
      if (segment.includes('*') && (segment !== '*' || index !== segments.length - 1)) {
        return ctx.add(path, `"*" is only allowed as the whole last segment, got ${describe(value)}`);
      }
      if (!segment.startsWith(':')) continue;
      const name = segment.slice(1);
      if (!IDENTIFIER.test(name)) return ctx.add(path, `invalid parameter ${quote(segment)} (use ":" and a name of letters, digits and _), got ${describe(value)}`);
      if (kind === 'path' && seen.has(name)) return ctx.add(path, `captures ${quote(segment)} twice`);
      seen.add(name);
    }
    return value;
  };
}

const routePattern = pathPattern('path');
const rewritePattern = pathPattern('rewrite');

// ---------------------------------------------------------------------------
// Upstreams

const LOAD_BALANCING: readonly LoadBalancing[] = ['round_robin', 'least_connections', 'random', 'ip_hash', 'consistent_hash'];
const UPSTREAM_KEYS = ['targets', 'load_balancing', 'hash_key', 'health_check', 'max_fails', 'fail_timeout_ms', 'keepalive_timeout_ms', 'tls_verify', 'ca_file'];
const TARGET_KEYS = ['url', 'weight'];
const HEALTH_CHECK_KEYS = Object.keys(HEALTH_CHECK_DEFAULTS);

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

function upstreamWithDefaults(targets: UpstreamTarget[]): UpstreamConfig {
  return { targets, load_balancing: DEFAULT_LOAD_BALANCING, ...UPSTREAM_DEFAULTS };
}

/** The object form `{targets, load_balancing, hash_key, health_check, ...}`. */
function upstreamObject(value: Record<string, unknown>, path: string, ctx: Context): UpstreamConfig | undefined {
  const f = Fields.read(value, path, ctx, UPSTREAM_KEYS)!;
  const targets = f.required('targets', listOf(target, { nonEmpty: 'expected at least one target', uniqueBy: uniqueTarget }));
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
    tls_verify: f.get('tls_verify', boolean, d.tls_verify),
    ca_file: f.optional('ca_file', filePath),
  });
}

/** A URL string, an array of URL strings (round robin), or the object form; always returned as the object form. */
const upstream: Check<UpstreamConfig> = (value, path, ctx) => {
  if (typeof value === 'string') {
    const url = targetUrl(value, path, ctx);
    return url === undefined ? undefined : upstreamWithDefaults([{ url, weight: DEFAULT_TARGET_WEIGHT }]);
  }
  if (Array.isArray(value)) {
    const urls = listOf(targetUrl, { nonEmpty: 'expected at least one URL', uniqueBy: uniqueString })(value, path, ctx);
    return urls && upstreamWithDefaults(urls.map((url) => ({ url, weight: DEFAULT_TARGET_WEIGHT })));
  }
  if (isPlainObject(value)) return upstreamObject(value, path, ctx);
  return ctx.add(path, `expected a URL string, an array of URL strings or an object {targets, load_balancing, ...}, got ${describe(value)}`);
};

// ---------------------------------------------------------------------------
// Middleware (SPEC §8): `{type, config}`, each type's config checked by its own reader

const MIDDLEWARE_TYPES: readonly MiddlewareType[] = ['rate_limit', 'cors', 'auth', 'jwt', 'cache', 'headers', 'module'];

const rateLimitKey: Check<string> = (value, path, ctx) =>
  value === 'ip' || (typeof value === 'string' && /^header:/.test(value) && TOKEN.test(value.slice(7)))
    ? value
    : ctx.add(path, `expected "ip" or "header:NAME", got ${describe(value)}`);

const rateLimit: Check<RateLimitMiddlewareConfig> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, ['requests_per_minute', 'burst', 'key', 'store', 'redis_url']);
  if (!f) return undefined;
  const perMinute = f.required('requests_per_minute', integer(1, 1_000_000_000));
  const store = f.get('store', oneOf(['memory', 'redis'] as const), RATE_LIMIT_DEFAULTS.store);
  if (store === 'redis' && !f.mentions('redis_url')) f.problem('required with store "redis"', 'redis_url');
  if (store !== 'redis' && f.has('redis_url')) f.problem('only used with store "redis"', 'redis_url');
  return prune({
    requests_per_minute: perMinute ?? 1,
    burst: f.get('burst', integer(1, 1_000_000_000), perMinute ?? 1),
    key: f.get('key', rateLimitKey, RATE_LIMIT_DEFAULTS.key),
    store,
    redis_url: f.optional('redis_url', serviceUrl(['redis:', 'rediss:'], 'redis://127.0.0.1:6379')),
  });
};

/** `"*"` or an exact origin: scheme, host and optional port, nothing more. */
const origin: Check<string> = (value, path, ctx) => {
  const url = parseUrl(value);
  if (value === '*' || (url !== undefined && url.origin !== 'null' && url.origin === value)) return value as string;
  return ctx.add(path, `expected "*" or an origin like "https://app.example.com" (no path or trailing "/"), got ${describe(value)}`);
};

const headerNameOrAny: Check<string> = (value, path, ctx) => (value === '*' ? value : headerName(value, path, ctx));

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

const middlewareList = listOf(middleware);

// ---------------------------------------------------------------------------
// Routes

const ROUTE_KEYS = ['path', 'upstream', 'respond', 'methods', 'host', 'headers', 'strip_prefix', 'rewrite', 'timeout_ms', 'retries', 'preserve_host', 'middlewares'];
const RESPOND_KEYS = ['status', 'headers', 'body'];

const respond: Check<DirectResponse> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, RESPOND_KEYS, 'an object {status, headers, body}');
  if (!f) return undefined;
  return {
    status: f.get('status', integer(100, 599), RESPOND_DEFAULTS.status),
    headers: f.get('headers', headerMap(false), {}),
    body: f.get('body', anyString, RESPOND_DEFAULTS.body),
  };
};

/** A rewrite may only use the captures its route's path makes, and does not mix with strip_prefix. */
function checkRewrite(f: Fields, routePath: string | undefined, rewrite: string | undefined, stripPrefix: boolean): void {
  if (rewrite === undefined) return;
  if (stripPrefix) f.problem('cannot be combined with "strip_prefix": true (the rewrite already sets the whole path)', 'rewrite');
  if (routePath === undefined) return;
  const captured = capturesOf(routePath);
  const used = capturesOf(rewrite);
  for (const name of used.params.filter((param) => !captured.params.includes(param))) {
    f.problem(`uses ":${name}", which "path" does not capture`, 'rewrite');
  }
  if (used.wildcard && !captured.wildcard) f.problem('uses "*", which "path" does not capture', 'rewrite');
}

const route: Check<RouteConfig> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, ROUTE_KEYS);
  if (!f) return undefined;
  const routePath = f.required('path', routePattern, 'a path starting with "/"');
  if (f.has('upstream') && f.has('respond')) f.problem('has both "upstream" and "respond"; keep one');
  if (!f.mentions('upstream') && !f.mentions('respond')) f.problem('needs "upstream" (where to proxy) or "respond" (a direct response)');
  const d = ROUTE_DEFAULTS;
  const strip_prefix = f.get('strip_prefix', boolean, d.strip_prefix);
  const rewrite = f.optional('rewrite', rewritePattern);
  checkRewrite(f, routePath, rewrite, strip_prefix);
  return prune({
    path: routePath ?? '/',
    upstream: f.optional('upstream', upstream),
    methods: f.optional('methods', routeMethods),
    host: f.optional('host', routeHost),
    headers: f.optional('headers', headerMap(true)),
    strip_prefix,
    rewrite,
    timeout_ms: f.get('timeout_ms', duration(1), d.timeout_ms),
    retries: f.get('retries', integer(0, 10), d.retries),
    preserve_host: f.get('preserve_host', boolean, d.preserve_host),
    middlewares: f.get('middlewares', middlewareList, []),
    respond: f.optional('respond', respond),
  });
};

// ---------------------------------------------------------------------------
// Top level: listener, TLS, admin, limits

const PROTOCOLS: readonly ProtocolName[] = ['http1', 'http2', 'websocket'];
const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const TOP_LEVEL_KEYS = [...Object.keys(TOP_LEVEL_DEFAULTS), 'protocols', 'tls', 'routes', 'middlewares', 'admin', 'trusted_proxies'];
const WILDCARD_ADDRESSES = ['0.0.0.0', '::'];

const protocols: Check<ProtocolName[]> = (value, path, ctx) => {
  const list = listOf(oneOf(PROTOCOLS), { nonEmpty: NOT_EMPTY, uniqueBy: uniqueString })(value, path, ctx);
  if (list?.includes('websocket') && !list.includes('http1')) return ctx.add(path, '"websocket" needs "http1" (WebSocket upgrades are HTTP/1.1)');
  return list;
};

const certificate: Check<TlsCertificate> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, ['server_names', 'cert_file', 'key_file'], 'an object {server_names, cert_file, key_file}');
  if (!f) return undefined;
  return {
    server_names: f.required('server_names', listOf(hostName, { nonEmpty: NOT_EMPTY, uniqueBy: uniqueString })) ?? [],
    cert_file: f.required('cert_file', filePath) ?? '',
    key_file: f.required('key_file', filePath) ?? '',
  };
};

/** Certificates are only named here; the TLS layer reads them at start and reports unreadable files. */
const tls: Check<TlsConfig> = (value, path, ctx) => {
  const f = Fields.read(value, path, ctx, ['enabled', 'cert_file', 'key_file', 'certificates']);
  if (!f) return undefined;
  const config: TlsConfig = prune({
    enabled: f.get('enabled', boolean, TLS_DEFAULTS.enabled),
    cert_file: f.optional('cert_file', filePath),
    key_file: f.optional('key_file', filePath),
    certificates: f.get('certificates', listOf(certificate), []),
  });
  if (f.has('cert_file') && !f.mentions('key_file')) f.problem('required with "cert_file"', 'key_file');
  if (f.has('key_file') && !f.mentions('cert_file')) f.problem('required with "key_file"', 'cert_file');
  const certificates = f.raw('certificates');
  const noCertificates = Array.isArray(certificates) ? certificates.length === 0 : !f.mentions('certificates');
  if (config.enabled && !f.mentions('cert_file') && !f.mentions('key_file') && noCertificates) {
    f.problem('"enabled": true needs "cert_file" and "key_file", or "certificates"');
  }
  return config;
};

const admin: Check<AdminConfig | null> = (value, path, ctx) => {
  if (value === null) return null;
  const f = Fields.read(value, path, ctx, ['host', 'port', 'token'], 'null or an object {host, port, token}');
  if (!f) return undefined;
  return prune({
    host: f.get('host', listenAddress, DEFAULT_ADMIN.host),
    port: f.get('port', port, DEFAULT_ADMIN.port),
    token: f.optional('token', nonEmptyString),
  });
};

/** The admin listener may not take the proxy's own address (port 0 = any free port never collides). */
function checkAdminAddress(config: ZproxyConfig, ctx: Context): void {
  const { admin: adminConfig } = config;
  if (adminConfig === null || adminConfig.port === 0 || adminConfig.port !== config.port) return;
  const overlap = adminConfig.host === config.host || [adminConfig.host, config.host].some((host) => WILDCARD_ADDRESSES.includes(host));
  if (overlap) ctx.add('admin.port', `${adminConfig.port} is already the proxy's port (${config.host}:${config.port})`);
}

function checkConfig(input: unknown, ctx: Context): ZproxyConfig | undefined {
  const f = Fields.read(input, '', ctx, TOP_LEVEL_KEYS, 'a JSON object');
  if (!f) return undefined;
  const d = TOP_LEVEL_DEFAULTS;
  const config: ZproxyConfig = {
    host: f.get('host', listenAddress, d.host),
    port: f.get('port', port, d.port),
    thread_count: f.get('thread_count', threadCount, d.thread_count),
    backlog: f.get('backlog', integer(1, 65535), d.backlog),
    max_connections: f.get('max_connections', integer(1, 10_000_000), d.max_connections),
    connection_timeout_ms: f.get('connection_timeout_ms', duration(1), d.connection_timeout_ms),
    numa_aware: f.get('numa_aware', boolean, d.numa_aware),
    protocols: f.get('protocols', protocols, [...DEFAULT_PROTOCOLS]),
    tls: f.get('tls', tls, { ...TLS_DEFAULTS, certificates: [] }),
    routes: f.get('routes', listOf(route), []),
    middlewares: f.get('middlewares', middlewareList, []),
    admin: f.get('admin', admin, { ...DEFAULT_ADMIN }),
    max_header_bytes: f.get('max_header_bytes', integer(1024, 16_777_216), d.max_header_bytes),
    max_body_bytes: f.get('max_body_bytes', integerOrNull(0, NO_MAX), d.max_body_bytes),
    drain_timeout_ms: f.get('drain_timeout_ms', duration(0), d.drain_timeout_ms),
    upstream_connect_timeout_ms: f.get('upstream_connect_timeout_ms', duration(1), d.upstream_connect_timeout_ms),
    websocket_idle_timeout_ms: f.get('websocket_idle_timeout_ms', duration(0), d.websocket_idle_timeout_ms),
    max_concurrent_streams: f.get('max_concurrent_streams', integer(1, 2_147_483_647), d.max_concurrent_streams),
    trusted_proxies: f.get('trusted_proxies', listOf(ipOrCidr, { uniqueBy: uniqueString }), []),
    log_level: f.get('log_level', oneOf(LOG_LEVELS), d.log_level),
  };
  checkAdminAddress(config, ctx);
  return config;
}

// ---------------------------------------------------------------------------
// Public API

/** Thrown by `loadConfig` and `readConfigFile`; `errors` holds one `<path>: <message>` line per problem. */
export class ConfigError extends Error {
  readonly code = 'ZP_ERR_CONFIG';
  readonly errors: readonly string[];

  constructor(errors: readonly string[], source = 'config') {
    super(`invalid ${source}:\n  ${errors.join('\n  ')}`);
    this.name = 'ConfigError';
    this.errors = Object.freeze([...errors]);
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

/**
 * Checks a configuration (parsed JSON or the object given to createProxy).
 * Valid: the normalised, deeply frozen config. Invalid: every problem found.
 * The input is never modified.
 */
export function validateConfig(input: unknown, options: ValidateOptions = {}): { config: ZproxyConfig } | { errors: string[] } {
  const ctx = new Context(options.baseDir);
  const config = checkConfig(input, ctx);
  if (ctx.problems.length > 0 || config === undefined) return { errors: ctx.problems };
  return { config: deepFreeze(config) };
}

/** `validateConfig`, throwing a ConfigError (naming `source`, e.g. the file) when invalid. */
export function loadConfig(input: unknown, options: ValidateOptions & { source?: string } = {}): ZproxyConfig {
  const result = validateConfig(input, options);
  if ('errors' in result) throw new ConfigError(result.errors, options.source);
  return result.config;
}
