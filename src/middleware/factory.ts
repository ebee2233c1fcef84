/** How a middleware type is made, in each worker, from its validated `config`. */
import type { Logger } from '../util/log';
import type { Middleware } from '../pipeline/phases';

/** What a middleware may use of its worker when it is made. */
export interface MiddlewareServices {
  readonly log: Logger;
  /** The entry's JSON path (`routes[2].middlewares[0]`): a name for logs and metrics. */
  readonly path: string;
  /** The memory this entry shares with every worker (see shared-memory.ts), or null when its type asks for none. */
  readonly shared: SharedArrayBuffer | null;
}

export type MiddlewareFactory = (config: Record<string, unknown>, services: MiddlewareServices) => Middleware;

/** A middleware type: how it is made in each worker, and how much memory its entries share across workers. */
export interface MiddlewareType {
  readonly create: MiddlewareFactory;
  /** Bytes of process-wide shared memory an entry with this config needs (absent or 0: none). */
  readonly sharedBytes?: (config: Record<string, unknown>) => number;
}
