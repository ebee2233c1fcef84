/**
 * WebSocket over HTTP/2 (RFC 8441 extended CONNECT) tunnelled to an HTTP/1.1
 * upstream. The CONNECT stream becomes an HTTP/1.1 Upgrade request sent
 * through a ProxyExchange with `upgrade: true`, like an HTTP/1 WebSocket
 * upgrade: the same balancer, connection pool (a fresh connection), TLS for
 * `https://` targets, connect timeout and retries as every other request.
 *
 * RFC 8441 specifics: the client sends no Sec-WebSocket-Key, so the proxy
 * sends one of its own and checks the upstream's Sec-WebSocket-Accept
 * against it; the upstream's 101 becomes a 200 on the stream. Any other
 * answer (403, 404...) is relayed as a response. Then bytes flow both ways
 * between the stream and the upstream connection, with backpressure, an
 * END_STREAM passed on as a FIN and a FIN as END_STREAM; an upstream error
 * resets the stream with CONNECT_ERROR (RFC 9113 §8.5), never END_STREAM,
 * and a reset stream closes the upstream connection.
 */
import http2, { type ServerHttp2Stream } from 'node:http2';
import { createHash, randomBytes } from 'node:crypto';
import type { RouteConfig } from '../../config/types';
import type { WorkerContext } from '../../server/worker-context';
import type { TunnelUpgrade } from '../../tunnel/upgrade';
import type { UpstreamRequest } from '../../pipeline/handle-request';
import { UpstreamBadResponseError } from '../../errors';
import { H2ClientSide, respondError } from './h2-client-side';
import { h1RequestHead, h2Fields } from './translate';
import type { FieldEdits } from '../../pipeline/phases';
import { endedByPeer, resetStream } from './stream-end';

const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Response fields that do not belong in the 200 of an extended CONNECT. */
const HANDSHAKE_ONLY = new Set(['connection', 'upgrade', 'sec-websocket-accept', 'keep-alive', 'transfer-encoding', 'content-length', 'te', 'http2-settings', 'proxy-connection']);
const { NGHTTP2_CONNECT_ERROR, NGHTTP2_CANCEL } = http2.constants;

export interface H2WebSocketRequest {
  route: RouteConfig;
  path: string;
  authority: string;
  /** The client's address (the HTTP/2 connection's peer). */
  peer: string;
  proto: 'http' | 'https';
  requestId: string;
  addRequestId: boolean;
  /** The upstream-request phases' edits (null: none). */
  edits: FieldEdits | null;
}

/**
 * The upstream side of a WebSocket over HTTP/2: the HTTP/1.1 Upgrade request
 * (the proxy's own key), and the client side that turns the upstream's 101
 * into a 200 and a tunnel. The pipeline sends it through a ProxyExchange.
 */
export function webSocketUpstream(ctx: WorkerContext, stream: ServerHttp2Stream, raw: readonly string[], request: H2WebSocketRequest): { side: H2ClientSide; upstream: UpstreamRequest } {
  const key = randomBytes(16).toString('base64');
  const expectedAccept = createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
  const hostFromTarget = !request.route.preserve_host || request.authority === '';
  // The same forwarding rules as any request from HTTP/2 (translate.ts), with the Upgrade named again.
  const head = h1RequestHead(raw, {
    method: 'GET',
    path: request.path,
    authority: request.authority,
    hostFromTarget,
    clientIp: request.peer,
    proto: request.proto,
    requestId: request.requestId,
    addRequestId: request.addRequestId,
    contentLength: -1,
    hasBody: false,
    edits: request.edits,
    webSocketKey: key,
  });
  // Nothing is read from the stream before the tunnel opens.
  stream.pause();
  return {
    side: new H2WebSocketSide(ctx, stream, request.requestId, expectedAccept),
    upstream: { head, hostFromTarget, hasBody: false, upgrade: true },
  };
}

/** The CONNECT stream as the client side of the upgrade exchange: refusals are relayed as responses, a 101 opens the tunnel. */
class H2WebSocketSide extends H2ClientSide {
  constructor(
    private readonly ctx: WorkerContext,
    private readonly ws: ServerHttp2Stream,
    private readonly id: string,
    private readonly expectedAccept: string,
  ) {
    super(ws, id, ctx.log);
  }

  // Nothing is read from the CONNECT stream until the tunnel opens (the exchange would resume it on an upstream drain).
  override pauseReading(): void {}

  override resumeReading(): void {}

  switchProtocols(upgrade: TunnelUpgrade): void {
    const { head, upstream } = upgrade;
    const refuse = (reason: string): void => {
      upstream.destroy();
      upgrade.onClosed();
      this.ctx.log.warn({ requestId: this.id, reason }, 'WebSocket over HTTP/2: invalid upstream handshake; answered 502');
      respondError(this.ws, new UpstreamBadResponseError(reason), this.id);
    };
    if (this.ws.destroyed || this.ws.closed) {
      upstream.destroy();
      upgrade.onClosed();
      return;
    }
    if (head.getHeader('sec-websocket-accept') !== this.expectedAccept) return refuse('invalid WebSocket handshake');
    try {
      const headers = h2Fields(head, { ':status': 200 }, HANDSHAKE_ONLY);
      if (headers['x-request-id'] === undefined) headers['x-request-id'] = this.id;
      this.ws.respond(headers);
    } catch (err) {
      return refuse((err as Error).message);
    }
    openTunnel(this.ctx, this.ws, upgrade);
  }
}

/** Bytes both ways between the stream and the upgraded upstream connection. */
function openTunnel(ctx: WorkerContext, stream: ServerHttp2Stream, upgrade: TunnelUpgrade): void {
  const upstream = upgrade.upstream;
  const socket = upstream.socket;
  let closed = false;
  let upstreamEnded = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    upgrade.onClosed();
  };
  // A half-close is passed on, never answered by Node with its own end.
  socket.allowHalfOpen = true;
  const toClient = (data: Buffer): void => {
    if (stream.destroyed || stream.closed) return;
    if (!stream.write(data)) socket.pause();
  };
  if (upgrade.rest.length > 0) toClient(Buffer.from(upgrade.rest));
  // The connection's read buffer is reused on its next read: copied.
  upstream.readRaw((buf, n) => toClient(Buffer.from(buf.subarray(0, n))));
  stream.on('drain', () => socket.resume());
  stream.on('data', (data: Buffer) => {
    if (!socket.write(data)) stream.pause();
  });
  socket.on('drain', () => stream.resume());
  // The client's END_STREAM: a FIN to the upstream (a reset closes the connection instead, below).
  stream.on('end', () => {
    if (endedByPeer(stream)) socket.end();
    else socket.destroy();
  });
  // The upstream's FIN: END_STREAM once what it sent before has been written.
  socket.on('end', () => {
    upstreamEnded = true;
    if (!stream.destroyed && !stream.closed && !stream.writableEnded) stream.end();
  });
  socket.on('error', (err) => {
    ctx.log.debug({ err }, 'WebSocket over HTTP/2: upstream connection failed');
    resetStream(stream, NGHTTP2_CONNECT_ERROR);
  });
  socket.on('close', () => {
    // Closed without its FIN (reset, or destroyed): the client must not see a clean end.
    if (!upstreamEnded) resetStream(stream, NGHTTP2_CONNECT_ERROR);
    close();
  });
  socket.setTimeout(ctx.config.websocket_idle_timeout_ms, () => {
    resetStream(stream, NGHTTP2_CANCEL);
    socket.destroy();
  });
  stream.on('close', () => {
    socket.destroy();
    close();
  });
  stream.resume();
}
