/**
 * The admin listener (SPEC §9), in the main thread, on loopback by default:
 * `GET /health` (200 while the process runs) and `GET /ready` (200 when
 * accepting, 503 while draining). With `admin.token`, every request needs
 * `Authorization: Bearer TOKEN`.
 */
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

export class AdminServer {
  private readonly server: http.Server;

  constructor(
    private readonly config: AdminConfig,
    private readonly state: AdminState,
    private readonly log: Logger,
  ) {
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
    if (this.config.token !== undefined && req.headers.authorization !== `Bearer ${this.config.token}`) {
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
}
