/**
 * An HTTP/2 stream as the client side of a proxy exchange to an HTTP/1.1
 * upstream: the response head becomes HEADERS, the body DATA (a chunked
 * body arrives decoded; its trailers are sent as HTTP/2 trailers), and a
 * response that breaks off resets the stream, leaving the connection's
 * other streams alone.
 */
import http2, { type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { BodyFraming, ResponseHead } from '../http1/response-head';
import type { MessageHead } from '../http1/field-lines';
import { COPY_BODY_MAX_BYTES, type ClientSide } from '../../pipeline/client-side';
import { errorBody, type ZproxyError } from '../../errors';
import { h2ResponseHeaders, h2Trailers } from './translate';
import type { OwnResponse } from '../../pipeline/own-response';

/** respond() options, made once. */
const NO_BODY = { endStream: true };
const BODY = { endStream: false };
const BODY_AND_TRAILERS = { endStream: false, waitForTrailers: true };

export class H2ClientSide implements ClientSide {
  /** The trailers a chunked response ended with, sent when the stream asks for them. */
  private trailers: MessageHead | null = null;

  constructor(
    protected readonly stream: ServerHttp2Stream,
    protected readonly requestId: string,
  ) {}

  /** The HTTP/2 fields of a relayed response head (a subclass may edit them). */
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
    if (this.stream.destroyed) return;
    this.stream.additionalHeaders(h2ResponseHeaders(head, this.requestId));
  }

  sendResponseHead(head: ResponseHead, framing: BodyFraming): void {
    if (this.stream.destroyed) return;
    const chunked = framing === 'chunked';
    this.stream.respond(this.responseHeaders(head), framing === 'none' ? NO_BODY : chunked ? BODY_AND_TRAILERS : BODY);
    if (chunked) this.stream.once('wantTrailers', () => this.stream.sendTrailers(h2Trailers(this.trailers)));
  }

  sendBody(buf: Buffer, start: number, end: number, onFlushed: () => void): number {
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
    this.trailers = trailers;
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
  }

  exchangeFailed(error: ZproxyError): void {
    respondError(this.stream, error, this.requestId);
  }

  abort(): void {
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  }
}

/** A JSON error response on a stream (SPEC §6), or a reset when the head already went. */
export function respondError(stream: ServerHttp2Stream, error: ZproxyError, requestId: string, extra: Record<string, string> = {}): void {
  if (stream.destroyed) return;
  if (stream.headersSent) return stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  const body = errorBody(error, requestId);
  stream.respond({ ':status': error.status, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': requestId, ...extra });
  stream.end(body);
}

/** zproxy's own response (an error, a `respond` route, a phase's answer) on a stream. */
export function respondOwn(stream: ServerHttp2Stream, response: OwnResponse, method: string): void {
  if (stream.destroyed) return;
  if (stream.headersSent) return stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  const headers: OutgoingHttpHeaders = { ':status': response.status };
  for (const [name, value] of response.fields) {
    const lower = name.toLowerCase();
    const prior = headers[lower];
    headers[lower] = prior === undefined ? value : ([] as string[]).concat(prior as string | string[], value);
  }
  headers['content-length'] = response.body.length;
  stream.respond(headers);
  stream.end(method === 'HEAD' ? undefined : response.body);
}
