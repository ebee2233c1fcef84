/**
 * OS primitives with one API whether the addon runs or the pure TypeScript
 * fallback does: NUMA topology, thread affinity, node-local buffers, and the
 * raw accept loop (native only; the listener stage picks its fallback).
 */
import { readFileSync } from 'node:fs';
import { loadAddon } from './binding';
import type { RawAddon } from './addon-types';
import { detectTopology, parseCpuList, type Topology } from './topology';

/**
 * What the addon adds to the pure TypeScript runtime, asked for by name
 * (never by testing the addon's exports at the call site). Each has its
 * fallback where it is used: the shared listener, the JS tunnel, a plain
 * socket write, a body relayed through JS.
 */
export interface Capabilities {
  /** The epoll accept loop that hands connections to the workers (native/accept_loop). */
  readonly acceptLoop: boolean;
  /** One worker accepting on its own event loop (native/worker_listener). */
  readonly workerListener: boolean;
  /** WebSocket tunnels spliced in the kernel (native/splice_tunnel). */
  readonly spliceTunnel: boolean;
  /** A response body spliced in the kernel (native/splice_tunnel spliceBody). */
  readonly bodySplice: boolean;
  /** A write straight to a socket's fd (native/fd_write). */
  readonly fdWrite: boolean;
}

const NONE: Capabilities = Object.freeze({ acceptLoop: false, workerListener: false, spliceTunnel: false, bodySplice: false, fdWrite: false });

export interface Platform {
  readonly kind: 'native' | 'fallback';
  /** Why this kind runs, for the one startup line. */
  readonly reason: string;
  /** The addon itself, when loaded: used for what `capabilities` says it has. */
  readonly addon: RawAddon | null;
  readonly capabilities: Capabilities;
  topology(sysfsRoot?: string): Topology;
  /** Pins the calling thread; false where the fallback cannot. */
  setThreadAffinity(cpus: readonly number[]): boolean;
  /** CPUs the calling thread may run on. */
  getThreadAffinity(): number[];
  /** The CPU the calling thread runs on, or -1 when unknown. */
  currentCpu(): number;
  /** A buffer on `node`'s memory where possible; freed by GC. Allocate per worker, never transfer. */
  allocOnNode(size: number, node: number): Buffer;
  nodeBufferStats(): { allocated: number; freed: number; liveBytes: number; numa: boolean };
}

function nativePlatform(addon: RawAddon, reason: string): Platform {
  return {
    kind: 'native',
    reason,
    addon,
    // An older or partial build may lack a primitive: the one place that looks.
    capabilities: Object.freeze({
      acceptLoop: typeof addon.AcceptLoop === 'function',
      workerListener: typeof addon.WorkerListener === 'function',
      spliceTunnel: typeof addon.createTunnel === 'function',
      bodySplice: typeof addon.spliceBody === 'function',
      fdWrite: typeof addon.writeFd === 'function',
    }),
    topology: (sysfsRoot) => detectTopology(() => addon.numaTopology(), sysfsRoot),
    setThreadAffinity(cpus) {
      addon.setThreadAffinity([...cpus]);
      return true;
    },
    getThreadAffinity: () => addon.getThreadAffinity(),
    currentCpu: () => addon.currentCpu(),
    allocOnNode: (size, node) => addon.allocOnNode(size, node),
    nodeBufferStats: () => addon.nodeBufferStats(),
  };
}

/** Counters for fallback buffers, kept with a FinalizationRegistry like the addon's finalizers. */
const fallbackBuffers = { allocated: 0, freed: 0, liveBytes: 0 };
const bufferRegistry = new FinalizationRegistry<number>((size) => {
  fallbackBuffers.freed++;
  fallbackBuffers.liveBytes -= size;
});

/** `/proc/thread-self` describes the calling thread on Linux; elsewhere nothing is known. */
function readThreadStatus(): string | null {
  try {
    return readFileSync('/proc/thread-self/status', 'utf8');
  } catch {
    return null;
  }
}

function fallbackPlatform(reason: string): Platform {
  return {
    kind: 'fallback',
    reason,
    addon: null,
    capabilities: NONE,
    topology: (sysfsRoot) => detectTopology(null, sysfsRoot),
    setThreadAffinity: () => false,
    getThreadAffinity() {
      const allowed = /Cpus_allowed_list:\s*(\S+)/.exec(readThreadStatus() ?? '');
      return allowed ? parseCpuList(allowed[1]) : detectTopology(null).nodes.flatMap((n) => n.cpus);
    },
    currentCpu() {
      try {
        // Field 39 of stat is the CPU last run on; the command name (field 2) may hold spaces.
        const stat = readFileSync('/proc/thread-self/stat', 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[36]);
      } catch {
        return -1;
      }
    },
    allocOnNode(size) {
      const buffer = Buffer.allocUnsafeSlow(size);
      fallbackBuffers.allocated++;
      fallbackBuffers.liveBytes += size;
      bufferRegistry.register(buffer, size);
      return buffer;
    },
    nodeBufferStats: () => ({ ...fallbackBuffers, numa: false }),
  };
}

let current: Platform | undefined;

/**
 * Chooses this thread's platform: the addon unless `noNative` (or
 * ZPROXY_NO_NATIVE=1) asks for the fallback or the addon cannot load.
 */
export function selectPlatform(noNative = false): Platform {
  const load = noNative ? { addon: null, reason: 'native addon disabled by option' } : loadAddon();
  current = load.addon ? nativePlatform(load.addon, load.reason) : fallbackPlatform(load.reason);
  return current;
}

/** The platform of this thread (selected with defaults on first use). */
export function platform(): Platform {
  return current ?? selectPlatform();
}
