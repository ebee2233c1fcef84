/**
 * Consumes a request body's bytes by its framing (Content-Length or
 * chunked), with the `max_body_bytes` limit. The caller decides what to do
 * with the bytes (discard for direct responses; forward to an upstream).
 */
import { ChunkedDecoder } from './chunked';

export type BodyOutcome = { done: false } | { done: true } | { error: 'too_large' | 'bad_chunk'; detail: string };

export class BodyReader {
  private remaining: number;
  private readonly decoder: ChunkedDecoder | null;
  private decodedBytes = 0;

  constructor(
    contentLength: number | null,
    chunked: boolean,
    private readonly maxBodyBytes: number | null,
  ) {
    this.remaining = chunked ? 0 : (contentLength ?? 0);
    this.decoder = chunked ? new ChunkedDecoder() : null;
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
