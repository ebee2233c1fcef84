/**
 * Consumes a request body's bytes by its framing (Content-Length or
 * chunked), with the `max_body_bytes` limit. The caller decides what to do
 * with the bytes (discard for direct responses; forward to an upstream).
 *
 * A forwarded chunked body leaves in zproxy's own framing (chunk-framing.ts):
 * each range of data the decoder finds becomes one chunk, and the trailer
 * section is dropped (as nginx and Envoy do by default), so no chunk size,
 * extension or trailer the client wrote reaches the upstream.
 */
import { ChunkedDecoder } from './chunked';
import { frameChunk, lastChunk } from './chunk-framing';

export type BodyOutcome = { done: false } | { done: true } | { error: 'too_large' | 'bad_chunk'; detail: string };

export class BodyReader {
  private remaining: number;
  private readonly decoder: ChunkedDecoder | null;
  private decodedBytes = 0;
  /** A forwarded chunked body: the chunks framed anew since the last `forwardable`. */
  private framed: Buffer[] | null = null;

  constructor(
    contentLength: number | null,
    chunked: boolean,
    private readonly maxBodyBytes: number | null,
  ) {
    this.remaining = chunked ? 0 : (contentLength ?? 0);
    this.decoder = chunked ? new ChunkedDecoder({ onData: (buf, start, end) => void this.framed?.push(frameChunk(buf, start, end)) }) : null;
  }

  /** The bytes go upstream from now on (see `forwardable`); before, they are discarded. Called before any is consumed. */
  forward(): void {
    if (this.decoder !== null) this.framed = [];
  }

  /**
   * What goes upstream for the bytes `consume` just took from buf[start, end):
   * those bytes (Content-Length; copied when `copy`, as the buffer is reused),
   * or the chunks framed anew, with the last chunk once the body is done.
   * Null when there is nothing to send yet.
   */
  forwardable(buf: Buffer, start: number, end: number, copy: boolean): Buffer | null {
    const framed = this.framed;
    if (framed === null) return copy ? Buffer.from(buf.subarray(start, end)) : buf.subarray(start, end);
    if (this.done) framed.push(lastChunk(null));
    if (framed.length === 0) return null;
    const out = framed.length === 1 ? framed[0] : Buffer.concat(framed);
    framed.length = 0;
    return out;
  }

  /** True when the body is already known to exceed the limit (Content-Length). */
  get declaredTooLarge(): boolean {
    return this.maxBodyBytes !== null && this.decoder === null && this.remaining > this.maxBodyBytes;
  }

  get done(): boolean {
    return this.decoder ? this.decoder.done : this.remaining === 0;
  }

  /**
   * Takes the body's bytes from buf[start, end). Returns how many belong to
   * the body (the rest is the next request) and the outcome so far.
   */
  consume(buf: Buffer, start: number, end: number): { consumed: number; outcome: BodyOutcome } {
    if (!this.decoder) {
      const consumed = Math.min(this.remaining, end - start);
      this.remaining -= consumed;
      return { consumed, outcome: { done: this.remaining === 0 } as BodyOutcome };
    }
    const result = this.decoder.push(buf, start, end);
    if (result.error) return { consumed: result.consumed, outcome: { error: 'bad_chunk', detail: result.error } };
    this.decodedBytes += result.dataBytes;
    if (this.maxBodyBytes !== null && this.decodedBytes > this.maxBodyBytes) {
      return { consumed: result.consumed, outcome: { error: 'too_large', detail: `over ${this.maxBodyBytes} bytes` } };
    }
    return { consumed: result.consumed, outcome: { done: result.done } as BodyOutcome };
  }
}
