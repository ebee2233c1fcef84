/**
 * The responses zproxy makes itself — an error (SPEC §6), a route's
 * `respond`, a phase's answer (401, 429, a CORS preflight) — in one shape
 * that each codec writes in its own wire format (HTTP/1: response-writer.ts,
 * HTTP/2: h2-client-side.ts). Framing is the codec's (Content-Length from
 * the body), never the config's or a middleware's.
 */
import type { DirectResponse } from '../config/types';
import { errorBody, type ZproxyError } from '../errors';
import { requestIdText, type RequestId } from '../util/request-id';
import { mayEditField } from '../http/forwarding-rules';
import type { Answer } from './phases';

export type Field = readonly [name: string, value: string];

export interface OwnResponse {
  readonly status: number;
  /** Fields in order, names as written (framing and hop-by-hop fields never appear). */
  readonly fields: readonly Field[];
  readonly body: Buffer;
  /** The error this response reports, or null. */
  readonly error: ZproxyError | null;
}

/** An error as the client sees it: a small JSON body with the request id (SPEC §6). */
export function errorResponse(error: ZproxyError, requestId: RequestId, extra: readonly Field[] = []): OwnResponse {
  const id = requestIdText(requestId);
  return {
    status: error.status,
    fields: [['content-type', 'application/json'], ['x-request-id', id], ...extra],
    body: Buffer.from(errorBody(error, id), 'utf8'),
    error,
  };
}

/** Made once per `respond` object of the (frozen) config. */
const routeResponses = new WeakMap<DirectResponse, OwnResponse>();

export function routeResponse(respond: DirectResponse): OwnResponse {
  let response = routeResponses.get(respond);
  if (response === undefined) routeResponses.set(respond, (response = ownResponse(respond.status, respond.headers, respond.body)));
  return response;
}

/** A phase's answer; fields the proxy owns (framing, connection) are left out. */
export function phaseResponse(answer: Answer): OwnResponse {
  return ownResponse(answer.status, answer.headers ?? {}, answer.body ?? '', answer.error ?? null);
}

function ownResponse(status: number, headers: Readonly<Record<string, string>>, body: string | Buffer, error: ZproxyError | null = null): OwnResponse {
  const fields = Object.entries(headers).filter(([name]) => mayEditField(name.toLowerCase()) || name.toLowerCase() === 'x-request-id');
  return Object.freeze({ status, fields: Object.freeze(fields), body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body, error });
}

/** `response` with a response phase's edits applied (its status, and fields removed or added). */
export function editedResponse(response: OwnResponse, edits: { status: number; removed: ReadonlySet<string>; added: ReadonlyArray<readonly [string, string]> }): OwnResponse {
  const fields = response.fields.filter(([name]) => !edits.removed.has(name.toLowerCase()));
  return { status: edits.status, fields: [...fields, ...edits.added], body: response.body, error: response.error };
}
