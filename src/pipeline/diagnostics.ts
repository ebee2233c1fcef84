/**
 * The observability seam (issue 11): `node:diagnostics_channel` events the
 * metrics and the access log subscribe to, as undici does. Nothing is paid
 * when nobody listens: each publish is behind `hasSubscribers`, and the
 * clock is read only while someone listens to request ends.
 *
 * Channels (each worker thread has its own; subscribe in the worker):
 * - `zproxy:request:start`   `{ request }` — a request head was parsed
 * - `zproxy:request:route`   `{ request }` — a route was chosen (`request.match`)
 * - `zproxy:upstream:connect` `{ address, port, tls }` — a new HTTP/1.1 upstream connection is up
 * - `zproxy:response:head`   `{ request, status }` — the response head leaves
 * - `zproxy:request:end`     `{ request, durationMs }` — the request ended, whatever happened
 *   (`request.status`, `errorCode`, `upstream`, `startedAt`, `upstreamAt`)
 */
import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import type { RequestContext } from './request-context';

export const requestStart = diagnostics.channel('zproxy:request:start');
export const requestRoute = diagnostics.channel('zproxy:request:route');
export const upstreamConnect = diagnostics.channel('zproxy:upstream:connect');
export const responseHead = diagnostics.channel('zproxy:response:head');
export const requestEnd = diagnostics.channel('zproxy:request:end');

/** A request begins: its start time is kept only while request ends are observed. */
export function publishStart(request: RequestContext): void {
  if (requestEnd.hasSubscribers) request.startedAt = performance.now();
  if (requestStart.hasSubscribers) requestStart.publish({ request });
}

export function publishRoute(request: RequestContext): void {
  if (requestRoute.hasSubscribers) requestRoute.publish({ request });
}

export function publishResponseHead(request: RequestContext, status: number): void {
  request.status = status;
  if (responseHead.hasSubscribers) responseHead.publish({ request, status });
}

export function publishEnd(request: RequestContext): void {
  if (!requestEnd.hasSubscribers) return;
  requestEnd.publish({ request, durationMs: request.startedAt === 0 ? 0 : performance.now() - request.startedAt });
}

/** The upstream exchange begins (timed only while request ends are observed). */
export function markUpstream(request: RequestContext): void {
  if (request.startedAt !== 0) request.upstreamAt = performance.now();
}
