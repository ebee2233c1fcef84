#!/usr/bin/env node
'use strict';
/**
 * HTTP/2 conformance: runs h2spec (summerwind/h2spec) against a freshly
 * started zproxy, over h2c (prior knowledge) and over TLS (ALPN h2, the
 * test certificates in test/fixtures/tls), and prints the totals.
 *
 *   npm run conformance [-- --h2spec PATH] [--floor N] [--verbose]
 *
 * Builds nothing: it runs dist/ as it is (`npm run build:ts` first). The
 * h2spec binary is taken from --h2spec, $H2SPEC, or ../shared/tools/h2spec
 * next to the repository. zproxy proxies "/" to a small HTTP/1.1 upstream
 * started here, which answers once it has read the whole request body: a
 * proxied route, where h2spec's stream-state cases are not raced by an
 * answer given before the request is complete (see docs/http2.md).
 *
 * Exits 1 when either run passes fewer cases than the floor (default: all
 * 146), 2 when h2spec or dist/ is missing or a run could not be made.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..');
const TLS_DIR = path.join(REPO, 'test', 'fixtures', 'tls');
const TOTAL_CASES = 146;

function parseArgs(argv) {
  const o = { h2spec: process.env.H2SPEC || path.resolve(REPO, '..', 'shared', 'tools', 'h2spec'), floor: TOTAL_CASES, verbose: false, timeout: 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--h2spec') o.h2spec = argv[++i];
    else if (a === '--floor') o.floor = Number(argv[++i]);
    else if (a === '--timeout') o.timeout = Number(argv[++i]);
    else if (a === '--verbose' || a === '-v') o.verbose = true;
    else if (a === '--help' || a === '-h') {
      console.log('usage: node scripts/conformance.js [--h2spec PATH] [--floor N] [--timeout SECONDS] [--verbose]');
      process.exit(0);
    } else {
      console.error(`unknown option ${a}`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(o.floor) || o.floor < 0) {
    console.error('--floor: expected a whole number');
    process.exit(2);
  }
  return o;
}

/** The upstream: reads each request body whole, then answers 200 with a short body. */
function startUpstream() {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const body = 'h2spec upstream\n';
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/** Starts zproxy's CLI with `config`; resolves { child, port } at its `listening` line. */
function startZproxy(name, config, dir) {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  const child = spawn(process.execPath, [path.join(REPO, 'bin', 'zproxy.js'), 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name}: no listening line within 15 s\n${output}`));
    }, 15_000);
    const onData = (chunk) => {
      output += chunk;
      const m = /listening on [^ ]*:(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name}: exited with ${code} before listening\n${output}`));
    });
  });
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Runs h2spec; resolves { passed, failed, skipped, total, failures: [lines] }. */
function runH2spec(bin, args, verbose) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.once('error', reject);
    child.once('exit', () => {
      if (verbose) process.stdout.write(out);
      const m = /(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed/.exec(out);
      if (!m) return reject(new Error(`h2spec printed no totals:\n${out.slice(-2000)}`));
      // The failure summary repeats each failed case as "× N: description" after "Failures:".
      const summary = out.includes('Failures:') ? out.slice(out.indexOf('Failures:')) : '';
      const failures = [];
      let section = '';
      for (const line of summary.split('\n')) {
        const head = /^\s*(\d+(?:\.\d+)*)\. /.exec(line);
        if (head) section = head[1];
        const fail = /×\s*(\d+):\s*(.*)$/.exec(line);
        if (fail) failures.push(`${section}/${fail[1]} ${fail[2].trim()}`);
      }
      resolve({ total: Number(m[1]), passed: Number(m[2]), skipped: Number(m[3]), failed: Number(m[4]), failures });
    });
  });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(o.h2spec)) {
    console.error(`h2spec not found at ${o.h2spec} (give --h2spec PATH or H2SPEC)`);
    process.exit(2);
  }
  if (!fs.existsSync(path.join(REPO, 'dist', 'index.js'))) {
    console.error('dist/ is missing: run `npm run build:ts` first (this script builds nothing)');
    process.exit(2);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zproxy-conformance-'));
  const upstream = await startUpstream();
  const route = { path: '/', upstream: `http://127.0.0.1:${upstream.address().port}` };
  const base = { host: '127.0.0.1', port: 0, admin: null, thread_count: 1, log_level: 'info', routes: [route] };
  const runs = [
    { name: 'h2c', config: base, args: [] },
    {
      name: 'tls',
      config: { ...base, tls: { enabled: true, cert_file: path.join(TLS_DIR, 'localhost.pem'), key_file: path.join(TLS_DIR, 'localhost.key') } },
      args: ['-t', '-k'],
    },
  ];
  const results = [];
  let broken = false;
  try {
    for (const run of runs) {
      const { child, port } = await startZproxy(run.name, run.config, dir);
      try {
        const result = await runH2spec(o.h2spec, ['-h', '127.0.0.1', '-p', String(port), '-o', String(o.timeout), ...run.args], o.verbose);
        results.push({ name: run.name, ...result });
      } finally {
        await stop(child);
      }
    }
  } catch (err) {
    console.error(String(err && err.stack ? err.stack : err));
    broken = true;
  } finally {
    upstream.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (broken) process.exit(2);
  let below = false;
  for (const r of results) {
    const line = `h2spec ${r.name.padEnd(3)}: ${r.passed}/${r.total} passed, ${r.failed} failed, ${r.skipped} skipped`;
    console.log(line);
    for (const f of r.failures) console.log(`  failed ${f}`);
    if (r.passed < o.floor) below = true;
  }
  if (below) {
    console.error(`below the floor of ${o.floor} passed cases`);
    process.exit(1);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
