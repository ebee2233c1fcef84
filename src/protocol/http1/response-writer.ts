/**
 * Serialises the responses zproxy makes itself (direct `respond` routes and
 * errors). Static parts are rendered once per route when the config loads.
 */
import { STATUS_CODES } from 'node:http';
import type { DirectResponse } from '../../config/types';
import { errorBody, type ZproxyError } from '../../errors';
import { requestIdText, type RequestId } from '../../util/request-id';

export interface PreparedResponse {
  /** Status line and the configured headers, ending in CRLF. */
  readonly head: string;
  readonly body: Buffer;
}

function statusLine(status: number): string {
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
}

/** Renders a route's `respond` once. */
export function prepareDirectResponse(respond: DirectResponse): PreparedResponse {
  const body = Buffer.from(respond.body, 'utf8');
  let head = statusLine(respond.status);
  for (const [name, value] of Object.entries(respond.headers)) {
    const lower = name.toLowerCase();
    if (lower === 'content-length' || lower === 'connection' || lower === 'transfer-encoding') continue;
    head += `${name}: ${value}\r\n`;
  }
  head += `content-length: ${body.length}\r\n`;
  return { head, body };
}

export interface WriteOptions {
  date: string;
  /** `Connection: close` is sent and the caller closes after the write. */
  close: boolean;
  /** HTTP/1.0 client that asked for keep-alive: say so explicitly. */
  keepAliveHeader: boolean;
  /** HEAD: the head only. */
  headOnly: boolean;
}

/** One write: head, date, connection, body. */
export function renderResponse(prepared: PreparedResponse, options: WriteOptions): Buffer {
  let head = `${prepared.head}date: ${options.date}\r\n`;
  if (options.close) head += 'connection: close\r\n';
  else if (options.keepAliveHeader) head += 'connection: keep-alive\r\n';
  head += '\r\n';
  if (options.headOnly || prepared.body.length === 0) return Buffer.from(head, 'latin1');
  return Buffer.concat([Buffer.from(head, 'latin1'), prepared.body]);
}

/** An error as the client sees it: a small JSON body (SPEC §6). */
export function prepareErrorResponse(error: ZproxyError, id: RequestId, extraHeaders = ''): PreparedResponse {
  const requestId = requestIdText(id);
  const body = Buffer.from(errorBody(error, requestId), 'utf8');
  const head = `${statusLine(error.status)}content-type: application/json\r\ncontent-length: ${body.length}\r\nx-request-id: ${requestId}\r\n${extraHeaders}`;
  return { head, body };
}
