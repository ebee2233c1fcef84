/**
 * Power of two random choices: draw two different targets at random, in
 * proportion to their weights, and take the one with fewer requests in
 * flight per unit of weight (a second draw of the same target is replaced by
 * a uniform draw among the others). O(1): a draw is an index into the weight slots.
 * If neither draw is available, the first available target after a random
 * slot is taken.
 */
import { BalancerBase, lighter, weightSlots, type BalancerInput, type BalancerOptions } from './balancer-base';
import type { Target } from '../upstream/target';

export class RandomBalancer extends BalancerBase {
  private readonly slots: Int32Array;
  private readonly random: () => number;

  constructor(targets: readonly Target[], options: BalancerOptions = {}) {
    super(targets, options);
    this.slots = weightSlots(targets);
    this.random = options.random ?? Math.random;
  }

  protected choose(_request: BalancerInput, exclude: Target | null): Target | null {
    const { slots, targets } = this;
    const first = slots[(this.random() * slots.length) | 0];
    let second = slots[(this.random() * slots.length) | 0];
    if (second === first && targets.length > 1) second = (first + 1 + ((this.random() * (targets.length - 1)) | 0)) % targets.length;
    const a = targets[first];
    const b = targets[second];
    const useA = this.eligible(a, exclude);
    const useB = this.eligible(b, exclude);
    if (useA && useB) return lighter(b, a) ? b : a;
    if (useA || useB) return useA ? a : b;
    const position = this.scan(slots, (this.random() * slots.length) | 0, exclude);
    return position === -1 ? null : targets[slots[position]];
  }
}
