#!/usr/bin/env node
'use strict';
/**
 * The WebSocket backend of `npm run bench` (scenarios g and h): a raw
 * `node:net` server that completes the RFC 6455 opening handshake and then
 * echoes every byte it receives, as it comes, without parsing frames. The
 * proxies under test only tunnel bytes after the 101, so nothing in between
 * looks at the frames either; echoing raw bytes keeps this backend cheap
 * enough not to be the bottleneck (no unmasking, no re-framing).
 *
 *   node scripts/bench/ws-echo-backend.js --port 9000 [--host 127.0.0.1]
 *
 * Any request that is not a WebSocket upgrade gets a 13-byte 200 (readiness
 * checks). Prints `listening on HOST:PORT` when ready; stops on SIGTERM/SIGINT.
 */
const crypto = require('node:crypto');
const net = require('node:net');

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_HEAD = 16 * 1024;

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2). */
function acceptKey(key) {
  return crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
}

/** Header value (first occurrence, case-insensitive name) from a raw head, or null. */
function headerValue(head, name) {
  const re = new RegExp(`^${name}:[ \\t]*(.*?)[ \\t]*$`, 'im');
  const m = re.exec(head);
  return m ? m[1] : null;
}

function onConnection(socket) {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  let buffered = Buffer.alloc(0);
  const onHead = (chunk) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    const end = buffered.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buffered.length > MAX_HEAD) socket.destroy();
      return;
    }
    socket.removeListener('data', onHead);
    const head = buffered.subarray(0, end).toString('latin1');
    const rest = buffered.subarray(end + 4);
    const key = headerValue(head, 'sec-websocket-key');
    const upgrade = headerValue(head, 'upgrade');
    if (!key || !upgrade || upgrade.toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, world!');
      return;
    }
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
    );
    if (rest.length) socket.write(rest);
    // From here on: every byte back as it comes, with backpressure.
    socket.pipe(socket);
  };
  socket.on('data', onHead);
}

if (require.main === module) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
  };
  const host = arg('host', '127.0.0.1');
  const port = Number(arg('port', '9000'));
  const server = net.createServer({ noDelay: true }, onConnection);
  server.listen({ host, port, backlog: 4096 }, () => {
    const a = server.address();
    process.stdout.write(`listening on ${a.address}:${a.port}\n`);
  });
  const stop = () => {
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

module.exports = { acceptKey, WS_GUID };
