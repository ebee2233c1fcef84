/**
 * The Redis store: one limit shared by every zproxy instance that points at
 * the same Redis. Each decision is one atomic Lua script (the GCRA of
 * gcra.ts on one key, with Redis's own clock, so the instances' clocks do
 * not matter), one round trip: ioredis sends EVALSHA, and EVAL on a
 * connection that has not loaded the script yet (or answers NOSCRIPT).
 *
 * Redis being down or slow must cost a request at most `redis_timeout_ms`
 * and never the worker: commands fail at once while the connection is down
 * (no offline queue, whose stale commands would take tokens after a
 * reconnect; no retry of commands cut off by a disconnect) and time out
 * after `redis_timeout_ms` when it is up but slow; ioredis reconnects by
 * itself (backing off up to 2 s). Only while a connection is being made (at
 * start, after a reload, on a reconnect) does a request first wait for it,
 * up to `redis_timeout_ms` too, rather than fail. A failed decision is
 * counted (`failures`, for the metrics) and warned about at most every
 * 10 s; `store_failure` says whether its request is allowed or refused.
 * The URL's password never reaches a log line: the store is named by
 * scheme, host, port and database only.
 *
 * Keys: `zproxy:rate_limit:<entry path>:ip:<address>`, or `…:h:<hash>` for
 * a header value — hashed, because that value is often an API key, which
 * has no business in Redis in the clear, and because a client chooses its
 * length. A key expires when its bucket is full again.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { default as Redis, RedisOptions } from 'ioredis';
import type { Logger } from '../../util/log';
import { Decision, type Gcra } from './gcra';
import type { KeyKind, RateLimitStore } from './store';
import { OccasionalWarning } from './occasional-warning';

/**
 * gcra.ts `take`, line for line, on the TAT kept in KEYS[1] (ms since 1970,
 * as text). ARGV: interval (ms), capacity (ms), slack (ms). Returns
 * {allowed, remaining, reset ms, retry ms}, times rounded up to whole ms
 * (a script returns integers).
 */
const TAKE_SCRIPT = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local slack = tonumber(ARGV[3])
local base = tonumber(redis.call('GET', KEYS[1])) or now
if base < now then base = now end
if base > now + capacity then base = now + capacity end
local ahead = base + interval - now
if ahead > capacity + slack then
  return {0, 0, math.ceil(base - now), math.ceil(ahead - capacity)}
end
redis.call('SET', KEYS[1], string.format('%.17g', base + interval), 'PX', math.ceil(ahead))
return {1, math.floor((capacity - ahead + slack) / interval), math.ceil(ahead), 0}
`;

type TakeReply = [allowed: number, remaining: number, resetMs: number, retryMs: number];

/** The client with the script as a command (ioredis `defineCommand`). */
type ScriptedRedis = Redis & { zproxyRateLimitTake(key: string, interval: string, capacity: string, slack: string): Promise<TakeReply> };

export interface RedisStoreOptions {
  url: string;
  timeoutMs: number;
  /** Prefix of every key of this entry. */
  keyPrefix: string;
  /** What a failed decision means, for the warning (`allowed` or `refused`). */
  onFailure: 'allowed' | 'refused';
}

export class RedisStore implements RateLimitStore {
  failures = 0;
  /** Redis keeps its keys itself (they expire): none to evict here. */
  readonly evictions = 0;
  private readonly client: ScriptedRedis;
  private readonly args: [interval: string, capacity: string, slack: string];
  private readonly keyPrefix: string;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private readonly unavailable: OccasionalWarning;
  private readonly failureMessage: string;
  /** The wait for the connection being made, shared by every request that arrives meanwhile. */
  private connecting: Promise<void> | null = null;
  private closed = false;

  constructor(options: RedisStoreOptions, gcra: Gcra, log: Logger, logFields: Record<string, unknown>) {
    this.keyPrefix = options.keyPrefix;
    this.timeoutMs = options.timeoutMs;
    this.args = [String(gcra.intervalMs), String(gcra.capacityMs), String(gcra.slackMs)];
    this.log = log.child({ ...logFields, store: redactedUrl(options.url) });
    this.unavailable = new OccasionalWarning(this.log, {});
    this.failureMessage = `rate limit store unavailable: requests are ${options.onFailure} (store_failure)`;
    this.client = new (loadIoredis())({
      ...connectionOptions(options.url),
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: options.timeoutMs,
      retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
      // How long a connect to an address that does not answer may take before the next attempt.
      connectTimeout: 2_000,
      // How long a closing connection may linger before it is destroyed (ioredis waits 2 s, even for one already gone, holding a worker's exit).
      disconnectTimeout: options.timeoutMs,
    } as RedisOptions) as ScriptedRedis;
    this.client.defineCommand('zproxyRateLimitTake', { numberOfKeys: 1, lua: TAKE_SCRIPT });
    // Without a listener ioredis prints every connection error itself; they are the warning's to report.
    this.client.on('error', (err: Error) => this.unavailable.warn(`rate limit store connection failed (reconnecting): requests are ${options.onFailure} meanwhile`, { err: err.message }));
    this.client.on('ready', () => {
      if (!this.unavailable.active) return;
      this.unavailable.reset();
      this.log.info('rate limit store reachable again');
    });
  }

  take(key: string, kind: KeyKind): Promise<Decision | null> {
    const status = this.client.status;
    if (status === 'connecting' || status === 'connect') return this.connected().then(() => this.send(key, kind));
    return this.send(key, kind);
  }

  /** One decision by Redis; while not connected ioredis refuses at once (no offline queue). */
  private send(key: string, kind: KeyKind): Promise<Decision | null> {
    const [interval, capacity, slack] = this.args;
    return this.client.zproxyRateLimitTake(this.redisKey(key, kind), interval, capacity, slack).then(toDecision, (err: Error) => {
      this.failures++;
      this.unavailable.warn(this.failureMessage, { err: err.message });
      return null;
    });
  }

  /**
   * Settles once the connection being made is ready or has failed, and after
   * `redis_timeout_ms` at most: the requests of a startup, a reload or a
   * reconnect wait for it rather than fail. One wait (and one timer) for all
   * of them.
   */
  private connected(): Promise<void> {
    this.connecting ??= new Promise<void>((resolve) => {
      const client = this.client;
      const settle = () => {
        clearTimeout(timer);
        client.off('ready', settle).off('close', settle);
        this.connecting = null;
        resolve();
      };
      const timer = setTimeout(settle, this.timeoutMs);
      client.once('ready', settle).once('close', settle);
    });
    return this.connecting;
  }

  /**
   * QUIT lets the replies in flight arrive first (Redis answers it after
   * them) and ends the connection without a reconnect; a Redis that does not
   * answer it in time, or no connection at all, is cut off.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const client = this.client;
    if (client.status === 'ready') client.quit().catch(() => client.disconnect());
    else client.disconnect();
  }

  private redisKey(key: string, kind: KeyKind): string {
    if (kind === 'ip') return `${this.keyPrefix}ip:${key}`;
    return `${this.keyPrefix}h:${createHash('sha256').update(key, 'latin1').digest('base64url')}`;
  }
}

/** ioredis, loaded by the first Redis store: 35 ms per thread that every config without one would pay at startup. */
function loadIoredis(): typeof Redis {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('ioredis') as typeof import('ioredis')).default;
}

function toDecision(reply: TakeReply): Decision {
  return new Decision(reply[0] === 1, reply[1], reply[2], reply[3]);
}

/** Host, port, credentials and database from a validated `redis://` or `rediss://` URL (its query is refused by validation). */
function connectionOptions(url: string): { host: string; port: number; username?: string; password?: string; db: number; tls?: { servername?: string } } {
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  return {
    host,
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    username: parsed.username === '' ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
    db: parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0,
    // SNI for a name; the certificate is checked against the host either way (Node's trusted CAs, NODE_EXTRA_CA_CERTS).
    tls: parsed.protocol !== 'rediss:' ? undefined : isIP(host) === 0 ? { servername: host } : {},
  };
}

/** The URL as logs may show it: no user, no password. */
export function redactedUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname.length > 1 ? parsed.pathname : ''}`;
}
