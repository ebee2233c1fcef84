/**
 * A warning that may recur on every request (a store that is down, a table
 * that is full) logged at most once per interval, with the count of the
 * occurrences it stood for: the log says what is wrong without becoming
 * the load. Read only on those failure paths, so its clock costs nothing
 * on the others.
 */
import type { Logger } from '../../util/log';

export class OccasionalWarning {
  private lastAt = -Infinity;
  private occurrences = 0;

  constructor(
    private readonly log: Logger,
    private readonly fields: Readonly<Record<string, unknown>>,
    private readonly intervalMs = 10_000,
  ) {}

  /** One occurrence; logged when the last line is older than the interval. */
  warn(message: string, detail?: Record<string, unknown>): void {
    this.occurrences++;
    const now = Date.now();
    if (now - this.lastAt < this.intervalMs) return;
    this.log.warn({ ...this.fields, ...detail, occurrences: this.occurrences }, message);
    this.lastAt = now;
    this.occurrences = 0;
  }

  /** Whether anything was warned about since the last `reset`. */
  get active(): boolean {
    return this.lastAt !== -Infinity;
  }

  /** The condition is over: the next occurrence is logged at once. */
  reset(): void {
    this.lastAt = -Infinity;
    this.occurrences = 0;
  }
}
