/**
 * The rest of a large response body moved in the kernel: when a
 * length-framed body still has SPLICE_MIN_BYTES to come and both sockets are
 * plain TCP, the addon's tunnel thread splices exactly those bytes from the
 * upstream socket to the client's (addon spliceBody), so they are never
 * copied into JS and out again. Both sockets stay JS's: the upstream one is
 * paused meanwhile, the client one keeps reading (pipelined requests) and is
 * not written to until the report. Then the exchange ends as if the bytes
 * had been relayed, and the upstream connection goes back to its pool.
 *
 * Nothing of this runs without the addon, nor over TLS, nor for chunked or
 * read-until-close bodies: those are relayed by JS as before.
 */
import type net from 'node:net';
import { spliceableFd, whenFlushed } from '../util/socket-fd';
import { platform } from '../native/platform';
import type { TunnelResult } from '../native/addon-types';

/**
 * Bodies with at least this much left after the first read go through the
 * kernel. Measured on loopback with 16 keep-alive clients, proxy CPU per
 * response, transfer against the JS relay: about even for 256 KiB bodies,
 * 0.8× at 512 KiB, 0.67× at 768 KiB, 0.7× at 1 MiB. Below this, setting a
 * transfer up (two dups, a pipe, a thread hop and a report back) costs about
 * what the copies it saves do.
 */
export const SPLICE_MIN_BYTES = 256 * 1024;

/** Whether this process can splice bodies at all (the addon is loaded and has transfers). */
export function bodySpliceAvailable(): boolean {
  return platform().capabilities.bodySplice;
}

/**
 * Once the client socket has nothing left to write, moves `bytes` from the
 * upstream socket to it. `onDone` is called once, never from start(): with
 * the outcome, or with null when no transfer ran (the caller then relays the
 * body itself): `error` when the addon refused (e.g. out of fds), none when
 * a socket was already gone (its own close handling takes over). The caller
 * has paused the upstream socket and writes nothing to the client until then.
 */
export class BodySplice {
  private state: 'new' | 'waiting' | 'running' | 'ended' = 'new';
  private id = 0;

  constructor(
    private readonly upstream: net.Socket,
    private readonly client: net.Socket,
    private readonly bytes: number,
    private readonly idleTimeoutMs: number,
    private readonly onDone: (result: TunnelResult | null, error?: Error) => void,
    /** The transfer runs: its idle timeout bounds it from now on. */
    private readonly onRunning: () => void,
  ) {}

  start(): void {
    if (this.state !== 'new') return;
    this.state = 'waiting';
    // Everything written before (the head, the first body bytes) must be in the kernel first.
    whenFlushed(this.client, () => queueMicrotask(() => this.transfer()));
  }

  /** Stops a waiting or running transfer; its report is not delivered. */
  cancel(): void {
    if (this.state === 'running') platform().addon!.closeTunnel(this.id);
    this.state = 'ended';
  }

  private transfer(): void {
    if (this.state !== 'waiting') return;
    const from = spliceableFd(this.upstream);
    const to = spliceableFd(this.client);
    if (from < 0 || to < 0) return this.end(null);
    try {
      this.id = platform().addon!.spliceBody(from, to, this.bytes, this.idleTimeoutMs, (result) => {
        if (this.state === 'running') this.end(result);
      });
      this.state = 'running';
      this.onRunning();
    } catch (err) {
      this.end(null, err as Error);
    }
  }

  private end(result: TunnelResult | null, error?: Error): void {
    this.state = 'ended';
    this.onDone(result, error);
  }
}
