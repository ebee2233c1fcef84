/**
 * An HTTP/2 stream as the client side of a proxy exchange to an HTTP/1.1
 * upstream: the response head becomes HEADERS, the body DATA (a chunked
 * body arrives decoded; its trailers are sent as HTTP/2 trailers), and a
 * response that breaks off resets the stream (RST_STREAM, never END_STREAM:
 * see stream-end.ts), leaving the connection's other streams alone.
 *
 * A response head HTTP/2 cannot express (a single-value field repeated with
 * different values, see translate.ts) is answered 502 and the upstream
 * request is cancelled; trailers that cannot be expressed reset the stream.
 * A response that completes while the request body is still arriving is
 * followed by RST_STREAM NO_ERROR (stream-end.ts `endAnswered`).
 */
import http2, { type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Logger } from '../../util/log';
import type { BodyFraming, ResponseHead } from '../http1/response-head';
import type { MessageHead } from '../http1/field-lines';
import { COPY_BODY_MAX_BYTES, type ClientSide } from '../../pipeline/client-side';
import { errorBody, UpstreamBadResponseError, type ZproxyError } from '../../errors';
import { h2ResponseHeaders, h2Trailers } from './translate';
import { endAnswered, resetStream } from './stream-end';
import type { OwnResponse } from '../../pipeline/own-response';

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
  /** The trailers a chunked response ended with, sent when the stream asks for them. */
  private trailers: MessageHead | null = null;
  /** The exchange feeding this side, cancelled when its response cannot be relayed. */
  private exchange: Cancellable | null = null;
  /** The response could not be relayed (answered 502 or reset instead): the rest of the exchange is ignored. */
  private failed = false;

  constructor(
    protected readonly stream: ServerHttp2Stream,
    protected readonly requestId: string,
    protected readonly log: Logger,
  ) {}

  attach(exchange: Cancellable): void {
    this.exchange = exchange;
  }

  /** The HTTP/2 fields of a relayed response head (a subclass may edit them; throws what translate.ts refuses). */
  protected responseHeaders(head: ResponseHead): OutgoingHttpHeaders {
    return h2ResponseHeaders(head, this.requestId);
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
    if (this.closedOrFailed()) return;
    try {
      this.stream.additionalHeaders(h2ResponseHeaders(head, this.requestId));
    } catch (err) {
      // An informational response is only a hint: one that cannot be expressed is left out.
      this.log.debug({ err, status: head.status }, 'HTTP/2: interim response not relayed');
    }
  }

  sendResponseHead(head: ResponseHead, framing: BodyFraming): void {
    if (this.closedOrFailed()) return;
    const chunked = framing === 'chunked';
    try {
      this.stream.respond(this.responseHeaders(head), framing === 'none' ? NO_BODY : chunked ? BODY_AND_TRAILERS : BODY);
    } catch (err) {
      return this.cannotRelay(err as Error, head.status);
    }
    if (chunked) this.stream.once('wantTrailers', () => this.sendTrailers());
  }

  sendBody(buf: Buffer, start: number, end: number, onFlushed: () => void): number {
    if (this.closedOrFailed()) return 0;
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

  exchangeDone(trailers: MessageHead | null): void {
    if (this.closedOrFailed()) return;
    this.trailers = trailers;
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

  private closedOrFailed(): boolean {
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
    if (this.closedOrFailed()) return;
    try {
      this.stream.sendTrailers(h2Trailers(this.trailers));
    } catch (err) {
      // The body went out but its trailers cannot: the message is incomplete, so the stream is reset.
      this.failed = true;
      this.log.warn({ err, requestId: this.requestId }, 'HTTP/2: upstream trailers cannot be relayed; stream reset');
      resetStream(this.stream, NGHTTP2_INTERNAL_ERROR);
    }
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

/** zproxy's own response (an error, a `respond` route, a phase's answer) on a stream; a body still arriving is cut short after it. */
export function respondOwn(stream: ServerHttp2Stream, response: OwnResponse, method: string): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) return resetStream(stream, NGHTTP2_INTERNAL_ERROR);
  const headers: OutgoingHttpHeaders = { ':status': response.status };
  for (const [name, value] of response.fields) {
    const lower = name.toLowerCase();
    const prior = headers[lower];
    headers[lower] = prior === undefined ? value : ([] as string[]).concat(prior as string | string[], value);
  }
  headers['content-length'] = response.body.length;
  stream.respond(headers);
  stream.end(method === 'HEAD' ? undefined : response.body);
  endAnswered(stream);
}
