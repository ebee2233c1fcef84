/**
 * WebSocket over HTTP/2 (RFC 8441 extended CONNECT) tunnelled to an HTTP/1.1
 * upstream: the CONNECT stream becomes an HTTP/1.1 Upgrade request on a
 * fresh connection (with a Sec-WebSocket-Key of the proxy's own, as RFC 8441
 * clients send none), the upstream's 101 becomes a 200 on the stream, and
 * then bytes flow both ways between the stream and the socket, with
 * half-closes and errors passed on.
 */
import net from 'node:net';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { createHash, randomBytes } from 'node:crypto';
import type { WorkerContext } from '../../server/worker-context';
import type { UpstreamGroup } from '../../upstream/upstreams';
import { parseResponseHead } from '../http1/response-head';
import { h2Fields } from './translate';
import { NoHealthyTargetError, UpstreamBadResponseError, UpstreamConnectError, timedOut } from '../../errors';
import { respondError } from './h2-client-side';

const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_HANDSHAKE_BYTES = 16 * 1024;
/** Response fields that do not belong in the 200 of an extended CONNECT. */
const HANDSHAKE_ONLY = new Set(['connection', 'upgrade', 'sec-websocket-accept', 'keep-alive', 'transfer-encoding', 'content-length']);

export interface H2WebSocketRequest {
  group: UpstreamGroup;
  path: string;
  authority: string;
  preserveHost: boolean;
  clientIp: string;
  requestId: string;
}

export function tunnelH2WebSocket(ctx: WorkerContext, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, request: H2WebSocketRequest): void {
  const target = request.group.balancer.pick({ clientIp: request.clientIp, getHeader: () => undefined }, null);
  if (!target) return respondError(stream, new NoHealthyTargetError(), request.requestId);
  target.begin();
  const key = randomBytes(16).toString('base64');
  const expectedAccept = createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
  let head = `GET ${request.path} HTTP/1.1\r\nhost: ${request.preserveHost && request.authority ? request.authority : target.authority}\r\n`;
  head += `connection: upgrade\r\nupgrade: websocket\r\nsec-websocket-key: ${key}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || name === 'sec-websocket-key' || value === undefined) continue;
    if (name.startsWith('sec-websocket-') || name === 'origin' || name === 'cookie' || name === 'authorization' || name === 'user-agent') {
      head += `${name}: ${Array.isArray(value) ? value.join(name === 'cookie' ? '; ' : ', ') : value}\r\n`;
    }
  }
  head += `x-forwarded-for: ${request.clientIp}\r\nx-forwarded-proto: ${stream.session?.encrypted ? 'https' : 'http'}\r\nx-request-id: ${request.requestId}\r\n\r\n`;

  const socket = net.connect({ host: target.host, port: target.port, noDelay: true });
  socket.setTimeout(ctx.config.upstream_connect_timeout_ms, () => socket.destroy(timedOut('connect timed out')));
  let handshake: Buffer | null = Buffer.alloc(0);
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    target.end();
  };

  socket.once('connect', () => {
    socket.setTimeout(ctx.config.websocket_idle_timeout_ms, () => {
      socket.destroy();
      stream.close(http2.constants.NGHTTP2_CANCEL);
    });
    socket.write(head);
  });
  socket.on('data', (chunk: Buffer) => {
    if (handshake === null) {
      if (!stream.write(chunk)) socket.pause();
      return;
    }
    handshake = Buffer.concat([handshake, chunk]);
    const parsed = parseResponseHead(handshake, 0, handshake.length, { maxHeaderBytes: MAX_HANDSHAKE_BYTES });
    if (parsed.kind === 'incomplete') return;
    const accepted = parsed.kind === 'head' && parsed.head.status === 101 && parsed.head.getHeader('sec-websocket-accept') === expectedAccept;
    if (!accepted) {
      socket.destroy();
      finish();
      if (parsed.kind === 'head' && parsed.head.status !== 101 && !stream.destroyed) {
        // A refusal (403, 404...) reaches the client as it is, body excluded.
        return void stream.respond(h2Fields(parsed.head, { ':status': parsed.head.status }, HANDSHAKE_ONLY), { endStream: true });
      }
      return respondError(stream, new UpstreamBadResponseError('invalid WebSocket handshake'), request.requestId);
    }
    const response = parsed.head;
    target.recordSuccess();
    const rest = handshake.subarray(parsed.headEnd);
    handshake = null;
    stream.respond(h2Fields(response, { ':status': 200 }, HANDSHAKE_ONLY));
    if (rest.length > 0) stream.write(rest);
    stream.on('data', (data: Buffer) => {
      if (!socket.write(data)) stream.pause();
    });
    socket.on('drain', () => stream.resume());
    stream.on('drain', () => socket.resume());
    stream.on('end', () => socket.end());
  });
  socket.on('end', () => {
    if (handshake !== null) return socket.destroy();
    if (!stream.destroyed) stream.end();
  });
  socket.on('error', (err) => {
    finish();
    if (handshake !== null) {
      target.recordFailure(Date.now());
      return respondError(stream, new UpstreamConnectError((err as NodeJS.ErrnoException).code ?? err.message), request.requestId);
    }
    if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
  });
  socket.on('close', finish);
  stream.on('close', () => socket.destroy());
  stream.on('error', () => socket.destroy());
}
