/**
 * The listener stage: how accepted connections reach the worker threads.
 *
 * Three implementations with one shape:
 * - native: the addon's epoll loop accepts on its own thread, peeks at the
 *   first bytes and hands each fd to the least-loaded worker;
 * - worker listener (native, one worker): that worker's own event loop
 *   accepts and peeks, with no thread in between;
 * - shared listener (pure TypeScript fallback): worker 0 listens, the others
 *   listen on duplicates of its socket, and the kernel picks who accepts.
 * All enforce `max_connections` across all workers.
 */
import type net from 'node:net';
import type { AcceptLoopStats } from '../native/addon-types';

export interface ListenOptions {
  host: string;
  port: number;
  backlog: number;
  maxConnections: number;
  workers: number;
  /** Connections that send nothing for this long are closed before any worker sees them (native only). */
  firstByteTimeoutMs: number;
}

export interface ListenAddress {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

/** Sent to a worker (structured-cloneable) so it can receive its connections. */
export type IntakeDescriptor =
  | { kind: 'native'; loopId: number }
  | { kind: 'worker'; host: string; port: number; backlog: number; maxConnections: number; firstByteTimeoutMs: number }
  | { kind: 'shared'; counters: SharedArrayBuffer; maxConnections: number; fdBudget: number; host: string; port: number; backlog: number };

/** How the main thread asks a worker to do something and waits for the answer. */
export type WorkerRequest = (index: number, message: { type: string; [key: string]: unknown }) => Promise<unknown>;

/** Main-thread side. */
export interface Acceptor {
  readonly kind: 'native' | 'worker' | 'shared';
  readonly intake: IntakeDescriptor;
  /** Starts accepting once every worker has attached its intake. */
  open(request: WorkerRequest): Promise<void>;
  address(): ListenAddress;
  stats(request: WorkerRequest): Promise<AcceptLoopStats>;
  /** Stops accepting and frees the listening socket. */
  close(request: WorkerRequest): Promise<void>;
}

/** A connection as the worker receives it: a socket to make from an fd, or one already made. */
export type IncomingConnection =
  | { fd: number; socket?: undefined; peeked: Buffer | undefined }
  | { fd?: undefined; socket: net.Socket; peeked: undefined };

/** Worker-thread side. */
export interface Intake {
  /** The connection handed over earlier has ended; frees its slot. */
  release(): void;
  /** Answers the main thread's listener requests (worker and shared listeners). */
  handle(message: { type: string; [key: string]: unknown }): Promise<unknown>;
  /** Stops receiving. */
  close(): void;
}
