/**
 * Config validation (SPEC §3, §8, §9): one exact message per problem, named
 * by its JSON path; every problem reported; defaults filled; upstreams
 * normalised; the result frozen; the shipped configs valid.
 */
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { ZproxyConfig } from '../src/config/types';

import { ConfigError, ENFORCED_MIDDLEWARE, loadConfig, unenforced, validateConfig } from '../dist/config/validate';
import { createProxy } from '../dist/index';
import { defaultConfigPath, readConfigFile } from '../dist/config/load';

const ROOT = path.resolve(__dirname, '..');

function errorsOf(input: unknown): string[] {
  const result = validateConfig(input);
  return 'errors' in result ? result.errors : [];
}

function valid(input: unknown): ZproxyConfig {
  const result = validateConfig(input);
  if ('errors' in result) throw new Error(`expected a valid config, got:\n${result.errors.join('\n')}`);
  return result.config;
}

/** A config with one route carrying `route` (path "/" and an upstream unless overridden). */
const withRoute = (route: Record<string, unknown>) => ({ routes: [{ path: '/', upstream: 'http://127.0.0.1:3000', ...route }] });
const withUpstream = (upstream: unknown) => withRoute({ upstream });
const withMiddleware = (type: string, config?: unknown) => ({ middlewares: [{ type, ...(config !== undefined && { config }) }] });

describe('each invalid value has one exact message, prefixed by its JSON path', () => {
  const cases: Array<[string, unknown, string]> = [
    // the document and the listener
    ['an array instead of an object', [], 'config: expected a JSON object, got an array'],
    ['null', null, 'config: expected a JSON object, got null'],
    ['port as a string', { port: '80' }, 'port: expected an integer from 0 to 65535, got "80"'],
    ['port out of range', { port: 70000 }, 'port: expected an integer from 0 to 65535, got 70000'],
    ['port not an integer', { port: 80.5 }, 'port: expected an integer from 0 to 65535, got 80.5'],
    ['host name instead of an address', { host: 'example.com' }, 'host: expected an IPv4 or IPv6 address or "localhost", got "example.com"'],
    ['bracketed IPv6 host', { host: '[::1]' }, 'host: expected an IPv4 or IPv6 address or "localhost", got "[::1]"'],
    ['thread_count 0', { thread_count: 0 }, 'thread_count: expected "auto" or an integer from 1 to 1024, got 0'],
    ['thread_count as a string', { thread_count: '4' }, 'thread_count: expected "auto" or an integer from 1 to 1024, got "4"'],
    ['backlog 0', { backlog: 0 }, 'backlog: expected an integer from 1 to 65535, got 0'],
    ['max_connections 0', { max_connections: 0 }, 'max_connections: expected an integer from 1 to 10000000, got 0'],
    ['connection_timeout_ms 0', { connection_timeout_ms: 0 }, 'connection_timeout_ms: expected an integer from 1 to 2147483647, got 0'],
    ['numa_aware as a string', { numa_aware: 'yes' }, 'numa_aware: expected true or false, got "yes"'],
    ['protocols empty', { protocols: [] }, 'protocols: expected a non-empty array'],
    ['protocols not an array', { protocols: 'http1' }, 'protocols: expected an array, got "http1"'],
    ['unknown protocol', { protocols: ['http3'] }, 'protocols[0]: expected one of "http1", "http2", "websocket", got "http3"'],
    ['duplicate protocol', { protocols: ['http1', 'http1'] }, 'protocols[1]: duplicate of [0]'],
    ['websocket without http1', { protocols: ['http2', 'websocket'] }, 'protocols: "websocket" needs "http1" (WebSocket upgrades are HTTP/1.1)'],
    ['max_header_bytes too small', { max_header_bytes: 100 }, 'max_header_bytes: expected an integer from 1024 to 16777216, got 100'],
    ['max_body_bytes as a string', { max_body_bytes: '1MB' }, 'max_body_bytes: expected null or an integer of at least 0, got "1MB"'],
    ['drain_timeout_ms negative', { drain_timeout_ms: -1 }, 'drain_timeout_ms: expected an integer from 0 to 2147483647, got -1'],
    ['upstream_connect_timeout_ms 0', { upstream_connect_timeout_ms: 0 }, 'upstream_connect_timeout_ms: expected an integer from 1 to 2147483647, got 0'],
    ['websocket_idle_timeout_ms fractional', { websocket_idle_timeout_ms: 1.5 }, 'websocket_idle_timeout_ms: expected an integer from 0 to 2147483647, got 1.5'],
    ['max_concurrent_streams 0', { max_concurrent_streams: 0 }, 'max_concurrent_streams: expected an integer from 1 to 2147483647, got 0'],
    ['log_level unknown', { log_level: 'verbose' }, 'log_level: expected one of "trace", "debug", "info", "warn", "error", "fatal", "silent", got "verbose"'],
    ['trusted proxy not an address', { trusted_proxies: ['proxy.local'] }, 'trusted_proxies[0]: expected an IP address or a CIDR like "10.0.0.0/8", got "proxy.local"'],
    ['trusted proxy prefix too long', { trusted_proxies: ['10.0.0.0/33'] }, 'trusted_proxies[0]: expected an IP address or a CIDR like "10.0.0.0/8", got "10.0.0.0/33"'],
    ['trusted proxies duplicated', { trusted_proxies: ['::1', '::1'] }, 'trusted_proxies[1]: duplicate of [0]'],

    // tls
    ['tls as a boolean', { tls: true }, 'tls: expected an object, got true'],
    ['tls enabled without certificates', { tls: { enabled: true } }, 'tls: "enabled": true needs "cert_file" and "key_file", or "certificates"'],
    ['tls enabled with an empty certificates list', { tls: { enabled: true, certificates: [] } }, 'tls: "enabled": true needs "cert_file" and "key_file", or "certificates"'],
    ['tls with a misspelt key only', { tls: { enabled: true, cert_fle: 'c.pem', key_file: 'k.pem' } }, 'tls.cert_fle: unknown key (did you mean "cert_file"?)'],
    ['tls cert_file without key_file', { tls: { enabled: true, cert_file: 'a.pem' } }, 'tls.key_file: required with "cert_file"'],
    ['tls key_file without cert_file', { tls: { key_file: 'a.key' } }, 'tls.cert_file: required with "key_file"'],
    ['tls cert_file empty', { tls: { cert_file: '', key_file: 'k.pem' } }, 'tls.cert_file: expected a non-empty string, got ""'],
    ['SNI entry without server_names', { tls: { enabled: true, certificates: [{ cert_file: 'c.pem', key_file: 'k.pem' }] } }, 'tls.certificates[0].server_names: required'],
    ['SNI server name invalid', { tls: { certificates: [{ server_names: ['a b'], cert_file: 'c', key_file: 'k' }] } }, 'tls.certificates[0].server_names[0]: expected a host name like "api.example.com" or "*.example.com", got "a b"'],

    // admin
    ['admin false', { admin: false }, 'admin: expected null or an object {host, port, token}, got false'],
    ['admin port as a string', { admin: { port: '9901' } }, 'admin.port: expected an integer from 0 to 65535, got "9901"'],
    ['admin token empty', { admin: { token: '' } }, 'admin.token: expected a non-empty string, got ""'],
    ['admin on the proxy port', { port: 9000, admin: { host: '0.0.0.0', port: 9000 } }, "admin.port: 9000 is already the proxy's port (0.0.0.0:9000)"],

    // unknown keys, with and without a suggestion
    ['a misspelt top-level key', { prot: 80 }, 'prot: unknown key (did you mean "port"?)'],
    ['a truncated key', { thread: 4 }, 'thread: unknown key (did you mean "thread_count"?)'],
    ['a key far from any', { colour: 'blue' }, 'colour: unknown key'],
    ['a misspelt route key', { routes: [{ pathh: '/', upstream: 'http://a' }] }, 'routes[0].pathh: unknown key (did you mean "path"?)'],
    ['a misspelt upstream key on a route', { routes: [{ path: '/', upstreams: 'http://a' }] }, 'routes[0].upstreams: unknown key (did you mean "upstream"?)'],
    ['a key with spaces', { 'max body': 1 }, 'config["max body"]: unknown key'],

    // routes
    ['routes not an array', { routes: {} }, 'routes: expected an array, got an object'],
    ['a route that is a string', { routes: ['/api'] }, 'routes[0]: expected an object, got "/api"'],
    ['route without path', { routes: [{ upstream: 'http://a' }] }, 'routes[0].path: required (a path starting with "/")'],
    ['path not starting with /', withRoute({ path: 'api' }), 'routes[0].path: must start with "/", got "api"'],
    ['path as a number', withRoute({ path: 5 }), 'routes[0].path: expected a string starting with "/", got 5'],
    ['* in the middle', withRoute({ path: '/a/*/b' }), 'routes[0].path: "*" is only allowed as the whole last segment, got "/a/*/b"'],
    ['* inside a segment', withRoute({ path: '/static*' }), 'routes[0].path: "*" is only allowed as the whole last segment, got "/static*"'],
    ['empty parameter name', withRoute({ path: '/users/:' }), 'routes[0].path: invalid parameter ":" (use ":" and a name of letters, digits and _), got "/users/:"'],
    ['parameter starting with a digit', withRoute({ path: '/users/:1d' }), 'routes[0].path: invalid parameter ":1d" (use ":" and a name of letters, digits and _), got "/users/:1d"'],
    ['the same parameter twice', withRoute({ path: '/a/:id/b/:id' }), 'routes[0].path: captures ":id" twice'],
    ['an empty segment', withRoute({ path: '/a//b' }), 'routes[0].path: must not contain an empty segment ("//"), got "/a//b"'],
    ['a query in the path', withRoute({ path: '/a?b=1' }), 'routes[0].path: must not contain "?", got "/a?b=1"'],
    ['a dot-segment in the path', withRoute({ path: '/a/../b' }), 'routes[0].path: segment ".." can never match (requests are routed on normalised paths: README "Routing"), got "/a/../b"'],
    ['an escaped dot-segment in the path', withRoute({ path: '/a/%2e' }), 'routes[0].path: segment "%2e" can never match (requests are routed on normalised paths: README "Routing"), got "/a/%2e"'],
    ['a malformed escape in the path', withRoute({ path: '/a%zz' }), 'routes[0].path: segment "a%zz" can never match (requests are routed on normalised paths: README "Routing"), got "/a%zz"'],
    ['neither upstream nor respond', { routes: [{ path: '/' }] }, 'routes[0]: needs "upstream" (where to proxy) or "respond" (a direct response)'],
    ['both upstream and respond', withRoute({ respond: { status: 204 } }), 'routes[0]: has both "upstream" and "respond"; keep one'],
    ['methods empty', withRoute({ methods: [] }), 'routes[0].methods: expected at least one method (leave "methods" out to allow every method)'],
    ['method with a space', withRoute({ methods: ['GE T'] }), 'routes[0].methods[0]: expected an HTTP method name like "GET", got "GE T"'],
    ['methods duplicated across case', withRoute({ methods: ['get', 'GET'] }), 'routes[0].methods[1]: duplicate of [0]'],
    ['host with a space', withRoute({ host: 'a b' }), 'routes[0].host: expected a host name like "api.example.com" or "*.example.com", got "a b"'],
    ['host with a port', withRoute({ host: 'api.example.com:8080' }), 'routes[0].host: must not include a port (it is ignored when matching), got "api.example.com:8080"'],
    ['header match value not a string', withRoute({ headers: { 'x-version': 2 } }), 'routes[0].headers["x-version"]: expected a string, got 2'],
    ['header match name invalid', withRoute({ headers: { 'bad name': 'x' } }), 'routes[0].headers["bad name"]: invalid header name'],
    ['strip_prefix as a string', withRoute({ strip_prefix: 'yes' }), 'routes[0].strip_prefix: expected true or false, got "yes"'],
    ['rewrite without leading /', withRoute({ rewrite: 'v2' }), 'routes[0].rewrite: must start with "/", got "v2"'],
    ['rewrite using an unknown parameter', withRoute({ path: '/u/:id', rewrite: '/users/:user' }), 'routes[0].rewrite: uses ":user", which "path" does not capture'],
    ['rewrite using * the path lacks', withRoute({ path: '/u', rewrite: '/users/*' }), 'routes[0].rewrite: uses "*", which "path" does not capture'],
    ['rewrite with strip_prefix', withRoute({ path: '/u', rewrite: '/users', strip_prefix: true }), 'routes[0].rewrite: cannot be combined with "strip_prefix": true (the rewrite already sets the whole path)'],
    ['timeout_ms 0', withRoute({ timeout_ms: 0 }), 'routes[0].timeout_ms: expected an integer from 1 to 2147483647, got 0'],
    ['retries too many', withRoute({ retries: 11 }), 'routes[0].retries: expected an integer from 0 to 10, got 11'],
    ['preserve_host as a number', withRoute({ preserve_host: 1 }), 'routes[0].preserve_host: expected true or false, got 1'],
    ['route middlewares not an array', withRoute({ middlewares: {} }), 'routes[0].middlewares: expected an array, got an object'],

    // respond
    ['respond status out of range', { routes: [{ path: '/', respond: { status: 700 } }] }, 'routes[0].respond.status: expected an integer from 100 to 599, got 700'],
    ['respond body an object', { routes: [{ path: '/', respond: { body: { a: 1 } } }] }, 'routes[0].respond.body: expected a string, got an object'],
    ['respond header value with a newline', { routes: [{ path: '/', respond: { headers: { 'x-a': 'a\r\nb: c' } } }] }, 'routes[0].respond.headers["x-a"]: must not contain CR, LF or NUL'],
    ['respond as a string', { routes: [{ path: '/', respond: 'ok' }] }, 'routes[0].respond: expected an object {status, headers, body}, got "ok"'],
    ['respond with a misspelt key', { routes: [{ path: '/', respond: { stauts: 200 } }] }, 'routes[0].respond.stauts: unknown key (did you mean "status"?)'],

    // upstream forms and URLs
    ['upstream a number', withUpstream(42), 'routes[0].upstream: expected a URL string, an array of URL strings or an object {targets, load_balancing, ...}, got 42'],
    ['upstream without scheme', withUpstream('localhost:3000'), 'routes[0].upstream: expected a URL like "http://127.0.0.1:3000", got "localhost:3000"'],
    ['upstream with ftp', withUpstream('ftp://files.local'), 'routes[0].upstream: unsupported scheme "ftp://" (use http://, https://, h2c:// or h2://)'],
    ['upstream h2c without host', withUpstream('h2c:///x'), 'routes[0].upstream: expected a host after "h2c://", got "h2c:///x"'],
    ['upstream h2 without host', withUpstream('h2:///x'), 'routes[0].upstream: expected a host after "h2://", got "h2:///x"'],
    ['upstream h2 with a path', withUpstream('h2://grpc:8443/svc'), 'routes[0].upstream: must not have a path ("/svc"); use the route\'s "rewrite" or "strip_prefix"'],
    ['upstream with a path', withUpstream('http://a:3000/api'), 'routes[0].upstream: must not have a path ("/api"); use the route\'s "rewrite" or "strip_prefix"'],
    ['upstream with a query', withUpstream('http://a:3000/?x=1'), 'routes[0].upstream: must not have a query ("?x=1")'],
    ['upstream with a fragment', withUpstream('http://a:3000#top'), 'routes[0].upstream: must not have a fragment ("#top")'],
    ['upstream with credentials', withUpstream('http://user:secret@a:3000'), 'routes[0].upstream: must not contain user:password@ (set an Authorization header with the headers middleware)'],
    ['upstream array empty', withUpstream([]), 'routes[0].upstream: expected at least one URL'],
    ['upstream array with a bad entry', withUpstream(['http://a', 5]), 'routes[0].upstream[1]: expected a URL like "http://127.0.0.1:3000", got 5'],
    ['upstream array mixing HTTP/2 and HTTP/1.1', withUpstream(['http://a', 'h2c://b']), 'routes[0].upstream: mixes HTTP/2 targets (h2c://, h2://) with HTTP/1.1 ones (http://, https://); use one kind per upstream'],
    ['upstream targets mixing HTTP/2 and HTTP/1.1', withUpstream({ targets: [{ url: 'h2://a' }, { url: 'https://b' }] }), 'routes[0].upstream.targets: mixes HTTP/2 targets (h2c://, h2://) with HTTP/1.1 ones (http://, https://); use one kind per upstream'],
    ['upstream array duplicated (after normalising)', withUpstream(['http://a:80', 'HTTP://A/']), 'routes[0].upstream[1]: duplicate of [0]'],
    ['upstream h2 array duplicated (after normalising)', withUpstream(['h2://a:443', 'H2://A/']), 'routes[0].upstream[1]: duplicate of [0]'],
    ['upstream object without targets', withUpstream({}), 'routes[0].upstream.targets: required'],
    ['upstream targets empty', withUpstream({ targets: [] }), 'routes[0].upstream.targets: expected at least one target'],
    ['a target given as a string', withUpstream({ targets: ['http://a'] }), 'routes[0].upstream.targets[0]: expected an object {url, weight}, got "http://a"'],
    ['a target without url', withUpstream({ targets: [{ weight: 2 }] }), 'routes[0].upstream.targets[0].url: required'],
    ['weight 0', withUpstream({ targets: [{ url: 'http://a' }, { url: 'http://b', weight: 0 }] }), 'routes[0].upstream.targets[1].weight: expected an integer from 1 to 1000, got 0'],
    ['weight fractional', withUpstream({ targets: [{ url: 'http://a', weight: 1.5 }] }), 'routes[0].upstream.targets[0].weight: expected an integer from 1 to 1000, got 1.5'],
    ['targets duplicated', withUpstream({ targets: [{ url: 'http://a' }, { url: 'http://a', weight: 2 }] }), 'routes[0].upstream.targets[1]: duplicate of [0]'],
    ['load_balancing unknown', withUpstream({ targets: [{ url: 'http://a' }], load_balancing: 'fastest' }), 'routes[0].upstream.load_balancing: expected one of "round_robin", "least_connections", "random", "ip_hash", "consistent_hash", got "fastest"'],
    ['load_balancing misspelt key', withUpstream({ targets: [{ url: 'http://a' }], loadbalancing: 'random' }), 'routes[0].upstream.loadbalancing: unknown key (did you mean "load_balancing"?)'],
    ['consistent_hash without hash_key', withUpstream({ targets: [{ url: 'http://a' }], load_balancing: 'consistent_hash' }), 'routes[0].upstream.hash_key: required with load_balancing "consistent_hash" ("header:NAME" or "cookie:NAME")'],
    ['hash_key malformed', withUpstream({ targets: [{ url: 'http://a' }], load_balancing: 'consistent_hash', hash_key: 'ip' }), 'routes[0].upstream.hash_key: expected "header:NAME" or "cookie:NAME", got "ip"'],
    ['hash_key without consistent_hash', withUpstream({ targets: [{ url: 'http://a' }], hash_key: 'header:x-user' }), 'routes[0].upstream.hash_key: only used with load_balancing "consistent_hash", not "round_robin"'],
    ['max_fails negative', withUpstream({ targets: [{ url: 'http://a' }], max_fails: -1 }), 'routes[0].upstream.max_fails: expected an integer from 0 to 1000, got -1'],
    ['fail_timeout_ms 0', withUpstream({ targets: [{ url: 'http://a' }], fail_timeout_ms: 0 }), 'routes[0].upstream.fail_timeout_ms: expected an integer from 1 to 2147483647, got 0'],
    ['keepalive_timeout_ms a string', withUpstream({ targets: [{ url: 'http://a' }], keepalive_timeout_ms: '4s' }), 'routes[0].upstream.keepalive_timeout_ms: expected an integer from 0 to 2147483647, got "4s"'],
    ['tls_verify a string', withUpstream({ targets: [{ url: 'https://a' }], tls_verify: 'no' }), 'routes[0].upstream.tls_verify: expected true or false, got "no"'],
    ['ca_file empty', withUpstream({ targets: [{ url: 'https://a' }], ca_file: '' }), 'routes[0].upstream.ca_file: expected a non-empty string, got ""'],

    // health checks
    ['health_check a boolean', withUpstream({ targets: [{ url: 'http://a' }], health_check: true }), 'routes[0].upstream.health_check: expected an object, got true'],
    ['health_check path without /', withUpstream({ targets: [{ url: 'http://a' }], health_check: { path: 'health' } }), 'routes[0].upstream.health_check.path: expected a path starting with "/", got "health"'],
    ['health_check timeout not below interval', withUpstream({ targets: [{ url: 'http://a' }], health_check: { interval_ms: 1000 } }), 'routes[0].upstream.health_check.timeout_ms: must be less than interval_ms (1000), got 2000'],
    ['health_check status out of range', withUpstream({ targets: [{ url: 'http://a' }], health_check: { expected_status: 99 } }), 'routes[0].upstream.health_check.expected_status: expected an integer from 100 to 599, got 99'],
    ['health_check threshold 0', withUpstream({ targets: [{ url: 'http://a' }], health_check: { healthy_threshold: 0 } }), 'routes[0].upstream.health_check.healthy_threshold: expected an integer from 1 to 100, got 0'],
    ['health_check misspelt key', withUpstream({ targets: [{ url: 'http://a' }], health_check: { intervl_ms: 1 } }), 'routes[0].upstream.health_check.intervl_ms: unknown key (did you mean "interval_ms"?)'],

    // middleware entries
    ['middlewares not an array', { middlewares: 'cors' }, 'middlewares: expected an array, got "cors"'],
    ['a middleware given as a string', { middlewares: ['cors'] }, 'middlewares[0]: expected an object {type, config}, got "cors"'],
    ['a middleware without type', { middlewares: [{ config: {} }] }, 'middlewares[0].type: required'],
    ['an unknown middleware type', withMiddleware('waf'), 'middlewares[0].type: expected one of "rate_limit", "cors", "auth", "jwt", "cache", "headers", "module", got "waf"'],
    ['middleware config not an object', withMiddleware('cache', []), 'middlewares[0].config: expected an object, got an array'],
    ['per-route middleware problem', withRoute({ middlewares: [{ type: 'cache', config: { ttl_seconds: 0 } }] }), 'routes[0].middlewares[0].config.ttl_seconds: expected an integer from 1 to 31536000, got 0'],

    // rate_limit
    ['rate_limit without requests_per_minute', withMiddleware('rate_limit'), 'middlewares[0].config.requests_per_minute: required'],
    ['rate_limit requests_per_minute 0', withMiddleware('rate_limit', { requests_per_minute: 0 }), 'middlewares[0].config.requests_per_minute: expected an integer from 1 to 6000000, got 0'],
    ['rate_limit misspelt key', withMiddleware('rate_limit', { request_per_minute: 10 }), 'middlewares[0].config.request_per_minute: unknown key (did you mean "requests_per_minute"?)'],
    ['rate_limit burst 0', withMiddleware('rate_limit', { requests_per_minute: 10, burst: 0 }), 'middlewares[0].config.burst: expected an integer from 1 to 1000000000, got 0'],
    ['rate_limit key unknown', withMiddleware('rate_limit', { requests_per_minute: 10, key: 'user' }), 'middlewares[0].config.key: expected "ip" or "header:NAME", got "user"'],
    ['rate_limit header key without a name', withMiddleware('rate_limit', { requests_per_minute: 10, key: 'header:' }), 'middlewares[0].config.key: expected "ip" or "header:NAME", got "header:"'],
    ['rate_limit store unknown', withMiddleware('rate_limit', { requests_per_minute: 10, store: 'mongo' }), 'middlewares[0].config.store: expected one of "memory", "redis", got "mongo"'],
    ['rate_limit redis without redis_url', withMiddleware('rate_limit', { requests_per_minute: 10, store: 'redis' }), 'middlewares[0].config.redis_url: required with store "redis"'],
    ['rate_limit redis_url with the memory store', withMiddleware('rate_limit', { requests_per_minute: 10, redis_url: 'redis://r:6379' }), 'middlewares[0].config.redis_url: only used with store "redis"'],
    ['rate_limit redis_url not redis', withMiddleware('rate_limit', { requests_per_minute: 10, store: 'redis', redis_url: 'http://r:6379' }), 'middlewares[0].config.redis_url: unsupported scheme "http://" (use redis:// or rediss://)'],

    // cors
    ['cors origins as a string', withMiddleware('cors', { allowed_origins: '*' }), 'middlewares[0].config.allowed_origins: expected an array, got "*"'],
    ['cors origins empty', withMiddleware('cors', { allowed_origins: [] }), 'middlewares[0].config.allowed_origins: expected a non-empty array'],
    ['cors origin with a trailing slash', withMiddleware('cors', { allowed_origins: ['https://app.example.com/'] }), 'middlewares[0].config.allowed_origins[0]: expected "*" or an origin like "https://app.example.com" (no path or trailing "/"), got "https://app.example.com/"'],
    ['cors credentials with any origin', withMiddleware('cors', { allow_credentials: true }), 'middlewares[0].config.allow_credentials: cannot be true while allowed_origins contains "*" (browsers reject it); list the origins'],
    ['cors method invalid', withMiddleware('cors', { allowed_methods: ['GET POST'] }), 'middlewares[0].config.allowed_methods[0]: expected an HTTP method name like "GET", got "GET POST"'],
    ['cors allowed header invalid', withMiddleware('cors', { allowed_headers: ['x y'] }), 'middlewares[0].config.allowed_headers[0]: expected a header name, got "x y"'],
    ['cors exposed headers duplicated', withMiddleware('cors', { exposed_headers: ['X-Id', 'x-id'] }), 'middlewares[0].config.exposed_headers[1]: duplicate of [0]'],
    ['cors max_age negative', withMiddleware('cors', { max_age: -1 }), 'middlewares[0].config.max_age: expected null or an integer from 0 to 86400, got -1'],

    // auth
    ['auth without api_keys', withMiddleware('auth', {}), 'middlewares[0].config.api_keys: required'],
    ['auth api_keys empty', withMiddleware('auth', { api_keys: [] }), 'middlewares[0].config.api_keys: expected a non-empty array'],
    ['auth api key empty', withMiddleware('auth', { api_keys: [''] }), 'middlewares[0].config.api_keys[0]: expected a non-empty string, got ""'],
    ['auth api keys duplicated (not echoed)', withMiddleware('auth', { api_keys: ['k-secret', 'k-secret'] }), 'middlewares[0].config.api_keys[1]: duplicate of [0]'],
    ['auth header_name invalid', withMiddleware('auth', { api_keys: ['k'], header_name: 'X API Key' }), 'middlewares[0].config.header_name: expected a header name, got "X API Key"'],

    // jwt
    ['jwt without a key source', withMiddleware('jwt', {}), 'middlewares[0].config: needs one of "secret", "public_key_file", "jwks_url"'],
    ['jwt with two key sources', withMiddleware('jwt', { secret: 's', public_key_file: 'k.pem' }), 'middlewares[0].config: use only one of "secret", "public_key_file", "jwks_url" (got "secret" and "public_key_file")'],
    ['jwt algorithm none', withMiddleware('jwt', { secret: 's', algorithms: ['none'] }), 'middlewares[0].config.algorithms[0]: expected one of "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", got "none"'],
    ['jwt HMAC algorithm with a JWKS', withMiddleware('jwt', { jwks_url: 'https://idp/jwks', algorithms: ['RS256', 'HS256'] }), 'middlewares[0].config.algorithms[1]: "HS256" needs "secret", not "jwks_url"'],
    ['jwt RSA algorithm with a secret', withMiddleware('jwt', { secret: 's', algorithms: ['RS256'] }), 'middlewares[0].config.algorithms[0]: "RS256" needs "public_key_file" or "jwks_url", not "secret"'],
    ['jwt JWKS over plain http', withMiddleware('jwt', { jwks_url: 'http://idp.example.com/jwks' }), 'middlewares[0].config.jwks_url: unsupported scheme "http://" (use https://; http:// only for localhost)'],
    ['jwt audience a number', withMiddleware('jwt', { secret: 's', audience: 5 }), 'middlewares[0].config.audience: expected a non-empty string or array of non-empty strings, got 5'],
    ['jwt issuer empty', withMiddleware('jwt', { secret: 's', issuer: '' }), 'middlewares[0].config.issuer: expected a non-empty string, got ""'],

    // cache
    ['cache ttl 0', withMiddleware('cache', { ttl_seconds: 0 }), 'middlewares[0].config.ttl_seconds: expected an integer from 1 to 31536000, got 0'],
    ['cache max_bytes 0', withMiddleware('cache', { max_bytes: 0 }), 'middlewares[0].config.max_bytes: expected an integer of at least 1, got 0'],

    // headers
    ['headers set value not a string', withMiddleware('headers', { request: { set: { 'x-a': 1 } } }), 'middlewares[0].config.request.set["x-a"]: expected a string, got 1'],
    ['headers remove not an array', withMiddleware('headers', { response: { remove: 'server' } }), 'middlewares[0].config.response.remove: expected an array, got "server"'],
    ['headers misspelt side', withMiddleware('headers', { requests: {} }), 'middlewares[0].config.requests: unknown key (did you mean "request"?)'],
    ['headers edits misspelt', withMiddleware('headers', { response: { delete: ['server'] } }), 'middlewares[0].config.response.delete: unknown key'],

    // module
    ['module without path', withMiddleware('module', { level: 1 }), 'middlewares[0].config.path: required'],
    ['module config with a function', { middlewares: [{ type: 'module', config: { path: './m.js', hook: () => 1 } }] }, 'middlewares[0].config.hook: expected a JSON value, got a function'],
  ];

  test.each(cases)('%s', (_name, input, message) => {
    expect(errorsOf(input)).toEqual([message]);
  });
});

describe('reporting', () => {
  test('every problem is reported, in document order, not only the first', () => {
    const errors = errorsOf({
      port: '80',
      thread_count: 0,
      routes: [
        { path: '/ok', upstream: 'http://a' },
        { path: '/a', upstream: { targets: [{ url: 'http://a', weight: 0 }] }, retries: -1 },
        { path: 'b' },
      ],
      middlewares: [{ type: 'rate_limit', config: {} }],
    });
    expect(errors).toEqual([
      'port: expected an integer from 0 to 65535, got "80"',
      'thread_count: expected "auto" or an integer from 1 to 1024, got 0',
      'routes[1].upstream.targets[0].weight: expected an integer from 1 to 1000, got 0',
      'routes[1].retries: expected an integer from 0 to 10, got -1',
      'routes[2].path: must start with "/", got "b"',
      'routes[2]: needs "upstream" (where to proxy) or "respond" (a direct response)',
      'middlewares[0].config.requests_per_minute: required',
    ]);
  });

  test('one URL with several faults gets one message per fault', () => {
    expect(errorsOf(withUpstream('http://a/x?y=1#z'))).toEqual([
      'routes[0].upstream: must not have a path ("/x"); use the route\'s "rewrite" or "strip_prefix"',
      'routes[0].upstream: must not have a query ("?y=1")',
      'routes[0].upstream: must not have a fragment ("#z")',
    ]);
  });

  test('loadConfig throws a ConfigError carrying every message', () => {
    let thrown: unknown;
    try {
      loadConfig({ port: -1, prot: 1 });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const error = thrown as ConfigError;
    expect(error.code).toBe('ZP_ERR_CONFIG');
    expect(error.errors).toEqual(['prot: unknown key (did you mean "port"?)', 'port: expected an integer from 0 to 65535, got -1']);
    expect(error.message).toBe('invalid config:\n  prot: unknown key (did you mean "port"?)\n  port: expected an integer from 0 to 65535, got -1');
  });
});

describe('normalisation', () => {
  test('an empty config gets every default', () => {
    expect(valid({})).toEqual({
      host: '0.0.0.0',
      port: 8000,
      thread_count: 'auto',
      backlog: 128,
      max_connections: 1000,
      connection_timeout_ms: 30000,
      client_body_timeout_ms: 30000,
      send_timeout_ms: 30000,
      numa_aware: true,
      protocols: ['http1', 'http2', 'websocket'],
      tls: { enabled: false, certificates: [] },
      routes: [],
      middlewares: [],
      admin: { host: '127.0.0.1', port: 9901 },
      max_header_bytes: 65536,
      max_body_bytes: null,
      drain_timeout_ms: 30000,
      upstream_connect_timeout_ms: 5000,
      websocket_idle_timeout_ms: 300000,
      max_concurrent_streams: 100,
      trusted_proxies: [],
      log_level: 'info',
    });
  });

  test('a route gets its defaults; methods absent means all', () => {
    const [route] = valid(withRoute({})).routes;
    expect(route).toEqual({
      path: '/',
      upstream: {
        targets: [{ url: 'http://127.0.0.1:3000', weight: 1 }],
        load_balancing: 'round_robin',
        max_fails: 3,
        fail_timeout_ms: 10000,
        keepalive_timeout_ms: 4000,
        max_connections: 1024,
        tls_verify: true,
      },
      strip_prefix: false,
      timeout_ms: 60000,
      retries: 1,
      preserve_host: true,
      middlewares: [],
    });
    expect('methods' in route).toBe(false);
    expect('respond' in route).toBe(false);
  });

  test('an upstream array becomes the object form with weight 1 each', () => {
    const { upstream } = valid(withUpstream(['http://a:3000', 'https://b'])).routes[0];
    expect(upstream!.targets).toEqual([
      { url: 'http://a:3000', weight: 1 },
      { url: 'https://b', weight: 1 },
    ]);
    expect(upstream!.load_balancing).toBe('round_robin');
    const http2 = valid(withUpstream(['h2c://grpc:50051', 'h2://grpc:8443'])).routes[0].upstream!;
    expect(http2.targets.map((t) => t.url)).toEqual(['h2c://grpc:50051', 'h2://grpc:8443']);
  });

  test('target URLs are normalised to scheme://host[:port]', () => {
    const http1 = valid(withUpstream(['HTTP://Api.Example.COM:80/', 'https://[::1]:8443'])).routes[0].upstream!;
    expect(http1.targets.map((t) => t.url)).toEqual(['http://api.example.com', 'https://[::1]:8443']);
    const http2 = valid(withUpstream(['h2c://GRPC:50051', 'H2://GRPC.Example:8443/', 'h2c://a:80', 'h2://[::1]:443'])).routes[0].upstream!;
    expect(http2.targets.map((t) => t.url)).toEqual(['h2c://grpc:50051', 'h2://grpc.example:8443', 'h2c://a', 'h2://[::1]']);
  });

  test('the object form keeps weights and fills the rest', () => {
    const { upstream } = valid(
      withUpstream({
        targets: [{ url: 'http://a', weight: 5 }, { url: 'http://b' }],
        load_balancing: 'consistent_hash',
        hash_key: 'header:X-User',
        health_check: { path: '/healthz' },
      }),
    ).routes[0];
    expect(upstream).toEqual({
      targets: [
        { url: 'http://a', weight: 5 },
        { url: 'http://b', weight: 1 },
      ],
      load_balancing: 'consistent_hash',
      hash_key: 'header:X-User',
      health_check: { interval_ms: 5000, path: '/healthz', timeout_ms: 2000, expected_status: 200, healthy_threshold: 2, unhealthy_threshold: 3 },
      max_fails: 3,
      fail_timeout_ms: 10000,
      keepalive_timeout_ms: 4000,
      max_connections: 1024,
      tls_verify: true,
    });
  });

  test('health checks may be switched off with interval_ms 0', () => {
    const { upstream } = valid(withUpstream({ targets: [{ url: 'http://a' }], health_check: { interval_ms: 0 } })).routes[0];
    expect(upstream!.health_check!.interval_ms).toBe(0);
  });

  test('methods are upper-cased, host and header-match names lower-cased', () => {
    const [route] = valid(withRoute({ methods: ['get', 'Post'], host: '*.Example.COM', headers: { 'X-Version': '2' } })).routes;
    expect(route.methods).toEqual(['GET', 'POST']);
    expect(route.host).toBe('*.example.com');
    expect(route.headers).toEqual({ 'x-version': '2' });
  });

  test('"localhost" listens on 127.0.0.1; IPv6 addresses are kept', () => {
    const config = valid({ host: 'localhost', admin: { host: '::1' } });
    expect(config.host).toBe('127.0.0.1');
    expect(config.admin).toEqual({ host: '::1', port: 9901 });
    expect(valid({ admin: null }).admin).toBeNull();
  });

  test('a direct response gets status 200, no headers and an empty body by default', () => {
    expect(valid({ routes: [{ path: '/', respond: {} }] }).routes[0].respond).toEqual({ status: 200, headers: {}, body: '' });
  });

  test('middleware configs get their defaults', () => {
    const config = valid({
      middlewares: [
        { type: 'rate_limit', config: { requests_per_minute: 120 } },
        { type: 'cors' },
        { type: 'auth', config: { api_keys: ['k1'] } },
        { type: 'jwt', config: { secret: 's3cret' } },
        { type: 'jwt', config: { public_key_file: '/keys/pub.pem', audience: 'api' } },
        { type: 'cache' },
        { type: 'headers', config: { response: { remove: ['Server'] } } },
        { type: 'module', config: { path: 'my-middleware', level: 'full', nested: { a: [1] } } },
      ],
    });
    expect(config.middlewares.map((m) => m.config)).toEqual([
      { requests_per_minute: 120, burst: 120, key: 'ip', store: 'memory', max_keys: 65536 },
      {
        allowed_origins: ['*'],
        allowed_methods: ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE'],
        allowed_headers: ['*'],
        exposed_headers: [],
        allow_credentials: false,
        max_age: 600,
      },
      { api_keys: ['k1'], header_name: 'X-API-Key' },
      { secret: 's3cret', algorithms: ['HS256'] },
      { public_key_file: '/keys/pub.pem', algorithms: ['RS256'], audience: ['api'] },
      { ttl_seconds: 60, max_bytes: 67108864 },
      { request: { set: {}, remove: [] }, response: { set: {}, remove: ['server'] } },
      { path: 'my-middleware', level: 'full', nested: { a: [1] } },
    ]);
  });

  test('JWKS over http is allowed for a loopback identity provider', () => {
    expect(errorsOf(withMiddleware('jwt', { jwks_url: 'http://127.0.0.1:8080/jwks' }))).toEqual([]);
  });

  test('relative file names follow baseDir; absolute ones and package names do not', () => {
    const result = validateConfig(
      {
        tls: { enabled: true, cert_file: 'tls/cert.pem', key_file: '/abs/key.pem' },
        middlewares: [
          { type: 'module', config: { path: './mw/audit.js' } },
          { type: 'module', config: { path: 'zproxy-plugin' } },
        ],
      },
      { baseDir: '/etc/zproxy' },
    );
    if ('errors' in result) throw new Error(result.errors.join('\n'));
    expect(result.config.tls.cert_file).toBe('/etc/zproxy/tls/cert.pem');
    expect(result.config.tls.key_file).toBe('/abs/key.pem');
    expect(result.config.middlewares.map((m) => m.config.path)).toEqual(['/etc/zproxy/mw/audit.js', 'zproxy-plugin']);
  });

  test('the result is deeply frozen and the input left untouched', () => {
    const input = withUpstream({ targets: [{ url: 'http://a' }] });
    const snapshot = JSON.parse(JSON.stringify(input));
    const config = valid(input);
    expect(input).toEqual(snapshot);
    expect(Object.isFrozen(input.routes[0])).toBe(false);
    for (const part of [config, config.routes, config.routes[0], config.routes[0].upstream, config.routes[0].upstream!.targets[0], config.protocols, config.admin, config.tls]) {
      expect(Object.isFrozen(part)).toBe(true);
    }
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => config.routes[0].upstream!.targets.push({ url: 'http://b', weight: 1 })).toThrow(TypeError);
  });

  test('a validated config validates again to the same value (reload, CLI overrides)', () => {
    const config = valid(JSON.parse(readFileSync(path.join(ROOT, 'config/examples/api-gateway.json'), 'utf8')));
    expect(valid(JSON.parse(JSON.stringify(config)))).toEqual(config);
    expect(valid({ ...config, port: 9000 }).port).toBe(9000);
  });
});

describe('shipped configs', () => {
  test('the embedded default is valid and answers "/" with a welcome JSON', () => {
    const file = defaultConfigPath();
    expect(path.isAbsolute(file)).toBe(true);
    expect(file).toBe(path.join(ROOT, 'config', 'zproxy.json'));
    const config = readConfigFile(file);
    expect(config.port).toBe(8000);
    expect(config.admin).toEqual({ host: '127.0.0.1', port: 9901 });
    const [route] = config.routes;
    expect(route.path).toBe('/');
    expect(route.respond!.status).toBe(200);
    expect(route.respond!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(route.respond!.body)).toMatchObject({ name: 'zproxy', status: 'ok' });
  });

  const examples = readdirSync(path.join(ROOT, 'config/examples')).filter((name) => name.endsWith('.json'));

  test('there are examples to check', () => {
    expect(examples.length).toBeGreaterThanOrEqual(2);
  });

  test.each(examples)('config/examples/%s is valid, and refused only for middleware this build does not enforce', (name) => {
    const file = path.join(ROOT, 'config/examples', name);
    const config = valid(JSON.parse(readFileSync(file, 'utf8')));
    const refused = unenforced(config);
    if (refused.length === 0) expect(() => readConfigFile(file)).not.toThrow();
    else expect(() => readConfigFile(file)).toThrow(new ConfigError(refused, file));
  });

  test('a middleware this build does not enforce is refused by every entry point, never run (fail closed)', () => {
    const config = { routes: [{ path: '/', upstream: 'http://127.0.0.1:1', middlewares: [{ type: 'jwt', config: { secret: 'x'.repeat(32) } }] }] };
    const shape = validateConfig(config);
    expect('config' in shape).toBe(true);
    const missing = [...['rate_limit', 'cors', 'auth', 'jwt', 'cache', 'headers', 'module']].filter((type) => !ENFORCED_MIDDLEWARE.has(type));
    if (missing.includes('jwt')) {
      expect(() => loadConfig(config)).toThrow(/routes\[0\]\.middlewares\[0\]\.type: middleware "jwt" is not enforced/);
      expect(() => createProxy(config)).toThrow(ConfigError);
    }
  });
});

describe('reading a file', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zproxy-config-'));
  const write = (name: string, text: string): string => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const errorsReading = (file: string): readonly string[] => {
    try {
      readConfigFile(file);
    } catch (err) {
      if (err instanceof ConfigError) return err.errors;
      throw err;
    }
    return [];
  };

  test.each([
    ['a missing comma', '{\n  "port": 8000\n  "host": "0.0.0.0"\n}\n', 'invalid JSON at line 3 column 3: expected "," or "}", found "\\""'],
    ['a trailing comma', '{\n  "port": 8000,\n}\n', 'invalid JSON at line 3 column 1: trailing comma before "}"'],
    ['a value missing', '{"port": }', 'invalid JSON at line 1 column 10: expected a value, found "}"'],
    ['a comment', '{\n  // the port\n  "port": 8000\n}', 'invalid JSON at line 2 column 3: expected a property name in double quotes, found a comment (JSON has none)'],
    ['an unquoted key', '{ port: 8000 }', 'invalid JSON at line 1 column 3: expected a property name in double quotes, found "p"'],
    ['an unterminated string', '{"host": "0.0.0.0}', 'invalid JSON at line 1 column 19: unterminated string'],
    ['an empty file', '', 'invalid JSON at line 1 column 1: expected a value, found the end of the file'],
    ['text after the value', '{}\n{}', 'invalid JSON at line 2 column 1: unexpected "{" after the end of the JSON value'],
  ])('%s', (_name, text, message) => {
    const file = write('bad.json', text);
    expect(errorsReading(file)).toEqual([`${file}: ${message}`]);
  });

  test('an unreadable file says so', () => {
    const file = path.join(dir, 'missing.json');
    const [message] = errorsReading(file);
    expect(message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read: ENOENT`));
  });

  test('validation problems are reported by JSON path', () => {
    const file = write('invalid.json', JSON.stringify({ port: 'x', routes: [{ path: '/', upstream: 'http://a/api' }] }));
    expect(errorsReading(file)).toEqual([
      'port: expected an integer from 0 to 65535, got "x"',
      'routes[0].upstream: must not have a path ("/api"); use the route\'s "rewrite" or "strip_prefix"',
    ]);
  });

  test('a byte-order mark is ignored and relative files resolve against the file', () => {
    const file = write('bom.json', '\ufeff{"tls": {"cert_file": "c.pem", "key_file": "k.pem"}}');
    expect(readConfigFile(file).tls.cert_file).toBe(path.join(dir, 'c.pem'));
  });
});

test('a rewrite may place the wildcard capture anywhere, once', () => {
  const ok = validateConfig({ routes: [{ path: '/files/*', upstream: 'http://127.0.0.1:1', rewrite: '/bucket/*/raw' }] });
  expect('config' in ok).toBe(true);
  const twice = validateConfig({ routes: [{ path: '/files/*', upstream: 'http://127.0.0.1:1', rewrite: '/a/*/b/*' }] });
  expect('errors' in twice && twice.errors).toEqual(['routes[0].rewrite: may use "*" only once, got "/a/*/b/*"']);
});
