/** The middleware entries of a config, each with its JSON path: how a worker and the main thread name the same entry. */
import type { MiddlewareConfig, ZproxyConfig } from '../config/types';

/** Every middleware entry (global ones, then each route's), with its path (`middlewares[0]`, `routes[2].middlewares[1]`). */
export function middlewareEntries(config: ZproxyConfig): Array<[path: string, entry: MiddlewareConfig]> {
  const entries: Array<[string, MiddlewareConfig]> = config.middlewares.map((entry, i) => [`middlewares[${i}]`, entry]);
  config.routes.forEach((route, r) => route.middlewares.forEach((entry, i) => entries.push([`routes[${r}].middlewares[${i}]`, entry])));
  return entries;
}
