/**
 * How zproxy ends HTTP/2 streams, both on the listener (client streams) and
 * towards h2c/h2 upstreams.
 *
 * A reset must never be preceded by END_STREAM. node:http2's
 * `Http2Stream.close(code)` ends the writable side first when it is still
 * open, and the stream's `_final` then shuts it down: nghttp2 sends an empty
 * DATA frame with END_STREAM, and node flushes pending frames before the
 * RST_STREAM (Http2Stream::SubmitRstStream). The peer saw a complete-looking
 * message (a truncated response "ending" cleanly, or a truncated upload)
 * followed by a reset it ignores on a closed stream. `resetStream` takes
 * both routes away on the stream being reset: it replaces the stream's
 * `_final` with one that does not shut the writable side down (so a write
 * still in flight, once done, finishes the stream without END_STREAM), and
 * marks the writable side as ending, so node's closeStream skips its own
 * `end()` (and the 'aborted' event, which stays the sign of a reset by the
 * peer). Whatever DATA nghttp2 already holds still goes first, then
 * RST_STREAM, and no END_STREAM at all.
 *
 * A stream answered while its request body is still arriving (an early error,
 * a direct answer, an upstream that answered before reading the upload) is
 * ended with `endAnswered`: the response ends with END_STREAM and is followed
 * by RST_STREAM NO_ERROR, as RFC 9113 §8.1 allows and nginx does, so the
 * client stops sending and the stream's flow-control window no longer holds
 * the connection's.
 */
import http2, { type Http2Stream } from 'node:http2';

const { NGHTTP2_NO_ERROR } = http2.constants;

interface WritableInternals {
  _final?: (callback: (err?: Error | null) => void) => void;
  _writableState?: { ending: boolean };
}

/** A `_final` that leaves the writable side open: no END_STREAM. */
function finalWithoutEnd(callback: (err?: Error | null) => void): void {
  callback();
}

/** Resets `stream` with `code`; DATA already queued goes first, END_STREAM never. */
export function resetStream(stream: Http2Stream, code: number): void {
  if (stream.destroyed || stream.closed) return;
  const internals = stream as unknown as WritableInternals;
  internals._final = finalWithoutEnd;
  const state = internals._writableState;
  if (state && !state.ending) state.ending = true;
  stream.close(code);
}

/**
 * Whether an 'end' event of `stream` stands for the peer's END_STREAM. node
 * also ends the readable side of a stream it closes on a reset (either way)
 * or destroys with its session: that 'end' must not be passed on as the end
 * of a body (an upload cut short would look complete upstream).
 */
export function endedByPeer(stream: Http2Stream): boolean {
  if (stream.aborted) return false;
  return !stream.closed || (stream.rstCode ?? NGHTTP2_NO_ERROR) === NGHTTP2_NO_ERROR;
}

/** Whether our side may still send on `stream` (not reset, closed or ended). */
export function streamWritable(stream: Http2Stream): boolean {
  return !stream.destroyed && !stream.closed && !stream.writableEnded;
}

/**
 * Whether the peer has finished sending on `stream` (END_STREAM or a reset
 * received, or the stream is gone): nghttp2's own view, not whether anybody
 * has read the data yet.
 */
export function remoteDone(stream: Http2Stream): boolean {
  // The cheap answers first: a request without a body (END_STREAM on its HEADERS), or a body read to its end.
  if (stream.endAfterHeaders || stream.readableEnded || stream.destroyed || stream.closed) return true;
  try {
    return stream.state.remoteClose === 1;
  } catch {
    return true;
  }
}

/**
 * The response on `stream` is complete (its END_STREAM queued): if the
 * request body is still arriving, follow the response with RST_STREAM
 * NO_ERROR once it has been sent.
 */
export function endAnswered(stream: Http2Stream): void {
  if (!remoteDone(stream)) stream.close(NGHTTP2_NO_ERROR);
}
