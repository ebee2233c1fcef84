#!/usr/bin/env node
'use strict';
/**
 * `npm run bench`: zproxy side by side with nginx, HAProxy and a node:http +
 * undici baseline, measured the way /work/shared/PERF.md (docs/benchmarks.md)
 * says: fresh processes per scenario, warm-up, bounded load runs on loopback,
 * interleaved rounds, medians, and the proxy's own CPU time per unit of work
 * (utime + stime from /proc, all threads and processes) as the main figure.
 *
 *   node scripts/bench.js [--duration 10s] [--rounds 3] [--warmup 1s]
 *                         [--scenarios a,b,c,d,e,f,g,h] [--proxies nginx,haproxy,...]
 *                         [--zproxy-mode proxy|respond] [--out bench-results/] [--quick]
 *
 * The scenarios are in scripts/bench/scenarios.js, their load generators in
 * scripts/bench/drivers.js. Progress goes to stderr; the Markdown tables and
 * target checks to stdout; all raw rounds plus the machine to a JSON file
 * (and the tables to a .md) in --out.
 */
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const proc = require('./bench/proc');
const servers = require('./bench/servers');
const report = require('./bench/report');
const drivers = require('./bench/drivers');
const tls = require('./bench/tls');
const { SCENARIOS } = require('./bench/scenarios');

/** A run during which other work used more than this many cores is marked noisy. */
const NOISY_CORES = 0.35;
/** Every proxy id, in report order. */
const ALL_PROXIES = ['direct', 'nginx', 'haproxy', 'baseline', 'floor', 'zproxy1', 'zproxy1js', 'zproxyN'];

const USAGE = `usage: node scripts/bench.js [options]
  --duration 10s      counted time per run (whole seconds; default 10s)
  --rounds 3          interleaved rounds; medians are reported (default 3)
  --warmup 1s         warm-up before each counted run (default 1s)
  --scenarios LIST    default all of:
${Object.entries(SCENARIOS)
  .map(([id, s]) => `                        ${id}: ${s.title}`)
  .join('\n')}
  --proxies LIST      from ${ALL_PROXIES.join(',')};
                      each scenario runs those of the list it supports (default: its own set,
                      see docs/benchmarks.md); direct = the load straight at the backend (the floor),
                      zproxy1js = zproxy 1 thread with ZPROXY_NO_NATIVE=1 (pure TypeScript runtime)
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
  if (s < 1) throw new Error(`${name}: the load generators count whole seconds, at least 1s (got ${value})`);
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
    proxies: null, // null: each scenario's defaults
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
  // Keep the report order stable whatever order the lists were given in.
  if (o.proxies) o.proxies = ALL_PROXIES.filter((p) => o.proxies.includes(p));
  o.scenarios = Object.keys(SCENARIOS).filter((s) => o.scenarios.includes(s));
  return o;
}

// ---- machine -------------------------------------------------------------------

/** First line a tool prints about itself (stdout or stderr: `nginx -v` uses stderr). */
function firstLine(cmd, args) {
  const exe = proc.which(cmd);
  if (!exe) return null;
  const r = spawnSync(exe, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
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
      h2load: firstLine('h2load', ['--version']),
      nginx: firstLine('nginx', ['-v']),
      haproxy: firstLine('haproxy', ['-v']),
      openssl: firstLine('openssl', ['version']),
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

// ---- what runs -----------------------------------------------------------------

/**
 * Which proxies each scenario runs, and the (scenario, proxy) pairs skipped
 * with the reason: a missing tool (wrk, h2load, openssl, nginx as backend)
 * skips the whole scenario, a missing proxy (haproxy, dist/) its rows.
 */
function plan(opts, catalogue) {
  const runs = {};
  const skips = [];
  for (const s of opts.scenarios) {
    const sc = SCENARIOS[s];
    const wanted = opts.proxies ? opts.proxies.filter((p) => sc.proxies.supported.includes(p)) : sc.proxies.defaults;
    const ordered = ALL_PROXIES.filter((p) => wanted.includes(p));
    runs[s] = [];
    if (!ordered.length) {
      progress(`scenario ${s}: none of --proxies ${opts.proxies.join(',')} applies (it supports ${sc.proxies.supported.join(',')})`);
      continue;
    }
    const missing = sc.needs.filter((t) => !proc.which(t));
    if (missing.length) {
      const reason = `${missing.join(', ')} not installed`;
      progress(`SKIPPING scenario ${s} (${sc.title}): ${reason}`);
      for (const p of ordered) skips.push({ scenario: s, proxy: p, reason });
      continue;
    }
    for (const p of ordered) {
      let why = catalogue[p].unavailable();
      if (!why && opts.zproxyMode === 'respond' && sc.websocket && p.startsWith('zproxy')) why = '--zproxy-mode respond has no upstream for WebSocket';
      if (why) {
        progress(`SKIPPING ${s} · ${catalogue[p].label}: ${why}`);
        skips.push({ scenario: s, proxy: p, reason: why });
      } else runs[s].push(p);
    }
  }
  return { runs, skips };
}

/** Shared material: the TLS certificate and wrk's full-handshake environment, when a TLS scenario runs. */
function prepare(runs, tmpRoot) {
  const ctx = { tls: null, fullHandshakeEnv: undefined };
  if (Object.entries(runs).some(([s, list]) => list.length && SCENARIOS[s].frontend === 'tls')) {
    const dir = path.join(tmpRoot, 'tls');
    ctx.tls = tls.makeCertificate(dir);
    ctx.fullHandshakeEnv = tls.fullHandshakeEnv(dir);
    progress(`self-signed ECDSA P-256 certificate for 127.0.0.1 in ${dir}`);
  }
  return ctx;
}

// ---- one run ---------------------------------------------------------------------

let interrupted = false;

/** CPU counters at one instant: the proxy, the backend, the load generator, the machine. */
function snapshot(proxyPid, backendPid, loadgenPid) {
  let loadgen = proc.reapedChildrenMicros();
  if (loadgenPid) {
    try {
      loadgen += proc.cpuMicros(loadgenPid);
    } catch {
      /* exited meanwhile */
    }
  }
  return {
    t: performance.now(),
    proxy: proc.cpuMicros(proxyPid),
    backend: proc.cpuMicros(backendPid),
    loadgen,
    machine: proc.machineMicros(),
  };
}

/** The figures of one counted run from the driver's result and the two CPU snapshots. */
function figures(scenario, result, m0, m1, shared) {
  const cpu = m1.proxy - m0.proxy;
  const wallUs = (m1.t - m0.t) * 1000;
  const mib = result.bytes / 2 ** 20;
  const perUnit = (us) => (scenario.cpuUnit === 'MiB' ? (mib ? us / mib : null) : result.count ? us / result.count : null);
  // Requests (a–f: one handshake per request in e), as opposed to messages or bytes.
  const isReq = scenario.rateUnit === 'req/s' || scenario.rateUnit === 'handshakes/s';
  const cores = (us) => Math.round((us / wallUs) * 100) / 100;
  const f = {
    load: { tool: result.tool, report: result.report },
    count: result.count,
    bytes: result.bytes,
    seconds: result.seconds,
    rate: scenario.rateUnit === 'MiB/s' ? mib / result.seconds : result.count / result.seconds,
    requests: isReq ? result.count : null,
    rps: isReq ? result.count / result.seconds : null,
    p50_us: result.p50_us,
    p99_us: result.p99_us,
    mean_us: result.mean_us,
    cpu_us: cpu,
    cpu_us_per_unit: perUnit(cpu),
    cpu_us_per_req: isReq && result.count ? cpu / result.count : null,
    cpu_us_per_mib: mib ? cpu / mib : null,
    cpu_cores: cpu / wallUs,
    backend_cpu_us_per_unit: shared ? null : perUnit(m1.backend - m0.backend),
    // Where the machine's CPU went during the counted run, in cores: the
    // proxy, the backend, the load generator, and everything else (other work
    // on a shared machine, the harness itself, softirq time not charged to a task).
    cores: {
      proxy: cores(cpu),
      backend: shared ? 0 : cores(m1.backend - m0.backend),
      loadgen: cores(m1.loadgen - m0.loadgen),
      machine_busy: cores(m1.machine.busy - m0.machine.busy),
      steal: cores(m1.machine.steal - m0.machine.steal),
    },
    errors: result.errors,
    errors_total: result.errors_total,
  };
  f.cores.other = Math.round((f.cores.machine_busy - f.cores.proxy - f.cores.backend - f.cores.loadgen) * 100) / 100;
  f.noisy = f.cores.other > NOISY_CORES;
  return f;
}

/**
 * One counted run of one proxy in one scenario: start it fresh, check it
 * answers the scenario's request correctly, then let the scenario's driver
 * warm up and count, reading the CPU counters at its start and end marks.
 */
async function measure({ opts, ctx, round, scenarioId, proxyId, catalogue, backend, dir }) {
  const scenario = SCENARIOS[scenarioId];
  const entry = catalogue[proxyId];
  const label = (scenario.labels && scenario.labels[proxyId]) || entry.label;
  const rec = { round, scenario: scenarioId, proxy: proxyId, label, ok: false, error: null, warnings: [] };
  let target = null;
  try {
    fs.mkdirSync(dir, { recursive: true });
    if (entry.start) {
      const frontend = { kind: scenario.frontend, websocket: Boolean(scenario.websocket), tls: ctx.tls };
      target = await entry.start(dir, backend.port, frontend);
    } else {
      target = { child: backend.child, port: backend.port, shared: true };
    }
    const first = await proc.waitUntil(target.child, target.port, drivers.probe(scenario, target.port));
    const want = scenario.probe;
    if (first.status !== want.status || first.bytes !== want.bytes) {
      throw new Error(`${scenario.path} answered ${first.status} with ${first.bytes} bytes (expected ${want.status} with ${want.bytes})`);
    }
    if (scenario.load.fullHandshakes) {
      rec.tls_resumes_sessions = tls.checkResumption(target.port);
      if (rec.tls_resumes_sessions !== false) {
        rec.warnings.push(rec.tls_resumes_sessions ? 'resumed a TLS session: not every handshake is full' : 'could not check TLS session resumption');
      }
    }
    if (interrupted) throw new Error('interrupted');

    const pid = target.child.pid;
    const marks = {};
    const mark = (name, loadgenPid) => {
      marks[name] = snapshot(pid, backend.child.pid, loadgenPid);
    };
    const result = await drivers.DRIVERS[scenario.load.tool]({ scenario, port: target.port, opts, dir, ctx, mark });
    if (interrupted) throw new Error('interrupted');
    if (target.child.exited) throw new Error(`the proxy died during the run: ${proc.describeExit(target.child)}`);
    if (!marks.start || !marks.end) throw new Error(`${result.tool} gave no start/end of its counted time`);

    Object.assign(rec, figures(scenario, result, marks.start, marks.end, Boolean(target.shared)));
    rec.loadavg = os.loadavg()[0];
    rec.peak_rss_kib = proc.peakRssKiB(pid);
    rec.threads = proc.threadCount(pid);
    rec.warnings.push(...result.warnings);
    rec.ok = !result.fatal;
    rec.error = result.fatal;
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

function describeRun(scenario, rec) {
  const ms = (us) => (us == null ? '—' : `${(us / 1000).toFixed(2)} ms`);
  const lat = rec.p50_us != null ? `, p50 ${ms(rec.p50_us)}, p99 ${ms(rec.p99_us)}` : rec.mean_us != null ? `, mean ${ms(rec.mean_us)}` : '';
  const cpu = rec.cpu_us_per_unit == null ? '—' : rec.cpu_us_per_unit.toFixed(scenario.cpuUnit === 'MiB' ? 0 : 1);
  const c = rec.cores;
  return (
    `${Math.round(rec.rate)} ${scenario.rateUnit}${lat}, ${cpu} µs/${scenario.cpuUnit} ` +
    `(${rec.cpu_cores.toFixed(2)} cores; backend ${c.backend}, ${rec.load.tool} ${c.loadgen}, other ${c.other}), ` +
    `peak RSS ${(rec.peak_rss_kib / 1024).toFixed(1)} MiB` +
    (rec.noisy ? '  (noisy)' : '') +
    (rec.warnings.length ? `  ⚠ ${rec.warnings.join('; ')}` : '')
  );
}

// ---- main ------------------------------------------------------------------------

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  const catalogue = servers.proxyCatalogue(opts);
  const { runs: planned, skips } = plan(opts, catalogue);
  const totalRuns = opts.rounds * Object.values(planned).reduce((a, l) => a + l.length, 0);

  const machine = machineInfo();
  const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'zproxy-bench-'));
  const runs = [];
  const state = { opts, machine, runs, skips, tmpRoot, done: false };
  currentState = state;
  if (!totalRuns) {
    state.done = true;
    finish(state); // the skipped rows, with their reasons
    throw new Error('nothing to measure');
  }
  const ctx = prepare(planned, tmpRoot);
  const perRun = opts.warmup + opts.duration + 1.5;
  progress(
    `${machine.cpu_model}, ${machine.nproc} CPUs, ${machine.kernel}, node ${machine.node}; ` +
      `${opts.rounds} round(s) × ${totalRuns / opts.rounds} run(s) over scenario(s) ${opts.scenarios.join(',')}, ` +
      `${opts.warmup}s warm-up + ${opts.duration}s each: about ${Math.ceil((totalRuns * perRun) / 60)} min`,
  );
  progress(`temp dir ${tmpRoot}; zproxy mode: ${opts.zproxyMode}`);

  let n = 0;
  for (let round = 1; round <= opts.rounds && !interrupted; round++) {
    for (const s of opts.scenarios) {
      if (interrupted) break;
      if (!planned[s].length) continue;
      const scenario = SCENARIOS[s];
      const bdir = path.join(tmpRoot, `r${round}-${s}-backend`);
      fs.mkdirSync(bdir, { recursive: true });
      const backend = await servers.BACKENDS[scenario.backend](bdir);
      try {
        const first = await proc.waitUntil(backend.child, backend.port, drivers.probe({ ...scenario, frontend: 'http' }, backend.port));
        if (first.status !== scenario.probe.status || first.bytes !== scenario.probe.bytes) {
          throw new Error(`backend answered ${first.status} with ${first.bytes} bytes on ${scenario.path}`);
        }
        for (const p of planned[s]) {
          if (interrupted) break;
          n++;
          const eta = Math.max(0, Math.round(((totalRuns - n + 1) * perRun) / 60));
          const label = (scenario.labels && scenario.labels[p]) || catalogue[p].label;
          progress(`round ${round}/${opts.rounds} · ${s} · ${label} (run ${n}/${totalRuns}, ~${eta} min left)`);
          const rec = await measure({ opts, ctx, round, scenarioId: s, proxyId: p, catalogue, backend, dir: path.join(tmpRoot, `r${round}-${s}-${p}`) });
          if (interrupted) break;
          runs.push(rec);
          if (rec.cores) progress(`    ${describeRun(scenario, rec)}`);
          if (!rec.ok) progress(`    FAILED: ${rec.error}`);
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

/** Prints the tables and target checks, writes the JSON and Markdown files. */
function finish(state) {
  const { opts, machine, runs, skips } = state;
  const rows = report.summarise(runs, skips, opts.scenarios, ALL_PROXIES, SCENARIOS, servers.proxyCatalogue(opts));
  const targets = report.targetChecks(rows, opts);
  const machineLine = `${machine.date.slice(0, 10)} · ${machine.cpu_model}, ${machine.nproc} CPUs, ${machine.kernel}, node ${machine.node}`;
  const tables = [];
  const http1 = rows.filter((r) => SCENARIOS[r.scenario].table === 'http1');
  const more = rows.filter((r) => SCENARIOS[r.scenario].table !== 'http1');
  if (http1.length) tables.push(report.markdownTable(http1, SCENARIOS), '');
  if (more.length) tables.push(report.markdownTableMore(more, SCENARIOS), '');
  const md = [
    `Machine: ${machineLine}`,
    `Method: ${opts.rounds} interleaved round(s), ${opts.warmup}s warm-up + ${opts.duration}s counted per run, medians; ` +
      `CPU = the proxy's utime+stime per unit of work (per request, handshake, echoed message, or MiB), its min–max over rounds in the notes; ` +
      `"noisy" = other work used > ${NOISY_CORES} cores during that round; zproxy mode: ${opts.zproxyMode}` +
      (state.done ? '' : ' — INTERRUPTED, partial results'),
    '',
    ...tables,
    'Targets (thread_count 1, informational):',
    ...(targets.length ? targets.map((t) => `- ${t.line}`) : ['- none for the selected scenarios']),
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
    skipped: skips,
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
