/**
 * What every part of a worker's request path shares: the frozen config, the
 * compiled router, the logger, the node-local read buffer and the clock.
 * Built once per worker (and again on reload); never per request.
 */
import type { ZproxyConfig } from '../config/types';
import type { Router } from '../router/compile';
import type { PhaseTable } from '../middleware/registry';
import type { Logger } from '../util/log';
import type { Upstreams } from '../upstream/upstreams';
import type { TrustedProxies } from '../http/client-ip';
import type { H2Sessions } from '../upstream/h2-sessions';
import type { TlsAcceptor } from '../listener/tls-listener';

export interface WorkerContext {
  readonly index: number;
  /** Swapped as a whole on reload: a request keeps the config it started with. */
  config: ZproxyConfig;
  router: Router;
  /** Each route's middleware phases (swapped with the config). */
  phases: PhaseTable;
  /** `trusted_proxies`, compiled (swapped with the config). */
  trustedProxies: TrustedProxies;
  /** Targets, balancers and connection pools of this worker. */
  readonly upstreams: Upstreams;
  /** Multiplexed sessions to h2c:// and h2:// targets. */
  readonly h2Sessions: H2Sessions;
  /** The worker's TLS server and certificates (used when `tls.enabled`). */
  readonly tls: TlsAcceptor;
  readonly log: Logger;
  /** Reused for every onread: bytes in it are valid only during the callback. */
  readonly readBuffer: Buffer;
  /** The IMF-fixdate of the current second, for `Date` headers. */
  httpDate: string;
  draining: boolean;
}
