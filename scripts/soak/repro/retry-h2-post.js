'use strict';
/**
 * Issue 15.1 on HTTP/2: the same retry of a 100 KB POST (route [DEAD, LIVE],
 * retries 1). Today: LIVE gets the upload short, the client a 504 after the
 * timeout, and then the stream never closes: the rest of the upload is
 * neither read nor reset.
 *
 *   node scripts/soak/repro/retry-h2-post.js [--no-native]
 */
const http = require('node:http');
const http2 = require('node:http2');
const { startProxy, listen, deadPort, verdict } = require('./common');

(async () => {
  const live = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (c) => (n += c.length));
    req.on('end', () => res.end(`got ${n}`));
  });
  const livePort = await listen(live);
  const proxy = await startProxy([{ path: '/', upstream: { targets: [{ url: `http://127.0.0.1:${await deadPort()}` }, { url: `http://127.0.0.1:${livePort}` }], max_fails: 0 }, retries: 1, timeout_ms: 2000 }]);
  const lines = [];
  let bug = false;
  for (let i = 0; i < 2; i++) {
    const session = http2.connect(`http://127.0.0.1:${proxy.address().port}`);
    session.on('error', () => undefined);
    const line = await new Promise((resolve) => {
      const stream = session.request({ ':method': 'POST', ':path': '/up', 'content-length': '100000' });
      let status = 0;
      let ended = false;
      stream.on('response', (h) => (status = h[':status']));
      stream.on('end', () => (ended = true));
      stream.on('error', () => undefined);
      stream.resume();
      stream.on('close', () => resolve(`${status}${ended ? ' END_STREAM' : ''}, stream closed`));
      setTimeout(() => resolve(`${status}${ended ? ' END_STREAM' : ''}, stream still open after 6 s`), 6000);
      stream.end(Buffer.alloc(100000, 'u'));
    });
    bug ||= !/^200 /.test(line) || /still open/.test(line);
    lines.push(`POST 100000 B: ${line}`);
    session.destroy();
  }
  await proxy.stop();
  live.close();
  verdict(bug, lines.join(' | '));
})();
