/**
 * The edit phases run (pipeline/phases.ts): what the upstream-request and
 * response phases of a route change in a message's fields, collected as the
 * message's head is built. A route without such phases makes nothing.
 */
import type { WorkerContext } from '../server/worker-context';
import type { RequestContext } from './request-context';
import { FieldEdits, ResponseEdits } from './phases';

/** The upstream-request phases' edits, or null when the route has none (the usual case: nothing is made). */
export function upstreamEdits(request: RequestContext): FieldEdits | null {
  const phases = request.phases.onUpstreamRequest;
  if (phases.length === 0) return null;
  const edits = new FieldEdits();
  for (let i = 0; i < phases.length; i++) phases[i](request, edits);
  return edits.empty ? null : edits;
}

/**
 * The response phases' edits of a response with `status`, or null when the
 * route has none (the in-place response path stays open). Run by the codec
 * as the response head leaves; a phase that throws is logged and skipped:
 * the upstream's response is already on its way.
 */
export function responseEdits(request: RequestContext, status: number, worker: WorkerContext): ResponseEdits | null {
  const phases = request.phases.onResponse;
  if (phases.length === 0) return null;
  const edits = new ResponseEdits(status);
  for (let i = 0; i < phases.length; i++) {
    try {
      phases[i](request, edits);
    } catch (err) {
      worker.log.error({ err, request_id: request.requestIdText }, 'middleware response phase failed: it is skipped');
    }
  }
  return edits.empty && edits.status === status ? null : edits;
}
