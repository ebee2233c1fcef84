/**
 * Least connections: the target with the fewest requests in flight per unit
 * of weight; among equals, the one picked longest ago (round robin).
 *
 * The targets sit in a binary min-heap on (active / weight, last pick),
 * kept in order as they change: a target tells the heap when its `active`
 * count moves (begin/end), and a pick moves the picked target back. So the
 * best target is the root: a pick is O(1) and each change O(log n). When the
 * root is not eligible, a best-first search goes down the heap from it and
 * stops at the first eligible target, visiting only the ineligible ones
 * above it.
 */
import { BalancerBase, type BalancerInput, type BalancerOptions } from './balancer-base';
import type { LoadObserver, Target } from '../upstream/target';

export class LeastConnectionsBalancer extends BalancerBase implements LoadObserver {
  /** Heap of target indices. */
  private readonly heap: Int32Array;
  /** Target index -> its position in the heap. */
  private readonly position: Int32Array;
  /** Target index -> active / weight (exact for equal ratios: division is correctly rounded). */
  private readonly load: Float64Array;
  /** Target index -> pick counter value when last picked. */
  private readonly lastPick: Float64Array;
  /** Heap positions still to visit in a best-first search. */
  private readonly frontier: Int32Array;
  private readonly indexOf = new Map<Target, number>();
  private picks = 0;

  constructor(targets: readonly Target[], options?: BalancerOptions) {
    super(targets, options);
    const n = targets.length;
    this.heap = Int32Array.from(targets.keys());
    this.position = Int32Array.from(targets.keys());
    this.load = Float64Array.from(targets, (t) => t.active / t.weight);
    this.lastPick = new Float64Array(n).map((_, i) => i - n);
    this.frontier = new Int32Array(n + 1);
    targets.forEach((target, index) => this.indexOf.set(target, index));
    for (let p = (n >> 1) - 1; p >= 0; p--) this.siftDown(p);
    for (const target of targets) target.observe(this);
  }

  loadChanged(target: Target): void {
    const index = this.indexOf.get(target);
    if (index === undefined) return;
    this.load[index] = target.active / target.weight;
    this.reposition(this.position[index]);
  }

  protected choose(_request: BalancerInput, exclude: Target | null): Target | null {
    const { heap, frontier } = this;
    let size = 1;
    frontier[0] = 0;
    while (size > 0) {
      let best = 0;
      for (let f = 1; f < size; f++) if (this.before(heap[frontier[f]], heap[frontier[best]])) best = f;
      const at = frontier[best];
      frontier[best] = frontier[--size];
      const index = heap[at];
      if (this.eligible(this.targets[index], exclude)) {
        this.lastPick[index] = ++this.picks;
        this.siftDown(at);
        return this.targets[index];
      }
      const child = 2 * at + 1;
      if (child < heap.length) frontier[size++] = child;
      if (child + 1 < heap.length) frontier[size++] = child + 1;
    }
    return null;
  }

  /** Does target `a` come before target `b`? */
  private before(a: number, b: number): boolean {
    const { load } = this;
    return load[a] < load[b] || (load[a] === load[b] && this.lastPick[a] < this.lastPick[b]);
  }

  private reposition(at: number): void {
    const moved = this.siftUp(at);
    if (moved === at) this.siftDown(at);
  }

  private siftUp(at: number): number {
    const { heap } = this;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (!this.before(heap[at], heap[parent])) break;
      this.swap(at, parent);
      at = parent;
    }
    return at;
  }

  private siftDown(at: number): void {
    const { heap } = this;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= heap.length) return;
      const right = left + 1;
      const child = right < heap.length && this.before(heap[right], heap[left]) ? right : left;
      if (!this.before(heap[child], heap[at])) return;
      this.swap(at, child);
      at = child;
    }
  }

  private swap(i: number, j: number): void {
    const { heap, position } = this;
    const a = heap[i];
    heap[i] = heap[j];
    heap[j] = a;
    position[heap[i]] = i;
    position[heap[j]] = j;
  }
}
