/**
 * The middleware types this build enforces, by `type`, and the phase table
 * a worker builds from a config: each route's chain (global middlewares
 * first, then the route's own) made once per config load and resolved
 * into its phase lists (pipeline/phases.ts). A type missing here is
 * refused by config validation (config/validate.ts ENFORCED_MIDDLEWARE is
 * this table's keys).
 */
import type { MiddlewareConfig, MiddlewareType as TypeName, ZproxyConfig } from '../config/types';
import type { Logger } from '../util/log';
import { NO_PHASES, resolvePhases, type Middleware, type RoutePhases } from '../pipeline/phases';
import type { MiddlewareType } from './factory';
import { createModuleMiddleware } from './module';
import { createRateLimit, rateLimitSharedBytes } from './rate-limit/rate-limit';
import { middlewareEntries } from './entries';
import type { SharedMemory } from './shared-memory';


export const MIDDLEWARE_TYPES: Readonly<Partial<Record<TypeName, MiddlewareType>>> = Object.freeze({
  rate_limit: { create: createRateLimit, sharedBytes: rateLimitSharedBytes },
  module: { create: createModuleMiddleware },
});

/** Each route's phases, by route index. */
export interface PhaseTable {
  of(routeIndex: number): RoutePhases;
  /** This table was replaced (reload) or the worker exits: every middleware releases what it holds. */
  close(): void;
}

/**
 * Makes every middleware of `config` (a global one once, shared by every
 * route) and each route's phases, in this worker.
 */
export function buildPhaseTable(config: ZproxyConfig, log: Logger, shared: SharedMemory): PhaseTable {
  const made = new Map<string, Middleware>();
  for (const [path, entry] of middlewareEntries(config)) made.set(path, make(path, entry, log, shared));
  const global = config.middlewares.map((_, i) => made.get(`middlewares[${i}]`)!);
  const routes = config.routes.map((route, r) =>
    global.length + route.middlewares.length === 0 ? NO_PHASES : resolvePhases([...global, ...route.middlewares.map((_, i) => made.get(`routes[${r}].middlewares[${i}]`)!)]),
  );
  return {
    of: (routeIndex) => routes[routeIndex] ?? NO_PHASES,
    close: () => {
      for (const [path, middleware] of made) {
        try {
          middleware.close?.();
        } catch (err) {
          log.error({ err, middleware: path }, 'middleware close failed');
        }
      }
    },
  };
}

function make(path: string, entry: MiddlewareConfig, log: Logger, shared: SharedMemory): Middleware {
  const type = MIDDLEWARE_TYPES[entry.type];
  // Validation refused every type not in the table: reaching here without one is a bug.
  if (type === undefined) throw new Error(`middleware "${entry.type}" is not enforced by this build`);
  return type.create(entry.config, { log, path, shared: shared.get(path) ?? null });
}
