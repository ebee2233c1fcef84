/**
 * A worker thread's entry: places itself (affinity, node-local buffers),
 * attaches to the listener stage, and serves its connections until told
 * to drain and exit.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { selectPlatform } from '../native/platform';
import { createLogger, logger } from '../util/log';
import { compileRoutes } from '../router/compile';
import { buildPhaseTable } from '../middleware/registry';
import type { SharedMemory } from '../middleware/shared-memory';
import { ConnectionSet } from '../listener/connection';
import { attachNativeIntake } from '../listener/native-acceptor';
import { attachSharedListenerIntake } from '../listener/shared-listener';
import { attachWorkerListenerIntake } from '../listener/worker-listener';
import type { IncomingConnection, IntakeDescriptor, Intake } from '../listener/acceptor';
import type { ZproxyConfig } from '../config/types';
import type { Placement } from './placement';
import type { WorkerContext } from './worker-context';
import { registerBuiltinProtocols } from '../protocol/builtin';
import { Upstreams } from '../upstream/upstreams';
import { TrustedProxies } from '../http/client-ip';
import { H2Sessions } from '../upstream/h2-sessions';
import { TlsAcceptor } from '../listener/tls-listener';
import type { TlsMaterial } from '../listener/secure-contexts';

export interface WorkerData {
  index: number;
  config: ZproxyConfig;
  intake: IntakeDescriptor;
  placement: Placement;
  noNative: boolean;
  /** Config generation, for health verdicts (bumped on every reload). */
  generation: number;
  /** The listener's certificates as the main thread read them; null when TLS is off. */
  tls: TlsMaterial | null;
  /** TLS session-ticket keys, the same in every worker: a session resumes whichever worker takes it. */
  ticketKeys: Uint8Array;
  /** Memory the middlewares share across workers (middleware/shared-memory.ts). */
  shared: SharedMemory;
}

/** Large enough for any request head within the default `max_header_bytes` in one read. */
const READ_BUFFER_BYTES = 64 * 1024;

function main(port: NonNullable<typeof parentPort>, data: WorkerData): void {
  const platform = selectPlatform(data.noNative);
  const log = createLogger(data.config.log_level, { thread: data.index });
  const pinned = data.placement.cpus.length > 0 && pinThread(data.placement.cpus);

  const allocBuffer = (size: number) => platform.allocOnNode(size, data.placement.node);
  const ctx: WorkerContext = {
    index: data.index,
    config: data.config,
    router: compileRoutes(data.config.routes),
    phases: buildPhaseTable(data.config, log, data.shared),
    trustedProxies: new TrustedProxies(data.config.trusted_proxies),
    upstreams: new Upstreams(data.config, data.generation, allocBuffer),
    h2Sessions: new H2Sessions(data.config.upstream_connect_timeout_ms),
    tls: new TlsAcceptor(log, Buffer.from(data.ticketKeys)),
    log,
    readBuffer: allocBuffer(READ_BUFFER_BYTES),
    httpDate: new Date().toUTCString(),
    draining: false,
  };
  const clock = setInterval(() => (ctx.httpDate = new Date().toUTCString()), 1000);
  clock.unref();
  ctx.tls.update(data.config, data.tls);

  registerBuiltinProtocols(ctx);
  let intake: Intake | undefined;
  const connections = new ConnectionSet(ctx, () => intake?.release());
  const onConnection = (incoming: IncomingConnection) => connections.accept(incoming);
  intake = openIntake(data.intake, data.index, onConnection);

  function pinThread(cpus: number[]): boolean {
    try {
      return platform.setThreadAffinity(cpus);
    } catch (err) {
      log.warn({ err, cpus }, 'could not pin worker thread');
      return false;
    }
  }

  function openIntake(descriptor: IntakeDescriptor, index: number, deliver: (c: IncomingConnection) => void): Intake {
    if (descriptor.kind === 'native') {
      if (!platform.addon) throw new Error('native intake without the addon');
      return attachNativeIntake(platform.addon, descriptor.loopId, index, deliver);
    }
    if (descriptor.kind === 'worker') {
      if (!platform.addon) throw new Error('worker listener without the addon');
      return attachWorkerListenerIntake(platform.addon, descriptor, deliver);
    }
    return attachSharedListenerIntake(descriptor, index, deliver);
  }

  const toIntake = (message: Record<string, unknown>) => intake!.handle(message as { type: string });
  const requests: Record<string, (message: Record<string, unknown>) => Promise<unknown> | unknown> = {
    // The listener's own requests (worker and shared listeners).
    listen: toIntake,
    unlisten: toIntake,
    'listener-stats': toIntake,
    drain: () =>
      new Promise<void>((resolve) => {
        ctx.draining = true;
        connections.drain(resolve);
      }),
    'close-all': () => connections.closeAll(),
    reload: (message) => {
      const config = message.config as ZproxyConfig;
      ctx.upstreams.load(config, message.generation as number);
      ctx.router = compileRoutes(config.routes);
      const replaced = ctx.phases;
      ctx.phases = buildPhaseTable(config, log, message.shared as SharedMemory);
      replaced.close();
      ctx.trustedProxies = new TrustedProxies(config.trusted_proxies);
      ctx.h2Sessions.setConnectTimeout(config.upstream_connect_timeout_ms);
      // Absent: the main thread could not read the certificates; the running ones stay.
      ctx.tls.update(config, message.tls as TlsMaterial | null | undefined);
      ctx.config = config;
    },
    stats: () => ({
      worker: data.index,
      connections: connections.size,
      cpu: platform.currentCpu(),
      affinity: platform.getThreadAffinity(),
      node: data.placement.node,
      pinned,
    }),
    exit: () => {
      intake?.close();
      connections.closeAll();
      connections.stop();
      ctx.upstreams.close();
      ctx.h2Sessions.closeAll();
      ctx.phases.close();
      clearInterval(clock);
      port.close();
    },
  };

  port.on('message', async (message: { type: string; id?: number }) => {
    const run = requests[message.type];
    try {
      if (!run) throw new Error(`unknown request ${message.type}`);
      const value = await run(message as Record<string, unknown>);
      if (message.id !== undefined) port.postMessage({ type: 'reply', id: message.id, value });
    } catch (err) {
      log.error({ err, request: message.type }, 'worker request failed');
      if (message.id !== undefined) port.postMessage({ type: 'error', id: message.id, error: String((err as Error).message ?? err) });
    }
  });

  port.postMessage({ type: 'ready', value: { worker: data.index, pinned, cpu: platform.currentCpu() } });
}

process.on('uncaughtException', (err) => {
  logger().error({ err }, 'uncaught exception in worker (connection dropped, worker keeps serving)');
});

if (parentPort) main(parentPort, workerData as WorkerData);
