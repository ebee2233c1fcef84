'use strict';
/**
 * h2load (nghttp2-client) for scenario d: cleartext HTTP/2 with prior
 * knowledge, in duration mode (`-D secs --warm-up-time secs`). h2load prints
 * `Main benchmark duration is started` / `... is over` when its counted time
 * begins and ends; the harness reads the proxy's CPU time at those two lines.
 *
 * Two quirks of h2load 1.52 that the parser accounts for:
 * - the `traffic:` byte counts include the warm-up, the request counts do not,
 *   so bytes per request cannot be checked from its output (the readiness
 *   probe checks the body instead);
 * - a client whose connection the server ends (GOAWAY, e.g. nginx's default
 *   1000 requests per connection) is not reconnected: the run goes on with
 *   fewer clients. The bench's nginx configs raise that limit.
 */
const http2 = require('node:http2');

const START_LINE = /Main benchmark duration is started/;
const END_LINE = /Main benchmark duration is over/;

/** Arguments for one counted run: `connArgs` like ['-c16', '-m10']. */
function args(connArgs, url, seconds, warmupSeconds) {
  return [...connArgs, '-t1', '-D', String(seconds), '--warm-up-time', String(warmupSeconds), url];
}

const num = (s) => Number(String(s).replace(/,/g, ''));

/** A time like `1.00ms`, `215us`, `1.2s` in µs. */
function micros(s) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(s);
  if (!m) return null;
  return Number(m[1]) * (m[2] === 'us' ? 1 : m[2] === 'ms' ? 1000 : 1e6);
}

/**
 * The figures of h2load's final report. Throws when the summary lines are
 * missing. `succeeded` are requests that completed (any status); `status_2xx`
 * tells how many of them were 2xx.
 */
function parse(text) {
  const fin = /^finished in ([\d.]+)(ms|s), ([\d.]+) req\/s, /m.exec(text);
  const req = /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(text);
  const st = /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m.exec(text);
  if (!fin || !req || !st) throw new Error(`h2load printed no summary: ${text.trim().slice(-300)}`);
  const t = /^time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(text);
  const out = {
    rps: num(fin[3]),
    total: num(req[1]),
    started: num(req[2]),
    done: num(req[3]),
    succeeded: num(req[4]),
    failed: num(req[5]),
    errored: num(req[6]),
    timeout: num(req[7]),
    status: { '2xx': num(st[1]), '3xx': num(st[2]), '4xx': num(st[3]), '5xx': num(st[4]) },
    latency_us: t ? { min: micros(t[1]), max: micros(t[2]), mean: micros(t[3]), sd: micros(t[4]) } : null,
  };
  return out;
}

/** One h2c (prior knowledge) GET; resolves { status, bytes } like proc.httpGet. */
function h2Get(port, urlPath, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(() => finish(new Error('timeout')), timeoutMs);
    const finish = (err, value) => {
      clearTimeout(timer);
      session.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    session.on('error', (err) => finish(err));
    const req = session.request({ ':path': urlPath });
    let status = 0;
    let bytes = 0;
    req.on('response', (headers) => (status = headers[':status']));
    req.on('data', (c) => (bytes += c.length));
    req.on('end', () => finish(null, { status, bytes }));
    req.on('error', (err) => finish(err));
    req.end();
  });
}

module.exports = { START_LINE, END_LINE, args, parse, h2Get };
