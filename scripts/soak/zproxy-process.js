'use strict';
/**
 * zproxy under soak: its config (written to a file, rewritten and SIGHUP'd
 * for reloads), the process (started from dist/ through bin/zproxy.js,
 * registered by PID with scripts/bench/proc.js), what it logs, and what
 * /proc says about it: open fds by kind, its TCP sockets and their states,
 * and memory (all threads are one process, so one /proc/PID/status).
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const proc = require('../bench/proc');
const { FAULT_TIMEOUT_MS } = require('./faults');

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'bin', 'zproxy.js');
/** The good route's timeout: the good upstreams answer in at most 50 ms, so a 504 there is always a fault of zproxy's. */
const GOOD_TIMEOUT_MS = 4000;
/** The soak config's drain_timeout_ms: a stop with nothing in flight must take far less. */
const DRAIN_TIMEOUT_MS = 10000;
/** How long a reload may take to be logged as applied. */
const RELOAD_BOUND_MS = 5000;

/**
 * The soak's config. `generation` is bumped by every reload: even generations
 * have the `/toggle` route (its body names the generation), odd ones do not.
 */
function soakConfig({ port, upstreams, generation }) {
  const routes = [
    { path: '/soak-ready', respond: { status: 200, headers: {}, body: 'ready' } },
    // No passive ejection: every request that picks A while it is down takes the retry path (issue 15.1), not just the first few.
    { path: '/good', upstream: { targets: [{ url: upstreams.A }, { url: upstreams.B }], max_fails: 0 }, retries: 1, timeout_ms: GOOD_TIMEOUT_MS },
    // One faulty target, never ejected, never retried: every fault reaches the client as itself.
    { path: '/fault', upstream: { targets: [{ url: upstreams.faulty }], max_fails: 0 }, retries: 0, timeout_ms: FAULT_TIMEOUT_MS },
  ];
  if (generation % 2 === 0) routes.push({ path: '/toggle', respond: { status: 200, headers: { 'content-type': 'text/plain' }, body: `toggle v${generation}` } });
  return { host: '127.0.0.1', port, thread_count: 2, admin: null, log_level: 'info', drain_timeout_ms: DRAIN_TIMEOUT_MS, routes };
}

class ZproxyProcess {
  /** `options`: { dir, port, upstreams, noNative, nodeArgs } */
  constructor(options) {
    this.options = options;
    this.configFile = path.join(options.dir, 'zproxy.json');
    this.logFile = path.join(options.dir, 'zproxy.log');
    this.generation = 0;
    this.reloadsApplied = 0;
    this.runtime = null;
    /** level -> count of log lines at warn and above; a few of each kept. */
    this.problems = { warn: 0, error: 0, samples: [] };
    this.child = null;
  }

  get pid() {
    return this.child.pid;
  }

  get exited() {
    return this.child.exited;
  }

  async start() {
    this.writeConfig();
    const env = { ...process.env };
    if (this.options.noNative) env.ZPROXY_NO_NATIVE = '1';
    else delete env.ZPROXY_NO_NATIVE;
    const args = [...this.options.nodeArgs, CLI, 'start', '--config', this.configFile];
    this.child = proc.start('zproxy', process.execPath, args, { cwd: ROOT, env, logFile: this.logFile, onLine: (line) => this.onLogLine(line) });
    await proc.waitForHttp(this.child, this.options.port, '/soak-ready', 20000);
  }

  writeConfig() {
    const text = JSON.stringify(soakConfig({ port: this.options.port, upstreams: this.options.upstreams, generation: this.generation }), null, 2);
    // Written whole, then renamed: a reload never reads half a file.
    fs.writeFileSync(`${this.configFile}.tmp`, text);
    fs.renameSync(`${this.configFile}.tmp`, this.configFile);
  }

  /** Rewrites the config (toggling /toggle) and sends SIGHUP; resolves the ms until "config reloaded" was logged, or null. */
  async reload() {
    this.generation++;
    this.writeConfig();
    const before = this.reloadsApplied;
    const started = Date.now();
    process.kill(this.pid, 'SIGHUP');
    while (Date.now() - started < RELOAD_BOUND_MS) {
      if (this.reloadsApplied > before) return Date.now() - started;
      await proc.sleep(20);
    }
    return null;
  }

  onLogLine(line) {
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      return;
    }
    if (entry.msg === 'config reloaded') this.reloadsApplied++;
    if (entry.runtime && !this.runtime) this.runtime = entry.msg;
    if (entry.level < 40) return;
    this.problems[entry.level >= 50 ? 'error' : 'warn']++;
    if (this.problems.samples.length < 8) this.problems.samples.push(line.slice(0, 400));
  }

  /** SIGTERM; resolves { code, signal, ms } once it has exited (SIGKILL after `graceMs`). */
  async stop(graceMs) {
    const started = Date.now();
    await proc.stop(this.child, graceMs);
    return { ...this.child.exited, ms: Date.now() - started };
  }

  // ---- /proc -----------------------------------------------------------

  /** Memory in KiB: resident now (VmRSS, with its anon and file parts), peak (VmHWM), threads. */
  memory() {
    const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile'), hwm: field('VmHWM'), threads: field('Threads') };
  }

  fds() {
    return openFds(this.pid);
  }

  /**
   * Has glibc hand back to the kernel what free() left in its arenas
   * (malloc_trim(0), called in the process through gdb): RSS that then
   * falls was free memory kept for reuse, not memory in use.
   */
  mallocTrim() {
    const out = execFileSync('gdb', ['-p', String(this.pid), '-batch', '-ex', 'call (int) malloc_trim(0)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 });
    fs.writeFileSync(path.join(this.options.dir, 'gdb-malloc-trim.log'), out);
  }

  /**
   * Resident KiB by kind of mapping, from /proc/PID/smaps: `malloc arenas`
   * (glibc's per-thread heaps: 64 MiB-aligned reservations of 64 MiB, the
   * part in use readable), `brk heap` (the main arena), `other anonymous`
   * (V8's heap pages and code space, thread stacks, large mmap'd
   * allocations), `files` (node, libraries, the addon).
   */
  residentByKind() {
    const maps = [];
    for (const line of fs.readFileSync(`/proc/${this.pid}/smaps`, 'utf8').split('\n')) {
      const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (head) maps.push({ start: parseInt(head[1], 16), end: parseInt(head[2], 16), name: head[3], rss: 0 });
      const rss = /^Rss:\s+(\d+) kB/.exec(line);
      if (rss && maps.length) maps[maps.length - 1].rss += Number(rss[1]);
    }
    const out = { 'malloc arenas': 0, 'brk heap': 0, 'other anonymous': 0, files: 0 };
    const anon = (m) => m && (m.name === '' || m.name.startsWith('[anon'));
    for (let i = 0; i < maps.length; i++) {
      const m = maps[i];
      const next = maps[i + 1];
      // An arena: its used part, then (unless full) its PROT_NONE rest, 64 MiB in all from an aligned start.
      const span = anon(next) && next.start === m.end ? next.end - m.start : m.end - m.start;
      if (anon(m) && m.start % ARENA_BYTES === 0 && (m.end - m.start === ARENA_BYTES || span === ARENA_BYTES)) {
        out['malloc arenas'] += m.rss + (m.end - m.start === ARENA_BYTES ? 0 : next.rss);
        if (m.end - m.start !== ARENA_BYTES) i++;
      } else out[m.name === '[heap]' ? 'brk heap' : anon(m) ? 'other anonymous' : 'files'] += m.rss;
    }
    return out;
  }
}

/** glibc's HEAP_MAX_SIZE on 64-bit: each non-main arena reserves this much, aligned to it. */
const ARENA_BYTES = 64 * 1024 * 1024;

/** The open fds of `pid`: their count, counts by kind, the socket inodes, and fd -> what it is. */
function openFds(pid) {
  const dir = `/proc/${pid}/fd`;
  const kinds = {};
  const sockets = new Set();
  const links = new Map();
  let count = 0;
  for (const fd of fs.readdirSync(dir)) {
    let link;
    try {
      link = fs.readlinkSync(`${dir}/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    count++;
    links.set(fd, link);
    const socket = /^socket:\[(\d+)\]$/.exec(link);
    if (socket) sockets.add(socket[1]);
    const kind = socket ? 'socket' : link.startsWith('pipe:') ? 'pipe' : link.startsWith('anon_inode:') ? link : link.startsWith('/') ? 'file' : link;
    kinds[kind] = (kinds[kind] || 0) + 1;
  }
  return { count, kinds, sockets, links };
}

const TCP_STATES = { '01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0A': 'LISTEN', '0B': 'CLOSING' };

/**
 * The sockets with the given inodes: TCP ones as "local-port -> remote-port
 * STATE" (from /proc/net/tcp{,6}), Unix ones as such; a socket in neither
 * table is a TCP connection already gone (reset, or closed both ways) whose
 * fd is still open.
 */
function describeSockets(inodes, portNames) {
  const out = [];
  const found = new Set();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines = [];
    try {
      lines = fs.readFileSync(file, 'utf8').trim().split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      if (!inodes.has(f[9])) continue;
      found.add(f[9]);
      const port = (addr) => {
        const p = parseInt(addr.split(':')[1], 16);
        return portNames[p] ? `${portNames[p]}:${p}` : String(p);
      };
      out.push(`${port(f[1])} -> ${port(f[2])} ${TCP_STATES[f[3]] || f[3]}`);
    }
  }
  let unix = 0;
  try {
    for (const line of fs.readFileSync('/proc/net/unix', 'utf8').trim().split('\n').slice(1)) {
      const inode = line.trim().split(/\s+/)[6];
      if (inodes.has(inode) && !found.has(inode)) {
        found.add(inode);
        unix++;
      }
    }
  } catch {
    /* no /proc/net/unix */
  }
  if (unix) out.push(`${unix} Unix sockets`);
  const gone = inodes.size - found.size;
  if (gone) out.push(`${gone} sockets in no table: TCP connections already reset or closed whose fds are still open`);
  return out;
}

module.exports = { ZproxyProcess, openFds, describeSockets, DRAIN_TIMEOUT_MS };
