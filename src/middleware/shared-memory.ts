/**
 * Memory one middleware shares across every worker thread of the process
 * (a rate limit's buckets, a cache's index): a SharedArrayBuffer per
 * middleware entry, made in the main thread and handed to each worker with
 * its config (at start and on reload), sized by the type's `sharedBytes`.
 *
 * An entry keeps its memory across a reload when its place in the config
 * (`routes[2].middlewares[0]`) and its config are unchanged, so a reload
 * neither resets a limit nor empties a cache it did not touch.
 */
import type { ZproxyConfig } from '../config/types';
import { MIDDLEWARE_TYPES } from './registry';
import { middlewareEntries } from './entries';

/** The shared memory of each middleware entry that has any, by the entry's JSON path. */
export type SharedMemory = ReadonlyMap<string, SharedArrayBuffer>;

/** The shared memory for `config`, reusing `previous` (the running config's) where an entry is unchanged. */
export function allocateSharedMemory(config: ZproxyConfig, previous: { config: ZproxyConfig; memory: SharedMemory } | null): SharedMemory {
  const before = new Map(previous === null ? [] : middlewareEntries(previous.config).map(([path, entry]) => [path, JSON.stringify(entry)]));
  const memory = new Map<string, SharedArrayBuffer>();
  for (const [path, entry] of middlewareEntries(config)) {
    const bytes = MIDDLEWARE_TYPES[entry.type]?.sharedBytes?.(entry.config) ?? 0;
    if (bytes === 0) continue;
    const kept = previous?.memory.get(path);
    memory.set(path, kept !== undefined && before.get(path) === JSON.stringify(entry) && kept.byteLength === bytes ? kept : new SharedArrayBuffer(bytes));
  }
  return memory;
}
