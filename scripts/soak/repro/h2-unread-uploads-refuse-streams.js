'use strict';
/**
 * Issue 15.3 (as the soak sees it): on one HTTP/2 session, 4 streams keep
 * POSTing 3 MiB to an upstream that does not read (route timeout 1 s) while
 * 12 streams keep GETting from a good upstream. Today other streams on the
 * session are refused with RST_STREAM ENHANCE_YOUR_CALM (code 11) from the
 * first 100 ms, before any 504: Node refuses new streams once a session holds
 * more than maxSessionMemory (10 MB; zproxy's listener leaves the default),
 * and the unread uploads count there. 4 x 2 MiB or 1 x 3 MiB: no refusal.
 *
 *   node scripts/soak/repro/h2-unread-uploads-refuse-streams.js [--no-native]
 */
const net = require('node:net');
const http = require('node:http');
const http2 = require('node:http2');
const { startProxy, listen, verdict } = require('./common');

const SECONDS = 4;

(async () => {
  const deaf = net.createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', () => {
      s.pause();
      setTimeout(() => s.resume(), 3000);
    });
  });
  const good = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const [deafPort, goodPort] = [await listen(deaf), await listen(good)];
  const proxy = await startProxy([
    { path: '/deaf', upstream: { targets: [{ url: `http://127.0.0.1:${deafPort}` }], max_fails: 0 }, retries: 0, timeout_ms: 1000 },
    { path: '/good', upstream: `http://127.0.0.1:${goodPort}` },
  ]);
  // The client holds the unsent uploads too: its own 10 MB limit must not be what refuses streams.
  const session = http2.connect(`http://127.0.0.1:${proxy.address().port}`, { maxSessionMemory: 1024 });
  session.on('error', () => undefined);
  const outcomes = {};
  const started = Date.now();
  const loop = (post) =>
    new Promise((done) => {
      const next = () => {
        if (Date.now() - started > SECONDS * 1000 || session.destroyed) return done();
        const stream = session.request(post ? { ':method': 'POST', ':path': '/deaf' } : { ':path': '/good' }, { endStream: !post });
        let status = 0;
        let ended = false;
        stream.on('response', (h) => (status = h[':status']));
        stream.on('end', () => (ended = true));
        stream.on('error', () => undefined);
        stream.resume();
        stream.on('close', () => {
          const key = `${post ? 'POST' : 'GET'} ${ended ? status : `RST_STREAM ${stream.rstCode}`}`;
          outcomes[key] = (outcomes[key] || 0) + 1;
          next();
        });
        if (post) stream.end(Buffer.alloc(3 << 20, 'u'));
      };
      next();
    });
  await Promise.race([Promise.all([...Array(4)].map(() => loop(true)).concat([...Array(12)].map(() => loop(false)))), new Promise((r) => setTimeout(r, SECONDS * 1000 + 8000))]);
  session.destroy();
  await proxy.stop();
  deaf.close();
  good.close();
  verdict(Object.keys(outcomes).some((k) => k.startsWith('GET RST_STREAM')), JSON.stringify(outcomes));
})();
