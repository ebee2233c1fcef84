/**
 * The rate limit's rule: GCRA (the generic cell rate algorithm), the exact
 * equivalent of a token bucket of `burst` tokens refilled at
 * `requests_per_minute`, kept as one number per key — the bucket's
 * theoretical arrival time (TAT): the moment it would be full again. One
 * number is what makes the stores simple: a shared-memory slot holds it
 * under a lock (memory-store.ts), and Redis holds it in one key updated by
 * one script (redis-store.ts, whose Lua mirrors `take` below line for line).
 *
 * A request at `now` is allowed when taking one more interval keeps the
 * bucket within its capacity (`burst` intervals ahead of now); a bucket
 * whose TAT is in the past is simply full, so an idle bucket and no bucket
 * are the same thing (what lets the memory store reuse idle slots freely).
 * A clock that steps back can leave a TAT further ahead than any request
 * could have put it: it counts as an empty bucket, never as a longer ban.
 */

/** One decision, as the client is told about it (RateLimit-* fields, Retry-After). */
export class Decision {
  constructor(
    readonly allowed: boolean,
    /** Requests left in the bucket after this one. */
    readonly remaining: number,
    /** Until the bucket is full again, in ms. */
    readonly resetMs: number,
    /** Until a refused request would be allowed, in ms (0 when allowed). */
    readonly retryMs: number,
  ) {}
}

export class Gcra {
  /** Time to earn one request back, in ms. */
  readonly intervalMs: number;
  /** How far ahead of now a TAT may go: `burst` intervals. */
  readonly capacityMs: number;
  /**
   * Rounding allowance on comparisons: TATs are ms since 1970 in doubles
   * (steps of 2.4e-4 ms, which is why validation keeps an interval at
   * 0.01 ms or more), and sums of fractional intervals (60000 / 7 ms)
   * must not refuse the last request of a burst by a rounding error. At
   * most 1 ms, and never half an interval, so it can never allow a whole
   * extra request.
   */
  readonly slackMs: number;

  constructor(
    requestsPerMinute: number,
    readonly burst: number,
  ) {
    this.intervalMs = 60_000 / requestsPerMinute;
    this.capacityMs = this.intervalMs * burst;
    this.slackMs = Math.min(this.intervalMs / 2, 1);
  }

  /**
   * Decides one request on a bucket whose stored TAT is `tat` (0: none) at
   * `now` (ms). The TAT to store afterwards is `now + decision.resetMs`
   * (allowed or not).
   */
  take(tat: number, now: number): Decision {
    let base = tat > now ? tat : now;
    if (base > now + this.capacityMs) base = now + this.capacityMs;
    const ahead = base + this.intervalMs - now;
    if (ahead > this.capacityMs + this.slackMs) return new Decision(false, 0, base - now, ahead - this.capacityMs);
    return new Decision(true, Math.floor((this.capacityMs - ahead + this.slackMs) / this.intervalMs), ahead, 0);
  }
}
