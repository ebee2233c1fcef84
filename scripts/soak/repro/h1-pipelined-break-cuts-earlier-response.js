'use strict';
/**
 * New (found by the soak): two pipelined requests on one HTTP/1.1
 * connection from a client that reads slowly (it starts reading after
 * 500 ms); the first is answered in full (4 MiB), the second's upstream
 * breaks its body off (Content-Length 4000, 1500 bytes, FIN). Responses go
 * out in order, so the client must get the whole first response, then a
 * break in the second. Tried with the first body framed by Content-Length
 * and chunked (the addon splices a large Content-Length body itself).
 *
 *   node scripts/soak/repro/h1-pipelined-break-cuts-earlier-response.js [--no-native]
 */
const net = require('node:net');
const { startProxy, listen, verdict } = require('./common');

const FIRST = 4 * 1024 * 1024;
const BODY = Buffer.alloc(FIRST, 'a');
const CHUNKED = `${`10000\r\n${'a'.repeat(65536)}\r\n`.repeat(FIRST / 65536)}0\r\n\r\n`;

/** Body bytes of the first response in `data`, Content-Length or chunked (decoded as far as it goes). */
function firstBodyBytes(data) {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd < 0) return 0;
  const head = data.toString('latin1', 0, headEnd);
  let at = headEnd + 4;
  if (!/chunked/i.test(head)) return Math.min(data.length - at, Number(/content-length: (\d+)/i.exec(head)[1]));
  let bytes = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) return bytes;
    const size = parseInt(data.toString('latin1', at, lineEnd), 16);
    if (!size) return bytes;
    bytes += Math.min(size, data.length - lineEnd - 2);
    at = lineEnd + 2 + size + 2;
    if (at > data.length) return bytes;
  }
}

async function tries(proxyPort) {
  const got = [];
  for (let i = 0; i < 4; i++) {
    const received = await new Promise((resolve) => {
      const client = net.connect(proxyPort, '127.0.0.1');
      const parts = [];
      client.on('data', (c) => parts.push(c));
      client.on('error', () => undefined);
      client.on('close', () => resolve(Buffer.concat(parts)));
      client.pause();
      setTimeout(() => client.resume(), 500);
      setTimeout(() => client.destroy(), 8000);
      client.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /broken HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    got.push(firstBodyBytes(received));
  }
  return got;
}

(async () => {
  let chunked = false;
  const upstream = net.createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', (head) => {
      if (!head.includes('GET /first')) return s.end(`HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n${'b'.repeat(1500)}`);
      // One answer per connection: the upstream closes after it, so no later request waits on a connection it ignores.
      if (chunked) s.end(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${CHUNKED}`);
      else s.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${FIRST}\r\n\r\n`), BODY]));
    });
  });
  const port = await listen(upstream);
  const proxy = await startProxy([{ path: '/', upstream: { targets: [{ url: `http://127.0.0.1:${port}` }], max_fails: 0 } }]);
  const byLength = await tries(proxy.address().port);
  chunked = true;
  const byChunks = await tries(proxy.address().port);
  await proxy.stop();
  upstream.close();
  const cut = [...byLength, ...byChunks].some((n) => n < FIRST);
  verdict(cut, `bytes of the first response's ${FIRST}-byte body before the close; Content-Length: ${byLength.join(', ')}; chunked: ${byChunks.join(', ')}`);
})();
