#!/usr/bin/env node
'use strict';
/**
 * Not a proxy: the least a Node.js event loop spends per request of bench
 * scenario a on this machine, to put zproxy's own cost in proportion. Every
 * read from a client is taken as one whole request and answered by sending
 * one fixed request head over a pooled keep-alive upstream connection; every
 * read from the upstream is taken as one whole response and passed to the
 * client as it is. No parsing, no routing, no headers added, no limits. That
 * holds for wrk's small keep-alive GETs against a backend answering 13 bytes,
 * and for nothing else: use it with `--scenarios a --proxies floor` only.
 *
 * It writes with zproxy's own writeThrough (dist/util/socket-fd: one send(2)
 * through the addon when nothing is queued; socket.write otherwise; needs
 * `npm run build:ts`) and reads upstream responses into one
 * reused buffer per connection (onread), so the difference to zproxy is the
 * work zproxy does per request, not a different use of Node.
 *
 *   node scripts/bench/node-floor-proxy.js --port 8080 --upstream http://127.0.0.1:3000
 *
 * Prints `listening on HOST:PORT` on stdout when ready; stops on SIGTERM/SIGINT.
 */
const net = require('node:net');
const path = require('node:path');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = Number(arg('port', '8080'));
const upstream = new URL(arg('upstream', 'http://127.0.0.1:3000'));
const REQUEST = Buffer.from(`GET /small HTTP/1.1\r\nHost: ${upstream.host}\r\n\r\n`, 'latin1');

// zproxy's own write path: one send(2) through the addon when nothing is queued, else socket.write.
const { writeThrough } = require(path.join(__dirname, '..', '..', 'dist', 'util', 'socket-fd'));

function send(socket, data) {
  if (!socket.destroyed) writeThrough(socket, data);
}

const idle = [];

function openUpstream() {
  const conn = net.connect({
    host: upstream.hostname,
    port: Number(upstream.port),
    noDelay: true,
    onread: {
      buffer: Buffer.allocUnsafe(64 * 1024),
      callback: (n, buf) => {
        const client = conn.client;
        conn.client = null;
        idle.push(conn);
        if (client) send(client, buf.subarray(0, n));
      },
    },
  });
  conn.client = null;
  conn.on('error', () => undefined);
  conn.on('close', () => {
    const at = idle.indexOf(conn);
    if (at >= 0) idle.splice(at, 1);
    if (conn.client) conn.client.destroy();
  });
  return conn;
}

const server = net.createServer({ noDelay: true }, (client) => {
  client.on('error', () => undefined);
  client.on('data', () => {
    const conn = idle.pop() || openUpstream();
    conn.client = client;
    if (conn.connecting) conn.once('connect', () => send(conn, REQUEST));
    else send(conn, REQUEST);
  });
});

server.listen(port, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`listening on ${a.address}:${a.port}\n`);
});

function stop() {
  server.close();
  for (const conn of idle) conn.destroy();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
