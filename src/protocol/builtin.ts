/**
 * The protocol handlers zproxy ships, registered in each worker.
 */
import { PLAIN_HTTP_ON_TLS, registerProtocol } from './registry';
import { openHttp1Session } from './http1/session';
import { Http2Listener, openHttp2Session } from './http2/h2-listener';
import type { WorkerContext } from '../server/worker-context';
import { openPlainHttpRefusal, openTlsSession } from '../listener/tls-listener';

export function registerBuiltinProtocols(ctx: WorkerContext): void {
  registerProtocol({
    name: 'tls',
    enabled: (c) => c.config.tls.enabled,
    open: openTlsSession,
  });
  registerProtocol({
    name: PLAIN_HTTP_ON_TLS,
    enabled: (c) => c.config.tls.enabled,
    open: openPlainHttpRefusal,
  });
  registerProtocol({
    name: 'http1',
    enabled: (c) => c.config.protocols.includes('http1'),
    open: openHttp1Session,
  });
  const http2 = new Http2Listener(ctx);
  registerProtocol({
    name: 'http2',
    enabled: (c) => c.config.protocols.includes('http2'),
    open: (conn) => openHttp2Session(http2, conn),
    adoptSocket: (socket) => http2.adoptSocket(socket),
  });
}
