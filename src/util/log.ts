/**
 * Structured JSON-lines logging (pino). One root logger per thread; worker
 * threads add `thread` to every line. Level comes from the config or
 * ZPROXY_LOG_LEVEL (which wins, so tests and operators can quieten a run).
 */
import pino from 'pino';

export type Logger = pino.Logger;

let root: Logger | undefined;

export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  root = pino({ level: process.env.ZPROXY_LOG_LEVEL ?? level, base: { pid: process.pid, ...bindings } }, pino.destination({ sync: true }));
  return root;
}

export function logger(): Logger {
  return root ?? createLogger('info');
}
