/**
 * An HTTP/2 stream as the client side of a proxy exchange to an HTTP/1.1
 * upstream: the response head becomes HEADERS, the body DATA (chunked
 * bodies de-chunked, their trailers sent as HTTP/2 trailers), and a
 * response that breaks off resets the stream (RST_STREAM, never END_STREAM:
 * see stream-end.ts), leaving the connection's other streams alone.
 *
 * A response head HTTP/2 cannot express (a single-value field repeated with
 * different values, see translate.ts) is answered 502 and the upstream
 * request is cancelled; trailers that cannot be expressed reset the stream.
 * A response that completes while the request body is still arriving is
 * followed by RST_STREAM NO_ERROR (stream-end.ts `endAnswered`).
 */
import http2, { type ServerHttp2Stream } from 'node:http2';
import type { Logger } from '../../util/log';
import { ChunkedDecoder } from '../http1/chunked';
import type { BodyFraming, ResponseHead } from '../http1/response-head';
import { COPY_BODY_MAX_BYTES, type ClientSide } from '../../proxy/proxy-exchange';
import { errorBody, UpstreamBadResponseError, type ZproxyError } from '../../errors';
import { h2ResponseHeaders, h2Trailers } from './translate';
import { endAnswered, resetStream } from './stream-end';

/** respond() options, made once. */
const NO_BODY = { endStream: true };
const BODY = { endStream: false };
const BODY_AND_TRAILERS = { endStream: false, waitForTrailers: true };
const { NGHTTP2_INTERNAL_ERROR } = http2.constants;

/** What the client side may cancel when the response cannot be relayed (the exchange's abort). */
export interface Cancellable {
  abort(): void;
}

export class H2ClientSide implements ClientSide {
  private decoder: ChunkedDecoder | null = null;
  private flushed: (() => void) | null = null;
  private writes = 0;
  /** The exchange feeding this side, cancelled when its response cannot be relayed. */
  private exchange: Cancellable | null = null;
  /** The response could not be relayed (answered 502 or reset instead): the rest of the exchange is ignored. */
  private failed = false;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly requestId: string,
    private readonly log: Logger,
  ) {}

  attach(exchange: Cancellable): void {
    this.exchange = exchange;
  }

  get pendingBytes(): number {
    return this.stream.writableLength;
  }

  pauseReading(): void {
    this.stream.pause();
  }

  resumeReading(): void {
    this.stream.resume();
  }

  sendInterim(head: ResponseHead): void {
    if (this.gone()) return;
    try {
      this.stream.additionalHeaders(h2ResponseHeaders(head, this.requestId));
    } catch (err) {
      // An informational response is only a hint: one that cannot be expressed is left out.
      this.log.debug({ err, status: head.status }, 'HTTP/2: interim response not relayed');
    }
  }

  sendResponseHead(head: ResponseHead, framing: BodyFraming): void {
    if (this.gone()) return;
    const chunked = framing === 'chunked';
    try {
      this.stream.respond(h2ResponseHeaders(head, this.requestId), framing === 'none' ? NO_BODY : chunked ? BODY_AND_TRAILERS : BODY);
    } catch (err) {
      return this.cannotRelay(err as Error, head.status);
    }
    if (chunked) {
      this.decoder = new ChunkedDecoder({ onData: (buf, start, end) => this.writeData(buf.subarray(start, end)) });
      this.stream.once('wantTrailers', () => this.sendTrailers());
    }
  }

  sendBody(buf: Buffer, start: number, end: number, onFlushed: () => void): number {
    if (this.gone()) return 0;
    if (!this.decoder) {
      // HTTP/2 DATA always leaves later (nghttp2 pulls it), so a relayed chunk
      // pauses the upstream connection until then: two epoll_ctl and a resume
      // per response. A small chunk for a client that keeps up is copied
      // instead; behind a slow client, relays pause as usual.
      if (end - start <= COPY_BODY_MAX_BYTES && this.stream.writableLength === 0) {
        this.stream.write(Buffer.from(buf.subarray(start, end)));
        return 0;
      }
      this.stream.write(buf.subarray(start, end), onFlushed);
      return 1;
    }
    this.flushed = onFlushed;
    this.writes = 0;
    this.decoder.push(buf, start, end);
    return this.writes;
  }

  exchangeDone(): void {
    if (this.gone()) return;
    if (!this.stream.writableEnded) this.stream.end();
    endAnswered(this.stream);
  }

  exchangeFailed(error: ZproxyError): void {
    if (this.failed) return;
    respondError(this.stream, error, this.requestId);
  }

  abort(): void {
    if (this.failed) return;
    resetStream(this.stream, NGHTTP2_INTERNAL_ERROR);
  }

  private gone(): boolean {
    return this.failed || this.stream.destroyed || this.stream.closed;
  }

  /** The upstream's head cannot go out on HTTP/2: 502, and the upstream request is cancelled. */
  private cannotRelay(err: Error, status: number): void {
    this.failed = true;
    this.log.warn({ err, status, requestId: this.requestId }, 'HTTP/2: upstream response cannot be relayed; answered 502');
    this.exchange?.abort();
    respondError(this.stream, new UpstreamBadResponseError(err.message), this.requestId);
  }

  private sendTrailers(): void {
    if (this.gone()) return;
    try {
      this.stream.sendTrailers(h2Trailers(this.decoder?.trailers ?? null));
    } catch (err) {
      // The body went out but its trailers cannot: the message is incomplete, so the stream is reset.
      this.failed = true;
      this.log.warn({ err, requestId: this.requestId }, 'HTTP/2: upstream trailers cannot be relayed; stream reset');
      resetStream(this.stream, NGHTTP2_INTERNAL_ERROR);
    }
  }

  private writeData(data: Buffer): void {
    this.stream.write(data, this.flushed!);
    this.writes++;
  }
}

/**
 * A JSON error response on a stream (SPEC §6), or a reset when the head
 * already went; a request body still arriving is then cut short with
 * RST_STREAM NO_ERROR after the response.
 */
export function respondError(stream: ServerHttp2Stream, error: ZproxyError, requestId: string, extra: Record<string, string> = {}): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) return resetStream(stream, NGHTTP2_INTERNAL_ERROR);
  const body = errorBody(error, requestId);
  stream.respond({ ':status': error.status, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': requestId, ...extra });
  stream.end(body);
  endAnswered(stream);
}
