'use strict';
/**
 * The soak's upstream processes, seen from the driver: good upstreams A and
 * B and the faulty one, each started by PID through scripts/bench/proc.js on
 * fixed ports (so A comes back on its own port after a kill), and their
 * /stats.
 */
const path = require('node:path');
const proc = require('../bench/proc');
const { fetchStats } = require('./control');

const GOOD = path.join(__dirname, 'upstream-good.js');
const FAULTY = path.join(__dirname, 'upstream-faulty.js');

class Upstream {
  constructor(name, script, extraArgs, dir) {
    this.name = name;
    this.script = script;
    this.extraArgs = extraArgs;
    this.dir = dir;
    this.child = null;
    this.starts = 0;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async allocatePorts() {
    this.port = await proc.freePort();
    this.control = await proc.freePort();
  }

  async start() {
    this.starts++;
    const args = [this.script, '--name', this.name, '--port', String(this.port), '--control', String(this.control), ...this.extraArgs];
    this.child = proc.start(`upstream ${this.name}`, process.execPath, args, { logFile: path.join(this.dir, `upstream-${this.name}-${this.starts}.log`) });
    await proc.waitUntil(this.child, this.control, () => fetchStats(this.control), 15000);
  }

  /** SIGKILL by PID, as a crash would: the kernel closes its sockets. */
  kill() {
    process.kill(this.child.pid, 'SIGKILL');
  }

  stats() {
    return fetchStats(this.control);
  }

  stop() {
    return proc.stop(this.child, 2000);
  }
}

/** Starts A, B and the faulty upstream; `seed` drives the faulty one's choices. */
async function startUpstreams(dir, seed) {
  const all = {
    A: new Upstream('A', GOOD, [], dir),
    B: new Upstream('B', GOOD, [], dir),
    faulty: new Upstream('faulty', FAULTY, ['--seed', String(seed)], dir),
  };
  for (const u of Object.values(all)) await u.allocatePorts();
  await Promise.all(Object.values(all).map((u) => u.start()));
  return all;
}

module.exports = { startUpstreams };
