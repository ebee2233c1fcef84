#!/usr/bin/env node
'use strict';
/**
 * `npm run bench`: zproxy side by side with nginx, HAProxy and a node:http +
 * undici baseline, measured the way /work/shared/PERF.md (docs/benchmarks.md)
 * says: fresh processes per scenario, warm-up, bounded wrk runs on loopback,
 * interleaved rounds, medians, and the proxy's own CPU time per request
 * (utime + stime from /proc, all threads and processes) as the main figure.
 *
 *   node scripts/bench.js [--duration 10s] [--rounds 3] [--warmup 1s]
 *                         [--scenarios a,b,c] [--proxies nginx,haproxy,baseline,zproxy1,zproxyN]
 *                         [--zproxy-mode proxy|respond] [--out bench-results/] [--quick]
 *
 * Progress goes to stderr; the Markdown table and target checks to stdout;
 * all raw rounds plus the machine to a JSON file (and the table to a .md) in --out.
 */
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const proc = require('./bench/proc');
const servers = require('./bench/servers');
const report = require('./bench/report');

const SCENARIOS = {
  a: {
    title: '13-byte GET, keep-alive, wrk -c64',
    path: '/small',
    bodyBytes: 13,
    wrkArgs: ['-t1', '-c64'],
  },
  b: {
    title: '1 MiB GET, keep-alive, wrk -c16',
    path: '/1m',
    bodyBytes: servers.BIG_BYTES,
    wrkArgs: ['-t1', '-c16'],
    perMiB: true,
  },
  c: {
    title: 'new connection per request, wrk -c32',
    path: '/small',
    bodyBytes: 13,
    wrkArgs: ['-t1', '-c32', '-H', 'Connection: close'],
  },
};
/** A run during which other work used more than this many cores is marked noisy. */
const NOISY_CORES = 0.35;
const ALL_PROXIES = ['direct', 'nginx', 'haproxy', 'baseline', 'zproxy1', 'zproxyN'];
const DEFAULT_PROXIES = ['nginx', 'haproxy', 'baseline', 'zproxy1', 'zproxyN'];

const USAGE = `usage: node scripts/bench.js [options]
  --duration 10s      counted wrk time per run (whole seconds; default 10s)
  --rounds 3          interleaved rounds; medians are reported (default 3)
  --warmup 1s         wrk warm-up before each counted run (default 1s)
  --scenarios a,b,c   a: 13-byte GET keep-alive -c64; b: 1 MiB GET keep-alive -c16;
                      c: new connection per request -c32 (default all)
  --proxies LIST      from ${ALL_PROXIES.join(',')} (default ${DEFAULT_PROXIES.join(',')});
                      direct = wrk straight at the backend (the floor)
  --zproxy-mode MODE  proxy (default): zproxy forwards to the backend;
                      respond: zproxy answers itself (stand-in while proxying is unfinished)
  --out DIR           where the JSON and Markdown results go (default bench-results/)
  --quick             smoke run: --duration 2s --rounds 1
  --help`;

// ---- options -----------------------------------------------------------------

function parseSeconds(name, value) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(value).trim());
  if (!m) throw new Error(`${name}: expected a duration like 10s, 500ms or 1m, got ${JSON.stringify(value)}`);
  const n = Number(m[1]) * (m[2] === 'ms' ? 0.001 : m[2] === 'm' ? 60 : 1);
  const s = Math.round(n);
  if (s < 1) throw new Error(`${name}: wrk counts whole seconds, at least 1s (got ${value})`);
  return s;
}

function parseList(name, value, allowed) {
  const list = String(value)
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  for (const x of list) {
    if (!allowed.includes(x)) throw new Error(`${name}: unknown ${JSON.stringify(x)} (choose from ${allowed.join(', ')})`);
  }
  if (!list.length) throw new Error(`${name}: empty list`);
  return [...new Set(list)];
}

function parseOptions(argv) {
  const o = {
    duration: 10,
    rounds: 3,
    warmup: 1,
    scenarios: Object.keys(SCENARIOS),
    proxies: DEFAULT_PROXIES,
    zproxyMode: 'proxy',
    out: path.join(servers.REPO, 'bench-results'),
  };
  let quick = false;
  const explicit = new Set();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const key = eq > 0 ? a.slice(0, eq) : a;
    const next = () => {
      if (eq > 0) return a.slice(eq + 1);
      if (i + 1 >= argv.length) throw new Error(`${key}: missing value`);
      return argv[++i];
    };
    switch (key) {
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      case '--quick':
        quick = true;
        break;
      case '--duration':
        o.duration = parseSeconds(key, next());
        explicit.add('duration');
        break;
      case '--warmup':
        o.warmup = parseSeconds(key, next());
        break;
      case '--rounds': {
        const v = next();
        o.rounds = Number(v);
        if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new Error(`--rounds: expected an integer ≥ 1, got ${v}`);
        explicit.add('rounds');
        break;
      }
      case '--scenarios':
        o.scenarios = parseList(key, next(), Object.keys(SCENARIOS));
        break;
      case '--proxies':
        o.proxies = parseList(key, next(), ALL_PROXIES);
        break;
      case '--zproxy-mode':
        o.zproxyMode = next();
        if (!['proxy', 'respond'].includes(o.zproxyMode)) throw new Error(`--zproxy-mode: proxy or respond, got ${o.zproxyMode}`);
        break;
      case '--out':
        o.out = path.resolve(next());
        break;
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (quick) {
    if (!explicit.has('duration')) o.duration = 2;
    if (!explicit.has('rounds')) o.rounds = 1;
  }
  o.quick = quick;
  // Keep the report order stable whatever order the list was given in.
  o.proxies = ALL_PROXIES.filter((p) => o.proxies.includes(p));
  o.scenarios = Object.keys(SCENARIOS).filter((s) => o.scenarios.includes(s));
  return o;
}

// ---- machine -------------------------------------------------------------------

/** First line a tool prints about itself (stdout or stderr: `nginx -v` uses stderr). */
function firstLine(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
  const text = `${r.stdout || ''}${r.stderr || ''}`.trim();
  return text ? text.split('\n')[0] : null;
}

function machineInfo() {
  const cpus = os.cpus();
  let gitHead = null;
  let gitDirty = null;
  try {
    gitHead = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: servers.REPO, encoding: 'utf8' }).trim();
    gitDirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: servers.REPO, encoding: 'utf8' }).trim() !== '';
  } catch {
    /* not a git checkout */
  }
  let distBuilt = null;
  try {
    distBuilt = fs.statSync(path.join(servers.REPO, 'dist', 'cli.js')).mtime.toISOString();
  } catch {
    /* not built */
  }
  return {
    date: new Date().toISOString(),
    cpu_model: cpus[0] ? cpus[0].model : 'unknown',
    nproc: servers.allCpus(),
    cpus_online: cpus.length,
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    clk_tck: proc.CLK_TCK,
    tools: {
      wrk: firstLine('wrk', ['-v']),
      nginx: firstLine(proc.which('nginx') || 'nginx', ['-v']),
      haproxy: proc.which('haproxy') ? firstLine(proc.which('haproxy'), ['-v']) : null,
      undici: (() => {
        try {
          return require(require.resolve('undici/package.json', { paths: [servers.REPO] })).version;
        } catch {
          return null;
        }
      })(),
    },
    git_head: gitHead,
    git_dirty: gitDirty,
    dist_built: distBuilt,
  };
}

// ---- progress ----------------------------------------------------------------

const t0 = Date.now();
function elapsed() {
  const s = Math.round((Date.now() - t0) / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}
function progress(msg) {
  process.stderr.write(`[${elapsed()}] ${msg}\n`);
}

// ---- wrk -------------------------------------------------------------------------

const WRK_LUA = path.join(__dirname, 'bench', 'wrk-report.lua');

/** Runs wrk against 127.0.0.1:port; resolves its WRKJSON report. */
function runWrk(scenario, port, seconds, logFile) {
  const url = `http://127.0.0.1:${port}${scenario.path}`;
  const args = [...scenario.wrkArgs, '-d', `${seconds}s`, '--timeout', '5s', '-s', WRK_LUA, url];
  const child = proc.start('wrk', proc.which('wrk') || 'wrk', args, { logFile });
  return new Promise((resolve, reject) => {
    const done = () => {
      if (!child.closed && !(child.exited && child.exited.error)) return;
      child.removeListener('output', done);
      const m = /^WRKJSON (\{.*\})$/m.exec(child.tail);
      if (!m) return reject(new Error(`wrk ${proc.describeExit(child)}: ${child.tail.trim().slice(-400)}`));
      try {
        resolve(JSON.parse(m[1]));
      } catch (err) {
        reject(new Error(`wrk report unreadable: ${err.message}`));
      }
    };
    child.on('output', done);
    done();
  });
}

// ---- one run ---------------------------------------------------------------------

let interrupted = false;

/**
 * One counted run of one proxy in one scenario: start it fresh, check it
 * answers the scenario's path correctly, warm up, then read its CPU time,
 * run wrk, read it again.
 */
async function measure({ opts, round, scenarioId, proxyId, catalogue, backend, dir }) {
  const scenario = SCENARIOS[scenarioId];
  const entry = catalogue[proxyId];
  const rec = { round, scenario: scenarioId, proxy: proxyId, label: entry.label, ok: false, error: null, warnings: [] };
  let target = null;
  try {
    fs.mkdirSync(dir, { recursive: true });
    if (entry.start) {
      target = await entry.start(dir, backend.port);
    } else {
      target = { child: backend.child, port: backend.port, shared: true };
    }
    const first = await proc.waitForHttp(target.child, target.port, scenario.path);
    if (first.status !== 200 || first.bytes !== scenario.bodyBytes) {
      throw new Error(`GET ${scenario.path} answered ${first.status} with ${first.bytes} body bytes (expected 200 with ${scenario.bodyBytes})`);
    }
    if (interrupted) throw new Error('interrupted');
    await runWrk(scenario, target.port, opts.warmup, path.join(dir, `wrk-warmup.log`));
    if (interrupted) throw new Error('interrupted');

    const pid = target.child.pid;
    const cpu0 = proc.cpuMicros(pid);
    const bcpu0 = proc.cpuMicros(backend.child.pid);
    const wcpu0 = proc.reapedChildrenMicros();
    const m0 = proc.machineMicros();
    const w = await runWrk(scenario, target.port, opts.duration, path.join(dir, `wrk.log`));
    const cpu1 = proc.cpuMicros(pid);
    const bcpu1 = proc.cpuMicros(backend.child.pid);
    const wcpu1 = proc.reapedChildrenMicros();
    const m1 = proc.machineMicros();
    if (interrupted) throw new Error('interrupted');
    if (target.child.exited) throw new Error(`the proxy died during the run: ${proc.describeExit(target.child)}`);

    const cpu = cpu1 - cpu0;
    const e = w.errors;
    rec.wrk = w;
    rec.requests = w.requests;
    rec.seconds = w.duration_us / 1e6;
    rec.rps = w.requests / rec.seconds;
    rec.p50_us = w.latency_us.p50;
    rec.p99_us = w.latency_us.p99;
    rec.cpu_us = cpu;
    rec.cpu_us_per_req = w.requests ? cpu / w.requests : null;
    rec.cpu_us_per_mib = w.requests ? cpu / ((w.requests * scenario.bodyBytes) / 2 ** 20) : null;
    rec.cpu_cores = cpu / w.duration_us;
    rec.backend_cpu_us_per_req = w.requests ? (bcpu1 - bcpu0) / w.requests : null;
    // Where the machine's CPU went during the counted run, in cores: the
    // proxy, the backend, wrk, and everything else (other work on a shared
    // machine, the harness itself, kernel softirq time not charged to a task).
    const cores = (us) => Math.round((us / w.duration_us) * 100) / 100;
    rec.cores = {
      proxy: cores(cpu),
      backend: target.shared ? 0 : cores(bcpu1 - bcpu0),
      wrk: cores(wcpu1 - wcpu0),
      machine_busy: cores(m1.busy - m0.busy),
      steal: cores(m1.steal - m0.steal),
    };
    rec.cores.other = Math.round((rec.cores.machine_busy - rec.cores.proxy - rec.cores.backend - rec.cores.wrk) * 100) / 100;
    rec.loadavg = os.loadavg()[0];
    rec.peak_rss_kib = proc.peakRssKiB(pid);
    rec.threads = proc.threadCount(pid);
    rec.errors = e;
    rec.errors_total = e.connect + e.read + e.write + e.status + e.timeout;
    if (w.requests && w.bytes / w.requests < scenario.bodyBytes) {
      rec.warnings.push(`responses average ${Math.round(w.bytes / w.requests)} bytes, less than the ${scenario.bodyBytes}-byte body`);
    }
    rec.noisy = rec.cores.other > NOISY_CORES;
    if (!w.requests) throw new Error('wrk completed no request');
    if (rec.errors_total) {
      rec.warnings.push(
        `errors: ${Object.entries(e)
          .filter(([, v]) => v)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
    }
    rec.ok = true;
  } catch (err) {
    rec.error = err.message.split('\n')[0].slice(0, 300);
  } finally {
    if (target && !target.shared) {
      rec.log_tail = target.child.tail.trim().split('\n').slice(-5);
      await proc.stop(target.child);
    }
  }
  return rec;
}

// ---- main ------------------------------------------------------------------------

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  const catalogue = servers.proxyCatalogue(opts);
  if (!proc.which('wrk')) throw new Error('wrk is not installed (apt-get install wrk)');
  if (!proc.which('nginx')) throw new Error('nginx is not installed (apt-get install nginx): it is the backend');

  const proxies = [];
  const skipped = {};
  for (const p of opts.proxies) {
    const why = catalogue[p].unavailable();
    if (why) {
      skipped[p] = why;
      progress(`skipping ${catalogue[p].label}: ${why}`);
    } else proxies.push(p);
  }
  if (!proxies.length) throw new Error('nothing to measure');

  const machine = machineInfo();
  const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'zproxy-bench-'));
  const runs = [];
  const perRun = opts.warmup + opts.duration + 1.5;
  const totalRuns = opts.rounds * opts.scenarios.length * proxies.length;
  progress(
    `${machine.cpu_model}, ${machine.nproc} CPUs, ${machine.kernel}, node ${machine.node}; ` +
      `${opts.rounds} round(s) × ${opts.scenarios.length} scenario(s) × ${proxies.length} prox(ies), ` +
      `${opts.warmup}s warm-up + ${opts.duration}s each: about ${Math.ceil((totalRuns * perRun) / 60)} min`,
  );
  progress(`temp dir ${tmpRoot}; zproxy mode: ${opts.zproxyMode}`);

  const state = { opts, machine, runs, skipped, tmpRoot, done: false };
  currentState = state;

  let n = 0;
  for (let round = 1; round <= opts.rounds && !interrupted; round++) {
    for (const s of opts.scenarios) {
      if (interrupted) break;
      const bdir = path.join(tmpRoot, `r${round}-${s}-backend`);
      fs.mkdirSync(bdir, { recursive: true });
      const backend = await servers.startBackend(bdir);
      try {
        const first = await proc.waitForHttp(backend.child, backend.port, SCENARIOS[s].path);
        if (first.status !== 200 || first.bytes !== SCENARIOS[s].bodyBytes) {
          throw new Error(`backend answered ${first.status} with ${first.bytes} bytes on ${SCENARIOS[s].path}`);
        }
        for (const p of proxies) {
          if (interrupted) break;
          n++;
          const eta = Math.max(0, Math.round(((totalRuns - n + 1) * perRun) / 60));
          progress(`round ${round}/${opts.rounds} · ${s} · ${catalogue[p].label} (run ${n}/${totalRuns}, ~${eta} min left)`);
          const rec = await measure({
            opts,
            round,
            scenarioId: s,
            proxyId: p,
            catalogue,
            backend,
            dir: path.join(tmpRoot, `r${round}-${s}-${p}`),
          });
          if (interrupted) break;
          runs.push(rec);
          if (rec.ok) {
            const cpu = SCENARIOS[s].perMiB ? `${rec.cpu_us_per_mib.toFixed(0)} µs/MiB` : `${rec.cpu_us_per_req.toFixed(1)} µs/req`;
            progress(
              `    ${Math.round(rec.rps)} req/s, p50 ${(rec.p50_us / 1000).toFixed(2)} ms, p99 ${(rec.p99_us / 1000).toFixed(2)} ms, ` +
                `${cpu} (${rec.cpu_cores.toFixed(2)} cores; backend ${rec.cores.backend}, wrk ${rec.cores.wrk}, other ${rec.cores.other}), peak RSS ${(rec.peak_rss_kib / 1024).toFixed(1)} MiB` +
                (rec.noisy ? '  (noisy)' : '') +
                (rec.warnings.length ? `  ⚠ ${rec.warnings.join('; ')}` : ''),
            );
          } else {
            progress(`    FAILED: ${rec.error}`);
          }
        }
      } finally {
        await proc.stop(backend.child);
      }
    }
  }
  state.done = !interrupted;
  finish(state);
  fs.rmSync(tmpRoot, { recursive: true, force: true });
}

let currentState = null;

/** Prints the table and target checks, writes the JSON and Markdown files. */
function finish(state) {
  const { opts, machine, runs, skipped } = state;
  const rows = report.summarise(runs, opts.scenarios, opts.proxies, SCENARIOS, servers.proxyCatalogue(opts));
  const targets = report.targetChecks(rows, opts);
  const machineLine = `${machine.date.slice(0, 10)} · ${machine.cpu_model}, ${machine.nproc} CPUs, ${machine.kernel}, node ${machine.node}`;
  const md = [
    `Machine: ${machineLine}`,
    `Method: ${opts.rounds} interleaved round(s), ${opts.warmup}s warm-up + ${opts.duration}s wrk per run, medians; ` +
      `CPU = the proxy's utime+stime per request (b: per MiB of body), its min–max over rounds in the notes; ` +
      `"noisy" = other work used > ${NOISY_CORES} cores during that round; zproxy mode: ${opts.zproxyMode}` +
      (state.done ? '' : ' — INTERRUPTED, partial results'),
    '',
    report.markdownTable(rows, SCENARIOS),
    '',
    'Targets (thread_count 1, informational):',
    ...targets.map((t) => `- ${t.line}`),
    ...Object.entries(skipped).map(([p, why]) => `- skipped ${p}: ${why}`),
  ].join('\n');
  process.stdout.write(`\n${md}\n`);

  fs.mkdirSync(opts.out, { recursive: true });
  const stamp = machine.date.replace(/[:.]/g, '-');
  const base = path.join(opts.out, `bench-${stamp}`);
  const json = {
    machine,
    options: { ...opts, out: undefined },
    scenarios: SCENARIOS,
    complete: state.done,
    skipped,
    summary: rows,
    targets,
    runs,
  };
  fs.writeFileSync(`${base}.json`, `${JSON.stringify(json, null, 2)}\n`);
  fs.writeFileSync(`${base}.md`, `${md}\n`);
  progress(`results: ${path.relative(process.cwd(), base)}.json and .md`);
}

// ---- cleanup ----------------------------------------------------------------------

process.on('exit', () => proc.killAllSync());

let signalled = false;
async function onSignal(sig) {
  if (signalled) {
    proc.killAllSync();
    process.exit(130);
  }
  signalled = true;
  interrupted = true;
  progress(`${sig}: stopping ${proc.liveNames().join(', ') || 'nothing'}`);
  await proc.stopAll(1500);
  if (currentState && currentState.runs.length) {
    try {
      finish(currentState);
    } catch (err) {
      process.stderr.write(`could not write partial results: ${err.message}\n`);
    }
  }
  if (currentState) fs.rmSync(currentState.tmpRoot, { recursive: true, force: true });
  process.exit(sig === 'SIGINT' ? 130 : 143);
}
process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGHUP', () => onSignal('SIGHUP'));

main().catch(async (err) => {
  process.stderr.write(`bench: ${err.message}\n`);
  await proc.stopAll(1500);
  if (currentState) fs.rmSync(currentState.tmpRoot, { recursive: true, force: true });
  process.exit(1);
});
