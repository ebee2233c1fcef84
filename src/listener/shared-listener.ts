/**
 * The pure TypeScript fallback of the accept loop.
 *
 * Node 20 cannot move a socket between threads nor open SO_REUSEPORT
 * sockets, so worker 0 binds the listening socket and the other workers
 * listen on their own duplicates of its fd (`fd-duplicate.ts`); the kernel
 * wakes them all and one accepts. The
 * spread is the kernel's, not load-aware, and there is no peeking: this is
 * the path for correctness where the addon cannot run, not for speed.
 *
 * `max_connections` holds across workers through shared counters: a worker
 * that accepts while the process is full keeps the socket paused (unread)
 * until a slot frees, which to the client looks like waiting in the backlog.
 *
 * libuv cannot stop accepting, and under EMFILE several threads accepting on
 * one socket can lose their reserve fds and spin. So the fallback never lets
 * the process run out: it holds at most `fdBudget` client sockets (from
 * RLIMIT_NOFILE), and closes connections accepted beyond it at once.
 */
import net from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import type { AcceptLoopStats } from '../native/addon-types';
import type { Acceptor, IncomingConnection, Intake, IntakeDescriptor, ListenAddress, ListenOptions } from './acceptor';
import { logger } from '../util/log';
import { duplicateListeningSocket } from './fd-duplicate';

const ACTIVE = 0;
const ACCEPTED = 1;
const PAUSED_FULL = 2;
const RESOURCE_ERRORS = 3;
const WAITING = 4;
const PER_WORKER = 5;
/** How often a worker holding waiting sockets looks for a slot freed by another worker. */
const WAITING_POLL_MS = 20;
/** File descriptors kept free for each worker's own needs (event loop, upstreams). */
const FDS_PER_WORKER = 8;

/**
 * Client sockets this process may hold: half of what RLIMIT_NOFILE leaves
 * (the other half is for upstream connections). Infinity where unknown.
 */
export function clientFdBudget(workers: number): number {
  try {
    const limit = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!limit) return Infinity;
    const free = Number(limit[1]) - readdirSync('/proc/self/fd').length - FDS_PER_WORKER * (workers + 1);
    return Math.max(1, Math.floor(free / 2));
  } catch {
    return Infinity;
  }
}

export function createSharedListenerAcceptor(options: ListenOptions): Acceptor {
  const counters = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * (PER_WORKER + options.workers));
  const view = new Int32Array(counters);
  let bound: ListenAddress | undefined;
  return {
    kind: 'shared',
    intake: {
      kind: 'shared',
      counters,
      maxConnections: options.maxConnections,
      fdBudget: clientFdBudget(options.workers),
      host: options.host,
      port: options.port,
      backlog: options.backlog,
    },
    async open(request) {
      const first = (await request(0, { type: 'listen' })) as { fd: number; address: ListenAddress };
      bound = first.address;
      for (let i = 1; i < options.workers; i++) await request(i, { type: 'listen', fd: first.fd });
    },
    address() {
      if (!bound) throw new Error('the listener is not open');
      return bound;
    },
    stats: async (): Promise<AcceptLoopStats> => ({
      active: Array.from(view.subarray(PER_WORKER)),
      pending: Atomics.load(view, WAITING),
      accepted: Atomics.load(view, ACCEPTED),
      closedEarly: 0,
      resourceErrors: Atomics.load(view, RESOURCE_ERRORS),
      pausedFull: Atomics.load(view, PAUSED_FULL),
    }),
    async close(request) {
      await Promise.all(Array.from({ length: options.workers }, (_, i) => request(i, { type: 'unlisten' })));
    },
  };
}

export function attachSharedListenerIntake(
  descriptor: Extract<IntakeDescriptor, { kind: 'shared' }>,
  index: number,
  onConnection: (c: IncomingConnection) => void,
): Intake {
  const view = new Int32Array(descriptor.counters);
  const servedAtOnce = Math.min(descriptor.maxConnections, descriptor.fdBudget);
  const waiting: net.Socket[] = [];
  let pollTimer: NodeJS.Timeout | undefined;
  // noDelay: as the addon's listeners do (TCP_NODELAY), or a response written in two parts waits for the client's delayed ACK.
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true });

  function reserveSlot(): boolean {
    for (;;) {
      const active = Atomics.load(view, ACTIVE);
      if (active >= servedAtOnce) return false;
      if (Atomics.compareExchange(view, ACTIVE, active, active + 1) === active) return true;
    }
  }

  function admit(socket: net.Socket): void {
    Atomics.add(view, PER_WORKER + index, 1);
    onConnection({ socket, peeked: undefined });
  }

  function admitWaiting(): void {
    while (waiting.length > 0 && reserveSlot()) {
      Atomics.sub(view, WAITING, 1);
      admit(waiting.shift()!);
    }
    if (waiting.length === 0 && pollTimer) {
      clearInterval(pollTimer);
      pollTimer = undefined;
    } else if (waiting.length > 0 && !pollTimer) {
      pollTimer = setInterval(admitWaiting, WAITING_POLL_MS);
    }
  }

  server.on('connection', (socket) => {
    Atomics.add(view, ACCEPTED, 1);
    if (waiting.length === 0 && reserveSlot()) return admit(socket);
    // Waiting sockets hold fds too: past the budget, close at once.
    const held = Atomics.load(view, ACTIVE) + Atomics.load(view, WAITING);
    if (waiting.length >= descriptor.backlog || held >= descriptor.fdBudget) return void socket.destroy();
    if (waiting.length === 0) Atomics.add(view, PAUSED_FULL, 1);
    Atomics.add(view, WAITING, 1);
    waiting.push(socket);
    admitWaiting();
  });
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EMFILE' || err.code === 'ENFILE') Atomics.add(view, RESOURCE_ERRORS, 1);
    logger().warn({ err, worker: index }, 'accept failed');
  });

  async function listen(fd: number | undefined): Promise<unknown> {
    const duplicate = fd === undefined ? undefined : await duplicateListeningSocket(fd);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      const onListening = () => {
        server.off('error', reject);
        const handle = (server as unknown as { _handle: { fd: number } })._handle;
        resolve({ fd: handle.fd, address: server.address() });
      };
      if (fd === undefined) server.listen({ host: descriptor.host, port: descriptor.port, backlog: descriptor.backlog, exclusive: true }, onListening);
      else server.listen(duplicate, descriptor.backlog, onListening);
    });
  }

  function unlisten(): void {
    if (server.listening) server.close();
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = undefined;
    const dropped = waiting.splice(0);
    Atomics.sub(view, WAITING, dropped.length);
    for (const socket of dropped) socket.destroy();
  }

  return {
    release() {
      Atomics.sub(view, ACTIVE, 1);
      Atomics.sub(view, PER_WORKER + index, 1);
      admitWaiting();
    },
    async handle(message) {
      if (message.type === 'listen') return listen(message.fd as number | undefined);
      if (message.type === 'unlisten') return unlisten();
      throw new Error(`shared listener has no request ${message.type}`);
    },
    close: unlisten,
  };
}
