import type { RouteConfig } from '../src/config/types';
import { compileRoutes, type RouteMatch } from '../dist/router/compile';
import { normalisePath, splitTarget } from '../dist/router/request-path';
import { mulberry32 } from './helpers/random';
import { upstreamPath } from '../dist/router/rewrite';

function route(path: string, extra: Partial<RouteConfig> = {}): RouteConfig {
  return { path, strip_prefix: false, timeout_ms: 60000, retries: 0, preserve_host: true, middlewares: [], ...extra };
}

interface Case {
  name: string;
  routes: RouteConfig[];
  method?: string;
  host?: string | null;
  path: string;
  headers?: Record<string, string>;
  /** The index of the expected route, or the outcome. */
  expect: number | 'not_found' | 'bad_path' | { allow: string[] };
  params?: Record<string, string>;
  wildcard?: string | null;
  matchedPrefix?: string;
}

function run(c: Pick<Case, 'routes' | 'method' | 'host' | 'path' | 'headers'>): RouteMatch {
  const headers = c.headers ?? {};
  return compileRoutes(c.routes).match(c.method ?? 'GET', c.host ?? null, c.path, (name) => headers[name]);
}

const api = [route('/api'), route('/')];
const specific = [
  route('/a/*'), // 0
  route('/a/:x'), // 1
  route('/a/b'), // 2
  route('/a/:x/c'), // 3
  route('/a'), // 4
];
const hosts = [
  route('/', { host: '*.example.com' }), // 0
  route('/', { host: 'API.Example.com' }), // 1
  route('/', { host: '*.b.example.com' }), // 2
  route('/'), // 3
  route('/only', { host: '[::1]' }), // 4
];
const methods = [
  route('/items', { methods: ['POST'] }), // 0
  route('/items', { methods: ['PUT', 'DELETE'] }), // 1
  route('/items/:id', { methods: ['GET'] }), // 2
  route('/items/:id/all'), // 3
];

const cases: Case[] = [
  // Segment boundaries: a literal path matches itself and everything below it.
  { name: 'literal itself', routes: api, path: '/api', expect: 0, matchedPrefix: '/api', wildcard: null },
  { name: 'literal with trailing slash', routes: api, path: '/api/', expect: 0 },
  { name: 'literal below', routes: api, path: '/api/x/y', expect: 0 },
  { name: 'no partial segment', routes: api, path: '/apix', expect: 1, matchedPrefix: '' },
  { name: 'paths are case-sensitive', routes: api, path: '/API', expect: 1 },
  { name: '/ matches everything', routes: [route('/')], path: '/anything/at/all', expect: 0 },
  { name: 'no route', routes: [route('/api')], path: '/other', expect: 'not_found' },
  { name: 'no routes at all', routes: [], path: '/', expect: 'not_found' },
  { name: 'trailing slash in the pattern is insignificant', routes: [route('/api/')], path: '/api', expect: 0 },

  // Params: exactly one non-empty segment; the route still matches below it.
  { name: 'param', routes: [route('/users/:id')], path: '/users/42', expect: 0, params: { id: '42' }, matchedPrefix: '/users/42' },
  { name: 'param needs a segment', routes: [route('/users/:id')], path: '/users/', expect: 'not_found' },
  { name: 'param is raw', routes: [route('/f/:name')], path: '/f/a%20b', expect: 0, params: { name: 'a%20b' } },
  { name: 'param route matches below', routes: [route('/users/:id')], path: '/users/7/posts', expect: 0, params: { id: '7' } },
  { name: 'two params', routes: [route('/:a/x/:b')], path: '/1/x/2', expect: 0, params: { a: '1', b: '2' } },

  // Wildcard: zero or more segments, so /static/* also matches /static.
  { name: 'wildcard rest', routes: [route('/static/*')], path: '/static/css/a.css', expect: 0, wildcard: 'css/a.css', matchedPrefix: '/static' },
  { name: 'wildcard matches the parent', routes: [route('/static/*')], path: '/static', expect: 0, wildcard: '' },
  { name: 'wildcard with trailing slash', routes: [route('/static/*')], path: '/static/', expect: 0, wildcard: '' },
  { name: 'wildcard keeps a trailing slash', routes: [route('/static/*')], path: '/static/d/', expect: 0, wildcard: 'd/' },
  { name: 'wildcard not a partial segment', routes: [route('/static/*')], path: '/staticx', expect: 'not_found' },
  { name: 'root wildcard', routes: [route('/*')], path: '/a/b', expect: 0, wildcard: 'a/b', matchedPrefix: '' },

  // Specificity: longer literal prefix, then literal > param > wildcard, then file order.
  { name: 'literal beats param', routes: specific, path: '/a/b', expect: 2 },
  { name: 'param beats wildcard', routes: specific, path: '/a/z', expect: 1, params: { x: 'z' } },
  { name: 'longer literal prefix first', routes: specific, path: '/a/b/c', expect: 2 },
  { name: 'deeper param route', routes: specific, path: '/a/z/c', expect: 3 },
  { name: 'wildcard and literal tie by file order', routes: specific, path: '/a', expect: 0 },
  { name: 'plain prefix first in file', routes: [route('/a'), route('/a/*')], path: '/a/b', expect: 0 },
  { name: 'equal patterns: first in file', routes: [route('/u/:id'), route('/u/:name')], path: '/u/1', expect: 0, params: { id: '1' } },
  { name: 'falls back from a dead-end literal', routes: [route('/a/b/c'), route('/a/:x/d')], path: '/a/b/d', expect: 1 },

  // Hosts: port stripped, case-insensitive, exact > longest wildcard > none.
  { name: 'exact host', routes: hosts, host: 'api.example.com', path: '/', expect: 1 },
  { name: 'host case and port', routes: hosts, host: 'API.EXAMPLE.COM:8443', path: '/', expect: 1 },
  { name: 'host trailing dot', routes: hosts, host: 'api.example.com.', path: '/', expect: 1 },
  { name: 'wildcard host', routes: hosts, host: 'www.example.com', path: '/', expect: 0 },
  { name: 'wildcard host any depth', routes: hosts, host: 'a.c.example.com', path: '/', expect: 0 },
  { name: 'longest wildcard suffix', routes: hosts, host: 'a.b.example.com', path: '/', expect: 2 },
  { name: 'wildcard excludes the bare domain', routes: hosts, host: 'example.com', path: '/', expect: 3 },
  { name: 'unknown host', routes: hosts, host: 'other.org', path: '/', expect: 3 },
  { name: 'no Host header', routes: hosts, host: null, path: '/', expect: 3 },
  { name: 'IPv6 literal with port', routes: hosts, host: '[::1]:8000', path: '/only', expect: 4 },
  { name: 'IPv6 literal without port', routes: hosts, host: '[::1]', path: '/only', expect: 4 },
  { name: 'host bucket falls through to no-host', routes: [route('/x', { host: 'a.com' }), route('/')], host: 'a.com', path: '/y', expect: 1 },
  { name: 'host-only route is not for other hosts', routes: [route('/', { host: 'a.com' })], host: 'b.com', path: '/', expect: 'not_found' },

  // Header conditions: a failing route gives way to the next most specific.
  { name: 'header matches', routes: [route('/v', { headers: { 'X-Version': '2' } }), route('/v')], path: '/v', headers: { 'x-version': '2' }, expect: 0 },
  { name: 'header value differs', routes: [route('/v', { headers: { 'X-Version': '2' } }), route('/')], path: '/v', headers: { 'x-version': '3' }, expect: 1 },
  { name: 'header missing', routes: [route('/v/x', { headers: { 'X-Version': '2' } }), route('/v')], path: '/v/x', expect: 1 },
  { name: 'header values are exact', routes: [route('/', { headers: { a: 'Yes' } })], path: '/', headers: { a: 'yes' }, expect: 'not_found' },

  // Methods: a condition like headers; 405 with the union when only the method fails.
  { name: 'method allowed', routes: methods, method: 'PUT', path: '/items', expect: 1 },
  { name: '405 with sorted Allow', routes: methods, method: 'GET', path: '/items', expect: { allow: ['DELETE', 'POST', 'PUT'] } },
  { name: 'GET brings HEAD', routes: methods, method: 'HEAD', path: '/items/1', expect: 2 },
  { name: 'Allow lists HEAD with GET', routes: [route('/r/:id', { methods: ['GET'] })], method: 'POST', path: '/r/1', expect: { allow: ['GET', 'HEAD'] } },
  { name: 'Allow is the union along the path', routes: methods, method: 'PATCH', path: '/items/1', expect: { allow: ['DELETE', 'GET', 'HEAD', 'POST', 'PUT'] } },
  { name: 'method falls through to a less specific route', routes: [...methods, route('/')], method: 'PATCH', path: '/items', expect: 4 },
  { name: 'methods are case-sensitive', routes: methods, method: 'post', path: '/items', expect: { allow: ['DELETE', 'POST', 'PUT'] } },
  { name: 'header-failing routes do not count for Allow', routes: [route('/', { methods: ['GET'], headers: { a: '1' } })], method: 'POST', path: '/', expect: 'not_found' },

  // Normalisation: dot-segments and repeated slashes before matching.
  { name: 'dot-dot resolved before matching', routes: [route('/public'), route('/admin')], path: '/public/../admin', expect: 1 },
  { name: 'encoded dot-dot', routes: [route('/public'), route('/admin')], path: '/public/%2E%2e/admin', expect: 1 },
  { name: 'single dots and double slashes', routes: [route('/a/b')], path: '//a/./b', expect: 0, matchedPrefix: '/a/b' },
  { name: 'climbing above / is rejected', routes: [route('/')], path: '/a/../../etc/passwd', expect: 'bad_path' },
  { name: 'relative path is rejected', routes: [route('/')], path: 'a/b', expect: 'bad_path' },
  { name: 'asterisk-form is not a path', routes: [route('/')], path: '*', expect: 'bad_path' },
  { name: 'encoded slash is not a separator', routes: [route('/a/b'), route('/')], path: '/a%2Fb', expect: 1 },
  { name: 'dot-prefixed names are not dot-segments', routes: [route('/.well-known')], path: '/.well-known/x', expect: 0 },

  // Path equivalence (RFC 3986 §6.2.2): escaped unreserved characters are the characters themselves.
  { name: 'escaped letter is the letter', routes: [route('/admin'), route('/')], path: '/%61dmin', expect: 0, matchedPrefix: '/admin' },
  { name: 'escaped upper-case letters', routes: [route('/admin'), route('/')], path: '/%41%44MIN', expect: 1 },
  { name: 'every unreserved escape is decoded', routes: [route('/aZ09-._~'), route('/')], path: '/%61%5A%30%39%2D%2E%5F%7e', expect: 0 },
  { name: 'escaped dot-dot after decoding', routes: [route('/public'), route('/admin')], path: '/public/.%2E/admin', expect: 1 },
  { name: 'escape hex case does not matter', routes: [route('/caf%C3%A9'), route('/')], path: '/caf%c3%a9', expect: 0 },
  { name: 'route paths are normalised too', routes: [route('/caf%c3%a9/%61pi'), route('/')], path: '/caf%C3%A9/api', expect: 0 },
  { name: 'escaped reserved characters stay escaped', routes: [route('/a:b'), route('/')], path: '/a%3Ab', expect: 1 },
  { name: 'params keep reserved escapes, upper-cased', routes: [route('/u/:id')], path: '/u/%7euser%2fx', expect: 0, params: { id: '~user%2Fx' } },
  { name: 'malformed escape', routes: [route('/')], path: '/a%zz', expect: 'bad_path' },
  { name: 'truncated escape', routes: [route('/')], path: '/a%4', expect: 'bad_path' },
  { name: 'percent at the end', routes: [route('/')], path: '/a/%', expect: 'bad_path' },

  // An escaped slash never hides a dot-segment an upstream that decodes it would resolve.
  { name: 'dot-dot behind %2F', routes: [route('/api'), route('/')], path: '/api/..%2F..%2Fadmin', expect: 'bad_path' },
  { name: 'escaped dot-dot behind %2f', routes: [route('/api'), route('/')], path: '/api/%2e%2e%2fadmin', expect: 'bad_path' },
  { name: 'dot-dot after %2F', routes: [route('/api'), route('/')], path: '/api/x%2F..', expect: 'bad_path' },
  { name: 'single dot behind %2F', routes: [route('/api'), route('/')], path: '/api/.%2Fx', expect: 'bad_path' },
  { name: 'dot-dot behind %5C', routes: [route('/api'), route('/')], path: '/api/..%5cadmin', expect: 'bad_path' },
  { name: 'dot-dot behind a backslash', routes: [route('/api'), route('/')], path: '/api/..\\admin', expect: 'bad_path' },
  { name: 'dots inside names behind %2F are fine', routes: [route('/api'), route('/')], path: '/api/v1.2%2F..x', expect: 0 },
];

describe('Router.match', () => {
  test.each(cases)('$name', (c) => {
    const result = run(c);
    if (typeof c.expect === 'number') {
      expect(result).toMatchObject({ kind: 'route', index: c.expect, route: c.routes[c.expect] });
      if (result.kind !== 'route') return;
      if (c.params) expect({ ...result.params }).toEqual(c.params);
      if (c.wildcard !== undefined) expect(result.wildcard).toBe(c.wildcard);
      if (c.matchedPrefix !== undefined) expect(result.matchedPrefix).toBe(c.matchedPrefix);
    } else if (typeof c.expect === 'string') {
      expect(result).toEqual({ kind: c.expect });
    } else {
      expect(result).toEqual({ kind: 'method_not_allowed', allow: c.expect.allow });
    }
  });

  test('1000 routes compile and each matches its own paths', () => {
    const routes: RouteConfig[] = [];
    for (let i = 0; i < 250; i++) {
      routes.push(route(`/svc${i}`), route(`/svc${i}/users/:id`), route(`/svc${i}/files/*`), route(`/v/:x/svc${i}`, { host: `h${i % 7}.test` }));
    }
    const router = compileRoutes(routes);
    for (let i = 0; i < 250; i += 13) {
      expect(router.match('GET', null, `/svc${i}/other`, undefined)).toMatchObject({ index: 4 * i });
      expect(router.match('GET', null, `/svc${i}/users/5`, undefined)).toMatchObject({ index: 4 * i + 1, params: { id: '5' } });
      expect(router.match('GET', null, `/svc${i}/files/a/b`, undefined)).toMatchObject({ index: 4 * i + 2, wildcard: 'a/b' });
      expect(router.match('GET', `h${i % 7}.test:80`, `/v/1/svc${i}`, undefined)).toMatchObject({ index: 4 * i + 3 });
      expect(router.match('GET', 'h99.test', `/v/1/svc${i}`, undefined)).toEqual({ kind: 'not_found' });
    }
    expect(router.match('GET', null, '/svc1000', undefined)).toEqual({ kind: 'not_found' });
  });
});

describe('upstreamPath', () => {
  const rows: Array<[string, RouteConfig, string, string, string]> = [
    // [name, route, request path, query, upstream path]
    ['unchanged with query', route('/api'), '/api/users', '?a=1&b', '/api/users?a=1&b'],
    ['normalised path is forwarded', route('/'), '/a//b/./c/../d', '', '/a/b/d'],
    ['strip_prefix', route('/api', { strip_prefix: true }), '/api/users', '?x=1', '/users?x=1'],
    ['strip_prefix to root', route('/api', { strip_prefix: true }), '/api', '', '/'],
    ['strip_prefix keeps trailing slash', route('/api', { strip_prefix: true }), '/api/users/', '', '/users/'],
    ['strip_prefix with param', route('/t/:tenant', { strip_prefix: true }), '/t/acme/orders', '', '/orders'],
    ['strip_prefix with wildcard', route('/static/*', { strip_prefix: true }), '/static/css/a.css', '', '/css/a.css'],
    ['strip_prefix on /', route('/', { strip_prefix: true }), '/x', '', '/x'],
    ['rewrite replaces the prefix', route('/api', { rewrite: '/v1' }), '/api/users', '?q', '/v1/users?q'],
    ['rewrite with trailing slash', route('/api', { rewrite: '/v1/' }), '/api/users', '', '/v1/users'],
    ['rewrite exact', route('/api', { rewrite: '/v1' }), '/api', '', '/v1'],
    ['rewrite with params', route('/users/:id', { rewrite: '/v2/accounts/:id' }), '/users/5/posts', '', '/v2/accounts/5/posts'],
    ['rewrite moves params', route('/:a/:b', { rewrite: '/:b/:a' }), '/x/y', '', '/y/x'],
    ['rewrite places the wildcard', route('/files/*', { rewrite: '/bucket/*/raw' }), '/files/a/b', '', '/bucket/a/b/raw'],
    ['wildcard empty', route('/files/*', { rewrite: '/bucket/*' }), '/files', '', '/bucket'],
    ['wildcard keeps a trailing slash', route('/files/*', { rewrite: '/bucket/*' }), '/files/', '', '/bucket/'],
    ['bare star inside a segment', route('/img/*', { rewrite: '/img-*' }), '/img/x.png', '', '/img-x.png'],
    ['rewrite wins over strip_prefix', route('/api', { strip_prefix: true, rewrite: '/v1' }), '/api/x', '', '/v1/x'],
    ['rewrite from /', route('/', { rewrite: '/app' }), '/x', '', '/app/x'],
    ['the routed path is forwarded, escapes normalised', route('/admin'), '/%61dmin/%7Eu/caf%c3%a9', '?a=%61', '/admin/~u/caf%C3%A9?a=%61'],
    ['strip_prefix after decoding', route('/api', { strip_prefix: true }), '/%61pi/x', '', '/x'],
    ['an escaped slash stays below the stripped prefix', route('/api', { strip_prefix: true }), '/api/a%2fb', '', '/a%2Fb'],
    ['an escaped slash stays below the rewrite', route('/files/*', { rewrite: '/bucket/*' }), '/files/a%2Fb/c', '', '/bucket/a%2Fb/c'],
  ];
  test.each(rows)('%s', (_name, config, path, query, expected) => {
    const match = compileRoutes([config]).match('GET', null, path);
    if (match.kind !== 'route') throw new Error(`no match: ${match.kind}`);
    expect(upstreamPath(match, query)).toBe(expected);
  });
});

describe('normalisePath', () => {
  const SEPARATOR = /%2F|%5C|\\/i;
  const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
  const ALPHABET = ['a', 'b', '.', '..', '/', '//', '%2e', '%2E', '%2f', '%2F', '%5c', '\\', '%61', '%7e', '%3a', '%zz', '%', '~', '-', '%41'];

  test('seeded random paths: the result is a fixed point, holds no dot-segment even behind an escaped slash, and keeps only reserved escapes, in upper case', () => {
    const random = mulberry32(0x5eed);
    const problems: string[] = [];
    let accepted = 0;
    for (let n = 0; n < 20000; n++) {
      let path = '/';
      const parts = 1 + Math.floor(random() * 8);
      for (let k = 0; k < parts; k++) path += ALPHABET[Math.floor(random() * ALPHABET.length)];
      const normal = normalisePath(path);
      if (normal === null) continue;
      accepted++;
      if (normalisePath(normal) !== normal) problems.push(`${path}: ${normal} is not a fixed point`);
      for (const segment of normal.split('/').slice(1)) {
        if (segment.split(SEPARATOR).some((piece) => piece === '.' || piece === '..')) problems.push(`${path}: ${normal} holds a dot-segment`);
      }
      for (const [escape, hex] of normal.matchAll(/%(..)/g)) {
        if (UNRESERVED.test(String.fromCharCode(parseInt(hex, 16))) || hex !== hex.toUpperCase()) problems.push(`${path}: ${normal} keeps ${escape}`);
      }
    }
    expect(problems).toEqual([]);
    expect(accepted).toBeGreaterThan(2000);
  });

  test('a normal path is returned as it is', () => {
    for (const path of ['/', '/a', '/a/b/', '/api/v1/users/42', '/a.b/c-d_e~f']) expect(normalisePath(path)).toBe(path);
  });
});

describe('splitTarget', () => {
  test.each([
    ['/p?q=1', { path: '/p', query: '?q=1', authority: null }],
    ['/p?', { path: '/p', query: '?', authority: null }],
    ['/p', { path: '/p', query: '', authority: null }],
    ['/p?a?b#frag', { path: '/p', query: '?a?b', authority: null }],
    ['http://Host:8080/p?q', { path: '/p', query: '?q', authority: 'Host:8080' }],
    ['https://user@h/p', { path: '/p', query: '', authority: 'h' }],
    ['http://h', { path: '/', query: '', authority: 'h' }],
    ['http://h?x=1', { path: '/', query: '?x=1', authority: 'h' }],
    ['http://[::1]:8000/a', { path: '/a', query: '', authority: '[::1]:8000' }],
    ['*', { path: '*', query: '', authority: null }],
  ])('%s', (target, expected) => {
    expect(splitTarget(target)).toEqual(expected);
  });
});
