/**
 * Proxies that live for one test: `proxyFor(routes)` starts one (native
 * runtime unless `noNative`, short drain) and returns its port; after each
 * test every proxy stops and every recorded upstream closes.
 */
import { startProxy } from './server';
import { closeAll } from './upstreams';
import type { Server } from '../../dist/index';

let proxies: Server[] = [];

afterEach(async () => {
  await closeAll();
  await Promise.all(proxies.map((p) => p.stop()));
  proxies = [];
});

export async function proxyFor(routes: unknown[], extra: Record<string, unknown> = {}, noNative = false): Promise<number> {
  const proxy = await startProxy({ drain_timeout_ms: 1000, routes, ...extra }, noNative);
  proxies.push(proxy);
  return proxy.address().port;
}
