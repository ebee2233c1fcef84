'use strict';
/**
 * The load generators of `npm run bench`, one driver per `scenario.load.tool`:
 *
 *   wrk        HTTP/1.1 and HTTPS (a, b, c, e, f): a separate warm-up run,
 *              then the counted run; the harness marks the CPU counters just
 *              before and after it.
 *   h2load     h2c (d): one run in duration mode with h2load's own warm-up;
 *              the marks are taken when h2load says its main duration starts
 *              and ends.
 *   websocket  scripts/bench/websocket-driver.js (g, h): likewise, at its
 *              `MEASURE start` / `MEASURE end` lines.
 *
 * `run({ scenario, port, opts, dir, ctx, mark })` calls `mark('start', pid)` and
 * `mark('end', pid)` (pid: the load generator, while it runs) and resolves
 *   { tool, report, count, bytes, seconds, p50_us, p99_us, mean_us,
 *     errors: { name: n }, errors_total, warnings: [], fatal }
 * where `count` is units of work (requests, handshakes, messages), `bytes` the
 * bytes the CPU-per-MiB figure is about, and `fatal` a reason the run must
 * count as failed (h2load or WebSocket errors) with its figures kept.
 */
const path = require('node:path');
const proc = require('./proc');
const h2load = require('./h2load');
const ws = require('./websocket-driver');

const WRK_LUA = path.join(__dirname, 'wrk-report.lua');

/** The readiness probe of a scenario: one request of the kind its load generator makes. */
function probe(scenario, port) {
  if (scenario.load.tool === 'websocket') return () => ws.probe(port, scenario.path, scenario.probe.bytes - 8);
  if (scenario.frontend === 'h2c') return () => h2load.h2Get(port, scenario.path);
  return () => proc.httpGet(port, scenario.path, { secure: scenario.frontend === 'tls' });
}

const sum = (o) => Object.values(o).reduce((a, v) => a + v, 0);
const listErrors = (e) =>
  Object.entries(e)
    .filter(([, v]) => v)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');

/** Runs wrk once against `url`; resolves its WRKJSON report (scripts/bench/wrk-report.lua). */
async function runWrk(url, args, seconds, { env, logFile }) {
  const all = [...args, '-d', `${seconds}s`, '--timeout', '5s', '-s', WRK_LUA, url];
  const child = await proc.run('wrk', proc.which('wrk') || 'wrk', all, { env, logFile });
  const m = /^WRKJSON (\{.*\})$/m.exec(child.tail);
  if (!m) throw new Error(`wrk ${proc.describeExit(child)}: ${child.tail.trim().slice(-400)}`);
  try {
    return JSON.parse(m[1]);
  } catch (err) {
    throw new Error(`wrk report unreadable: ${err.message}`);
  }
}

async function wrkDriver({ scenario, port, opts, dir, ctx, mark }) {
  const scheme = scenario.frontend === 'tls' ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${port}${scenario.path}`;
  const env = scenario.load.fullHandshakes ? ctx.fullHandshakeEnv : undefined;
  await runWrk(url, scenario.load.args, opts.warmup, { env, logFile: path.join(dir, 'wrk-warmup.log') });
  mark('start', null);
  const w = await runWrk(url, scenario.load.args, opts.duration, { env, logFile: path.join(dir, 'wrk.log') });
  mark('end', null);
  const warnings = [];
  const bodyBytes = scenario.probe.bytes;
  if (w.requests && w.bytes / w.requests < bodyBytes) {
    warnings.push(`responses average ${Math.round(w.bytes / w.requests)} bytes, less than the ${bodyBytes}-byte body`);
  }
  const errors_total = sum(w.errors);
  if (errors_total) warnings.push(`errors: ${listErrors(w.errors)}`);
  return {
    tool: 'wrk',
    report: w,
    count: w.requests,
    bytes: w.requests * bodyBytes,
    seconds: w.duration_us / 1e6,
    p50_us: w.latency_us.p50,
    p99_us: w.latency_us.p99,
    mean_us: w.latency_us.mean,
    errors: w.errors,
    errors_total,
    warnings,
    fatal: w.requests ? null : 'wrk completed no request',
  };
}

/** Runs a load generator that prints start/end lines; marks at them, resolves the finished child. */
async function runMarked(name, command, args, { env, logFile, startLine, endLine, mark }) {
  const seen = new Set();
  const onLine = (line, child) => {
    for (const [which, re] of [
      ['start', startLine],
      ['end', endLine],
    ]) {
      if (!seen.has(which) && re.test(line)) {
        seen.add(which);
        mark(which, child.pid);
      }
    }
  };
  const child = await proc.run(name, command, args, { env, logFile, onLine });
  const missing = ['start', 'end'].filter((w) => !seen.has(w));
  return { child, missing };
}

async function h2loadDriver({ scenario, port, opts, dir, mark }) {
  const url = `http://127.0.0.1:${port}${scenario.path}`;
  const { child, missing } = await runMarked('h2load', proc.which('h2load') || 'h2load', h2load.args(scenario.load.args, url, opts.duration, opts.warmup), {
    logFile: path.join(dir, 'h2load.log'),
    startLine: h2load.START_LINE,
    endLine: h2load.END_LINE,
    mark,
  });
  if (missing.length) throw new Error(`h2load ${proc.describeExit(child)} without its ${missing.join('/')} line: ${child.tail.trim().slice(-300)}`);
  const r = h2load.parse(child.tail);
  const errors = {
    failed: r.failed,
    errored: r.errored,
    timeout: r.timeout,
    // Not `succeeded - 2xx`: a response whose head came in before the end of
    // the counted time but whose stream ended after it has its status counted
    // and is not a success, so 2xx can exceed succeeded by the streams in flight.
    not_2xx: r.status['3xx'] + r.status['4xx'] + r.status['5xx'],
  };
  const errors_total = sum(errors);
  const fatal = !r.succeeded
    ? 'h2load completed no request'
    : errors_total
      ? `h2load errors: ${listErrors(errors)} (of ${r.total} requests)`
      : null;
  return {
    tool: 'h2load',
    report: r,
    count: r.succeeded,
    bytes: r.succeeded * scenario.probe.bytes,
    seconds: r.rps ? r.succeeded / r.rps : opts.duration,
    // h2load 1.52 prints no percentiles, only min/max/mean/sd per request.
    p50_us: null,
    p99_us: null,
    mean_us: r.latency_us ? r.latency_us.mean : null,
    errors,
    errors_total,
    warnings: [],
    fatal,
  };
}

async function websocketDriver({ scenario, port, opts, dir, mark }) {
  const l = scenario.load;
  const args = [
    path.join(__dirname, 'websocket-driver.js'),
    '--port', String(port),
    '--path', scenario.path,
    '--mode', l.mode,
    '--connections', String(l.connections),
    '--size', String(l.size),
    '--warmup', String(opts.warmup),
    '--duration', String(opts.duration),
  ];
  const { child, missing } = await runMarked('websocket driver', process.execPath, args, {
    logFile: path.join(dir, 'websocket-driver.log'),
    startLine: /^MEASURE start$/,
    endLine: /^MEASURE end$/,
    mark,
  });
  const m = /^WSJSON (\{.*\})$/m.exec(child.tail);
  if (missing.length || !m) throw new Error(`websocket driver ${proc.describeExit(child)}: ${child.tail.trim().slice(-400)}`);
  const r = JSON.parse(m[1]);
  const errors = { connections_broken: r.errors };
  const echo = l.mode === 'echo';
  const done = echo ? r.messages : r.echoed_bytes;
  return {
    tool: 'websocket-driver',
    report: r,
    count: echo ? r.messages : null,
    // Bulk: every echoed byte went through the tunnel twice (up and back).
    bytes: r.echoed_bytes * 2,
    seconds: r.seconds,
    p50_us: r.latency_us ? r.latency_us.p50 : null,
    p99_us: r.latency_us ? r.latency_us.p99 : null,
    mean_us: r.latency_us ? r.latency_us.mean : null,
    errors,
    errors_total: r.errors,
    warnings: [],
    fatal: r.errors
      ? `${r.errors} WebSocket connection(s) broke: ${r.first_error}`
      : done
        ? null
        : 'nothing came back through the tunnel',
  };
}

const DRIVERS = { wrk: wrkDriver, h2load: h2loadDriver, websocket: websocketDriver };

module.exports = { DRIVERS, probe };
