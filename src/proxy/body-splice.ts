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
 * kernel. Below it, setting a transfer up (two dups, a pipe, a thread hop and
 * a report back) costs about what the two copies it saves do.
 */
export const SPLICE_MIN_BYTES = 128 * 1024;

/** Whether this process can splice bodies at all (the addon is loaded and has transfers). */
export function bodySpliceAvailable(): boolean {
  return typeof platform().addon?.spliceBody === 'function';
}

export interface BodySplice {
  /** Stops a waiting or running transfer; its report (if any) is not delivered. */
  cancel(): void;
}

/**
 * Once `client` has nothing left to write, moves `bytes` from `upstream` to
 * it. `onDone` is called once with the outcome, or with null when the addon
 * refused (e.g. out of fds): the caller then relays the body itself. The
 * caller has paused `upstream` and writes nothing to `client` until then.
 */
export function spliceBody(
  upstream: net.Socket,
  client: net.Socket,
  bytes: number,
  idleTimeoutMs: number,
  onDone: (result: TunnelResult | null, error?: Error) => void,
): BodySplice {
  const addon = platform().addon!;
  let state: 'waiting' | 'running' | 'ended' = 'waiting';
  let id = 0;
  const start = (): void => {
    if (state !== 'waiting') return;
    const from = spliceableFd(upstream);
    const to = spliceableFd(client);
    if (from < 0 || to < 0) {
      state = 'ended';
      return onDone({ bytesAtoB: 0, bytesBtoA: 0, reason: 'closed' });
    }
    try {
      id = addon.spliceBody(from, to, bytes, idleTimeoutMs, (result) => {
        if (state !== 'running') return;
        state = 'ended';
        onDone(result);
      });
      state = 'running';
    } catch (err) {
      state = 'ended';
      onDone(null, err as Error);
    }
  };
  // Everything written before (the head, the first body bytes) must be in the kernel first.
  whenFlushed(client, start);
  return {
    cancel() {
      if (state === 'running') addon.closeTunnel(id);
      state = 'ended';
    },
  };
}
