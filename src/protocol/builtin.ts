/**
 * The protocol handlers zproxy ships, registered in each worker. HTTP/2 and
 * TLS are detected already; their handlers join here when they exist.
 */
import { registerProtocol } from './registry';
import { openHttp1Session } from './http1/session';

export function registerBuiltinProtocols(): void {
  registerProtocol({
    name: 'http1',
    enabled: (ctx) => ctx.config.protocols.includes('http1'),
    open: openHttp1Session,
  });
}
