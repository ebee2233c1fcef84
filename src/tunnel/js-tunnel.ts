/**
 * The JavaScript tunnel: the fallback of the splice tunnel (no addon,
 * ZPROXY_NO_NATIVE=1, or a TLS socket on either side), with the same
 * behaviour: bytes both ways with backpressure, an end on one side passed
 * on as a half-close of the other, an error or a close on either side
 * closing both, and the idle timeout.
 *
 * The sockets' owners keep reading them (the client connection, the upstream
 * connection) and push each read in with `fromA`/`fromB`: the client's
 * bytes may sit in the worker's shared read buffer (`copy`), the upstream's
 * in its connection's own buffer, reused on the next read. So a source is
 * paused while its destination still holds unflushed bytes of it.
 */
import type net from 'node:net';
import type { TunnelResult } from '../native/addon-types';

interface Direction {
  readonly src: net.Socket;
  readonly dst: net.Socket;
  bytes: number;
  /** The source is paused until `dst` has flushed everything. */
  paused: boolean;
  /** The source ended; the end was passed on to `dst`. */
  ended: boolean;
  readonly onWritten: () => void;
}

export class JsTunnel {
  private readonly ab: Direction;
  private readonly ba: Direction;
  private lastActive = Date.now();
  private idleTimer: NodeJS.Timeout | null = null;
  private done = false;

  constructor(
    private readonly a: net.Socket,
    private readonly b: net.Socket,
    private readonly idleTimeoutMs: number,
    private readonly onClose: (result: TunnelResult) => void,
  ) {
    this.ab = this.direction(a, b);
    this.ba = this.direction(b, a);
    for (const socket of [a, b]) {
      // A half-close is passed on, never answered by Node with its own end.
      socket.allowHalfOpen = true;
      socket.on('error', this.onError);
      socket.once('close', this.onSocketClose);
    }
    a.once('end', () => this.onEnd(this.ab));
    b.once('end', () => this.onEnd(this.ba));
    if (idleTimeoutMs > 0) this.armIdle(idleTimeoutMs);
  }

  /** Bytes read from A (`copy`: they live in memory other reads reuse at once). */
  fromA(buf: Buffer, start: number, end: number, copy: boolean): void {
    this.forward(this.ab, buf, start, end, copy);
  }

  fromB(buf: Buffer, start: number, end: number, copy: boolean): void {
    this.forward(this.ba, buf, start, end, copy);
  }

  /** Reading starts (both sources may have been paused while the upgrade was pending). */
  start(): void {
    if (this.done) return;
    if (!this.ab.paused && !this.ab.ended) this.a.resume();
    if (!this.ba.paused && !this.ba.ended) this.b.resume();
  }

  /** A side had ended before the tunnel existed. */
  endedA(): void {
    this.onEnd(this.ab);
  }

  endedB(): void {
    this.onEnd(this.ba);
  }

  /** Closes both sides (drain timeout, worker exit). */
  close(): void {
    this.finish('closed');
  }

  private direction(src: net.Socket, dst: net.Socket): Direction {
    const dir: Direction = {
      src,
      dst,
      bytes: 0,
      paused: false,
      ended: false,
      onWritten: () => {
        if (!dir.paused || this.done || dst.writableLength > 0) return;
        dir.paused = false;
        src.resume();
      },
    };
    return dir;
  }

  private forward(dir: Direction, buf: Buffer, start: number, end: number, copy: boolean): void {
    if (this.done || end <= start) return;
    const chunk = copy ? Buffer.from(buf.subarray(start, end)) : buf.subarray(start, end);
    this.lastActive = Date.now();
    dir.bytes += chunk.length;
    dir.dst.write(chunk, dir.onWritten);
    if (dir.dst.writableLength > 0 && !dir.paused) {
      dir.paused = true;
      dir.src.pause();
    }
  }

  private onEnd(dir: Direction): void {
    if (this.done || dir.ended) return;
    dir.ended = true;
    // end() waits for the queued writes, then shuts the write side down.
    dir.dst.end();
  }

  private readonly onError = (err: Error): void => {
    this.finish('error', (err as NodeJS.ErrnoException).code ?? err.message);
  };

  private readonly onSocketClose = (): void => {
    if (this.done) return;
    // Both ends passed on: the other socket finishes (and closes) by itself.
    if (this.ab.ended && this.ba.ended) {
      if (this.a.destroyed && this.b.destroyed) this.finish('eof');
      return;
    }
    this.finish('closed');
  };

  private armIdle(delay: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.done) return;
      const quiet = Date.now() - this.lastActive;
      if (quiet >= this.idleTimeoutMs) return this.finish('idle');
      this.armIdle(this.idleTimeoutMs - quiet);
    }, delay);
    this.idleTimer.unref();
  }

  private finish(reason: TunnelResult['reason'], error?: string): void {
    if (this.done) return;
    this.done = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.a.destroy();
    this.b.destroy();
    const result: TunnelResult = { bytesAtoB: this.ab.bytes, bytesBtoA: this.ba.bytes, reason };
    if (error !== undefined) result.error = error;
    this.onClose(result);
  }
}
