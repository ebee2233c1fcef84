/**
 * What the addon's splice primitives need from a JS socket: its fd, and a
 * moment when everything JS queued on it is in the kernel.
 */
import type net from 'node:net';
import { TLSSocket } from 'node:tls';
import { platform } from '../native/platform';

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

/** The addon's send(2) on an fd, or null without the addon. */
let sendOnFd: ((fd: number, data: Buffer) => number) | null | undefined;

/**
 * Writes `data` to `socket` with one send(2) on its fd when nothing is
 * queued on the socket in user space, so the bytes keep their order and skip
 * Node's stream machinery (a Writable round, a write request, an after-write
 * tick): the common case of a request head or a small response. What the
 * kernel does not take now, a failed send, TLS, or no addon: socket.write(),
 * which also reports errors its usual way. Returns what socket.write would
 * (false: wait for 'drain').
 */
export function writeThrough(socket: net.Socket, data: Buffer): boolean {
  if (sendOnFd === undefined) {
    const addon = platform().addon;
    sendOnFd = addon && typeof addon.writeFd === 'function' ? (fd, bytes) => addon.writeFd(fd, bytes) : null;
  }
  if (sendOnFd !== null && socket.writableLength === 0 && !socket.connecting && !socket.writableCorked && !socket.writableEnded) {
    const fd = spliceableFd(socket);
    if (fd >= 0) {
      const sent = sendOnFd(fd, data);
      if (sent === data.length) return true;
      if (sent > 0) return socket.write(data.subarray(sent));
    }
  }
  return socket.write(data);
}
