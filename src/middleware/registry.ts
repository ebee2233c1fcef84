/**
 * The middleware types this build enforces, by `type`, and the phase table
 * a worker builds from a config: each route's chain (global middlewares
 * first, then the route's own) made once per config load and resolved
 * into its phase lists (pipeline/phases.ts). A type missing here is
 * refused by config validation (config/validate.ts ENFORCED_MIDDLEWARE,
 * kept equal to this table by a test).
 */
import type { MiddlewareConfig, MiddlewareType, ZproxyConfig } from '../config/types';
import { NO_PHASES, resolvePhases, type Middleware, type RoutePhases } from '../pipeline/phases';
import type { MiddlewareFactory, MiddlewareServices } from './factory';
import { createModuleMiddleware } from './module';


export const MIDDLEWARE_FACTORIES: Readonly<Partial<Record<MiddlewareType, MiddlewareFactory>>> = Object.freeze({
  module: createModuleMiddleware,
});

/** Each route's phases, by route index. */
export interface PhaseTable {
  of(routeIndex: number): RoutePhases;
}

/** Makes every middleware of `config` (a global one once, shared by every route) and each route's phases. */
export function buildPhaseTable(config: ZproxyConfig, services: MiddlewareServices): PhaseTable {
  const make = (entry: MiddlewareConfig): Middleware => {
    const factory = MIDDLEWARE_FACTORIES[entry.type];
    // Validation refused every type not in the table: reaching here without one is a bug.
    if (factory === undefined) throw new Error(`middleware "${entry.type}" is not enforced by this build`);
    return factory(entry.config, services);
  };
  const global = config.middlewares.map(make);
  const routes = config.routes.map((route) => (global.length + route.middlewares.length === 0 ? NO_PHASES : resolvePhases([...global, ...route.middlewares.map(make)])));
  return { of: (routeIndex) => routes[routeIndex] ?? NO_PHASES };
}
