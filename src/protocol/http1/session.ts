/**
 * One HTTP/1.x client connection: reads request heads and bodies in order
 * (pipelined requests are answered in order), routes each request, and
 * answers it. Direct `respond` routes are answered here; everything else
 * gets 404/405 until upstream proxying is wired in.
 *
 * Bytes arrive either straight from the worker's reused read buffer
 * (onread) or as fresh chunks; anything kept across reads is copied.
 */
import { randomUUID } from 'node:crypto';
import type { Connection } from '../../listener/connection';
import type { WorkerContext } from '../../server/worker-context';
import type { ProtocolSession } from '../registry';
import { parseRequestHead, type RequestHead } from './request-head';
import { BodyReader } from './body-reader';
import { prepareDirectResponse, prepareErrorResponse, renderResponse, type PreparedResponse } from './response-writer';
import {
  BadPathError,
  BadRequestError,
  BodyTooLargeError,
  HeadersTooLargeError,
  MethodNotAllowedError,
  NotFoundError,
  RequestTimeoutError,
  ZproxyError,
} from '../../errors';
import type { DirectResponse } from '../../config/types';
import { splitTarget } from '../../router/request-path';

/** Rendered once per `respond` object of the (frozen) config. */
const preparedDirect = new WeakMap<DirectResponse, PreparedResponse>();

function directResponse(respond: DirectResponse): PreparedResponse {
  let prepared = preparedDirect.get(respond);
  if (!prepared) preparedDirect.set(respond, (prepared = prepareDirectResponse(respond)));
  return prepared;
}

/** What the current request will be answered with once its body has been read. */
interface PendingAnswer {
  response: PreparedResponse;
  head: RequestHead;
}

export class Http1Session implements ProtocolSession {
  /** Unparsed bytes kept between reads (a partial head, or pipelined requests). */
  private buffered: Buffer | null = null;
  private body: BodyReader | null = null;
  private answer: PendingAnswer | null = null;
  private closing = false;
  private draining = false;

  constructor(
    private readonly conn: Connection,
    private readonly ctx: WorkerContext,
  ) {}

  onData(buf: Buffer, start: number, end: number): void {
    if (this.closing) return;
    if (this.buffered) {
      const joined = Buffer.concat([this.buffered, buf.subarray(start, end)]);
      this.buffered = null;
      this.process(joined, 0, joined.length);
    } else {
      this.process(buf, start, end);
    }
  }

  onEnd(): void {
    // A client that half-closes mid-request will never finish it.
    if (this.body || this.buffered) return this.conn.close();
    this.conn.socket.end();
  }

  drain(): void {
    this.draining = true;
    if (this.conn.state !== 'active') this.conn.close();
  }

  onHeadTimeout(): void {
    this.fail(new RequestTimeoutError(), randomUUID());
  }

  private process(buf: Buffer, start: number, end: number): void {
    let at = start;
    while (at < end && !this.closing) {
      if (this.body) {
        at = this.readBody(buf, at, end);
        continue;
      }
      this.conn.setReadingHead();
      const parsed = parseRequestHead(buf, at, end, { maxHeaderBytes: this.ctx.config.max_header_bytes });
      if (parsed.kind === 'incomplete') {
        this.buffered = Buffer.from(buf.subarray(at, end));
        return;
      }
      if (parsed.kind === 'error') {
        const error = parsed.status === 431 ? new HeadersTooLargeError() : new BadRequestError(parsed.reason);
        return this.fail(error, randomUUID());
      }
      at = parsed.headEnd;
      this.startRequest(parsed.head);
    }
  }

  private readBody(buf: Buffer, start: number, end: number): number {
    const { consumed, outcome } = this.body!.consume(buf, start, end);
    if ('error' in outcome) {
      const requestId = this.requestIdOf(this.answer!.head);
      const error = outcome.error === 'too_large' ? new BodyTooLargeError(outcome.detail) : new BadRequestError(outcome.detail);
      this.fail(error, requestId);
      return end;
    }
    if (outcome.done) {
      this.body = null;
      this.finishRequest();
    }
    return start + consumed;
  }

  private startRequest(head: RequestHead): void {
    this.conn.setActive();
    const requestId = this.requestIdOf(head);
    const { path } = splitTarget(head.target);
    const match = this.ctx.router.match(head.method, head.host, path, (name) => head.getHeader(name) ?? undefined);
    let response: PreparedResponse;
    if (match.kind === 'bad_path') response = prepareErrorResponse(new BadPathError(), requestId);
    else if (match.kind === 'not_found') response = prepareErrorResponse(new NotFoundError(), requestId);
    else if (match.kind === 'method_not_allowed') {
      response = prepareErrorResponse(new MethodNotAllowedError(), requestId, `allow: ${match.allow.join(', ')}\r\n`);
    } else if (match.route.respond) response = directResponse(match.route.respond);
    else response = prepareErrorResponse(new NotFoundError('upstream proxying is not available yet'), requestId);

    this.answer = { response, head };
    this.body = new BodyReader(head.contentLength, head.chunked, this.ctx.config.max_body_bytes);
    if (this.body.declaredTooLarge) return this.fail(new BodyTooLargeError(), requestId);
    if (this.body.done) {
      this.body = null;
      this.finishRequest();
    } else if (head.expectContinue) {
      this.conn.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
    }
  }

  /** The request was read in full: answer it, then wait for the next one or close. */
  private finishRequest(): void {
    const { response, head } = this.answer!;
    this.answer = null;
    const close = !head.keepAlive || this.draining || this.ctx.draining;
    this.conn.socket.write(
      renderResponse(response, {
        date: this.ctx.httpDate,
        close,
        keepAliveHeader: head.versionMinor === 0,
        headOnly: head.method === 'HEAD',
      }),
    );
    if (close) return this.closeAfterWrite();
    this.conn.setIdle();
  }

  /** Answers with an error and closes this connection only. */
  private fail(error: ZproxyError, requestId: string): void {
    if (this.closing) return;
    this.ctx.log.debug({ code: error.code, remote: this.conn.remoteAddress, detail: error.message }, 'request rejected');
    this.body = null;
    this.answer = null;
    this.buffered = null;
    this.conn.setActive();
    this.conn.socket.write(
      renderResponse(prepareErrorResponse(error, requestId), { date: this.ctx.httpDate, close: true, keepAliveHeader: false, headOnly: false }),
    );
    this.closeAfterWrite();
  }

  private closeAfterWrite(): void {
    this.closing = true;
    this.conn.socket.end();
    // A client that never reads must not hold the connection open.
    this.conn.socket.setTimeout(this.ctx.config.connection_timeout_ms, () => this.conn.close());
  }

  private requestIdOf(head: RequestHead): string {
    return head.getHeader('x-request-id') ?? randomUUID();
  }
}

export function openHttp1Session(conn: Connection, ctx: WorkerContext): ProtocolSession {
  return new Http1Session(conn, ctx);
}
