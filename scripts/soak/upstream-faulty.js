#!/usr/bin/env node
'use strict';
/**
 * The faulty upstream of the soak (its own process): a raw `net` server that
 * reads each request (head, then its Content-Length or chunked body) and
 * misbehaves as `/fault/<name>/<id>` asks (see faults.js). `early` and
 * `large` faults act on the head alone, before the upload is read.
 *
 *   node scripts/soak/upstream-faulty.js --port P --control C --seed N
 *
 * A socket a fault leaves open stays open until the proxy closes it, so the
 * open-connection count at the end shows whether zproxy let go of it.
 */
const net = require('node:net');
const { parseArgs, trackConnections, serveControl, exitOnSignals } = require('./control');
const { FAULTS } = require('./faults');
const { Random } = require('./random');

const args = parseArgs(process.argv.slice(2));
const random = new Random(Number(args.seed), 9999);
const pick = (list) => random.pick(list);
const stats = { requests: 0, byFault: {}, unknown: 0, badFraming: 0 };

const server = net.createServer(onConnection);
const { open, counts } = trackConnections(server);
/** socket -> the fault it last acted out, to name what a connection left open was doing. */
const lastFault = new WeakMap();

/** Open connections by the fault they last acted out. */
function openByFault() {
  const out = {};
  for (const socket of open) {
    const name = lastFault.get(socket) || '(no request yet)';
    out[name] = (out[name] || 0) + 1;
  }
  return out;
}

function onConnection(socket) {
  socket.on('error', () => undefined);
  let data = Buffer.alloc(0);
  /** The request being read: its head is parsed, its body not yet complete. */
  let current = null;
  /** Set once a fault acted on the head alone (`early`, `large`): the rest of that upload is never read. */
  let answeredEarly = false;
  socket.on('data', (chunk) => {
    if (answeredEarly) return;
    data = data.length ? Buffer.concat([data, chunk]) : chunk;
    for (;;) {
      if (!current) {
        const end = data.indexOf('\r\n\r\n');
        if (end < 0) return;
        current = parseHead(data.toString('latin1', 0, end));
        data = data.subarray(end + 4);
        if (!current) {
          stats.badFraming++;
          return socket.destroy();
        }
        if (current.fault && (current.fault.when === 'early' || current.fault.large)) {
          answeredEarly = true;
          return act(socket, current);
        }
      }
      const bodyEnd = current.chunked ? chunkedEnd(data) : current.length <= data.length ? current.length : -1;
      if (Number.isNaN(bodyEnd)) {
        stats.badFraming++;
        return socket.destroy();
      }
      if (bodyEnd < 0) return;
      data = data.subarray(bodyEnd);
      const req = current;
      current = null;
      act(socket, req);
      if (socket.destroyed) return;
    }
  });
}

function act(socket, req) {
  stats.requests++;
  if (!req.fault) {
    stats.unknown++;
    return socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  }
  stats.byFault[req.faultName] = (stats.byFault[req.faultName] || 0) + 1;
  lastFault.set(socket, req.faultName);
  req.fault.act(socket, req, pick);
}

function parseHead(text) {
  const lines = text.split('\r\n');
  const [method, target] = lines[0].split(' ');
  if (!target) return null;
  const headers = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const [, , faultName = '', id = ''] = target.split('?')[0].split('/');
  return {
    method,
    id,
    faultName,
    fault: FAULTS[faultName],
    chunked: /chunked/i.test(headers['transfer-encoding'] || ''),
    length: Number(headers['content-length'] || 0),
  };
}

/** Where a complete chunked body ends in `buf`, -1 while it is incomplete, NaN for a bad chunk size. */
function chunkedEnd(buf) {
  let at = 0;
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', at);
    if (lineEnd < 0) return -1;
    const size = parseInt(buf.toString('latin1', at, lineEnd), 16);
    if (Number.isNaN(size)) return NaN;
    at = lineEnd + 2;
    if (size === 0) {
      // Trailers, then the blank line.
      for (;;) {
        const e = buf.indexOf('\r\n', at);
        if (e < 0) return -1;
        if (e === at) return at + 2;
        at = e + 2;
      }
    }
    if (buf.length < at + size + 2) return -1;
    at += size + 2;
  }
}

exitOnSignals();
server.listen({ host: '127.0.0.1', port: Number(args.port) }, async () => {
  await serveControl(Number(args.control), () => ({ ...stats, name: 'faulty', accepted: counts.accepted, open: open.size, openByFault: openByFault() }));
  process.stdout.write('upstream faulty ready\n');
});
