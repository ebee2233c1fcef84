#!/usr/bin/env node
'use strict';
/**
 * A good upstream of the soak (its own process, so it can be killed and
 * restarted): node:http with keep-alive, and a `ws` WebSocket echo.
 *
 *   node scripts/soak/upstream-good.js --name A --port P --control C
 *
 * `/good/<id>?size=N&chunked=0|1&delay=MS` answers 200 with a body of N
 * bytes that starts with one JSON line: the id from the path, the
 * X-Request-Id, this upstream's name, and the upload's length and SHA-256
 * as received. `x-soak-len` and `x-soak-sha256` describe the whole body, so
 * a client can tell a short body from a complete one. An upload whose
 * `x-soak-upload-sha256` differs from what arrived in full is counted as
 * corrupt; one cut short, as incomplete. A WebSocket says
 * `{"upstream":NAME}` first, then echoes every message.
 */
const crypto = require('node:crypto');
const http = require('node:http');
const { WebSocketServer } = require('ws');
const { parseArgs, trackConnections, serveControl, exitOnSignals } = require('./control');
const { bytePool } = require('./random');

const args = parseArgs(process.argv.slice(2));
const NAME = args.name;
/** Response bodies are cut from this block (sizes go up to 600 KiB). */
const PADDING = bytePool(7, 640 * 1024);

const stats = { requests: 0, uploadsComplete: 0, uploadsCorrupt: 0, uploadsIncomplete: 0, parseErrors: 0, wsOpened: 0, wsMessages: 0, corruptSamples: [] };

const server = http.createServer({ keepAliveTimeout: 30_000, requestTimeout: 0 }, onRequest);
const { open, counts } = trackConnections(server);
server.on('clientError', (err, socket) => {
  socket.destroy();
  // A connection closed or reset mid-request is an upload cut short (counted by 'aborted'), not a parse error.
  if (!String(err.code).startsWith('HPE_') || err.code === 'HPE_INVALID_EOF_STATE') return;
  // zproxy sent something node:http could not parse: never expected.
  stats.parseErrors++;
  if (stats.corruptSamples.length < 5) stats.corruptSamples.push({ parseError: err.code || err.message });
});

function onRequest(req, res) {
  stats.requests++;
  const url = new URL(req.url, 'http://x');
  const id = url.pathname.split('/')[2] || '';
  const hash = crypto.createHash('sha256');
  let received = 0;
  req.on('data', (chunk) => {
    hash.update(chunk);
    received += chunk.length;
  });
  req.on('aborted', () => stats.uploadsIncomplete++);
  req.on('end', () => {
    const sha256 = hash.digest('hex');
    const declared = req.headers['x-soak-upload-sha256'];
    if (declared !== undefined) {
      stats.uploadsComplete++;
      if (declared !== sha256) {
        stats.uploadsCorrupt++;
        if (stats.corruptSamples.length < 5) stats.corruptSamples.push({ id, declared, sha256, received, expected: req.headers['x-soak-upload-len'] });
      }
    }
    const answer = () => respond(res, url, { id, rid: req.headers['x-request-id'] || '', upstream: NAME, method: req.method, received, sha256 });
    const delay = Number(url.searchParams.get('delay') || 0);
    if (delay > 0) setTimeout(answer, delay);
    else answer();
  });
}

function respond(res, url, summary) {
  const line = Buffer.from(`${JSON.stringify(summary)}\n`);
  const size = Math.max(line.length, Number(url.searchParams.get('size') || 0));
  const offset = Number(summary.id) % 4096;
  const body = Buffer.concat([line, PADDING.subarray(offset, offset + size - line.length)]);
  const headers = {
    'content-type': 'application/octet-stream',
    'x-soak-id': summary.id,
    'x-soak-len': String(body.length),
    'x-soak-sha256': crypto.createHash('sha256').update(body).digest('hex'),
  };
  if (url.searchParams.get('chunked') === '1') {
    // No Content-Length: node:http frames it chunked, here in two chunks.
    res.writeHead(200, headers);
    res.write(body.subarray(0, body.length >> 1));
    res.end(body.subarray(body.length >> 1));
  } else {
    res.writeHead(200, { ...headers, 'content-length': String(body.length) });
    res.end(body);
  }
}

const wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });
server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    stats.wsOpened++;
    ws.on('error', () => undefined);
    ws.send(JSON.stringify({ upstream: NAME }));
    ws.on('message', (data, isBinary) => {
      stats.wsMessages++;
      ws.send(data, { binary: isBinary });
    });
  });
});

exitOnSignals();
server.listen({ host: '127.0.0.1', port: Number(args.port) }, async () => {
  await serveControl(Number(args.control), () => ({ ...stats, name: NAME, accepted: counts.accepted, open: open.size }));
  process.stdout.write(`upstream ${NAME} ready\n`);
});
