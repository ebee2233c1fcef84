/**
 * Checks one route (SPEC §3): its `path` pattern, `upstream` or `respond`,
 * `methods`, `host`, headers to match, `strip_prefix` and `rewrite` (whose
 * captures must come from the path), timeouts, retries and middlewares.
 */
import { RESPOND_DEFAULTS, ROUTE_DEFAULTS } from './defaults';
import type { DirectResponse, RouteConfig } from './types';
import {
  type Check,
  Fields,
  IDENTIFIER,
  anyString,
  boolean,
  describe,
  duration,
  integer,
  listOf,
  prune,
  quote,
  uniqueString,
} from './checks';
import { headerMap, hostName, method } from './domain-checks';
import { middlewareList } from './validate-middleware';
import { upstream } from './validate-upstream';
import { normaliseSegment } from '../router/request-path';

/** A route path's literal segment that a normalised request path can hold. */
function isNormalSegment(segment: string): boolean {
  const normal = normaliseSegment(segment);
  return normal !== null && normal !== '.' && normal !== '..';
}

const ROUTE_KEYS = ['path', 'upstream', 'respond', 'methods', 'host', 'headers', 'strip_prefix', 'rewrite', 'timeout_ms', 'retries', 'preserve_host', 'middlewares'];
const RESPOND_KEYS = ['status', 'headers', 'body'];

/** A route's `host`: a host name, a `*.suffix` pattern, or "*" (any host, the same as leaving it out). */
const routeHost: Check<string> = (value, path, ctx) => (value === '*' ? value : hostName(value, path, ctx));

const routeMethods = listOf(method, { nonEmpty: 'expected at least one method (leave "methods" out to allow every method)', uniqueBy: uniqueString });

interface Captures {
  params: string[];
  wildcard: boolean;
}

/** The `:name` and `*` captures of a route pattern (already validated). */
function capturesOf(pattern: string): Captures {
  const segments = pattern.split('/');
  return {
    params: segments.filter((segment) => segment.startsWith(':')).map((segment) => segment.slice(1)),
    wildcard: pattern.includes('*'),
  };
}

/**
 * A route `path` or a `rewrite`: starts with "/", no empty segment, `:name`
 * segments with identifier names. In a path `*` is only the whole last
 * segment; a rewrite places the captured rest anywhere, once (such as
 * `/img-*`, or between two literal segments). A route path may not capture the same name
 * twice; a rewrite may reuse one.
 */
function pathPattern(kind: 'path' | 'rewrite'): Check<string> {
  return (value, path, ctx) => {
    if (typeof value !== 'string') return ctx.add(path, `expected a string starting with "/", got ${describe(value)}`);
    if (!value.startsWith('/')) return ctx.add(path, `must start with "/", got ${describe(value)}`);
    const invalid = /[\s?#]/.exec(value);
    if (invalid) return ctx.add(path, `must not contain ${quote(invalid[0])}, got ${describe(value)}`);
    if (value.includes('//')) return ctx.add(path, `must not contain an empty segment ("//"), got ${describe(value)}`);
    const segments = value.split('/').slice(1);
    if (kind === 'rewrite' && value.indexOf('*') !== value.lastIndexOf('*')) return ctx.add(path, `may use "*" only once, got ${describe(value)}`);
    const seen = new Set<string>();
    for (const [index, segment] of segments.entries()) {
      if (kind === 'path' && segment.includes('*') && (segment !== '*' || index !== segments.length - 1)) {
        return ctx.add(path, `"*" is only allowed as the whole last segment, got ${describe(value)}`);
      }
      if (kind === 'path' && !segment.startsWith(':') && segment !== '*' && !isNormalSegment(segment)) {
        return ctx.add(path, `segment ${quote(segment)} can never match (requests are routed on normalised paths: README "Routing"), got ${describe(value)}`);
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

/** One entry of `routes`. */
export const route: Check<RouteConfig> = (value, path, ctx) => {
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
