/**
 * Exchanges whose upstream request leaves at the end of this event-loop
 * turn. Requests arrive in bursts (one epoll wake hands over many client
 * reads, one HTTP/2 read many streams); started one by one, each upstream
 * write lands between two client reads and may wake the upstream once per
 * request, which costs the writer a cross-CPU interrupt and the upstream a
 * trip through epoll. Started together at the end of the turn, the writes
 * leave back to back and the upstream wakes once for the burst.
 *
 * Only bodiless requests wait: a body may follow right behind its head. An
 * exchange aborted meanwhile (its client went away) does not start.
 */
import type { ProxyExchange } from '../proxy/proxy-exchange';

/** One array for every turn (a new one per turn cost an allocation and its growth per request). */
const queue: (ProxyExchange | null)[] = [];
let queued = 0;

export function startAtEndOfTurn(exchange: ProxyExchange): void {
  if (queued === 0) setImmediate(startQueued);
  queue[queued++] = exchange;
}

/** Exchanges queued while the batch starts (a pipelined request answered at once) start in the same batch. */
function startQueued(): void {
  let next = 0;
  try {
    while (next < queued) {
      const exchange = queue[next]!;
      queue[next++] = null;
      exchange.start();
    }
  } finally {
    // start() answers its own failures; if one still throws (a bug), the rest start next turn, and so do later batches.
    const left = queued - next;
    for (let k = 0; k < left; k++) {
      queue[k] = queue[next + k];
      queue[next + k] = null;
    }
    queued = left;
    if (left > 0) setImmediate(startQueued);
  }
}
