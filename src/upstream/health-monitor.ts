/**
 * Active health checks run once per process, in the main thread (not once
 * per worker), and their verdicts reach every worker's targets over a
 * BroadcastChannel, tagged with the config generation they belong to.
 */
import { readFileSync } from 'node:fs';
import { BroadcastChannel } from 'node:worker_threads';
import type { ZproxyConfig } from '../config/types';
import type { Logger } from '../util/log';
import { HealthChecker } from './health-check';
import { Target } from './target';
import { HEALTH_CHANNEL, type HealthVerdict } from './upstreams';

export class HealthMonitor {
  private checkers: HealthChecker[] = [];
  private readonly channel = new BroadcastChannel(HEALTH_CHANNEL);

  constructor(private readonly log: Logger) {
    (this.channel as unknown as { unref(): void }).unref();
  }

  /** (Re)starts the checks of `config`; verdicts carry `generation`. */
  start(config: ZproxyConfig, generation: number): void {
    this.stopChecks();
    config.routes.forEach((route, index) => {
      const upstream = route.upstream;
      const check = upstream?.health_check;
      if (!upstream || !check || check.interval_ms === 0) return;
      const tls = { verify: upstream.tls_verify, ca: upstream.ca_file ? readFileSync(upstream.ca_file) : undefined };
      const checker = new HealthChecker(Target.fromConfig(upstream), check, (target, healthy) => {
        this.log.warn({ route: route.path, target: target.url, healthy }, healthy ? 'upstream target healthy again' : 'upstream target unhealthy');
        const verdict: HealthVerdict = { generation, route: index, url: target.url, healthy };
        this.channel.postMessage(verdict);
      }, tls);
      checker.start();
      this.checkers.push(checker);
    });
  }

  stop(): void {
    this.stopChecks();
    this.channel.close();
  }

  private stopChecks(): void {
    for (const checker of this.checkers) checker.stop();
    this.checkers = [];
  }
}
