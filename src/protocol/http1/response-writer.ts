/**
 * Writes the responses zproxy makes itself (pipeline/own-response.ts:
 * errors, `respond` routes, a phase's answer) as HTTP/1.1. The status line
 * and fields of a response are rendered once per response object (a
 * route's `respond` is one object for the life of its config); the Date,
 * the Connection decision and the body are added per write.
 */
import { STATUS_CODES } from 'node:http';
import type { OwnResponse } from '../../pipeline/own-response';

export interface WriteOptions {
  date: string;
  /** `Connection: close` is sent and the caller closes after the write. */
  close: boolean;
  /** HTTP/1.0 client that asked for keep-alive: say so explicitly. */
  keepAliveHeader: boolean;
  /** HEAD: the head only. */
  headOnly: boolean;
}

const renderedHeads = new WeakMap<OwnResponse, string>();

/** Status line, the response's fields and its Content-Length, ending in CRLF. */
function renderedHead(response: OwnResponse): string {
  let head = renderedHeads.get(response);
  if (head === undefined) {
    head = `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? 'Unknown'}\r\n`;
    for (const [name, value] of response.fields) head += `${name}: ${value}\r\n`;
    head += `content-length: ${response.body.length}\r\n`;
    renderedHeads.set(response, head);
  }
  return head;
}

/** One write: head, date, connection, body. */
export function renderOwnResponse(response: OwnResponse, options: WriteOptions): Buffer {
  let head = `${renderedHead(response)}date: ${options.date}\r\n`;
  if (options.close) head += 'connection: close\r\n';
  else if (options.keepAliveHeader) head += 'connection: keep-alive\r\n';
  head += '\r\n';
  if (options.headOnly || response.body.length === 0) return Buffer.from(head, 'latin1');
  return Buffer.concat([Buffer.from(head, 'latin1'), response.body]);
}
