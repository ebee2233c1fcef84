/** Where a rate limit keeps its buckets: shared memory (one process) or Redis (several instances). */
import type { Decision } from './gcra';

/** What a key is made of: the client IP, or a header's value (never the same bucket, even for the same text). */
export type KeyKind = 'ip' | 'header';

export interface RateLimitStore {
  /**
   * Takes one request from the key's bucket: decided at once (memory), or
   * by a round trip (Redis), where null means the store could not decide
   * (down or too slow): `store_failure` says what happens then.
   */
  take(key: string, kind: KeyKind): Decision | Promise<Decision | null>;
  /** Releases what the store holds (a connection); decisions in flight still settle. */
  close(): void;
  /** Decisions the store could not make, in this worker (for the metrics). */
  readonly failures: number;
  /** Buckets still refilling that had to make room for a new key, in this worker (memory store; for the metrics). */
  readonly evictions: number;
}
