#!/usr/bin/env node
'use strict';
/**
 * Micro-benchmark of zproxy's own per-request head work in scenario a (build
 * first: npx tsc -p tsconfig.json): parse a wrk request head, build the
 * upstream request head, parse an nginx response head, and build the client
 * response head with the 13-byte body behind it. No I/O, no routing: what the
 * request path costs in JavaScript before any socket is touched.
 *   node scripts/bench-heads.js [iterations]
 */
const { parseRequestHead } = require('../dist/protocol/http1/request-head');
const { parseResponseHead } = require('../dist/protocol/http1/response-head');
const { forwardRequestHead, forwardResponseHead } = require('../dist/protocol/http1/forward-head');
const { ForwardedFields } = require('../dist/http/forwarded-fields');
const { nextRequestId } = require('../dist/util/request-id');

const request = Buffer.from('GET /small HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n', 'latin1');
const response = Buffer.from(
  'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 07:40:00 GMT\r\nContent-Type: text/plain\r\n' +
    'Content-Length: 13\r\nConnection: keep-alive\r\n\r\nHello, world!',
  'latin1',
);
const limits = { maxHeaderBytes: 65536 };
const iterations = Number(process.argv[2] || 2_000_000);
const forwarded = new ForwardedFields('127.0.0.1', 'http');

function oneRequest() {
  const parsed = parseRequestHead(request, 0, request.length, limits);
  if (parsed.kind !== 'head') throw new Error(`request head: ${JSON.stringify(parsed)}`);
  const head = parsed.head;
  const requestId = nextRequestId();
  const upstreamHead = forwardRequestHead(head, {
    path: head.target,
    hostFromTarget: false,
    forwarded: forwarded.lines(head.host, head.getHeaderJoined('x-forwarded-for')),
    requestId,
    addRequestId: true,
    upgrade: false,
    edits: null,
  });
  const answer = parseResponseHead(response, 0, response.length, limits);
  if (answer.kind !== 'head') throw new Error(`response head: ${JSON.stringify(answer)}`);
  const toClient = forwardResponseHead(
    answer.head,
    { requestId, addRequestId: true, chunked: false, close: false, keepAliveHeader: false, edits: null },
    response,
    answer.headEnd,
    response.length,
  );
  return upstreamHead.length + toClient.length;
}

let sink = 0;
for (let i = 0; i < 300_000; i++) sink += oneRequest(); // warm up
const t0 = process.hrtime.bigint();
for (let i = 0; i < iterations; i++) sink += oneRequest();
const ns = Number(process.hrtime.bigint() - t0) / iterations;
console.log(`${ns.toFixed(0)} ns per request: two heads parsed, two built (checksum ${sink % 997})`);
