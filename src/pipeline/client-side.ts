/**
 * What a proxy exchange (proxy/) sees of the client: the protocol session
 * that asked — an HTTP/1 connection, or an HTTP/2 stream — which owns the
 * client's wire format and connection decisions. The codecs implement it;
 * the exchanges only call it, so neither imports the other.
 */
import type net from 'node:net';
import type { ResponseHead, BodyFraming } from '../protocol/http1/response-head';
import type { MessageHead } from '../protocol/http1/field-lines';
import type { TunnelUpgrade } from '../tunnel/upgrade';
import type { RequestId } from '../util/request-id';
import type { ZproxyError } from '../errors';

/**
 * Response body chunks up to this size may be copied by a client side
 * (sendBody returning 0): the upstream's buffer is free at once and the
 * upstream need not pause; larger ones are relayed from that buffer.
 */
export const COPY_BODY_MAX_BYTES = 16 * 1024;

export interface ClientSide {
  /** Bytes written to the client and not yet flushed. */
  readonly pendingBytes: number;
  pauseReading(): void;
  resumeReading(): void;
  /** A 1xx response other than 100 and 101. */
  sendInterim(head: ResponseHead): void;
  /** The final response head; `requestComplete` says whether the whole request body was read. */
  sendResponseHead(head: ResponseHead, framing: BodyFraming, requestId: RequestId, requestComplete: boolean): void;
  /**
   * Response body bytes without the upstream's framing (the client side
   * writes its own), living in the upstream connection's buffer. Returns how
   * many writes will call `onFlushed` once the client no longer needs that
   * memory (0: the bytes were copied).
   */
  sendBody(buf: Buffer, start: number, end: number, onFlushed: () => void): number;
  /** An upstream read was fully relayed: write anything held back to join it. */
  flush?(): void;
  /**
   * The client socket the rest of a response body may be spliced into (see
   * body-splice.ts), with anything held back written first; null when the
   * body must pass through JS (TLS, a changed framing, closing).
   */
  spliceTarget?(): net.Socket | null;
  /** The response is complete; `trailers`: a chunked body's trailer section, if any. */
  exchangeDone(trailers: MessageHead | null): void;
  /** The exchange failed before any response byte: answer with `error`; close the connection if `close`. */
  exchangeFailed(error: ZproxyError, close: boolean): void;
  /** The response broke off midway: the only honest signal left is closing the connection. */
  abort(): void;
  /** The upstream accepted the upgrade (101): relay it and tunnel (only asked of sides that send upgrades). */
  switchProtocols?(upgrade: TunnelUpgrade): void;
}

/** What a codec holds of the exchange carrying its request: where the request body goes, and how to cancel it. */
export interface ExchangeHandle {
  /** Raw request body bytes, framing included, in memory the exchange may keep. */
  sendBody(chunk: Buffer): void;
  requestBodyDone(): void;
  /** The client went away: cancel the upstream request. */
  abort(): void;
}
