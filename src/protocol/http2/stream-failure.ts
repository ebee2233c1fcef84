/**
 * A stream whose handling throws (a bug) ends that stream, never the
 * session or the worker: logged, a 500 while no response head went, else a
 * reset, and whatever the stream fed (the upstream request) cancelled.
 */
import type { ServerHttp2Stream } from 'node:http2';
import type { WorkerContext } from '../../server/worker-context';
import { InternalError } from '../../errors';
import { respondError } from './h2-client-side';

/** What to stop when the stream closes (the listener's one 'close' listener calls it). */
export interface StreamCloser {
  abort(): void;
}

/** An exception escaped one of the stream's callbacks: logged, and the stream ends, with `cancel` cancelled. */
export function failStream(ctx: WorkerContext, stream: ServerHttp2Stream, requestId: string, err: unknown, cancel?: StreamCloser): void {
  ctx.log.error({ err, requestId }, 'HTTP/2 stream handling failed');
  try {
    cancel?.abort();
  } catch (abortErr) {
    ctx.log.error({ err: abortErr, requestId }, 'HTTP/2 stream handling failed while cancelling');
  }
  try {
    respondError(stream, new InternalError(), requestId);
  } catch {
    if (!stream.destroyed) stream.destroy();
  }
}

/** `fn` as a stream callback that cannot leave the stream open by throwing. */
export function guarded<A extends unknown[]>(ctx: WorkerContext, stream: ServerHttp2Stream, requestId: string, cancel: StreamCloser | undefined, fn: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      failStream(ctx, stream, requestId, err, cancel);
    }
  };
}
