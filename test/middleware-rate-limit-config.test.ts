/**
 * `rate_limit`'s config: defaults per store, keys that belong to the other
 * store refused, the Redis URL's shape — and no problem message ever
 * echoes a Redis URL, which may hold a password. The type is enforced:
 * configs with it start.
 */
import { ENFORCED_MIDDLEWARE, validateConfig } from '../dist/config/validate';

const withRateLimit = (config: Record<string, unknown>) => ({ middlewares: [{ type: 'rate_limit', config }] });

function errorsOf(config: Record<string, unknown>): readonly string[] {
  const result = validateConfig(withRateLimit(config));
  return 'errors' in result ? result.errors : [];
}

function validated(config: Record<string, unknown>): Record<string, unknown> {
  const result = validateConfig(withRateLimit(config));
  if ('errors' in result) throw new Error(result.errors.join('\n'));
  return result.config.middlewares[0].config;
}

test('rate_limit is enforced by this build', () => {
  expect(ENFORCED_MIDDLEWARE.has('rate_limit')).toBe(true);
});

test('each store gets its own defaults', () => {
  expect(validated({ requests_per_minute: 60 })).toEqual({ requests_per_minute: 60, burst: 60, key: 'ip', store: 'memory', max_keys: 65536 });
  expect(validated({ requests_per_minute: 60, burst: 5, key: 'header:X-API-Key', store: 'redis', redis_url: 'rediss://:pw@redis.example.com:6380/2' })).toEqual({
    requests_per_minute: 60,
    burst: 5,
    key: 'header:X-API-Key',
    store: 'redis',
    redis_url: 'rediss://:pw@redis.example.com:6380/2',
    redis_timeout_ms: 10,
    store_failure: 'allow',
  });
  expect(validated({ requests_per_minute: 1, store: 'redis', redis_url: 'redis://[::1]', redis_timeout_ms: 250, store_failure: 'deny' })).toMatchObject({ redis_timeout_ms: 250, store_failure: 'deny' });
});

test.each([
  ['max_keys too small', { requests_per_minute: 1, max_keys: 4 }, 'middlewares[0].config.max_keys: expected an integer from 8 to 16777216, got 4'],
  ['max_keys with Redis', { requests_per_minute: 1, store: 'redis', redis_url: 'redis://r', max_keys: 64 }, 'middlewares[0].config.max_keys: only used with store "memory" (Redis keeps its own keys; they expire once full)'],
  ['redis_timeout_ms with memory', { requests_per_minute: 1, redis_timeout_ms: 5 }, 'middlewares[0].config.redis_timeout_ms: only used with store "redis"'],
  ['store_failure with memory', { requests_per_minute: 1, store_failure: 'deny' }, 'middlewares[0].config.store_failure: only used with store "redis"'],
  ['store_failure unknown', { requests_per_minute: 1, store: 'redis', redis_url: 'redis://r', store_failure: 'open' }, 'middlewares[0].config.store_failure: expected one of "allow", "deny", got "open"'],
  ['redis_timeout_ms 0', { requests_per_minute: 1, store: 'redis', redis_url: 'redis://r', redis_timeout_ms: 0 }, 'middlewares[0].config.redis_timeout_ms: expected an integer from 1 to 60000, got 0'],
  ['a misspelt key', { requests_per_minute: 1, store: 'redis', redis_url: 'redis://r', redis_timeout: 5 }, 'middlewares[0].config.redis_timeout: unknown key (did you mean "redis_timeout_ms"?)'],
  ['a query in the URL', { requests_per_minute: 1, store: 'redis', redis_url: 'redis://r:6379?enableOfflineQueue=true' }, 'middlewares[0].config.redis_url: must not have a query or fragment (the timeout and failure policy have their own keys)'],
  ['a path that is not a database', { requests_per_minute: 1, store: 'redis', redis_url: 'redis://r:6379/cache' }, 'middlewares[0].config.redis_url: the path, if any, is the database number (e.g. "/0")'],
  ['another scheme', { requests_per_minute: 1, store: 'redis', redis_url: 'http://r:6379' }, 'middlewares[0].config.redis_url: unsupported scheme "http://" (use redis:// or rediss://)'],
  ['not a string', { requests_per_minute: 1, store: 'redis', redis_url: 6379 }, 'middlewares[0].config.redis_url: expected a URL like "redis://127.0.0.1:6379" or "rediss://:PASSWORD@redis.example.com:6380/0", got 6379'],
])('%s', (_name, config, message) => {
  expect(errorsOf(config)).toEqual([message]);
});

test('no problem message shows the Redis URL (it may hold a password)', () => {
  const secret = 'hunter2-in-the-url';
  for (const redis_url of [`redis:/:${secret}@`, `redis://:${secret}@r:6379?x=1`, `redis://:${secret}@r/x`, `redis://user:${secret}@`, `${secret}`]) {
    const errors = errorsOf({ requests_per_minute: 1, store: 'redis', redis_url });
    expect(errors).toHaveLength(1);
    expect(errors[0]).not.toContain(secret);
  }
});
