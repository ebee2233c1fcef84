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

const SLASH = 47;
const DOT = 46;
const PERCENT = 37;
const BACKSLASH = 92;

/** Hex digit values by char code (-1 elsewhere). */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let d = 0; d < 10; d++) HEX_VALUE[48 + d] = d;
for (let d = 0; d < 6; d++) HEX_VALUE[65 + d] = HEX_VALUE[97 + d] = 10 + d;
const HEX_UPPER = '0123456789ABCDEF';

/** RFC 3986 §2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
const UNRESERVED = new Uint8Array(128);
for (const c of '-._~0123456789') UNRESERVED[c.charCodeAt(0)] = 1;
for (let c = 65; c <= 90; c++) UNRESERVED[c] = UNRESERVED[c + 32] = 1;

/** What an upstream may take for a slash once it decodes the path (after normaliseSegment: upper-case hex). */
const SLASH_LIKE = /%2F|%5C|\\/;

/**
 * The one normal form routing and forwarding use (README "Routing"):
 * percent-escapes of unreserved characters decoded and the hex of the
 * others in upper case (RFC 3986 §6.2.2.1-2, so `/%61dmin` is `/admin`),
 * repeated slashes merged and dot-segments removed (§5.2.4). A trailing
 * slash is kept; `%2F` stays escaped, inside its segment.
 *
 * Returns null (400) for a path that does not start with "/", climbs above
 * the root (`/a/../../b`), holds a malformed escape, or hides a dot-segment
 * behind an escaped slash (see normaliseSegment).
 */
export function normalisePath(path: string): string | null {
  if (path.charCodeAt(0) !== SLASH) return null;
  if (isNormal(path)) return path;
  const kept: string[] = [];
  let trailingSlash = false;
  for (const raw of path.slice(1).split('/')) {
    trailingSlash = true;
    const segment = normaliseSegment(raw);
    if (segment === null) return null;
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (kept.pop() === undefined) return null;
      continue;
    }
    kept.push(segment);
    trailingSlash = false;
  }
  return '/' + kept.join('/') + (trailingSlash && kept.length > 0 ? '/' : '');
}

/**
 * No `//`, no `/.`, no `%` and no `\`: the path is normal already (one pass,
 * no regex, nothing allocated: the usual request takes this way).
 */
function isNormal(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === SLASH) {
      const next = path.charCodeAt(i + 1);
      if (next === SLASH || next === DOT) return false;
    } else if (c === PERCENT || c === BACKSLASH) return false;
  }
  return true;
}

/**
 * One path segment (no "/") in normal form: escapes of unreserved characters
 * decoded, the others with upper-case hex. Null for a malformed escape, and
 * for a segment that holds a dot-segment once `%2F`, `%5C` or `\` is read as
 * a slash (`..%2F..%2Fadmin`): many upstreams decode those, and there the
 * path would climb above the prefix a `strip_prefix` or `rewrite` put it
 * under. `%2F` between other names (`a%2Fb`) is kept.
 */
export function normaliseSegment(segment: string): string | null {
  let i = segment.indexOf('%');
  if (i < 0 && segment.indexOf('\\') < 0) return segment;
  let out = '';
  let copied = 0;
  for (; i >= 0; i = segment.indexOf('%', copied)) {
    const high = HEX_VALUE[segment.charCodeAt(i + 1)] ?? -1;
    const low = HEX_VALUE[segment.charCodeAt(i + 2)] ?? -1;
    if (high < 0 || low < 0) return null;
    const byte = high * 16 + low;
    out += segment.slice(copied, i) + (UNRESERVED[byte] === 1 ? String.fromCharCode(byte) : '%' + HEX_UPPER[high] + HEX_UPPER[low]);
    copied = i + 3;
  }
  out += segment.slice(copied);
  return SLASH_LIKE.test(out) && hidesDotSegment(out) ? null : out;
}

function hidesDotSegment(segment: string): boolean {
  return segment.split(SLASH_LIKE).some((piece) => piece === '.' || piece === '..');
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
