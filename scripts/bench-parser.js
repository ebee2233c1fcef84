#!/usr/bin/env node
'use strict';
/**
 * Micro-benchmark of the HTTP/1 head parser (build first: npx tsc -p tsconfig.json).
 * Prints ns per parse of a typical ~300-byte browser-like request head, and
 * the heap growth per parse (process.memoryUsage, GC off where possible).
 *   node --expose-gc scripts/bench-parser.js [iterations]
 */
const { parseRequestHead } = require('../dist/protocol/http1/request-head');
const { parseResponseHead } = require('../dist/protocol/http1/response-head');

const requestHead = Buffer.from(
  'GET /api/v1/users/42?expand=true HTTP/1.1\r\n' +
    'Host: app.example.com\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n' +
    'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n' +
    'Accept-Language: en-US,en;q=0.5\r\n' +
    'Accept-Encoding: gzip, deflate, br\r\n' +
    'Connection: keep-alive\r\n' +
    'Cookie: session=abc123def456\r\n' +
    '\r\n',
  'latin1',
);
const responseHead = Buffer.from(
  'HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Tue, 25 Nov 2026 12:00:00 GMT\r\nContent-Type: application/json\r\n' +
    'Content-Length: 13\r\nConnection: keep-alive\r\nCache-Control: no-cache\r\n\r\n',
  'latin1',
);
const limits = { maxHeaderBytes: 65536 };
const iterations = Number(process.argv[2] || 2_000_000);

function bench(name, buf, parse) {
  const check = parse(buf, 0, buf.length, limits);
  if (check.kind !== 'head') throw new Error(`${name}: ${JSON.stringify(check)}`);
  for (let i = 0; i < 200_000; i++) parse(buf, 0, buf.length, limits); // warm up
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) sink += parse(buf, 0, buf.length, limits).headEnd;
  const ns = Number(process.hrtime.bigint() - t0) / iterations;

  // Allocation: heap growth over a batch small enough not to trigger a scavenge... approximately.
  const batch = 20_000;
  const keep = new Array(batch);
  if (global.gc) global.gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < batch; i++) keep[i] = parse(buf, 0, buf.length, limits);
  const after = process.memoryUsage().heapUsed;
  const bytesPerParse = (after - before) / batch;
  console.log(
    `${name}: ${buf.length} bytes, ${ns.toFixed(0)} ns/parse (${(buf.length / ns).toFixed(2)} bytes/ns), ` +
      `~${bytesPerParse.toFixed(0)} heap bytes retained per parse (result kept)${global.gc ? '' : ' [run with --expose-gc for a cleaner figure]'}`,
  );
  return sink + keep.length;
}

bench('request head', requestHead, parseRequestHead);
bench('response head', responseHead, parseResponseHead);
