#!/usr/bin/env node
'use strict';
/**
 * The Node baseline of `npm run bench`: a plain `node:http` server that
 * forwards every request to one upstream through an undici Pool, the way a
 * typical hand-written Node proxy does (no framework, no caching).
 *
 *   node scripts/bench/node-baseline-proxy.js --port 8080 --upstream http://127.0.0.1:3000
 *
 * Prints `listening on HOST:PORT` on stdout when ready; stops on SIGTERM/SIGINT.
 */
const http = require('node:http');

let Pool;
try {
  ({ Pool } = require('undici'));
} catch {
  process.stderr.write('node-baseline-proxy: the `undici` package is not installed (npm install)\n');
  process.exit(2);
}

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = arg('host', '127.0.0.1');
const port = Number(arg('port', '8080'));
const upstream = arg('upstream', 'http://127.0.0.1:3000');
const connections = Number(arg('connections', '128'));

// Hop-by-hop headers (RFC 9110 section 7.6.1) are not forwarded either way.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function forwardable(rawHeaders, extraDrop) {
  const out = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    if (HOP_BY_HOP.has(name) || (extraDrop && extraDrop.has(name))) continue;
    const prev = out[name];
    if (prev === undefined) out[name] = rawHeaders[i + 1];
    else if (Array.isArray(prev)) prev.push(rawHeaders[i + 1]);
    else out[name] = [prev, rawHeaders[i + 1]];
  }
  return out;
}

function connectionTokens(value) {
  if (!value) return null;
  return new Set(String(value).toLowerCase().split(',').map((t) => t.trim()).filter(Boolean));
}

const pool = new Pool(upstream, { connections, pipelining: 1, keepAliveTimeout: 60_000 });

const server = http.createServer(async (req, res) => {
  const bodyless = req.method === 'GET' || req.method === 'HEAD';
  try {
    const up = await pool.request({
      method: req.method,
      path: req.url,
      headers: forwardable(req.rawHeaders, connectionTokens(req.headers.connection)),
      body: bodyless ? null : req,
    });
    const headers = {};
    const drop = connectionTokens(up.headers.connection);
    for (const [name, value] of Object.entries(up.headers)) {
      if (!HOP_BY_HOP.has(name) && !(drop && drop.has(name))) headers[name] = value;
    }
    res.writeHead(up.statusCode, headers);
    up.body.on('error', () => res.destroy());
    up.body.pipe(res);
  } catch (err) {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`bad gateway: ${err.code || err.message}\n`);
    } else {
      res.destroy();
    }
  }
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

server.listen(port, host, () => {
  const a = server.address();
  process.stdout.write(`listening on ${a.address}:${a.port}\n`);
});

function stop() {
  server.close();
  server.closeAllConnections();
  pool.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
