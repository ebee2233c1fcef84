/**
 * The seed's extension point: protocol handlers by name. The connection
 * detects what a client speaks and asks this registry for a session; a
 * protocol that is unregistered or left out of `protocols` is refused.
 */
import type net from 'node:net';
import type { Connection } from '../listener/connection';
import type { WorkerContext } from '../server/worker-context';

/** One connection's protocol state machine. Bytes are valid only during the call: copy what you keep. */
export interface ProtocolSession {
  onData(buf: Buffer, start: number, end: number): void;
  /** The client half-closed its side. */
  onEnd(): void;
  /** The worker drains: finish what is in flight, then close. */
  drain(): void;
  /** The connection's head timeout fired while a request head was partly received. */
  onHeadTimeout(): void;
  /** The socket closed (either side): stop everything in flight. */
  onClose(): void;
  /** A request body is being read from the client (and zproxy has not paused reading it): its arrival is timed. */
  readonly awaitingBody?: boolean;
  /** The request body stopped arriving for `client_body_timeout_ms`. */
  onBodyTimeout?(): void;
}

export interface ProtocolHandler {
  readonly name: string;
  /** Whether this config lets the listener accept the protocol. */
  enabled(ctx: WorkerContext): boolean;
  open(conn: Connection, ctx: WorkerContext): ProtocolSession;
  /**
   * Takes a socket another layer already set up, such as a TLS socket whose
   * ALPN chose this protocol (optional: HTTP/1 runs its session on it instead).
   */
  adoptSocket?(socket: net.Socket): void;
}

const handlers = new Map<string, ProtocolHandler>();

export function registerProtocol(handler: ProtocolHandler): void {
  handlers.set(handler.name, handler);
}

export function protocolHandler(name: string): ProtocolHandler | undefined {
  return handlers.get(name);
}
