'use strict';
/**
 * New (found by the soak): zproxy's own RST_STREAMs, sent because an
 * upstream broke a body off (here a chunked body cut inside a chunk), count
 * toward its rapid-reset guard (h2-listener.ts counts every `stream.aborted`).
 * After about 200 in a second the client's whole session is closed with
 * GOAWAY ENHANCE_YOUR_CALM and its other streams die. Once 15.2 turns
 * truncated Content-Length bodies into resets too, ordinary upstream
 * failures will trip it more often.
 *
 *   node scripts/soak/repro/h2-own-resets-count-as-rapid-reset.js [--no-native]
 */
const net = require('node:net');
const http2 = require('node:http2');
const { startProxy, listen, verdict } = require('./common');

(async () => {
  const upstream = net.createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', () => s.end(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n${'x'.repeat(1024)}\r\n100\r\nxx`));
  });
  const port = await listen(upstream);
  const proxy = await startProxy([{ path: '/', upstream: { targets: [{ url: `http://127.0.0.1:${port}` }], max_fails: 0 } }]);
  const session = http2.connect(`http://127.0.0.1:${proxy.address().port}`);
  session.on('error', () => undefined);
  let goaway = null;
  session.on('goaway', (code) => (goaway = code));
  const outcomes = {};
  let sent = 0;
  await new Promise((done) => {
    const next = () => {
      if (sent >= 400 || session.destroyed || session.closed) return sent >= 400 || session.destroyed ? done() : undefined;
      sent++;
      const stream = session.request({ ':path': '/' });
      stream.on('error', () => undefined);
      stream.resume();
      stream.on('close', () => {
        outcomes[`RST_STREAM ${stream.rstCode}`] = (outcomes[`RST_STREAM ${stream.rstCode}`] || 0) + 1;
        next();
      });
    };
    for (let i = 0; i < 16; i++) next();
    setTimeout(done, 10000);
  });
  session.destroy();
  await proxy.stop();
  upstream.close();
  verdict(goaway === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, `${sent} streams, ${JSON.stringify(outcomes)} (2 = INTERNAL_ERROR, 11 = ENHANCE_YOUR_CALM), GOAWAY ${goaway}`);
})();
