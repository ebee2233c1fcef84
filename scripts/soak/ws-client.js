'use strict';
/**
 * WebSocket load of the soak: `ws` clients through zproxy to the good
 * upstreams' echo, one message in flight at a time (text or binary, up to
 * 64 KiB, starting with its id), each echo compared byte for byte. A
 * connection lives for a random number of messages, then closes with a
 * close handshake that must complete (code 1000 back through the tunnel).
 *
 * The upstream names itself first, so a tunnel broken by the kill of
 * upstream A is excused and one to B is not.
 */
const WebSocket = require('ws');

class WsClient {
  /** `shared`: { port, pool, ledger, nextId(), stopping(), stats, killedUpstream } */
  constructor(shared, random) {
    this.shared = shared;
    this.random = random;
  }

  async run() {
    while (!this.shared.stopping()) {
      this.shared.stats.wsConnections++;
      await this.connection(this.random.int(20, 200));
    }
  }

  /** One tunnel: the handshake, `count` echoes, the close; resolves when it is gone. */
  connection(count) {
    const { ledger, port } = this.shared;
    const handshake = this.item('ws-handshake');
    ledger.open(handshake, 'ws');
    return new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/good/ws/${handshake.id}`, { headers: { 'x-request-id': handshake.rid }, perMessageDeflate: false });
      handshake.onHang = () => ws.terminate();
      let upstream = null;
      /** The item waiting for an answer: a message's echo, or the close handshake. */
      let pending = null;
      let sent = 0;
      const send = () => {
        if (sent === count || this.shared.stopping()) {
          pending = this.item('ws-close');
          pending.onHang = () => ws.terminate();
          ledger.open(pending, 'ws');
          return ws.close(1000, 'soak done');
        }
        sent++;
        const msg = this.item('ws-message');
        const binary = this.random.chance(0.5);
        const size = this.random.int(0, 65536);
        const offset = this.random.int(0, this.shared.pool.length - size);
        msg.payload = Buffer.concat([Buffer.from(`${msg.id}:`), this.shared.pool.subarray(offset, offset + size)]);
        if (!binary) msg.payload = Buffer.from(msg.payload.toString('base64'));
        msg.onHang = () => ws.terminate();
        pending = msg;
        ledger.open(msg, 'ws');
        ws.send(msg.payload, { binary });
      };
      ws.on('error', () => undefined);
      ws.on('unexpected-response', (req, res) => {
        ledger.record(handshake, res.statusCode >= 500 ? failed('unexpected-5xx', `handshake answered ${res.statusCode}`) : failed('wrong-status', `handshake answered ${res.statusCode}`));
        req.destroy();
      });
      ws.on('message', (data) => {
        if (upstream === null) {
          upstream = JSON.parse(data.toString()).upstream;
          ledger.record(handshake, { outcome: 'ok' });
          return send();
        }
        const msg = pending;
        pending = null;
        if (!msg || msg.kind !== 'ws-message') {
          ledger.note('unsolicited', `a WebSocket message with nothing outstanding: ${data.length} bytes`);
          return ws.terminate();
        }
        const verdict = Buffer.compare(data, msg.payload) === 0 ? { outcome: 'ok' } : failed('corrupt', `echo of ${data.length} bytes differs from the ${msg.payload.length} sent`);
        ledger.record(msg, verdict);
        send();
      });
      ws.on('close', (code) => {
        if (!handshake.settled) ledger.record(handshake, failed('unexpected-cut', `closed (${code}) before the upgrade completed`));
        if (pending) {
          const clean = pending.kind === 'ws-close' && code === 1000;
          // Only the killed upstream's tunnels may break.
          ledger.record(pending, clean ? { outcome: 'ok' } : { ...failed('unexpected-cut', `tunnel to ${upstream} closed with ${code}`), excusable: upstream === this.shared.killedUpstream });
        }
        resolve();
      });
    });
  }

  item(kind) {
    const id = String(this.shared.nextId());
    return { id, rid: `soak-${id}`, kind, fault: null, method: 'WS', path: '/good/ws', upload: null };
  }
}

function failed(failure, detail) {
  return { outcome: 'failed', failure, detail };
}

module.exports = { WsClient };
