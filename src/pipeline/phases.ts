/**
 * The phase API (issue 11): what a middleware can do to a request, named
 * after the step of the pipeline it runs in, as Pingora's proxy phases and
 * Envoy's filters are — not a generic `next()`:
 *
 * - `onRequest(ctx)`: before anything goes upstream. Return nothing to go
 *   on, an `Answer` to answer the request itself (401, 429, a CORS
 *   preflight), or a promise of either (a Redis round trip, a JWKS fetch):
 *   the request waits, and pipelined requests behind it wait in order.
 * - `onUpstreamRequest(ctx, fields)`: edit the forwarded request's fields.
 * - `onResponse(ctx, response)`: edit the response's status and fields.
 * - `onLog(ctx)`: after the request ended, whatever happened; always runs.
 *
 * A route's phases are resolved once when a config loads (global
 * middlewares first, then the route's own), so the request path never
 * merges lists; a route with no response phases keeps the in-place
 * response path and its speed.
 */
import type { ZproxyError } from '../errors';
import type { RequestContext } from './request-context';
import { mayEditField } from '../http/forwarding-rules';

/** What a request phase answers instead of the upstream. */
export interface Answer {
  status: number;
  headers?: Readonly<Record<string, string>>;
  body?: string | Buffer;
  /** The error this answer reports (a 429's `ZP_ERR_RATE_LIMITED`), for the access log and the metrics. */
  error?: ZproxyError;
}

export type RequestVerdict = Answer | void | undefined;

export interface Middleware {
  /** For logs and `GET /routes` (e.g. `rate_limit`). */
  readonly name: string;
  onRequest?(ctx: RequestContext): RequestVerdict | Promise<RequestVerdict>;
  onUpstreamRequest?(ctx: RequestContext, fields: FieldEdits): void;
  onResponse?(ctx: RequestContext, response: ResponseEdits): void;
  onLog?(ctx: RequestContext): void;
  /**
   * Releases what the middleware holds (a connection, a timer) once no new
   * request can reach it: its config was replaced, or the worker exits.
   * Requests already on their way may still run its other phases.
   */
  close?(): void;
}

/** A field value a middleware may write: no CR, LF or NUL (a header injection otherwise). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Edits to a message's fields, applied when its head is built. Framing,
 * Host and the fields the proxy sets are not a middleware's to change
 * (forwarding-rules.ts); trying throws, and the request gets a 500.
 */
export class FieldEdits {
  /** Lower-case names whose fields are left out. */
  readonly removed = new Set<string>();
  /** Fields added, in order, after those kept. */
  readonly added: Array<[name: string, value: string]> = [];

  /** Replaces every field named `name` with one of this value. */
  set(name: string, value: string): void {
    this.remove(name);
    this.add(name, value);
  }

  add(name: string, value: string): void {
    check(name, value);
    this.added.push([name, value]);
  }

  remove(name: string): void {
    check(name, '');
    const lower = name.toLowerCase();
    this.removed.add(lower);
    for (let i = this.added.length - 1; i >= 0; i--) if (this.added[i][0].toLowerCase() === lower) this.added.splice(i, 1);
  }

  get empty(): boolean {
    return this.removed.size === 0 && this.added.length === 0;
  }
}

function check(name: string, value: string): void {
  if (!FIELD_NAME.test(name)) throw new TypeError(`invalid field name ${JSON.stringify(name)}`);
  if (!FIELD_VALUE.test(value)) throw new TypeError(`invalid value for ${name}: CR, LF and NUL are not allowed`);
  if (!mayEditField(name.toLowerCase())) throw new TypeError(`${name} is the proxy's to set, not a middleware's`);
}

/** The response a response phase sees: its status, which it may change, and its fields. */
export class ResponseEdits extends FieldEdits {
  constructor(
    /** The status the response has now (a phase may set another). */
    public status: number,
  ) {
    super();
  }
}

type OnRequest = NonNullable<Middleware['onRequest']>;
type OnUpstreamRequest = NonNullable<Middleware['onUpstreamRequest']>;
type OnResponse = NonNullable<Middleware['onResponse']>;
type OnLog = NonNullable<Middleware['onLog']>;

/** A route's phases, in the order they run (bound to their middleware). */
export interface RoutePhases {
  readonly onRequest: readonly OnRequest[];
  readonly onUpstreamRequest: readonly OnUpstreamRequest[];
  readonly onResponse: readonly OnResponse[];
  readonly onLog: readonly OnLog[];
  /** The chain, for `GET /routes` and logs. */
  readonly names: readonly string[];
}

export const NO_PHASES: RoutePhases = Object.freeze({ onRequest: [], onUpstreamRequest: [], onResponse: [], onLog: [], names: [] });

/** Resolves a chain of middlewares (global first, then the route's) into its phase lists, once. */
export function resolvePhases(chain: readonly Middleware[]): RoutePhases {
  if (chain.length === 0) return NO_PHASES;
  const bound = <K extends keyof Middleware>(key: K) =>
    chain.filter((m) => typeof m[key] === 'function').map((m) => (m[key] as (...args: never[]) => unknown).bind(m)) as never[];
  return Object.freeze({
    onRequest: bound('onRequest'),
    onUpstreamRequest: bound('onUpstreamRequest'),
    onResponse: bound('onResponse'),
    onLog: bound('onLog'),
    names: chain.map((m) => m.name),
  });
}
