'use strict';
/**
 * How the soak's upstream processes report: each counts the connections it
 * accepts on its data port and answers `GET /stats` (JSON) on a separate
 * control port, so asking never adds a connection to the count being asked
 * about. Also the argv reader the upstream processes share.
 */
const http = require('node:http');

/** `--name value` pairs from argv into an object. */
function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  return out;
}

/** Counts accepted and open connections of `server`; returns the live set too (for a clean exit). */
function trackConnections(server) {
  const open = new Set();
  const counts = { accepted: 0 };
  server.on('connection', (socket) => {
    counts.accepted++;
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  return { open, counts };
}

/** Serves `stats()` as JSON on 127.0.0.1:`port`; resolves once listening. */
function serveControl(port, stats) {
  const server = http.createServer((req, res) => {
    const body = JSON.stringify(stats());
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => resolve(server));
  });
}

/** The stats of the upstream whose control port is `port`. */
function fetchStats(port, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/stats', agent: false, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('stats timeout')));
    req.on('error', reject);
  });
}

/** Exits on SIGTERM/SIGINT at once: the parent has what it needs from /stats. */
function exitOnSignals() {
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
}

module.exports = { parseArgs, trackConnections, serveControl, fetchStats, exitOnSignals };
