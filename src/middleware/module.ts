/**
 * `module`: a user's middleware (SPEC §8). `path` names a CommonJS module
 * (a file, or a package name) that exports a factory — as `module.exports`,
 * `exports.default` or `exports.createMiddleware` — called with the entry's
 * config (every key but `path`) in each worker thread, returning an object
 * with the phase hooks of pipeline/phases.ts (`import type { Middleware }
 * from 'zproxy'`). TypeScript modules are compiled to JavaScript first.
 *
 * A module that cannot be loaded, or does not export a factory, makes the
 * config invalid (checked in the main thread at validate, start and
 * reload): zproxy never starts without a middleware it was told to run.
 * An exception or a rejected promise in a hook costs that request a 500
 * and a log line (handle-request.ts), never the worker.
 */
import type { Middleware } from '../pipeline/phases';
import type { MiddlewareFactory, MiddlewareServices } from './factory';


/** The module's factory; throws with what is wrong when it has none. */
export function loadModuleFactory(path: string): MiddlewareFactory {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const exported = require(path) as unknown;
  const candidates = [exported, (exported as { default?: unknown })?.default, (exported as { createMiddleware?: unknown })?.createMiddleware];
  const factory = candidates.find((candidate) => typeof candidate === 'function');
  if (factory === undefined) throw new Error(`${path} exports no middleware factory (module.exports, exports.default or exports.createMiddleware)`);
  return factory as MiddlewareFactory;
}

export function createModuleMiddleware(config: Record<string, unknown>, services: MiddlewareServices): Middleware {
  const { path, ...own } = config as { path: string };
  const middleware = loadModuleFactory(path)(own, services);
  if (middleware === null || typeof middleware !== 'object') throw new Error(`the factory of ${path} returned no middleware object`);
  return { ...middleware, name: typeof middleware.name === 'string' ? middleware.name : `module:${path}`, ...bindHooks(middleware) };
}

/** The hooks, bound to the object the module returned (a class instance keeps its `this`). */
function bindHooks(middleware: Middleware): Partial<Middleware> {
  const hooks: Partial<Middleware> = {};
  for (const key of ['onRequest', 'onUpstreamRequest', 'onResponse', 'onLog'] as const) {
    const hook = middleware[key];
    if (typeof hook === 'function') (hooks as Record<string, unknown>)[key] = hook.bind(middleware);
  }
  return hooks;
}
