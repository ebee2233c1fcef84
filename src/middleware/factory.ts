/** How a middleware type is made, in each worker, from its validated `config`. */
import type { Logger } from '../util/log';
import type { Middleware } from '../pipeline/phases';

/** What a middleware may use of its worker when it is made. */
export interface MiddlewareServices {
  readonly log: Logger;
}

export type MiddlewareFactory = (config: Record<string, unknown>, services: MiddlewareServices) => Middleware;
