/**
 * A JS socket as the addon's fd primitives see it: its fd, a moment when
 * everything JS queued on it is in the kernel (splice tunnels and body
 * transfers), and a write straight to the fd when nothing is queued.
 */
import type net from 'node:net';
import { TLSSocket } from 'node:tls';
import { platform } from '../native/platform';
import type { RawAddon } from '../native/addon-types';

interface LibuvHandle {
  fd?: number;
}

/** What a socket's fd was read from, and the fd: `_handle.fd` is a call into C++ on every read. */
interface FdCache {
  handle: LibuvHandle;
  fd: number;
}

const FD_CACHE = Symbol('zproxy.fd');

/** The fd of a live plain TCP socket, or -1 (TLS: the bytes on the wire are not the payload; or no libuv handle). */
export function spliceableFd(socket: net.Socket): number {
  if (socket.destroyed) return -1;
  const carrier = socket as unknown as { _handle?: LibuvHandle | null; [FD_CACHE]?: FdCache };
  const handle = carrier._handle;
  if (!handle) return -1;
  const cached = carrier[FD_CACHE];
  // Checked against the handle: a socket connected again gets a new one, with a new fd.
  if (cached !== undefined && cached.handle === handle) return cached.fd;
  const fd = socket instanceof TLSSocket ? -1 : handle.fd;
  if (typeof fd !== 'number' || fd < 0) return -1;
  carrier[FD_CACHE] = { handle, fd };
  return fd;
}

const EMPTY = Buffer.alloc(0);

/** Calls back once `socket` has no unwritten bytes (at once when it has none; after an error or destroy too). */
export function whenFlushed(socket: net.Socket, callback: () => void): void {
  if (socket.writableLength === 0 || socket.destroyed) return callback();
  socket.write(EMPTY, () => callback());
}

/** The addon when it can send on an fd; null without it (looked up on first use). */
let sender: RawAddon | null | undefined;

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
  return send(socket, data, 0, data.length, false);
}

/**
 * writeThrough for `data[start, end)` of a buffer that is reused as soon as
 * this returns (a message built in place): whatever the kernel does not
 * take at once is copied before it is queued.
 */
export function writeThroughReused(socket: net.Socket, data: Buffer, start: number, end: number): boolean {
  return send(socket, data, start, end, true);
}

function send(socket: net.Socket, data: Buffer, start: number, end: number, reused: boolean): boolean {
  if (sender === undefined) {
    const current = platform();
    sender = current.capabilities.fdWrite ? current.addon : null;
  }
  let sent = 0;
  if (sender !== null && socket.writableLength === 0 && !socket.connecting && !socket.writableCorked && !socket.writableEnded) {
    const fd = spliceableFd(socket);
    if (fd >= 0) {
      sent = Math.max(0, sender.writeFd(fd, data, start, end));
      if (sent === end - start) return true;
    }
  }
  if (sent === 0 && start === 0 && end === data.length && !reused) return socket.write(data);
  const rest = data.subarray(start + sent, end);
  return socket.write(reused ? Buffer.from(rest) : rest);
}
