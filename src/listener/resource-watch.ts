/**
 * The native listeners (accept loop, worker listener) count accept()
 * failures for want of file descriptors or memory and back off, but nothing
 * reaches JavaScript when one happens. This looks at the count once a second
 * and logs a warning when it grew, so an operator sees why clients wait.
 * (The fallback's net.Server reports each failure itself.)
 */
import type { AcceptLoopStats } from '../native/addon-types';
import { logger } from '../util/log';

const WATCH_INTERVAL_MS = 1000;

/** Starts watching `stats().resourceErrors`; returns the function that stops it. */
export function watchAcceptFailures(stats: () => AcceptLoopStats | undefined): () => void {
  let seen = 0;
  const timer = setInterval(() => {
    const total = stats()?.resourceErrors ?? seen;
    if (total > seen) {
      logger().warn(
        { failures: total - seen, total },
        `accept failed ${total - seen} times: out of file descriptors or memory (EMFILE, ENFILE, ENOBUFS or ENOMEM); the listener backs off and retries`,
      );
    }
    seen = total;
  }, WATCH_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
