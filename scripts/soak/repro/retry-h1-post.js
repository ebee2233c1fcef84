'use strict';
/**
 * Issue 15.1 on HTTP/1: route [DEAD, LIVE] with retries 1. A POST whose
 * first target refuses is retried on LIVE, then a GET follows on the same
 * keep-alive connection. Today: a 50 KB POST is answered but the GET after
 * it is never read; a 100 KB POST reaches LIVE short and gets a 504.
 *
 *   node scripts/soak/repro/retry-h1-post.js [--no-native]
 */
const http = require('node:http');
const net = require('node:net');
const { startProxy, listen, deadPort, verdict } = require('./common');

async function exchange(port, size) {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let data = '';
  socket.on('data', (c) => (data += c));
  const waitFor = (re, ms) => new Promise((resolve) => {
    const started = Date.now();
    const timer = setInterval(() => (re.test(data) || Date.now() - started > ms) && (clearInterval(timer), resolve(re.test(data))), 10);
  });
  socket.write(`POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
  socket.write(Buffer.alloc(size, 'u'));
  await waitFor(/\r\n\r\n(got \d+|\{.*\})/, 5000);
  const post = data.split('\r\n')[0];
  data = '';
  socket.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
  const answered = await waitFor(/\r\n\r\n/, 3000);
  socket.destroy();
  return { post, next: answered ? data.split('\r\n')[0] : 'no answer in 3 s' };
}

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
  // Round robin: the second connection of each pair picks DEAD first.
  for (const size of [50000, 50000, 100000, 100000]) {
    const { post, next } = await exchange(proxy.address().port, size);
    bug ||= !/200/.test(post) || !/200/.test(next);
    lines.push(`POST ${size} B: ${post}; next GET: ${next}`);
  }
  await proxy.stop();
  live.close();
  verdict(bug, lines.join(' | '));
})();
