#!/usr/bin/env node
'use strict';
/**
 * `npm run soak`: a bounded fault-injection soak of zproxy (issue 15), as an
 * operator would run before trusting it. zproxy runs as a real process from
 * dist/ (thread_count 2) in front of two good upstreams and a faulty one,
 * each its own process; HTTP/1.1 keep-alive clients (some pipelining,
 * uploads up to 256 KiB, chunked too), HTTP/2 sessions with many streams,
 * and WebSocket echo tunnels load it, while SIGHUP reloads toggle a route
 * and good upstream A is killed (SIGKILL) and restarted. Every answer is
 * judged (scripts/soak/requests.js); then the clients stop, and after a
 * quiet period zproxy's fds and the upstreams' connections must be back
 * where they started. Prints a summary; exits 1 when an invariant fails.
 *
 *   node scripts/soak.js [--duration 180] [--seed N] [--no-native] [--hang-ms 10000]
 *                        [--h1 6] [--h2 2] [--h2-streams 16] [--ws 2] [--out DIR]
 *                        [--node-arg ARG]...
 *
 * What is checked and how to read the output: docs/soak.md.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const proc = require('./bench/proc');
const { Random, bytePool } = require('./soak/random');
const { Ledger } = require('./soak/ledger');
const { H1Client } = require('./soak/h1-client');
const { H2Client } = require('./soak/h2-client');
const { WsClient } = require('./soak/ws-client');
const { startUpstreams } = require('./soak/upstreams');
const { ZproxyProcess, openFds, describeSockets, DRAIN_TIMEOUT_MS } = require('./soak/zproxy-process');
const { summarize } = require('./soak/report');
const { FAULT_NAMES } = require('./soak/faults');
const { Inspector } = require('./soak/inspector');

const USAGE = `usage: node scripts/soak.js [options]   (npm run soak -- [options])
  --duration S      seconds of load (default 180; 3600 for an hour; 10 for a smoke run)
  --seed N          seed of the random schedule and requests (default: random, printed)
  --no-native       run zproxy with ZPROXY_NO_NATIVE=1 (the TypeScript fallback)
  --hang-ms MS      a request without an outcome after this long is a hang (default 10000)
  --quiet-ms MS     how long the quiet period may take to bring fds and connections back (default 20000)
  --h1 N            HTTP/1.1 client connections at once (default 6)
  --h2 N            HTTP/2 sessions at once (default 2)
  --h2-streams N    streams in flight per HTTP/2 session (default 16)
  --ws N            WebSocket connections at once (default 2)
  --out DIR         where logs and the config go (default: a new folder under the system temp dir)
  --faults LIST     only these faults of the faulty upstream (comma-separated; default all):
                      ${FAULT_NAMES.join(', ')}
                      ('none': no requests to the faulty upstream)
  --inspect         look inside zproxy through its inspector (loopback): each thread's JS heap
                    after a forced full GC, at the baseline and after the quiet period
  --heap-snapshots  --inspect, and write a heap snapshot of each thread at both points to --out
                    (compare them with node scripts/soak/heap-diff.js BEFORE AFTER)
  --malloc-trim     after the quiet period, call malloc_trim(0) in zproxy (through gdb) and read RSS
                    again: what falls was freed memory glibc kept, not memory in use
  --node-arg ARG    a Node.js flag for the zproxy process (repeatable), e.g. --node-arg=--max-semi-space-size=2
  --help`;

function parseOptions(argv) {
  // stopBoundMs: nothing is in flight when the soak stops zproxy, so it must not wait out drain_timeout_ms.
  const o = { duration: 180, seed: null, noNative: false, inspect: false, heapSnapshots: false, mallocTrim: false, hangMs: 10000, quietMs: 20000, h1: 6, h2: 2, h2Streams: 16, ws: 2, out: null, nodeArgs: [], faults: FAULT_NAMES, stopBoundMs: DRAIN_TIMEOUT_MS / 2 };
  const ints = { '--duration': 'duration', '--seed': 'seed', '--hang-ms': 'hangMs', '--quiet-ms': 'quietMs', '--h1': 'h1', '--h2': 'h2', '--h2-streams': 'h2Streams', '--ws': 'ws' };
  for (let i = 0; i < argv.length; i++) {
    let [flag, value] = argv[i].split(/=(.*)/s);
    if (flag === '--help' || flag === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    const switches = { '--no-native': 'noNative', '--inspect': 'inspect', '--heap-snapshots': 'heapSnapshots', '--malloc-trim': 'mallocTrim' };
    if (switches[flag]) {
      o[switches[flag]] = true;
      if (flag === '--heap-snapshots') o.inspect = true;
      continue;
    }
    if (value === undefined) value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (ints[flag]) {
      if (!/^\d+$/.test(value)) throw new Error(`${flag}: expected a whole number, got ${JSON.stringify(value)}`);
      o[ints[flag]] = Number(value);
    } else if (flag === '--out') o.out = path.resolve(value);
    else if (flag === '--node-arg') o.nodeArgs.push(value);
    else if (flag === '--faults') o.faults = parseFaults(value);
    else throw new Error(`unknown option ${flag}\n${USAGE}`);
  }
  if (o.duration < 5) throw new Error('--duration: at least 5 s (the kill and the reloads need room)');
  return o;
}

/** Load before the fd baseline is taken. */
const WARMUP_MS = 3000;
/**
 * The quiet period lasts at least this long before memory is read: V8 gives
 * back its young generation only after some idle seconds, and an RSS read
 * the moment the fds are back would not be comparable between runs.
 */
const QUIET_MIN_MS = 10000;

function parseFaults(value) {
  if (value === 'none') return [];
  const list = value.split(',').filter(Boolean);
  for (const name of list) if (!FAULT_NAMES.includes(name)) throw new Error(`--faults: unknown fault ${JSON.stringify(name)} (choose from ${FAULT_NAMES.join(', ')})`);
  return list;
}

const log = (msg) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** The kill of A and the reloads, at seeded times (ms from the start of the load). */
function planSchedule(random, durationMs) {
  const killAt = Math.round(durationMs * (0.35 + random.next() * 0.2));
  const downMs = Math.min(random.int(2000, 5000), Math.round(durationMs * 0.2));
  const reloads = Math.max(3, Math.round(durationMs / 30000));
  const reloadTimes = Array.from({ length: reloads }, () => Math.round(durationMs * (0.1 + random.next() * 0.8))).sort((a, b) => a - b);
  return { killAt, downMs, reloadTimes };
}

/** Sockets back to their fresh count, other fds to their count after the warm-up. */
function fdsBack(fresh, warm, now) {
  return now.sockets.size <= fresh.sockets.size && now.count - now.sockets.size <= warm.count - warm.sockets.size;
}

/** What is open after the quiet period and was not: sockets (with state and ports) not open fresh, other fds not open after the warm-up. */
function newFds(fresh, warm, after, portNames) {
  const sockets = new Set([...after.sockets].filter((inode) => !fresh.sockets.has(inode)));
  const out = describeSockets(sockets, portNames);
  for (const [fd, link] of after.links) if (!link.startsWith('socket:') && warm.links.get(fd) !== link) out.push(`fd ${fd}: ${link}`);
  return out;
}

/** Starts the clients on `shared`; resolves when all have finished (after `shared.stopping()` turns true). */
function startClients(shared, options, seed, firstStream) {
  let stream = firstStream;
  const drivers = [];
  const track = (kind, running) => {
    shared.stats.active[kind]++;
    drivers.push(running.finally(() => shared.stats.active[kind]--));
  };
  for (let i = 0; i < options.h1; i++) track('h1', new H1Client(shared, new Random(seed, stream++)).run());
  for (let i = 0; i < options.h2; i++) track('h2', new H2Client(shared, new Random(seed, stream++), options.h2Streams).run());
  for (let i = 0; i < options.ws; i++) track('ws', new WsClient(shared, new Random(seed, stream++)).run());
  return Promise.all(drivers);
}

/** Polls `check()` every 250 ms until it holds or `boundMs` passes; resolves { reached, ms }. */
async function waitFor(check, boundMs) {
  const started = Date.now();
  for (;;) {
    if (await check()) return { reached: true, ms: Date.now() - started };
    if (Date.now() - started >= boundMs) return { reached: false, ms: Date.now() - started };
    await proc.sleep(250);
  }
}

async function main() {
  const options = parseOptions(process.argv.slice(2));
  if (!fs.existsSync(path.join(__dirname, '..', 'dist', 'cli.js'))) throw new Error('dist/ is missing: build first (npx tsc -p tsconfig.json)');
  const seed = options.seed ?? crypto.randomInt(1, 2 ** 31 - 1);
  const dir = options.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'zproxy-soak-'));
  fs.mkdirSync(dir, { recursive: true });
  log(`seed ${seed}, ${options.duration} s, ${options.noNative ? 'TypeScript fallback' : 'native addon'}; logs in ${dir}`);

  const upstreams = await startUpstreams(dir, seed);
  const inspectPort = options.inspect ? await proc.freePort() : null;
  const zproxy = new ZproxyProcess({
    dir,
    port: await proc.freePort(),
    upstreams: { A: upstreams.A.url, B: upstreams.B.url, faulty: upstreams.faulty.url },
    noNative: options.noNative,
    nodeArgs: inspectPort ? [...options.nodeArgs, `--inspect=127.0.0.1:${inspectPort}`] : options.nodeArgs,
  });
  await zproxy.start();
  const inspector = inspectPort ? await Inspector.connect(inspectPort) : null;
  /**
   * RSS (read first: the GC changes it), then, with --inspect, each heap after a full GC and RSS again;
   * with --heap-snapshots, snapshots last (writing one costs the process tens of MiB it keeps).
   */
  const lookInside = async (label) => {
    const mem = { ...zproxy.memory(), byKind: zproxy.residentByKind() };
    if (!inspector) return { mem };
    const heaps = await inspector.heapAfterGc();
    const rssAfterGc = zproxy.memory().rss;
    const snapshots = options.heapSnapshots ? await inspector.snapshots(path.join(dir, label)) : [];
    return { mem, heaps, rssAfterGc, snapshots };
  };
  log(`zproxy ${zproxy.pid} on port ${zproxy.options.port}: ${zproxy.runtime}`);
  const portNames = { [zproxy.options.port]: 'zproxy' };
  for (const u of Object.values(upstreams)) portNames[u.port] = u.name;
  const openAtUpstreams = async () => {
    const out = {};
    for (const [name, u] of Object.entries(upstreams)) out[name] = (await u.stats()).open;
    return out;
  };
  const quiet = async (sockets) => zproxy.fds().sockets.size <= sockets && Object.values(await openAtUpstreams()).every((n) => n === 0);

  const random = new Random(seed);
  const durationMs = options.duration * 1000;
  const { killAt, downMs, reloadTimes } = planSchedule(random, durationMs);
  const ledger = new Ledger(options.hangMs);
  const stats = { h1Connections: 0, h1ClosedByProxy: 0, h2Sessions: 0, h2GoawaysFromProxy: 0, h2SessionsGivenUp: 0, wsConnections: 0, active: { h1: 0, h2: 0, ws: 0 } };
  let nextId = 1;
  const common = { port: zproxy.options.port, pool: bytePool(seed, 4 << 20), faults: options.faults, ledger, stats, nextId: () => nextId++, killedUpstream: 'A' };
  const sweeper = setInterval(() => ledger.sweep(), 250);

  // Warm-up: every path runs once (zproxy opens a few fds for good on first use: libuv's spare
  // /dev/null, the splice thread's epoll and eventfd), then the baseline is taken when quiet.
  // Sockets are held to their fresh count, so one the warm-up leaves open is not part of the baseline.
  const fresh = zproxy.fds();
  const freshMem = { ...zproxy.memory(), byKind: zproxy.residentByKind() };
  let warmedUp = false;
  const warmup = startClients({ ...common, stopping: () => warmedUp }, options, seed, 1000);
  await proc.sleep(WARMUP_MS);
  warmedUp = true;
  await warmup;
  const warm = await waitFor(() => quiet(fresh.sockets.size), options.quietMs);
  const start = { fds: zproxy.fds(), ...(await lookInside('baseline')) };
  log(`warm-up: ${ledger.settled} requests; quiet after ${warm.ms} ms; fds ${fresh.count} fresh, ${start.fds.count} warm`);

  let stopping = false;
  const shared = { ...common, stopping: () => stopping };
  const schedule = [`warm-up of ${WARMUP_MS / 1000} s before the baseline (${ledger.settled} requests); fds ${fresh.count} fresh, ${start.fds.count} after it`];
  const reloads = { sent: 0, applied: 0, slowest: 0 };
  const timeline = [[0, start.mem.rss]];
  let exitDuringRun = null;

  const t0 = Date.now();
  const elapsed = () => ((Date.now() - t0) / 1000).toFixed(1);
  const clients = startClients(shared, options, seed, 1);
  const timers = [];
  const at = (ms, fn) => timers.push(setTimeout(() => fn().catch((err) => log(`scheduled step failed: ${err.stack}`)), ms));
  at(killAt, async () => {
    upstreams.A.kill();
    ledger.killed();
    schedule.push(`upstream A killed (SIGKILL) at ${elapsed()} s`);
    log(`killed upstream A at ${elapsed()} s`);
  });
  at(killAt + downMs, async () => {
    await upstreams.A.start();
    schedule.push(`upstream A restarted at ${elapsed()} s (down ${(downMs / 1000).toFixed(1)} s)`);
    log(`restarted upstream A at ${elapsed()} s`);
  });
  for (const ms of reloadTimes) {
    at(ms, async () => {
      reloads.sent++;
      const took = await zproxy.reload();
      if (took !== null) reloads.applied++;
      reloads.slowest = Math.max(reloads.slowest, took ?? Infinity);
      schedule.push(`SIGHUP reload at ${elapsed()} s (/toggle ${zproxy.generation % 2 === 0 ? 'added' : 'removed'}): ${took === null ? 'NOT applied' : `applied in ${took} ms`}`);
    });
  }
  const sampler = setInterval(() => {
    if (!zproxy.exited) timeline.push([Math.round((Date.now() - t0) / 1000), zproxy.memory().rss]);
  }, Math.max(2000, Math.round(durationMs / 30)));
  const progress = setInterval(() => {
    log(`${elapsed()} s: ${ledger.settled} settled, ${ledger.outstanding.size} in flight, ${ledger.failureCount()} failures, RSS ${zproxy.exited ? '-' : (zproxy.memory().rss / 1024).toFixed(0)} MiB`);
  }, 10000);

  // The load runs for the duration, or until zproxy exits.
  await waitFor(() => {
    if (zproxy.exited) exitDuringRun = `${proc.describeExit(zproxy.child)} at ${elapsed()} s`;
    return exitDuringRun !== null || Date.now() - t0 >= durationMs;
  }, durationMs + 1000);
  stopping = true;
  timers.forEach(clearTimeout);
  clearInterval(progress);
  clearInterval(sampler);
  if (exitDuringRun) log(`zproxy exited during the run: ${exitDuringRun}`);
  log(`load stopped at ${elapsed()} s; waiting for the clients to finish`);
  const clientBoundMs = options.hangMs * 2 + 5000;
  if (!(await Promise.race([clients.then(() => true), proc.sleep(clientBoundMs).then(() => false)]))) {
    schedule.push(`clients still busy ${clientBoundMs / 1000} s after the load stopped: ${JSON.stringify(stats.active)}`);
  }
  ledger.sweep();
  clearInterval(sweeper);
  // Every client socket is closed by now; one still open would keep zproxy's side open too.
  const leftOpen = describeSockets(openFds(process.pid).sockets, portNames).filter((s) => s.includes('-> zproxy:'));
  if (leftOpen.length) schedule.push(`client sockets still open after the clients finished: ${leftOpen.join('; ')}`);
  if (upstreams.A.child.exited) await upstreams.A.start(); // a run that ended during the downtime

  const resources = { fresh: { fds: fresh, mem: freshMem }, start, timeline, extraFds: [] };
  if (!exitDuringRun) {
    resources.afterLoad = { fds: zproxy.fds(), mem: { ...zproxy.memory(), byKind: zproxy.residentByKind() } };
    resources.upstreams = { afterLoad: await openAtUpstreams() };
    log(`quiet period: waiting up to ${options.quietMs} ms for fds and upstream connections to come back`);
    const settled = await waitFor(async () => fdsBack(fresh, start.fds, zproxy.fds()) && (await quiet(fresh.sockets.size)), options.quietMs);
    resources.quietMs = settled.ms;
    resources.quietReached = settled.reached;
    if (settled.ms < QUIET_MIN_MS) await proc.sleep(QUIET_MIN_MS - settled.ms);
    resources.afterQuiet = { fds: zproxy.fds(), ...(await lookInside('after-quiet')) };
    resources.upstreams.afterQuiet = await openAtUpstreams();
    resources.extraFds = newFds(fresh, start.fds, resources.afterQuiet.fds, portNames);
    resources.fdsBack = fdsBack(fresh, start.fds, resources.afterQuiet.fds);
    if (options.mallocTrim) {
      try {
        zproxy.mallocTrim();
        resources.afterTrim = { ...zproxy.memory(), byKind: zproxy.residentByKind() };
      } catch (err) {
        schedule.push(`malloc_trim through gdb failed: ${err.message.split('\n')[0]}`);
        fs.writeFileSync(path.join(dir, 'gdb-malloc-trim.log'), `${err.stdout || ''}${err.stderr || ''}`);
      }
    }
    timeline.push([Math.round((Date.now() - t0) / 1000), resources.afterQuiet.mem.rss]);
  } else {
    const none = { fds: { count: NaN, kinds: {}, sockets: new Set() }, mem: { rss: 0, hwm: 0, anon: 0 } };
    Object.assign(resources, { afterLoad: none, afterQuiet: none, quietMs: 0, quietReached: false, fdsBack: false, upstreams: { afterLoad: {}, afterQuiet: { zproxy: NaN } } });
  }

  inspector?.close();
  const upstreamStats = {};
  for (const [name, u] of Object.entries(upstreams)) upstreamStats[name] = await u.stats();
  const exit = exitDuringRun ? { code: null, signal: null, ms: 0 } : await zproxy.stop(DRAIN_TIMEOUT_MS + 5000);
  await Promise.all(Object.values(upstreams).map((u) => u.stop()));

  const { text, failed } = summarize({
    options,
    seed,
    runtime: zproxy.runtime,
    ledger,
    schedule,
    stats,
    resources,
    upstreamStats,
    reloads: { ...reloads, slowest: reloads.slowest === Infinity ? 'never' : reloads.slowest },
    exit,
    problems: zproxy.problems,
    aliveThroughout: !exitDuringRun,
    exitDuringRun,
  });
  process.stdout.write(text);
  log(`logs and config in ${dir}`);
  return failed ? 1 : 0;
}

process.on('exit', () => proc.killAllSync());
process.on('SIGINT', () => {
  log('interrupted: stopping every process started');
  proc.killAllSync();
  process.exit(130);
});

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`soak: ${err.stack || err.message}\n`);
    process.exit(2);
  },
);
