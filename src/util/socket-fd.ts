/**
 * What the addon's splice primitives need from a JS socket: its fd, and a
 * moment when everything JS queued on it is in the kernel.
 */
import type net from 'node:net';
import { TLSSocket } from 'node:tls';

/** The fd of a live plain TCP socket, or -1 (TLS: the bytes on the wire are not the payload; or no libuv handle). */
export function spliceableFd(socket: net.Socket): number {
  if (socket instanceof TLSSocket || socket.destroyed) return -1;
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

const EMPTY = Buffer.alloc(0);

/** Calls back once `socket` has no unwritten bytes (at once when it has none; after an error or destroy too). */
export function whenFlushed(socket: net.Socket, callback: () => void): void {
  if (socket.writableLength === 0 || socket.destroyed) return callback();
  socket.write(EMPTY, () => callback());
}
