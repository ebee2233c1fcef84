/**
 * What every balancer shares: the targets, the availability test, the
 * `exclude` rule of retries, and the orders of target indices the
 * subclasses walk. A subclass decides one thing: `choose`.
 *
 * A pick reads the clock only when a target is passively ejected (a target
 * that is healthy and not ejected is available at any time), allocates
 * nothing, and creates no closures.
 */
import type { Target } from '../upstream/target';

/** The parts of a request a balancer may look at. */
export interface BalancerInput {
  clientIp: string;
  /** A request header by its lower-case name. */
  getHeader(lowerName: string): string | undefined;
}

export interface BalancerOptions {
  /** Milliseconds, on the clock passed to `Target.recordFailure`. */
  now?: () => number;
  /** In [0, 1), for the random balancer. */
  random?: () => number;
}

export abstract class BalancerBase {
  protected readonly clock: () => number;
  private pickTime = NaN;

  constructor(
    readonly targets: readonly Target[],
    options: BalancerOptions = {},
  ) {
    if (targets.length === 0) throw new TypeError('a balancer needs at least one target');
    this.clock = options.now ?? Date.now;
  }

  /**
   * The target for this request, never `exclude` (the target a retry must
   * avoid) unless it is the only one available; null when none is available.
   */
  pick(request: BalancerInput, exclude: Target | null = null): Target | null {
    this.pickTime = NaN;
    const chosen = this.choose(request, exclude);
    if (chosen !== null || exclude === null) return chosen;
    return this.eligible(exclude, null) ? exclude : null;
  }

  /** The target for this request among the eligible ones (available, not `exclude`), or null. */
  protected abstract choose(request: BalancerInput, exclude: Target | null): Target | null;

  protected eligible(target: Target, exclude: Target | null): boolean {
    if (target === exclude) return false;
    if (target.serving) return true;
    if (this.pickTime !== this.pickTime) this.pickTime = this.clock();
    return target.available(this.pickTime);
  }

  /**
   * The first position at or after `start` (wrapping) whose target is
   * eligible, or -1: the way every balancer skips unavailable targets.
   */
  protected scan(order: Int32Array, start: number, exclude: Target | null): number {
    const length = order.length;
    for (let step = 0, position = start; step < length; step++, position = position + 1 === length ? 0 : position + 1) {
      if (this.eligible(this.targets[order[position]], exclude)) return position;
    }
    return -1;
  }
}

/** Is `a` less loaded than `b`: fewer requests in flight per unit of weight? */
export function lighter(a: Target, b: Target): boolean {
  return a.active * b.weight < b.active * a.weight;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** The weights divided by their greatest common divisor (5/1/1 stays, 10/2/2 becomes 5/1/1). */
export function reducedWeights(targets: readonly Target[]): number[] {
  const divisor = targets.reduce((g, t) => gcd(g, t.weight), 0);
  return targets.map((t) => t.weight / divisor);
}

/** Each target's index repeated by its reduced weight: a uniform draw from it is a weighted draw. */
export function weightSlots(targets: readonly Target[]): Int32Array {
  const weights = reducedWeights(targets);
  const slots = new Int32Array(weights.reduce((sum, w) => sum + w, 0));
  let at = 0;
  weights.forEach((w, index) => slots.fill(index, at, (at += w)));
  return slots;
}
