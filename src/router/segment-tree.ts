/**
 * A tree of path segments. Each node has literal children (by exact segment),
 * at most one `:param` child, and the routes whose pattern ends at the node
 * (with or without a trailing `*`), in file order.
 */
import { normaliseSegment } from './request-path';

export interface PathPattern {
  /** Pattern segments before a trailing `*`; `:name` for a parameter. */
  segments: string[];
  /** Each parameter's name and the request segment it captures. */
  params: Array<[name: string, segment: number]>;
  wildcard: boolean;
}

/**
 * `/users/:id/*` → segments ["users", ":id"], params [["id", 1]], wildcard.
 * Empty segments are ignored; literal ones are put in the request paths'
 * normal form (`%61pi` is `api`), so that both compare alike.
 */
export function parsePattern(path: string): PathPattern {
  const segments = path
    .split('/')
    .filter((segment) => segment !== '')
    .map((segment) => (segment.startsWith(':') ? segment : (normaliseSegment(segment) ?? segment)));
  const wildcard = segments[segments.length - 1] === '*';
  if (wildcard) segments.pop();
  const params: PathPattern['params'] = [];
  segments.forEach((segment, at) => {
    if (segment.startsWith(':')) params.push([segment.slice(1), at]);
  });
  return { segments, params, wildcard };
}

export class SegmentNode<E> {
  private readonly literals = new Map<string, SegmentNode<E>>();
  private param: SegmentNode<E> | null = null;
  private readonly entries: E[] = [];

  insert(pattern: PathPattern, entry: E): void {
    let node: SegmentNode<E> = this;
    for (const segment of pattern.segments) {
      if (segment.startsWith(':')) {
        node = node.param ??= new SegmentNode<E>();
        continue;
      }
      let child = node.literals.get(segment);
      if (child === undefined) node.literals.set(segment, (child = new SegmentNode<E>()));
      node = child;
    }
    node.entries.push(entry);
  }

  /**
   * The most specific entry that matches `segments` from `at` on and that
   * `accept` takes: deeper first, a literal child before the param child,
   * then this node's own entries in file order. Every entry matches the path
   * at its node and everything below it.
   */
  find(segments: readonly string[], at: number, accept: (entry: E) => boolean): E | null {
    if (at < segments.length) {
      const segment = segments[at];
      const found = this.literals.get(segment)?.find(segments, at + 1, accept) ?? null;
      if (found !== null) return found;
      const inParam = segment !== '' && this.param !== null ? this.param.find(segments, at + 1, accept) : null;
      if (inParam !== null) return inParam;
    }
    for (const entry of this.entries) if (accept(entry)) return entry;
    return null;
  }
}
