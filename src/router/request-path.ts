/**
 * The request-target as the router sees it: split into path and query, then
 * normalised once so that routing and the upstream see the same path.
 */

export interface RequestTarget {
  /** Starts with "/" for origin- and absolute-form targets; `*` for asterisk-form. */
  path: string;
  /** With its "?" (so an empty query `/p?` survives as "?"); "" when absent. */
  query: string;
  /** The authority of an absolute-form target (`http://host:port/...`), else null. */
  authority: string | null;
}

/** Splits origin-form `/p?q` and absolute-form `http://host/p?q`; drops a `#fragment`. */
export function splitTarget(target: string): RequestTarget {
  let rest = target;
  let authority: string | null = null;
  const scheme = target.charCodeAt(0) === 47 ? -1 : target.indexOf('://');
  if (scheme > 0) {
    const start = scheme + 3;
    const end = target.slice(start).search(/[/?#]/);
    const stop = end === -1 ? target.length : start + end;
    authority = target.slice(start, stop).replace(/^.*@/, '');
    rest = target.slice(stop);
  }
  const hash = rest.indexOf('#');
  if (hash !== -1) rest = rest.slice(0, hash);
  const mark = rest.indexOf('?');
  const path = mark === -1 ? rest : rest.slice(0, mark);
  return { path: path === '' && authority !== null ? '/' : path, query: mark === -1 ? '' : rest.slice(mark), authority };
}

const DOT = /^(?:\.|%2e)$/i;
const DOT_DOT = /^(?:\.|%2e){2}$/i;

/**
 * Merges repeated slashes and removes dot-segments (RFC 3986 §5.2.4, with
 * `%2E` counted as "."). Returns null for a path that does not start with "/"
 * or that climbs above the root (`/a/../../b`). A trailing slash is kept.
 * Other percent-escapes (including `%2F`) are left as they are.
 */
export function normalisePath(path: string): string | null {
  if (path.charCodeAt(0) !== 47) return null;
  if (isNormal(path)) return path;
  const kept: string[] = [];
  let trailingSlash = false;
  for (const segment of path.slice(1).split('/')) {
    trailingSlash = true;
    if (segment === '' || DOT.test(segment)) continue;
    if (DOT_DOT.test(segment)) {
      if (kept.pop() === undefined) return null;
      continue;
    }
    kept.push(segment);
    trailingSlash = false;
  }
  return '/' + kept.join('/') + (trailingSlash && kept.length > 0 ? '/' : '');
}

/** No `//`, no `/.` and no `%2e` in any case: the path is normal already (one pass, no regex). */
function isNormal(path: string): boolean {
  for (let i = 0; i < path.length - 1; i++) {
    const c = path.charCodeAt(i);
    if (c === 47) {
      const next = path.charCodeAt(i + 1);
      if (next === 47 || next === 46) return false;
    } else if (c === 37 && path.charCodeAt(i + 1) === 50 && (path.charCodeAt(i + 2) | 0x20) === 101) return false;
  }
  return true;
}

/** The segments of a normalised path, without the empty one a trailing slash leaves. */
export function pathSegments(normalised: string): string[] {
  let count = 0;
  for (let i = 0; i < normalised.length - 1; i++) if (normalised.charCodeAt(i) === 47) count++;
  // Sized up front: pushing onto [] gives every request a 17-slot backing store.
  const segments = new Array<string>(count);
  for (let start = 1, k = 0; k < count; k++) {
    const slash = normalised.indexOf('/', start);
    const end = slash === -1 ? normalised.length : slash;
    segments[k] = normalised.slice(start, end);
    start = end + 1;
  }
  return segments;
}
