/**
 * The library API: `createProxy(config)` takes the same object as the JSON
 * config file (validated the same way) and returns a Server to start.
 */
import { Server, type ServerOptions } from './server/server';

export { Server, type ServerOptions } from './server/server';
export { ConfigError, validateConfig, loadConfig } from './config/validate';
export type { ZproxyConfig } from './config/types';
export * from './errors';

export function createProxy(config: unknown, options?: ServerOptions): Server {
  return Server.init(config, options);
}
export type { Middleware, Answer, RequestVerdict, FieldEdits, ResponseEdits } from './pipeline/phases';
export type { RequestContext, RequestHeaders } from './pipeline/request-context';
