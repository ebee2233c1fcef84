/**
 * The hand-off of an upgraded connection pair to the addon's splice tunnel
 * (native/splice_tunnel.h), following NODE-NOTES "Moving bytes":
 * 1. both sockets stop reading at once (onread sockets stop in the kernel's
 *    sense: readStop), so Node reads nothing more;
 * 2. once both write queues are empty (the 101 head included), the bytes JS
 *    already holds are collected: client bytes after the upgrade head,
 *    upstream bytes after the 101, and whatever a 'data' socket buffered;
 * 3. createTunnel dups both fds and queues those bytes to be written first;
 * 4. the JS sockets are destroyed: the dups keep the connections open, so
 *    no FIN or RST is sent. The client connection lives on outside its
 *    socket (Connection.moveOutside) and keeps its max_connections slot until
 *    the tunnel reports its end.
 * If createTunnel fails (EMFILE...), the JavaScript tunnel takes over with
 * the same sockets and bytes.
 */
import type { RawAddon, TunnelResult } from '../native/addon-types';
import type { ClientTunnel, TunnelOpening } from './upgrade';
import { spliceableFd, whenFlushed } from '../util/socket-fd';

export function openSpliceTunnel(addon: RawAddon, opening: TunnelOpening, fallback: (opening: TunnelOpening) => ClientTunnel): ClientTunnel {
  const { conn, upstream, ctx } = opening;
  const client = conn.socket;
  const up = upstream.socket;
  client.pause();
  up.pause();
  // Reads that still arrive before the hand-off (there should be none) are kept in order.
  const toUpstream: Buffer[] = opening.clientPending && opening.clientPending.length > 0 ? [opening.clientPending] : [];
  const toClient: Buffer[] = opening.upstreamPending && opening.upstreamPending.length > 0 ? [opening.upstreamPending] : [];
  upstream.readRaw((buf, n) => toClient.push(Buffer.from(buf.subarray(0, n))));

  let state: 'waiting' | 'spliced' | 'cancelled' | 'js' = 'waiting';
  let id = 0;
  let js: ClientTunnel | null = null;
  const cancel = (): void => {
    if (state !== 'waiting') return;
    state = 'cancelled';
    client.destroy();
    upstream.destroy();
    opening.onClose({ bytesAtoB: 0, bytesBtoA: 0, reason: 'closed' }, 'splice');
  };
  // Either socket closing while the write queues drain ends it all.
  up.once('close', () => {
    if (state === 'waiting') cancel();
  });

  const handOff = (): void => {
    if (state !== 'waiting') return;
    if (client.destroyed || up.destroyed) return cancel();
    // A 'data' socket may hold bytes Node read but did not emit yet.
    const dataListener = client.listeners('data').includes(conn.onSocketData);
    client.off('data', conn.onSocketData);
    for (let chunk: Buffer | null = client.read(); chunk !== null; chunk = client.read()) toUpstream.push(chunk);
    const toB = toUpstream.length > 0 ? Buffer.concat(toUpstream) : undefined;
    const toA = toClient.length > 0 ? Buffer.concat(toClient) : undefined;
    const onNativeClose = (result: TunnelResult): void => {
      ended();
      opening.onClose(result, 'splice');
    };
    try {
      id = addon.createTunnel(spliceableFd(client), spliceableFd(up), ctx.config.websocket_idle_timeout_ms, onNativeClose, toB, toA);
    } catch (err) {
      ctx.log.warn({ err }, 'splice tunnel refused; the JavaScript tunnel carries this connection');
      state = 'js';
      if (dataListener) client.on('data', conn.onSocketData);
      js = fallback({ ...opening, clientPending: toB ?? null, upstreamPending: toA ?? null });
      return;
    }
    state = 'spliced';
    const ended = conn.moveOutside(() => addon.closeTunnel(id));
    client.destroy();
    upstream.destroy();
  };
  // The 101 (and anything before it) must be in the kernel before the tunnel writes.
  whenFlushed(client, () => whenFlushed(up, handOff));

  return {
    kind: 'splice',
    fromClient(buf, start, end, copy) {
      if (js) return js.fromClient(buf, start, end, copy);
      if (state === 'waiting') toUpstream.push(Buffer.from(buf.subarray(start, end)));
    },
    clientClosed() {
      if (js) return js.clientClosed();
      cancel();
    },
  };
}
