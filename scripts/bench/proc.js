'use strict';
/**
 * Process bookkeeping for the benchmark: every process the harness starts is
 * registered here by PID and is killed by PID on normal exit, on error and on
 * Ctrl-C. Also reads CPU time and peak RSS from /proc, waits for servers to
 * answer, and picks free loopback ports.
 */
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const path = require('node:path');

let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* 100 is the Linux default */
}

/** PID -> { child, name } of every process started and not yet seen to exit. */
const live = new Map();

/**
 * Starts a process, logging its stdout and stderr to `logFile` and keeping the
 * last few KiB of each in memory for error messages. `onLine(line, child)` is
 * called for each complete line of stdout as it comes (load generators mark
 * the start and end of their counted time that way).
 */
function start(name, command, args, { cwd, env, logFile, onLine } = {}) {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = logFile ? fs.createWriteStream(logFile) : null;
  if (log) log.on('error', () => {}); // a log that cannot be written must not stop the run
  child.tail = '';
  child.exited = null;
  child.closed = false;
  const onData = (chunk) => {
    if (log) log.write(chunk);
    child.tail = (child.tail + chunk.toString('utf8')).slice(-8192);
    child.emit('output');
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  if (onLine) {
    let partial = '';
    child.stdout.on('data', (chunk) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop();
      for (const line of lines) onLine(line, child);
    });
  }
  child.on('error', (err) => {
    child.exited = { code: null, signal: null, error: err.message };
    child.emit('output');
  });
  child.on('exit', (code, signal) => {
    child.exited = { code, signal };
    if (child.pid) live.delete(child.pid);
    if (log) log.end();
    child.emit('output');
  });
  // 'close' comes after 'exit' once stdout and stderr are drained.
  child.on('close', () => {
    child.closed = true;
    child.emit('output');
  });
  if (child.pid) live.set(child.pid, { child, name });
  return child;
}

function describeExit(child) {
  const e = child.exited;
  if (!e) return 'running';
  if (e.error) return `could not start: ${e.error}`;
  return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
}

/**
 * Runs a process to its end (like `start`); resolves the child once it has
 * exited and its output is drained (`child.tail` holds the last 8 KiB), or
 * rejects if it could not be started.
 */
function run(name, command, args, options) {
  const child = start(name, command, args, options);
  return new Promise((resolve, reject) => {
    const done = () => {
      if (child.exited && child.exited.error) {
        child.removeListener('output', done);
        return reject(new Error(`${name} ${describeExit(child)}`));
      }
      if (!child.closed) return;
      child.removeListener('output', done);
      resolve(child);
    };
    child.on('output', done);
    done();
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
function stop(child, graceMs = 3000) {
  if (!child || !child.pid || child.exited) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

/** Stops every registered process (by PID), each with a grace period. */
async function stopAll(graceMs = 2000) {
  await Promise.all([...live.values()].map(({ child }) => stop(child, graceMs)));
}

/** Last resort, synchronous (for process 'exit'): SIGKILL every registered PID. */
function killAllSync() {
  for (const pid of live.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

function liveNames() {
  return [...live.entries()].map(([pid, { name }]) => `${name} (${pid})`);
}

// ---- /proc ----------------------------------------------------------------

/** Fields of /proc/PID/stat after the command name; field n is at index n - 3. */
function statFields(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/** The PID and all its live descendants. */
function processTree(rootPid) {
  const children = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(statFields(entry)[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  const out = [];
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop();
    out.push(pid);
    for (const c of children.get(pid) || []) stack.push(c);
  }
  return out;
}

/**
 * CPU time in microseconds of a process tree: utime + stime of each process
 * (all its threads, live and exited) plus cutime + cstime (its reaped children).
 */
function cpuMicros(rootPid) {
  let ticks = 0;
  for (const pid of processTree(rootPid)) {
    try {
      const f = statFields(pid);
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      /* exited meanwhile; its time moves to the parent's cutime when reaped */
    }
  }
  return (ticks * 1e6) / CLK_TCK;
}

/** Sum of VmHWM (peak resident set, KiB) over the process tree. */
function peakRssKiB(rootPid) {
  let kib = 0;
  for (const pid of processTree(rootPid)) {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kib += Number(m[1]);
    } catch {
      /* exited meanwhile */
    }
  }
  return kib;
}

/** CPU time (µs) of this process's reaped children, e.g. a finished wrk. */
function reapedChildrenMicros() {
  const f = statFields('self');
  return ((Number(f[13]) + Number(f[14])) * 1e6) / CLK_TCK;
}

/** Whole-machine CPU counters from /proc/stat, in µs: busy (not idle/iowait) and steal. */
function machineMicros() {
  const v = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = v;
  const toUs = (t) => (t * 1e6) / CLK_TCK;
  return { busy: toUs(user + nice + system + irq + softirq + steal), steal: toUs(steal || 0) };
}

function threadCount(rootPid) {
  let n = 0;
  for (const pid of processTree(rootPid)) {
    try {
      n += fs.readdirSync(`/proc/${pid}/task`).length;
    } catch {
      /* exited meanwhile */
    }
  }
  return n;
}

// ---- ports and readiness ----------------------------------------------------

const handedOut = new Set();

/** A port that is free on 127.0.0.1 now (bound and released), never handed out twice. */
async function freePort() {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const p = srv.address().port;
        srv.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found on 127.0.0.1');
}

/**
 * One GET (`secure`: over TLS, certificate not verified: it is the bench's
 * own); resolves { status, bytes } or rejects.
 */
function httpGet(port, urlPath, { secure = false, timeoutMs = 2000 } = {}) {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path: urlPath, agent: false, timeout: timeoutMs, rejectUnauthorized: false };
    const req = (secure ? https : http).get(options, (res) => {
      let bytes = 0;
      res.on('data', (c) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode, bytes }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/**
 * Polls `probe()` (e.g. one GET) until it resolves, failing early if the
 * process exits. Resolves the probe's first answer, e.g. { status, bytes }.
 */
async function waitUntil(child, port, probe, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let lastErr = 'no answer';
  while (Date.now() < deadline) {
    if (child.exited) throw new Error(`${describeExit(child)}: ${child.tail.trim().slice(-600)}`);
    try {
      return await probe();
    } catch (err) {
      lastErr = err.message;
    }
    await sleep(50);
  }
  throw new Error(`no answer on port ${port} within ${timeoutMs} ms (${lastErr})`);
}

/** `waitUntil` with one plain HTTP/1.1 GET `urlPath` as the probe. */
function waitForHttp(child, port, urlPath, timeoutMs = 15000) {
  return waitUntil(child, port, () => httpGet(port, urlPath), timeoutMs);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Absolute path of an executable on PATH (or in the sbin dirs), or null. */
function which(name) {
  const dirs = (process.env.PATH || '').split(':').concat(['/usr/sbin', '/sbin', '/usr/local/sbin']);
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

module.exports = {
  CLK_TCK,
  start,
  run,
  stop,
  stopAll,
  killAllSync,
  liveNames,
  describeExit,
  cpuMicros,
  peakRssKiB,
  reapedChildrenMicros,
  machineMicros,
  threadCount,
  freePort,
  httpGet,
  waitUntil,
  waitForHttp,
  sleep,
  which,
};
