/**
 * WebSocket upgrades on HTTP/1.1: which requests are upgrades, and the
 * tunnel a 101 turns the client connection into — a splice tunnel on the
 * addon's epoll thread when both sockets are plain TCP, the JavaScript
 * tunnel otherwise (no addon, ZPROXY_NO_NATIVE=1, TLS on either side, or the
 * addon refusing, e.g. out of fds).
 */
import type { Connection } from '../listener/connection';
import type { WorkerContext } from '../server/worker-context';
import type { RequestHead } from '../protocol/http1/request-head';
import type { ResponseHead } from '../protocol/http1/response-head';
import type { UpstreamConnection } from '../upstream/upstream-connection';
import type { TunnelResult } from '../native/addon-types';
import { platform } from '../native/platform';
import { JsTunnel } from './js-tunnel';
import { spliceableFd } from '../util/socket-fd';
import { openSpliceTunnel } from './splice-tunnel';
import { offersWebSocket } from '../http/forwarding-rules';
import type { RequestId } from '../util/request-id';

/** What a proxy exchange hands the client side when the upstream answers 101. */
export interface TunnelUpgrade {
  /** The upstream's 101 (valid only during the call). */
  head: ResponseHead;
  upstream: UpstreamConnection;
  /** Bytes that followed the 101 in the same read (valid only during the call). */
  rest: Buffer;
  requestId: RequestId;
  /** The exchange's bookkeeping (the target's active count). */
  onClosed: () => void;
}

/** Is this request a WebSocket upgrade zproxy tunnels (RFC 6455 §4.1: GET, HTTP/1.1, Upgrade: websocket)? */
export function isWebSocketUpgrade(head: RequestHead): boolean {
  return head.method === 'GET' && head.versionMinor === 1 && offersWebSocket(head.upgrade);
}

/** What the client session keeps of its tunnel. */
export interface ClientTunnel {
  readonly kind: 'splice' | 'js';
  /** Bytes read from the client (`copy`: they sit in the worker's shared read buffer). */
  fromClient(buf: Buffer, start: number, end: number, copy: boolean): void;
  /** The client socket closed (the session's onClose). */
  clientClosed(): void;
}

export interface TunnelOpening {
  ctx: WorkerContext;
  conn: Connection;
  /** Client bytes read after the upgrade request's head (owned: kept as is). */
  clientPending: Buffer | null;
  upstream: UpstreamConnection;
  /** Upstream bytes read after the 101 (owned: kept as is). */
  upstreamPending: Buffer | null;
  onClose: (result: TunnelResult, kind: 'splice' | 'js') => void;
}

/** Opens the tunnel between the client connection and the upgraded upstream connection. */
export function openTunnel(opening: TunnelOpening): ClientTunnel {
  const current = platform();
  if (current.capabilities.spliceTunnel && spliceableFd(opening.conn.socket) >= 0 && spliceableFd(opening.upstream.socket) >= 0) {
    return openSpliceTunnel(current.addon!, opening, openJsTunnel);
  }
  return openJsTunnel(opening);
}

export function openJsTunnel(opening: TunnelOpening): ClientTunnel {
  const client = opening.conn.socket;
  const upstream = opening.upstream.socket;
  const tunnel = new JsTunnel(client, upstream, opening.ctx.config.websocket_idle_timeout_ms, (result) => opening.onClose(result, 'js'));
  opening.upstream.readRaw((buf, n) => tunnel.fromB(buf, 0, n, false));
  if (opening.clientPending && opening.clientPending.length > 0) tunnel.fromA(opening.clientPending, 0, opening.clientPending.length, false);
  if (opening.upstreamPending && opening.upstreamPending.length > 0) tunnel.fromB(opening.upstreamPending, 0, opening.upstreamPending.length, false);
  if (client.readableEnded) tunnel.endedA();
  if (upstream.readableEnded) tunnel.endedB();
  tunnel.start();
  return {
    kind: 'js',
    fromClient: (buf, start, end, copy) => tunnel.fromA(buf, start, end, copy),
    // The tunnel watches both sockets itself (an orderly close may still be flushing the other side).
    clientClosed: () => undefined,
  };
}
