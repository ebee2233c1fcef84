/**
 * Smooth weighted round robin as nginx does it (ngx_http_upstream_round_robin):
 * each round every target gains its weight, the richest is picked and pays
 * the total. Weights 5/1/1 give a a b a c a a. The sequence repeats every
 * sum-of-reduced-weights picks, so it is computed once and a pick is one step
 * along it. An unavailable target's slots are skipped and the walk resumes
 * after the slot taken, so over a cycle each available target still gets
 * exactly its weight's share; a pick costs one step plus the skipped slots.
 */
import { BalancerBase, reducedWeights, type BalancerInput, type BalancerOptions } from './balancer-base';
import type { Target } from '../upstream/target';

/** The nginx smooth weighted round-robin sequence over one full cycle. */
export function smoothSchedule(weights: readonly number[]): Int32Array {
  const total = weights.reduce((sum, w) => sum + w, 0);
  const current = weights.map(() => 0);
  const schedule = new Int32Array(total);
  for (let step = 0; step < total; step++) {
    let best = 0;
    for (let i = 0; i < weights.length; i++) {
      current[i] += weights[i];
      if (current[i] > current[best]) best = i;
    }
    current[best] -= total;
    schedule[step] = best;
  }
  return schedule;
}

export class RoundRobinBalancer extends BalancerBase {
  private readonly schedule: Int32Array;
  private cursor = 0;

  constructor(targets: readonly Target[], options?: BalancerOptions) {
    super(targets, options);
    this.schedule = smoothSchedule(reducedWeights(targets));
  }

  protected choose(_request: BalancerInput, exclude: Target | null): Target | null {
    const position = this.scan(this.schedule, this.cursor, exclude);
    if (position === -1) return null;
    this.cursor = position + 1 === this.schedule.length ? 0 : position + 1;
    return this.targets[this.schedule[position]];
  }
}
