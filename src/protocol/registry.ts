/**
 * The seed's extension point: protocol handlers by name. The connection
 * detects what a client speaks and asks this registry for a session; a
 * protocol that is unregistered or left out of `protocols` is refused.
 *
 * With `tls.enabled` the listener serves TLS only (SPEC §6, as nginx's
 * `listen ... ssl`): what the first bytes show in clear is not served.
 * Cleartext HTTP/1 goes to the `plain-http-on-tls` handler, which answers
 * 400 and closes; anything else in clear (h2c prior knowledge) is closed.
 * HTTP/1 and HTTP/2 are still served inside TLS, chosen by ALPN.
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

/** Cleartext HTTP/1 on a TLS listener (see the file comment). */
export const PLAIN_HTTP_ON_TLS = 'plain-http-on-tls';

/** The handler for a protocol detected from a connection's first bytes on the listener, or undefined: close it. */
export function listenerHandler(kind: string, ctx: WorkerContext): ProtocolHandler | undefined {
  const name = !ctx.config.tls.enabled || kind === 'tls' ? kind : kind === 'http1' ? PLAIN_HTTP_ON_TLS : undefined;
  const handler = name === undefined ? undefined : handlers.get(name);
  return handler !== undefined && handler.enabled(ctx) ? handler : undefined;
}
