/**
 * zproxy's own view of a byte stream a client sends on one connection: the
 * messages its HTTP/1 codec accepts (parseRequestHead, the body framing, the
 * router, the upstream path), in order, up to the first it rejects — what
 * the upstream-view property test (forwarding-property.test.ts) expects an
 * upstream to receive, and nothing more. It reads the built modules in
 * dist/, so it is zproxy's parse by construction; it mirrors the session's
 * decisions (Http1Session.startRequest) on what is forwarded, answered
 * directly, or rejected.
 */
import { parseRequestHead } from '../../dist/protocol/http1/request-head';
import { ChunkedDecoder } from '../../dist/protocol/http1/chunked';
import { compileRoutes, type Router } from '../../dist/router/compile';
import { splitTarget } from '../../dist/router/request-path';
import { upstreamPath } from '../../dist/router/rewrite';
import { validateConfig } from '../../dist/index';
import { detectProtocol } from '../../dist/protocol/detect';

export type ViewedRequest =
  /** Forwarded upstream: what the upstream must see (method, target, decoded body). */
  | { kind: 'forward'; method: string; target: string; body: Buffer }
  /** Answered by zproxy itself (404, 405, a `respond` route, a bad path): nothing goes upstream. */
  | { kind: 'direct'; method: string; status: number }
  /** Rejected (400, 431, 505...): answered, the connection closes, nothing of it goes upstream. */
  | { kind: 'reject'; status: number };

export interface StreamView {
  requests: ViewedRequest[];
  /** The stream ended inside a message: zproxy waits for more (nothing is answered for it). */
  incomplete: boolean;
  /** zproxy closes the connection after the last answer (a rejection, or a request without keep-alive). */
  closes: boolean;
}

export class ZproxyView {
  private readonly router: Router;

  constructor(
    config: Record<string, unknown>,
    private readonly maxHeaderBytes = 65536,
  ) {
    const result = validateConfig(config);
    if ('errors' in result) throw new Error(result.errors.join('\n'));
    this.router = compileRoutes(result.config.routes);
  }

  /** What zproxy makes of `bytes` sent on one connection. */
  read(bytes: Buffer): StreamView {
    const requests: ViewedRequest[] = [];
    // Bytes that do not start like an HTTP/1 request are closed unanswered (SPEC §7).
    if (detectProtocol(bytes) === 'unknown') return { requests, incomplete: false, closes: true };
    let at = 0;
    while (at < bytes.length) {
      const parsed = parseRequestHead(bytes, at, bytes.length, { maxHeaderBytes: this.maxHeaderBytes });
      if (parsed.kind === 'incomplete') return { requests, incomplete: true, closes: false };
      if (parsed.kind === 'error') {
        requests.push({ kind: 'reject', status: parsed.status });
        return { requests, incomplete: false, closes: true };
      }
      const head = parsed.head;
      const body = readBody(bytes, parsed.headEnd, head.contentLength, head.chunked);
      const { path, query } = splitTarget(head.target);
      const match = this.router.match(head.method, head.host, path, (name) => head.getHeader(name) ?? undefined);
      if (body.kind === 'incomplete') return { requests, incomplete: true, closes: false };
      if (body.kind === 'error') {
        // A forwarded request's head and first bytes may have gone; the upstream never sees it complete.
        requests.push({ kind: 'reject', status: 400 });
        return { requests, incomplete: false, closes: true };
      }
      at = body.end;
      if (match.kind === 'route' && match.route.upstream) {
        requests.push({ kind: 'forward', method: head.method, target: upstreamPath(match, query), body: body.data });
      } else {
        const status = match.kind === 'bad_path' ? 400 : match.kind === 'not_found' ? 404 : match.kind === 'method_not_allowed' ? 405 : match.route.respond!.status;
        requests.push({ kind: 'direct', method: head.method, status });
      }
      if (!head.keepAlive) return { requests, incomplete: false, closes: true };
    }
    return { requests, incomplete: false, closes: false };
  }
}

type BodyRead = { kind: 'done'; data: Buffer; end: number } | { kind: 'incomplete' } | { kind: 'error' };

function readBody(bytes: Buffer, start: number, contentLength: number | null, chunked: boolean): BodyRead {
  if (!chunked) {
    const length = contentLength ?? 0;
    if (bytes.length - start < length) return { kind: 'incomplete' };
    return { kind: 'done', data: Buffer.from(bytes.subarray(start, start + length)), end: start + length };
  }
  const data: Buffer[] = [];
  const decoder = new ChunkedDecoder({ onData: (buf, s, e) => void data.push(Buffer.from(buf.subarray(s, e))) });
  const result = decoder.push(bytes, start, bytes.length);
  if (result.error) return { kind: 'error' };
  if (!result.done) return { kind: 'incomplete' };
  return { kind: 'done', data: Buffer.concat(data), end: start + result.consumed };
}
