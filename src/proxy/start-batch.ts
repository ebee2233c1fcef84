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
import type { ProxyExchange } from './proxy-exchange';

let queue: ProxyExchange[] = [];

export function startAtEndOfTurn(exchange: ProxyExchange): void {
  if (queue.length === 0) setImmediate(startQueued);
  queue.push(exchange);
}

function startQueued(): void {
  const batch = queue;
  queue = [];
  for (const exchange of batch) exchange.start();
}
