/**
 * Routes compiled once per config: a segment tree per host bucket, so a
 * request walks one path through a tree instead of scanning every route.
 * Matching rules: SPEC §4 and the README's "Routing" section.
 */
import type { RouteConfig } from '../config/types';
import { HostTable } from './host-match';
import { normalisePath, pathSegments } from './request-path';
import { parsePattern, SegmentNode, type PathPattern } from './segment-tree';

export type RouteHit = {
  kind: 'route';
  route: RouteConfig;
  /** The route's position in `routes`. */
  index: number;
  /** `:name` captures, raw (not percent-decoded). */
  params: Record<string, string>;
  /** What a trailing `*` captured, without its leading "/" ("" for none); null if the pattern has no `*`. */
  wildcard: string | null;
  /** The normalised request path up to the last segment the pattern consumed ("" for `/` and `/*`). */
  matchedPrefix: string;
  /** The normalised request path (request-path.ts): what was routed, and what the upstream gets (rewrite.ts). */
  path: string;
};

export type RouteMatch =
  | RouteHit
  | { kind: 'not_found' }
  | { kind: 'method_not_allowed'; allow: string[] }
  /** The path cannot be normalised (request-path.ts: not starting with "/", climbing above it, a bad escape): answer 400. */
  | { kind: 'bad_path' };

export interface Router {
  match(
    method: string,
    host: string | null,
    path: string,
    getHeader?: (lowerName: string) => string | undefined,
  ): RouteMatch;
}

interface RouteEntry {
  route: RouteConfig;
  index: number;
  pattern: PathPattern;
  /** null = every method. GET brings HEAD with it. */
  methods: ReadonlySet<string> | null;
  headers: Array<[lowerName: string, value: string]>;
}

const NOT_FOUND: RouteMatch = Object.freeze({ kind: 'not_found' });
const BAD_PATH: RouteMatch = Object.freeze({ kind: 'bad_path' });

export function compileRoutes(routes: readonly RouteConfig[]): Router {
  const hosts = new HostTable(() => new SegmentNode<RouteEntry>());
  routes.forEach((route, index) => {
    const pattern = parsePattern(route.path);
    hosts.bucketFor(route.host).insert(pattern, {
      route,
      index,
      pattern,
      methods: route.methods === undefined ? null : allowedMethods(route.methods),
      headers: Object.entries(route.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
    });
  });
  return { match: (method, host, path, getHeader) => matchRoute(hosts, method, host, path, getHeader) };
}

function allowedMethods(methods: readonly string[]): ReadonlySet<string> {
  const allowed = new Set(methods);
  if (allowed.has('GET')) allowed.add('HEAD');
  return allowed;
}

function matchRoute(
  hosts: HostTable<SegmentNode<RouteEntry>>,
  method: string,
  host: string | null,
  path: string,
  getHeader?: (lowerName: string) => string | undefined,
): RouteMatch {
  const normalised = normalisePath(path);
  if (normalised === null) return BAD_PATH;
  const segments = pathSegments(normalised);
  let allow: string[] | null = null;
  const accept = (entry: RouteEntry): boolean => {
    for (const [name, value] of entry.headers) if (getHeader?.(name) !== value) return false;
    if (entry.methods === null || entry.methods.has(method)) return true;
    (allow ??= []).push(...entry.methods);
    return false;
  };
  const entry = hosts.find(host, (tree) => tree.find(segments, 0, accept));
  if (entry !== null) return toHit(entry, normalised, segments);
  return allow !== null ? { kind: 'method_not_allowed', allow: [...new Set<string>(allow)].sort() } : NOT_FOUND;
}

/** The params of a pattern without `:name` segments: shared, so a plain hit allocates no dictionary. */
const NO_PARAMS: Record<string, string> = Object.freeze(Object.create(null) as Record<string, string>);

function toHit(entry: RouteEntry, path: string, segments: readonly string[]): RouteHit {
  const { params: slots, segments: consumed, wildcard } = entry.pattern;
  const params: Record<string, string> = slots.length === 0 ? NO_PARAMS : Object.create(null);
  for (const [name, at] of slots) params[name] = segments[at];
  const matchedPrefix = consumed.length === 0 ? '' : '/' + segments.slice(0, consumed.length).join('/');
  return {
    kind: 'route',
    route: entry.route,
    index: entry.index,
    params,
    wildcard: wildcard ? path.slice(matchedPrefix.length + 1) : null,
    matchedPrefix,
    path,
  };
}
