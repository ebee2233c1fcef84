/**
 * The seed's Server: `init` validates the config, `start` binds the listener,
 * starts the worker threads and the admin listener, `stop` drains.
 *
 * Stop, in order: /ready turns 503; the listener closes; workers close idle
 * keep-alive connections and let in-flight requests finish, up to
 * `drain_timeout_ms`, then close the rest; every worker thread exits.
 */
import os from 'node:os';
import { lookup } from 'node:dns/promises';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { loadConfig } from '../config/validate';
import type { ZproxyConfig } from '../config/types';
import { selectPlatform, type Platform } from '../native/platform';
import { createLogger, type Logger } from '../util/log';
import { createNativeAcceptor } from '../listener/native-acceptor';
import { createSharedListenerAcceptor } from '../listener/shared-listener';
import { createWorkerListenerAcceptor, useWorkerListener } from '../listener/worker-listener';
import type { AcceptLoopStats } from '../native/addon-types';
import type { Acceptor, ListenAddress, ListenOptions, WorkerRequest } from '../listener/acceptor';
import { ThreadPool } from './thread-pool';
import { planPlacement, formatCpuList, type Placement } from './placement';
import { AdminServer } from '../admin/admin-server';
import type { WorkerData } from './worker';
import { HealthMonitor } from '../upstream/health-monitor';
import { allocateSharedMemory, type SharedMemory } from '../middleware/shared-memory';
import { checkUpstreamCaFiles, loadTlsMaterial, type TlsMaterial } from '../listener/secure-contexts';

export interface ServerOptions {
  /** Run the pure TypeScript fallback even where the addon loads. */
  noNative?: boolean;
}

export type ServerState = 'initialized' | 'starting' | 'running' | 'draining' | 'stopped';

/** Settings fixed at start: the listener, the threads and the admin listener. */
const RESTART_ONLY_KEYS = ['host', 'port', 'thread_count', 'backlog', 'max_connections', 'numa_aware', 'admin'] as const;

/** Time the workers get to exit once drained. */
const WORKER_EXIT_TIMEOUT_MS = 5000;
/** Node's ticketKeys: 16 bytes of key name, 16 of HMAC secret, 16 of AES key. */
const TICKET_KEYS_BYTES = 48;

/** The native accept loop; with one worker, that worker's own listener; without the addon, the shared socket. */
function createAcceptor(platform: Platform, listen: ListenOptions): Acceptor {
  if (useWorkerListener(platform, listen.workers)) return createWorkerListenerAcceptor(listen);
  return platform.capabilities.acceptLoop ? createNativeAcceptor(platform.addon!, listen) : createSharedListenerAcceptor(listen);
}

export class Server {
  state: ServerState = 'initialized';
  readonly log: Logger;
  readonly platform: Platform;
  private acceptor: Acceptor | undefined;
  private pool: ThreadPool | undefined;
  private admin: AdminServer | undefined;
  private adminBound: ListenAddress | undefined;
  private placements: Placement[] = [];
  private pinned: boolean[] = [];
  /** Bumped on every reload; health verdicts carry it. */
  private generation = 0;
  /** What the middlewares of the running config share across workers. */
  private sharedMemory: SharedMemory;
  /** One set per server (kept across reloads, like nginx's): tickets from any worker resume on any other. */
  private readonly ticketKeys = randomBytes(TICKET_KEYS_BYTES);
  private health: HealthMonitor | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(
    public config: ZproxyConfig,
    options: ServerOptions,
  ) {
    this.log = createLogger(config.log_level);
    this.platform = selectPlatform(options.noNative ?? false);
    this.sharedMemory = allocateSharedMemory(config, null);
  }

  /** Validates `config` (throws ConfigError listing every problem) and prepares a server. */
  static init(config: unknown, options: ServerOptions = {}): Server {
    return new Server(loadConfig(config), options);
  }

  get threadCount(): number {
    const wanted = this.config.thread_count;
    return wanted === 'auto' ? os.availableParallelism() : wanted;
  }

  async start(): Promise<void> {
    if (this.state !== 'initialized') throw new Error(`cannot start a server that is ${this.state}`);
    this.state = 'starting';
    const { platform, log, config } = this;
    log.info({ runtime: platform.kind, reason: platform.reason }, `accept loop and OS primitives: ${platform.kind === 'native' ? 'native addon' : 'TypeScript fallback'} (${platform.reason})`);

    const topology = platform.topology();
    this.placements = planPlacement(topology, this.threadCount, platform.getThreadAffinity(), config.numa_aware);
    try {
      // Read before any worker starts: an unusable certificate, key or CA file stops the start with one line naming it.
      const tls = config.tls.enabled ? loadTlsMaterial(config.tls) : null;
      checkUpstreamCaFiles(config);
      const listen: ListenOptions = {
        host: await resolveHost(config.host),
        port: config.port,
        backlog: config.backlog,
        maxConnections: config.max_connections,
        workers: this.threadCount,
        firstByteTimeoutMs: config.connection_timeout_ms,
      };
      this.acceptor = createAcceptor(platform, listen);
      this.pool = new ThreadPool(this.threadCount, log);
      const acceptor = this.acceptor;
      const ready = (await this.pool.start((index): WorkerData => ({
        index,
        config,
        intake: acceptor.intake,
        placement: this.placements[index],
        noNative: platform.kind === 'fallback',
        generation: this.generation,
        tls,
        ticketKeys: this.ticketKeys,
        shared: this.sharedMemory,
      }))) as Array<{ pinned: boolean }>;
      this.pinned = ready.map((worker) => worker.pinned);
      await acceptor.open(this.request);
      this.health = new HealthMonitor(log);
      this.health.start(config, this.generation);
      if (config.admin) {
        this.admin = new AdminServer(config.admin, { ready: () => this.state === 'running' }, log);
        this.adminBound = await this.admin.listen();
      }
    } catch (err) {
      await this.acceptor?.close(this.request).catch(() => undefined);
      await this.shutdown();
      this.state = 'stopped';
      throw err;
    }
    this.state = 'running';
    this.logListening(topology.source);
  }

  /** The listener's bound address (port 0 in the config picks a free one). */
  address(): ListenAddress {
    if (!this.acceptor) throw new Error('the server is not started');
    return this.acceptor.address();
  }

  /** Which listener accepts: the native accept loop, the one-worker native listener, or the fallback's shared socket. */
  listenerKind(): Acceptor['kind'] {
    if (!this.acceptor) throw new Error('the server is not started');
    return this.acceptor.kind;
  }

  adminAddress(): ListenAddress | undefined {
    return this.adminBound;
  }

  /** Per-worker figures and the listener's counters. */
  async stats(): Promise<{ listener: AcceptLoopStats; workers: unknown[] }> {
    if (!this.acceptor || !this.pool) throw new Error('the server is not started');
    return { listener: await this.acceptor.stats(this.request), workers: await this.pool.broadcast({ type: 'stats' }) };
  }

  /**
   * Applies a new config to new requests (SIGHUP, later `PUT /config`).
   * Listener settings need a restart; they are kept and a warning says so.
   */
  async reload(input: unknown): Promise<void> {
    if (this.state !== 'running') throw new Error(`cannot reload a server that is ${this.state}`);
    const next = loadConfig(input);
    const fixed = RESTART_ONLY_KEYS.filter((key) => JSON.stringify(next[key]) !== JSON.stringify(this.config[key]));
    if (fixed.length > 0) this.log.warn({ keys: fixed }, 'these settings change only on restart; keeping the running values');
    const applied = loadConfig({ ...next, ...Object.fromEntries(RESTART_ONLY_KEYS.map((key) => [key, this.config[key]])) });
    checkUpstreamCaFiles(applied);
    const tls = this.reloadTlsMaterial(applied);
    const shared = allocateSharedMemory(applied, { config: this.config, memory: this.sharedMemory });
    this.generation++;
    await this.pool!.broadcast({ type: 'reload', config: applied, generation: this.generation, tls, shared });
    this.sharedMemory = shared;
    this.health?.start(applied, this.generation);
    this.config = applied;
    this.log.info({ routes: applied.routes.length }, 'config reloaded');
  }

  /** The certificates, read again (SIGHUP rotates them); undefined keeps the running ones when one is unusable. */
  private reloadTlsMaterial(config: ZproxyConfig): TlsMaterial | null | undefined {
    if (!config.tls.enabled) return null;
    try {
      return loadTlsMaterial(config.tls);
    } catch (err) {
      const problem = (err as Error).message;
      this.log.error({ problem }, `TLS certificates not reloaded, the running ones are kept: ${problem}`);
      return undefined;
    }
  }

  /** Graceful stop; safe to call more than once (later calls wait for the first). */
  stop(): Promise<void> {
    this.stopping ??= this.drainAndStop();
    return this.stopping;
  }

  private async drainAndStop(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'draining';
    this.log.info({ drainTimeoutMs: this.config.drain_timeout_ms }, 'draining');
    // A worker listener whose worker died went with it: nothing left to close.
    await this.acceptor!.close(this.request).catch((err: Error) => this.log.warn({ err }, 'closing the listener failed'));
    const drained = this.pool!.broadcast({ type: 'drain' }, true);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.config.drain_timeout_ms)));
    if (await Promise.race([drained.then(() => false), timedOut])) {
      this.log.warn('drain timeout: closing the remaining connections');
      await this.pool!.broadcast({ type: 'close-all' }, true);
    }
    clearTimeout(timer);
    await this.shutdown();
    this.state = 'stopped';
    this.log.info('stopped');
  }

  private async shutdown(): Promise<void> {
    this.health?.stop();
    await this.pool?.stop(WORKER_EXIT_TIMEOUT_MS);
    await this.admin?.close();
  }

  private readonly request: WorkerRequest = (index, message) => this.pool!.submit(message, index);

  private logListening(topologySource: string): void {
    const { address, port } = this.address();
    const layout = this.placements.map(
      (p) => `worker ${p.worker} -> node ${p.node} -> cpus ${this.pinned[p.worker] ? formatCpuList(p.cpus) : 'any (not pinned)'}`,
    );
    const admin = this.adminBound ? ` admin http://${hostForUrl(this.adminBound.address)}:${this.adminBound.port}` : '';
    this.log.info(
      { address, port, threads: this.threadCount, listener: this.listenerKind(), numa: { source: topologySource, layout }, admin: this.adminBound ?? null },
      `listening on ${hostForUrl(address)}:${port} with ${this.threadCount} threads, NUMA ${topologySource}: ${layout.join('; ')}${admin}`,
    );
  }
}

async function resolveHost(host: string): Promise<string> {
  if (isIP(host)) return host;
  return (await lookup(host)).address;
}

function hostForUrl(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}
