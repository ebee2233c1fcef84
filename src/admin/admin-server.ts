/**
 * The admin listener (SPEC §9), in the main thread, on loopback by default:
 * `GET /health` (200 while the process runs) and `GET /ready` (200 when
 * accepting, 503 while draining). With `admin.token`, every request needs
 * `Authorization: Bearer TOKEN` (the scheme case-insensitive, RFC 9110
 * §11.1). The token is checked in constant time: the SHA-256 of what was
 * sent is compared with the token's own through timingSafeEqual, so neither
 * the content nor the length of a guess shows in the answer's timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AdminConfig } from '../config/types';
import type { Logger } from '../util/log';
import type { ListenAddress } from '../listener/acceptor';

export interface AdminState {
  /** True while the proxy accepts new connections. */
  ready(): boolean;
}

type AdminRoute = (state: AdminState) => { status: number; body: unknown };

const routes: Record<string, AdminRoute> = {
  '/health': () => ({ status: 200, body: { status: 'ok' } }),
  '/ready': (state) => (state.ready() ? { status: 200, body: { status: 'ready' } } : { status: 503, body: { status: 'draining' } }),
};

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

const BEARER = /^bearer /i;

export class AdminServer {
  private readonly server: http.Server;
  /** SHA-256 of `admin.token`; null = no token required. */
  private readonly tokenDigest: Buffer | null;

  constructor(
    private readonly config: AdminConfig,
    private readonly state: AdminState,
    private readonly log: Logger,
  ) {
    this.tokenDigest = config.token === undefined ? null : sha256(config.token);
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 5000;
    this.server.headersTimeout = 10000;
    this.server.requestTimeout = 10000;
  }

  listen(): Promise<ListenAddress> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as ListenAddress);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (!this.authorized(req.headers.authorization)) {
      res.setHeader('www-authenticate', 'Bearer');
      return send(401, { error: 'admin token required', status: 401 });
    }
    const route = routes[(req.url ?? '/').split('?')[0]];
    if (!route) return send(404, { error: 'not found', status: 404 });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(405, { error: 'method not allowed', status: 405 });
    }
    const { status, body } = route(this.state);
    this.log.trace({ path: req.url, status }, 'admin request');
    send(status, body);
  }

  /** Whether the request may use the admin API (see the file comment). */
  private authorized(authorization: string | undefined): boolean {
    if (this.tokenDigest === null) return true;
    // A missing or non-Bearer header is compared as an empty token (never valid: the token is non-empty), in the same time.
    const presented = authorization !== undefined && BEARER.test(authorization) ? authorization.slice(7) : '';
    return timingSafeEqual(sha256(presented), this.tokenDigest);
  }
}
