/**
 * Validates a configuration once, fills every default, normalises it and
 * deep-freezes it (SPEC §3, §8, §9; docs/config-reference.md).
 *
 * Every problem is reported, not only the first, as one line
 * `<json path>: <message>`, e.g. `routes[0].upstream.targets[1].weight:
 * expected an integer from 1 to 1000, got 0`. Unknown keys are errors at
 * every level and are told the closest known key.
 *
 * This file reads the top level (listener, protocols, TLS, admin, limits)
 * and holds the public functions. The sections have their own files:
 * `checks.ts` (shared checks and the object reader), `domain-checks.ts`
 * (hosts, methods, headers, files, URLs), `validate-route.ts`,
 * `validate-upstream.ts` and `validate-middleware.ts`.
 */
import { isIP } from 'node:net';
import { ConfigError } from '../errors';
import { DEFAULT_ADMIN, DEFAULT_PROTOCOLS, TIMEOUTS_DEFAULTING_TO_CONNECTION, TLS_DEFAULTS, TOP_LEVEL_DEFAULTS } from './defaults';
import type { AdminConfig, LogLevel, MiddlewareConfig, ProtocolName, TlsCertificate, TlsConfig, ZproxyConfig } from './types';
import { loadModuleFactory } from '../middleware/module';
import { MIDDLEWARE_TYPES } from '../middleware/registry';
import {
  type Check,
  Context,
  Fields,
  NOT_EMPTY,
  NO_MAX,
  boolean,
  describe,
  duration,
  integer,
  integerOrNull,
  listOf,
  nonEmptyString,
  oneOf,
  prune,
  uniqueString,
} from './checks';
import { filePath, hostName } from './domain-checks';
import { middlewareList } from './validate-middleware';
import { route } from './validate-route';

export interface ValidateOptions {
  /**
   * Relative file paths in the config (TLS files, `ca_file`,
   * `public_key_file`, a module's `./path`) are resolved against this folder,
   * normally the config file's. Without it they are kept as written.
   */
  baseDir?: string;
}

// ---------------------------------------------------------------------------
// Top level: listener, TLS, admin, limits

const PROTOCOLS: readonly ProtocolName[] = ['http1', 'http2', 'websocket'];
const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const TOP_LEVEL_KEYS = [...Object.keys(TOP_LEVEL_DEFAULTS), 'protocols', 'tls', 'routes', 'middlewares', 'admin', 'trusted_proxies', ...TIMEOUTS_DEFAULTING_TO_CONNECTION];
const WILDCARD_ADDRESSES = ['0.0.0.0', '::'];

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
  const connectionTimeout = f.get('connection_timeout_ms', duration(1), d.connection_timeout_ms);
  const config: ZproxyConfig = {
    host: f.get('host', listenAddress, d.host),
    port: f.get('port', port, d.port),
    thread_count: f.get('thread_count', threadCount, d.thread_count),
    backlog: f.get('backlog', integer(1, 65535), d.backlog),
    max_connections: f.get('max_connections', integer(1, 10_000_000), d.max_connections),
    connection_timeout_ms: connectionTimeout,
    client_body_timeout_ms: f.get('client_body_timeout_ms', duration(1), connectionTimeout),
    send_timeout_ms: f.get('send_timeout_ms', duration(1), connectionTimeout),
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

export { ConfigError };

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

/**
 * `validateConfig`, then what this build can enforce (see `unenforced`);
 * throws a ConfigError (naming `source`, e.g. the file) listing every
 * problem. Every way a config reaches the proxy (start, reload, `validate`,
 * createProxy) goes through here.
 */
export function loadConfig(input: unknown, options: ValidateOptions & { source?: string } = {}): ZproxyConfig {
  const result = validateConfig(input, options);
  if ('errors' in result) throw new ConfigError(result.errors, options.source);
  const refused = unenforced(result.config);
  if (refused.length > 0) throw new ConfigError(refused, options.source);
  return result.config;
}

/**
 * Middleware types this build enforces. A config that uses any other is
 * refused, never run with a control that would silently do nothing (SPEC
 * §8: fail closed): its shape is checked by `validateConfig`, but starting
 * it would leave routes unprotected.
 */
export const ENFORCED_MIDDLEWARE: ReadonlySet<string> = new Set<string>(Object.keys(MIDDLEWARE_TYPES));

/**
 * One problem per middleware entry this build cannot enforce, by JSON
 * path: a type it does not implement, or a `module` that does not load.
 */
export function unenforced(config: ZproxyConfig): string[] {
  const problems: string[] = [];
  const check = (list: readonly MiddlewareConfig[], path: string) =>
    list.forEach((entry, i) => {
      if (!ENFORCED_MIDDLEWARE.has(entry.type)) problems.push(`${path}[${i}].type: middleware "${entry.type}" is not enforced by this version of zproxy; refused rather than run without it`);
      else if (entry.type === 'module') {
        try {
          loadModuleFactory((entry.config as { path: string }).path);
        } catch (err) {
          problems.push(`${path}[${i}].config.path: the module does not load: ${(err as Error).message.split('\n')[0]}`);
        }
      }
    });
  check(config.middlewares, 'middlewares');
  config.routes.forEach((route, i) => check(route.middlewares, `routes[${i}].middlewares`));
  return problems;
}
