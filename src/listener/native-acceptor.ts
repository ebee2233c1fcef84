/**
 * The addon's accept loop (see native/accept_loop.h): binds here in the main
 * thread, accepts on a native thread, peeks, and delivers each fd to the
 * worker with the fewest active connections.
 */
import type { RawAddon, RawAcceptLoop, RawWorkerAttachment } from '../native/addon-types';
import type { Acceptor, IncomingConnection, Intake, ListenOptions } from './acceptor';
import { watchAcceptFailures } from './resource-watch';

/** Enough bytes to tell the HTTP/2 preface from anything else. */
export const PEEK_BYTES = 24;
/** Deliveries queued per worker before the acceptor tries another worker. */
const QUEUE_SIZE = 256;

export function createNativeAcceptor(addon: RawAddon, options: ListenOptions): Acceptor {
  const loop: RawAcceptLoop = new addon.AcceptLoop({
    host: options.host,
    port: options.port,
    backlog: options.backlog,
    maxConnections: options.maxConnections,
    workers: options.workers,
    peekTimeoutMs: options.firstByteTimeoutMs,
    peekBytes: PEEK_BYTES,
    queueSize: QUEUE_SIZE,
  });
  let unwatch: (() => void) | undefined;
  return {
    kind: 'native',
    intake: { kind: 'native', loopId: loop.id },
    async open() {
      loop.start();
      unwatch = watchAcceptFailures(() => loop.stats());
    },
    address: () => loop.address(),
    stats: async () => loop.stats(),
    async close() {
      unwatch?.();
      loop.stop();
    },
  };
}

export function attachNativeIntake(addon: RawAddon, loopId: number, index: number, onConnection: (c: IncomingConnection) => void): Intake {
  const attachment: RawWorkerAttachment = addon.attachWorker(loopId, index, (fd, peeked) => onConnection({ fd, peeked }));
  return {
    release: () => attachment.release(),
    handle: async (message) => {
      throw new Error(`native intake has no request ${message.type}`);
    },
    close: () => attachment.detach(),
  };
}
