/**
 * The native listener for a server with one worker (native/worker_listener.h):
 * that worker binds, and its own event loop accepts and peeks. With nobody
 * to balance between, the accept loop's thread would only add a wake-up and
 * a hand-off per connection. The main thread asks the worker to listen and
 * to stop, as with the shared listener; the socket never leaves the worker.
 */
import type { AcceptLoopStats, RawAddon, RawWorkerListener } from '../native/addon-types';
import type { Platform } from '../native/platform';
import type { Acceptor, IncomingConnection, Intake, IntakeDescriptor, ListenAddress, ListenOptions } from './acceptor';
import { PEEK_BYTES } from './native-acceptor';
import { watchAcceptFailures } from './resource-watch';

/** Whether this server takes the worker listener: the platform has it and there is one worker. */
export function useWorkerListener(platform: Platform, workers: number): boolean {
  return platform.capabilities.workerListener && workers === 1;
}

export function createWorkerListenerAcceptor(options: ListenOptions): Acceptor {
  let bound: ListenAddress | undefined;
  return {
    kind: 'worker',
    intake: {
      kind: 'worker',
      host: options.host,
      port: options.port,
      backlog: options.backlog,
      maxConnections: options.maxConnections,
      firstByteTimeoutMs: options.firstByteTimeoutMs,
    },
    async open(request) {
      bound = (await request(0, { type: 'listen' })) as ListenAddress;
    },
    address() {
      if (!bound) throw new Error('the listener is not open');
      return bound;
    },
    stats: async (request) => (await request(0, { type: 'listener-stats' })) as AcceptLoopStats,
    async close(request) {
      await request(0, { type: 'unlisten' });
    },
  };
}

export function attachWorkerListenerIntake(
  addon: RawAddon,
  descriptor: Extract<IntakeDescriptor, { kind: 'worker' }>,
  onConnection: (c: IncomingConnection) => void,
): Intake {
  let listener: RawWorkerListener | null = null;
  let unwatch: (() => void) | undefined;
  const close = () => {
    unwatch?.();
    listener?.close();
  };
  return {
    release: () => listener?.release(),
    async handle(message) {
      if (message.type === 'listen') {
        const { host, port, backlog, maxConnections, firstByteTimeoutMs } = descriptor;
        const options = { host, port, backlog, maxConnections, firstByteTimeoutMs, peekBytes: PEEK_BYTES };
        listener = new addon.WorkerListener!(options, (fd, peeked) => onConnection({ fd, peeked }));
        unwatch = watchAcceptFailures(() => listener?.stats());
        return listener.address();
      }
      if (message.type === 'unlisten') return close();
      if (message.type === 'listener-stats') return listener?.stats();
      throw new Error(`worker listener has no request ${message.type}`);
    },
    close,
  };
}
