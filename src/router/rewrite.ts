/**
 * The path sent upstream: the normalised request path, with the matched
 * prefix removed (`strip_prefix`) or replaced (`rewrite`), then the query.
 */
import type { RouteHit } from './compile';

/** `/*` (the rest with its "/"), a bare `*` (the rest without it), or `:name`. */
const CAPTURE = /\/?\*|:[A-Za-z_][A-Za-z0-9_]*/g;

/**
 * `query` is with its "?" (or ""), passed on as it came. The rest of the
 * path below `matchedPrefix` follows the replacement unless the rewrite
 * template places it with `*`. The path that was routed cannot climb above
 * the replacement: it holds no dot-segment, not even behind an escaped
 * slash (request-path.ts).
 */
export function upstreamPath(match: RouteHit, query: string): string {
  const path = match.path;
  const rest = path.slice(match.matchedPrefix.length);
  let upstream = path;
  if (match.route.rewrite !== undefined) upstream = applyTemplate(match.route.rewrite, match.params, rest);
  else if (match.route.strip_prefix) upstream = rest === '' ? '/' : rest;
  return upstream + query;
}

function applyTemplate(template: string, params: Readonly<Record<string, string>>, rest: string): string {
  let placedRest = false;
  const replaced = template.replace(CAPTURE, (token) => {
    if (token.endsWith('*')) {
      placedRest = true;
      return token === '/*' ? rest : rest.slice(1);
    }
    return params[token.slice(1)] ?? token;
  });
  const path = placedRest ? replaced : joinPath(replaced, rest);
  return path.startsWith('/') ? path : '/' + path;
}

function joinPath(head: string, rest: string): string {
  return head.endsWith('/') && rest.startsWith('/') ? head + rest.slice(1) : head + rest;
}
