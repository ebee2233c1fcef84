'use strict';
/**
 * Issue 15.2: an upstream answers `Content-Length: 4000`, sends 1500 bytes
 * and closes. An HTTP/2 client must see RST_STREAM; today most streams end
 * with END_STREAM after 1500 bytes, a complete-looking short body.
 *
 *   node scripts/soak/repro/h2-truncated-end-stream.js [--no-native]
 */
const net = require('node:net');
const http2 = require('node:http2');
const { startProxy, listen, verdict } = require('./common');

(async () => {
  const upstream = net.createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', () => s.end(`HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n${'x'.repeat(1500)}`));
  });
  const port = await listen(upstream);
  const proxy = await startProxy([{ path: '/', upstream: { targets: [{ url: `http://127.0.0.1:${port}` }], max_fails: 0 } }]);
  const session = http2.connect(`http://127.0.0.1:${proxy.address().port}`);
  session.on('error', () => undefined);
  const outcomes = {};
  for (let i = 0; i < 40; i++) {
    const key = await new Promise((resolve) => {
      const stream = session.request({ ':path': '/' });
      let bytes = 0;
      let ended = false;
      stream.on('data', (c) => (bytes += c.length));
      stream.on('end', () => (ended = true));
      stream.on('error', () => undefined);
      stream.on('close', () => resolve(ended ? `END_STREAM after ${bytes} of 4000 bytes` : `RST_STREAM ${stream.rstCode} after ${bytes} bytes`));
    });
    outcomes[key] = (outcomes[key] || 0) + 1;
  }
  session.destroy();
  await proxy.stop();
  upstream.close();
  verdict(Object.keys(outcomes).some((k) => k.startsWith('END_STREAM')), JSON.stringify(outcomes));
})();
