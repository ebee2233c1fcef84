#!/usr/bin/env node
'use strict';
/*
 * Smoke test of the native addon (native/), independent of the TS wrapper.
 * Exercises every export of src/native/addon-types.ts (the splice tunnels
 * through scripts/tunnel-smoke.js in a child process), including the accept
 * loop with 2 worker_threads and real loopback clients, and checks that a
 * full run leaks no file descriptor. Exits non-zero on the first failure.
 *
 *   node --expose-gc scripts/native-smoke.js
 *   ZPROXY_ADDON=build-asan/Release/zproxy.node ASAN_OPTIONS=detect_leaks=0 \
 *     LD_PRELOAD=$(gcc -print-file-name=libasan.so) node --expose-gc scripts/native-smoke.js
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');

const root = path.join(__dirname, '..');

function loadAddon() {
  if (process.env.ZPROXY_ADDON) return require(path.resolve(root, process.env.ZPROXY_ADDON));
  return require('node-gyp-build')(root);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Worker side

function workerMain() {
  const addon = loadAddon();
  const attachments = new Map(); // loopId -> attachment
  let current = 0;
  let maxCurrent = 0;

  function fdFlagsOk(fd) {
    const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    const flags = parseInt(/flags:\s*(\d+)/.exec(info)[1], 8);
    return (flags & 0o4000) !== 0 && (flags & 0o2000000) !== 0; // O_NONBLOCK, O_CLOEXEC
  }

  function onConnection(attachment, opts, fd, peeked) {
    if (typeof fd !== 'number' || fd < 0) throw new Error(`bad fd ${fd}`);
    if (opts.expectPeek && !Buffer.isBuffer(peeked)) throw new Error('expected a peeked Buffer');
    if (!opts.expectPeek && peeked !== undefined) throw new Error('expected no peeked bytes');
    const flagsOk = fdFlagsOk(fd);
    current++;
    maxCurrent = Math.max(maxCurrent, current);
    const sock = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
    let released = false;
    let responded = false;
    let received = '';
    const done = () => {
      if (released) return;
      released = true;
      current--;
      attachment.release();
    };
    sock.on('close', done);
    sock.on('error', () => {});
    sock.on('end', () => {
      if (!responded) sock.end();
    });
    sock.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (responded || !received.includes('\r\n\r\n')) return;
      responded = true;
      const reply = () => {
        const body = JSON.stringify({
          worker: workerData.name,
          peeked: peeked ? peeked.toString('latin1') : null,
          flagsOk,
        });
        sock.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      };
      if (opts.holdMs) setTimeout(reply, opts.holdMs);
      else reply();
    });
  }

  parentPort.on('message', (msg) => {
    const reply = (data) => parentPort.postMessage({ id: msg.id, ...data });
    try {
      switch (msg.cmd) {
        case 'affinity': {
          const before = addon.getThreadAffinity();
          addon.setThreadAffinity([msg.cpu]);
          const after = addon.getThreadAffinity();
          // Give the scheduler a moment to migrate us, then ask where we run.
          const until = Date.now() + 20;
          while (Date.now() < until);
          const cpu = addon.currentCpu();
          let errorCode = null;
          try {
            addon.setThreadAffinity([1 << 20]);
          } catch (e) {
            errorCode = e.code;
          }
          addon.setThreadAffinity(before);
          reply({ before, after, cpu, errorCode });
          break;
        }
        case 'alloc': {
          const buf = addon.allocOnNode(4096, 0);
          buf.fill(7);
          reply({ ok: buf.length === 4096 && buf[4095] === 7 });
          break;
        }
        case 'attach': {
          const opts = msg;
          const attachment = addon.attachWorker(msg.loopId, msg.index, (fd, peeked) =>
            onConnection(attachment, opts, fd, peeked),
          );
          attachments.set(msg.loopId, attachment);
          reply({ ok: true });
          break;
        }
        case 'detach': {
          attachments.get(msg.loopId).detach();
          attachments.get(msg.loopId).detach(); // idempotent
          reply({ ok: true });
          break;
        }
        case 'release-stale': {
          // After stop(): both must be harmless no-ops.
          const a = attachments.get(msg.loopId);
          a.release();
          a.detach();
          reply({ ok: true });
          break;
        }
        case 'block': {
          reply({ ok: true });
          const until = Date.now() + msg.ms;
          while (Date.now() < until);
          break;
        }
        case 'counters':
          reply({ current, maxCurrent });
          maxCurrent = current;
          break;
        case 'exit':
          reply({ ok: true });
          parentPort.close(); // nothing else keeps the worker alive (TSFNs are unref'd)
          break;
        default:
          reply({ error: `unknown command ${msg.cmd}` });
      }
    } catch (e) {
      reply({ error: e.message, code: e.code });
    }
  });
}

// ---------------------------------------------------------------------------
// Main side

let passed = 0;
async function step(name, fn) {
  const started = Date.now();
  await fn();
  passed++;
  console.log(`ok ${passed} - ${name} (${Date.now() - started} ms)`);
}

function fdCount() {
  return fs.readdirSync('/proc/self/fd').length;
}

function fdList() {
  return fs.readdirSync('/proc/self/fd').map((fd) => {
    try {
      return `${fd} -> ${fs.readlinkSync(`/proc/self/fd/${fd}`)}`;
    } catch {
      return `${fd} -> ?`;
    }
  });
}

async function gcSettle(rounds = 5) {
  for (let i = 0; i < rounds; i++) {
    global.gc();
    await sleep(10);
  }
}

async function waitFor(what, predicate, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await sleep(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

class TestWorker {
  constructor(name) {
    this.name = name;
    this.nextId = 1;
    this.waiting = new Map();
    this.worker = new Worker(__filename, { workerData: { name } });
    this.exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.on('message', (msg) => {
      const pending = this.waiting.get(msg.id);
      if (!pending) return;
      this.waiting.delete(msg.id);
      if (msg.error) {
        const err = new Error(`${name}: ${msg.error}`);
        err.code = msg.code;
        pending.reject(err);
      } else pending.resolve(msg);
    });
    this.worker.on('error', (e) => {
      console.error(`worker ${name} error`, e);
      process.exitCode = 1;
    });
  }

  call(cmd, data = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, cmd, ...data });
    });
  }

  async exit() {
    await this.call('exit');
    await this.exited;
  }
}

/** One HTTP/1.1 request on a fresh connection; resolves with what came back. */
function request(port, host, urlPath) {
  return new Promise((resolve) => {
    const sent = `GET ${urlPath} HTTP/1.1\r\nHost: smoke\r\nX-Pad: ${'p'.repeat(32)}\r\n\r\n`;
    const sock = net.connect({ port, host });
    let data = '';
    sock.on('connect', () => sock.write(sent));
    sock.on('data', (chunk) => (data += chunk.toString('latin1')));
    sock.on('error', () => {});
    sock.on('close', () => {
      const split = data.indexOf('\r\n\r\n');
      let body = null;
      if (data.startsWith('HTTP/1.1 200 OK') && split >= 0) body = JSON.parse(data.slice(split + 4));
      resolve({ sent, body, raw: data });
    });
  });
}

/** Connects, optionally sends nothing / ends at once; resolves with close time. */
function rawClient(port, host, { end = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const started = Date.now();
    let data = '';
    sock.on('connect', () => {
      if (end) sock.end();
    });
    sock.on('data', (chunk) => (data += chunk));
    sock.on('error', () => {});
    sock.on('close', () => resolve({ ms: Date.now() - started, data }));
  });
}

function loopOptions(overrides) {
  return {
    host: '127.0.0.1',
    port: 0,
    backlog: 128,
    maxConnections: 1000,
    workers: 2,
    peekTimeoutMs: 300,
    peekBytes: 24,
    queueSize: 16,
    ...overrides,
  };
}

function checkResponse(res) {
  assert.ok(res.body, `no HTTP response (got ${JSON.stringify(res.raw)})`);
  assert.equal(res.body.flagsOk, true, 'delivered fd must be O_NONBLOCK|O_CLOEXEC');
  if (res.body.peeked !== null) {
    assert.ok(res.body.peeked.length > 0 && res.body.peeked.length <= 24, 'peeked length');
    assert.equal(res.body.peeked, res.sent.slice(0, res.body.peeked.length), 'peeked bytes match');
  }
}

function sum(a) {
  return a.reduce((x, y) => x + y, 0);
}

async function main() {
  if (typeof global.gc !== 'function') {
    throw new Error('run with --expose-gc');
  }
  const addon = loadAddon();
  console.log(`# addon: ${process.env.ZPROXY_ADDON || 'node-gyp-build'}`);

  // Warm up what Node opens lazily (first worker, first TCP server/client),
  // so the fd count below only sees what the addon does.
  {
    const w = new TestWorker('warmup');
    await w.call('alloc');
    await w.exit();
    const server = net.createServer((s) => s.end());
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    await rawClient(server.address().port, '127.0.0.1');
    await new Promise((r) => server.close(r));
    await gcSettle();
  }
  const fdsBefore = fdCount();
  const fdsBeforeList = fdList();

  await step('numaTopology: one node with every CPU', () => {
    const topo = addon.numaTopology();
    assert.ok(Array.isArray(topo), 'libnuma is present on this host: expected an array');
    assert.ok(topo.length >= 1);
    const cpus = topo.flatMap((n) => n.cpus).sort((a, b) => a - b);
    const online = addon.getThreadAffinity();
    for (const cpu of online) assert.ok(cpus.includes(cpu), `cpu ${cpu} in some node`);
    for (const node of topo) {
      assert.equal(typeof node.id, 'number');
      assert.ok(node.memoryBytes > 0, 'memoryBytes');
    }
    console.log('   topology', JSON.stringify(topo));
  });

  await step('affinity in the main thread: errors carry code', () => {
    const cpus = addon.getThreadAffinity();
    assert.ok(cpus.length >= 1);
    assert.ok(cpus.includes(addon.currentCpu()));
    assert.throws(() => addon.setThreadAffinity([]), (e) => e.code === 'EINVAL' && /pthread_setaffinity_np/.test(e.message));
    assert.throws(() => addon.setThreadAffinity([-1]), (e) => e.code === 'EINVAL');
    assert.deepEqual(addon.getThreadAffinity(), cpus, 'failed calls change nothing');
  });

  const w0 = new TestWorker('w0');
  const w1 = new TestWorker('w1');

  await step('affinity set inside a worker reads back inside it', async () => {
    const cpus = addon.getThreadAffinity();
    const target = cpus[cpus.length - 1];
    const r = await w0.call('affinity', { cpu: target });
    assert.deepEqual(r.after, [target]);
    assert.equal(r.cpu, target, 'sched_getcpu within the set');
    assert.equal(r.errorCode, 'EINVAL');
    assert.deepEqual(addon.getThreadAffinity(), cpus, 'main thread untouched');
  });

  await step('allocOnNode: write, read, freed after GC', async () => {
    const before = addon.nodeBufferStats();
    let buf = addon.allocOnNode(1 << 20, 0);
    assert.equal(buf.length, 1 << 20);
    buf.fill(0xab);
    buf[12345] = 1;
    assert.equal(buf[12345], 1);
    assert.equal(buf[(1 << 20) - 1], 0xab);
    const mid = addon.nodeBufferStats();
    assert.equal(mid.allocated, before.allocated + 1);
    assert.equal(mid.liveBytes, before.liveBytes + (1 << 20));
    assert.equal(typeof mid.numa, 'boolean');
    assert.equal(addon.allocOnNode(0, 0).length, 0);
    assert.throws(() => addon.allocOnNode(16, 4096), RangeError);
    buf = null;
    await waitFor('the finalizer to free the buffer', async () => {
      await gcSettle(1);
      const s = addon.nodeBufferStats();
      return s.freed === before.freed + 1 && s.liveBytes === before.liveBytes;
    });
    // In a worker; its buffer is freed at the latest when that worker exits.
    assert.ok((await w1.call('alloc')).ok, 'allocOnNode in a worker');
  });

  await step('AcceptLoop errors: EADDRINUSE, EADDRNOTAVAIL, EINVAL, state', () => {
    const taken = new addon.AcceptLoop(loopOptions());
    const port = taken.address().port;
    assert.throws(
      () => new addon.AcceptLoop(loopOptions({ port })),
      (e) => e.code === 'EADDRINUSE' && e.message.includes(`127.0.0.1:${port}`) && e.port === port,
    );
    assert.throws(() => new addon.AcceptLoop(loopOptions({ host: '192.0.2.1' })), (e) => e.code === 'EADDRNOTAVAIL');
    assert.throws(() => new addon.AcceptLoop(loopOptions({ host: 'localhost' })), (e) => e.code === 'EINVAL');
    taken.start();
    assert.throws(() => taken.start(), /already started/);
    assert.throws(() => addon.attachWorker(taken.id, 2, () => {}), /out of range/);
    taken.stop();
    taken.stop();
    assert.throws(() => taken.start(), /stopped/);
    assert.throws(() => addon.attachWorker(taken.id, 0, () => {}), (e) => e.code === 'ERR_ACCEPT_LOOP_NOT_FOUND');
    const never = new addon.AcceptLoop(loopOptions());
    never.stop(); // stop before start
  });

  await step('AcceptLoop over IPv6 (:: is dual-stack)', async () => {
    let loop;
    try {
      loop = new addon.AcceptLoop(loopOptions({ host: '::', workers: 1 }));
    } catch (e) {
      if (e.code === 'EAFNOSUPPORT' || e.code === 'EADDRNOTAVAIL') return console.log('   (no IPv6 here)');
      throw e;
    }
    const addr = loop.address();
    assert.equal(addr.family, 'IPv6');
    assert.equal(addr.address, '::');
    loop.start();
    await w0.call('attach', { loopId: loop.id, index: 0, expectPeek: true });
    const res = await request(addr.port, '127.0.0.1', '/v4-on-v6');
    checkResponse(res);
    assert.equal(res.body.worker, 'w0');
    loop.stop();
  });

  await step('40 clients spread over 2 workers, peeked bytes match, silent client closed', async () => {
    const loop = new addon.AcceptLoop(loopOptions());
    const { port, family, address } = loop.address();
    assert.equal(family, 'IPv4');
    assert.equal(address, '127.0.0.1');
    assert.ok(port > 0);
    assert.equal(typeof loop.id, 'number');
    await w0.call('attach', { loopId: loop.id, index: 0, expectPeek: true });
    await w1.call('attach', { loopId: loop.id, index: 1, expectPeek: true });
    await assert.rejects(w1.call('attach', { loopId: loop.id, index: 1 }), /already attached/);
    loop.start();

    const silent = rawClient(port, '127.0.0.1');
    const eof = rawClient(port, '127.0.0.1', { end: true });
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => request(port, '127.0.0.1', `/r${i}`)));
    const byWorker = { w0: 0, w1: 0 };
    for (const res of results) {
      checkResponse(res);
      assert.ok(res.body.peeked && res.body.peeked.length > 0, 'peeking is on');
      byWorker[res.body.worker]++;
    }
    assert.ok(byWorker.w0 > 0 && byWorker.w1 > 0, `both workers served: ${JSON.stringify(byWorker)}`);
    const s = await silent;
    assert.ok(s.ms >= 250 && s.ms < 2000, `silent client closed after ~peekTimeoutMs (${s.ms} ms)`);
    assert.equal(s.data, '');
    await eof;
    await waitFor('all releases', () => sum(loop.stats().active) === 0);
    const stats = loop.stats();
    assert.equal(stats.accepted, 42);
    assert.equal(stats.closedEarly, 2);
    assert.equal(stats.pending, 0);
    assert.equal(stats.resourceErrors, 0);
    console.log('   spread', JSON.stringify(byWorker), 'stats', JSON.stringify(stats));

    // detach(): deliveries go to the remaining worker only.
    await w0.call('detach', { loopId: loop.id });
    const after = await Promise.all(Array.from({ length: 6 }, (_, i) => request(port, '127.0.0.1', `/d${i}`)));
    for (const res of after) {
      checkResponse(res);
      assert.equal(res.body.worker, 'w1');
    }
    loop.stop();
    await w1.call('release-stale', { loopId: loop.id });
    assert.deepEqual(loop.stats().active, [0, 0]);
  });

  await step('maxConnections=8 with 30 simultaneous clients', async () => {
    const loop = new addon.AcceptLoop(loopOptions({ maxConnections: 8, queueSize: 4, peekTimeoutMs: 2000 }));
    const { port } = loop.address();
    await w0.call('attach', { loopId: loop.id, index: 0, expectPeek: true, holdMs: 60 });
    await w1.call('attach', { loopId: loop.id, index: 1, expectPeek: true, holdMs: 60 });
    await w0.call('counters'); // resets the peaks
    await w1.call('counters');
    loop.start();
    let maxTotal = 0;
    let maxActive = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const s = loop.stats();
        maxActive = Math.max(maxActive, sum(s.active));
        maxTotal = Math.max(maxTotal, sum(s.active) + s.pending);
        await new Promise((r) => setImmediate(r));
      }
    })();
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => request(port, '127.0.0.1', `/m${i}`)));
    polling = false;
    await poller;
    for (const res of results) checkResponse(res);
    const c0 = await w0.call('counters');
    const c1 = await w1.call('counters');
    const stats = loop.stats();
    console.log('   max active', maxActive, 'max active+pending', maxTotal, 'worker peaks', c0.maxCurrent, c1.maxCurrent, 'stats', JSON.stringify(stats));
    assert.ok(maxActive <= 8 && maxTotal <= 8, 'never above maxConnections');
    assert.ok(c0.maxCurrent + c1.maxCurrent >= 1 && c0.maxCurrent <= 8 && c1.maxCurrent <= 8);
    assert.ok(stats.pausedFull >= 1, 'accepting paused at least once');
    assert.equal(stats.accepted, 30);
    loop.stop();
  });

  await step('stop() with workers attached and connections in flight returns promptly', async () => {
    const loop = new addon.AcceptLoop(loopOptions({ peekTimeoutMs: 5000 }));
    const { port } = loop.address();
    await w0.call('attach', { loopId: loop.id, index: 0, expectPeek: true, holdMs: 100 });
    await w1.call('attach', { loopId: loop.id, index: 1, expectPeek: true, holdMs: 100 });
    loop.start();
    const silent = [rawClient(port, '127.0.0.1'), rawClient(port, '127.0.0.1')];
    const served = Array.from({ length: 4 }, (_, i) => request(port, '127.0.0.1', `/s${i}`));
    await waitFor('connections to be handed off', () => loop.stats().accepted >= 6 && sum(loop.stats().active) >= 1);
    const t0 = process.hrtime.bigint();
    loop.stop();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.ok(ms < 200, `stop() took ${ms} ms`);
    const closed = await Promise.all(silent);
    for (const c of closed) assert.equal(c.data, '', 'silent clients closed by stop()');
    await Promise.all(served); // whatever the workers held finishes or is closed
    await w0.call('release-stale', { loopId: loop.id });
  });

  await step('worker.terminate() while attached with deliveries queued; re-attach', async () => {
    const loop = new addon.AcceptLoop(loopOptions({ workers: 1, queueSize: 2, peekTimeoutMs: 0 }));
    const { port } = loop.address();
    const doomed = new TestWorker('doomed');
    await doomed.call('attach', { loopId: loop.id, index: 0, expectPeek: false });
    loop.start();
    const held = [rawClient(port, '127.0.0.1'), rawClient(port, '127.0.0.1')];
    await waitFor('2 held connections', () => loop.stats().active[0] === 2);
    await doomed.call('block', { ms: 600 });
    const queued = Array.from({ length: 6 }, (_, i) => request(port, '127.0.0.1', `/q${i}`));
    await waitFor('queue full, one held back', () => {
      const s = loop.stats();
      return s.accepted >= 5 && s.pending >= 1;
    });
    const mid = loop.stats();
    assert.equal(mid.active[0], 4, `2 live + 2 queued (${JSON.stringify(mid)})`);
    const t0 = Date.now();
    await doomed.worker.terminate();
    assert.ok(Date.now() - t0 < 2000, 'terminate() returned');
    for (const c of await Promise.all(held)) assert.equal(c.data, '', 'live sockets died with the worker');
    await waitFor('the dead worker forgotten', () => {
      const s = loop.stats();
      return s.active[0] === 0 && s.pending === 0;
    });
    // Clients still in the backlog (if any) wait for a worker; a new one
    // takes index 0 and serves them and every new client.
    await w1.call('attach', { loopId: loop.id, index: 0, expectPeek: false });
    const results = await Promise.all(queued);
    const servedCount = results.filter((r) => r.body).length;
    for (const r of results) if (r.body) checkResponse(r);
    const fresh = await Promise.all(Array.from({ length: 3 }, (_, i) => request(port, '127.0.0.1', `/n${i}`)));
    for (const r of fresh) {
      checkResponse(r);
      assert.equal(r.body.worker, 'w1');
    }
    const stats = loop.stats();
    console.log('   queued clients served after re-attach', servedCount, 'of 6; stats', JSON.stringify(stats));
    assert.ok(stats.closedEarly >= 2, 'queued fds of the dead worker were closed');
    assert.equal(2 + stats.closedEarly + servedCount + 3, stats.accepted, 'every accepted fd is accounted for');
    loop.stop();
  });

  await step('an AcceptLoop dropped without stop() is stopped by GC', async () => {
    let loop = new addon.AcceptLoop(loopOptions({ workers: 1 }));
    const id = loop.id;
    loop.start();
    await w0.call('attach', { loopId: id, index: 0, expectPeek: true });
    loop = null;
    await waitFor('the loop to be collected', async () => {
      await gcSettle(1);
      try {
        addon.attachWorker(id, 0, () => {});
        return false;
      } catch (e) {
        return e.code === 'ERR_ACCEPT_LOOP_NOT_FOUND';
      }
    });
  });

  await step('EMFILE: counted, no spin, recovers when fds are free (child process)', emfileStep);

  await step('writeFd: bytes sent on a socket fd, EAGAIN as 0, errors as -errno', async () => {
    const server = net.createServer();
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const accepted = new Promise((resolve) => server.once('connection', resolve));
    const client = net.connect(server.address().port, '127.0.0.1');
    await new Promise((resolve) => client.once('connect', resolve));
    const peer = await accepted;
    const got = new Promise((resolve) => peer.once('data', resolve));
    assert.equal(addon.writeFd(client._handle.fd, Buffer.from('hello, world'), 0, 3), 3); // data[start, end) only
    assert.equal(addon.writeFd(client._handle.fd, Buffer.from('__lo__'), 2, 4), 2);
    assert.equal((await got).toString(), 'hello');
    assert.throws(() => addon.writeFd(client._handle.fd, Buffer.from('x'), 0, 2), RangeError);
    assert.throws(() => addon.writeFd(client._handle.fd, Buffer.from('xy'), 2, 1), RangeError);
    assert.throws(() => addon.writeFd(client._handle.fd, Buffer.from('x'), '1'), TypeError);
    peer.pause();
    let sent = 0;
    for (let n = 1; n > 0; ) sent += n = addon.writeFd(client._handle.fd, Buffer.alloc(1 << 20));
    assert.ok(sent > 0, 'the kernel took some bytes before it was full');
    assert.equal(addon.writeFd(client._handle.fd, Buffer.from('x')), 0); // full: EAGAIN
    assert.ok(addon.writeFd(100000, Buffer.from('x')) < 0); // EBADF as -errno
    assert.throws(() => addon.writeFd(client._handle.fd, 'x'), TypeError);
    client.destroy();
    peer.destroy();
    server.close();
  });

  await step('splice tunnels: scripts/tunnel-smoke.js (child process, same addon)', async () => {
    const { spawnSync } = require('node:child_process');
    const run = spawnSync(process.execPath, [path.join(__dirname, 'tunnel-smoke.js')], { encoding: 'utf8', timeout: 90_000 });
    const lines = run.stdout.trim().split('\n');
    console.log(`   ${lines[lines.length - 1]}`);
    assert.equal(run.status, 0, `tunnel smoke failed:\n${run.stdout}\n${run.stderr}`);
  });

  await step('workers exit on their own (TSFNs are unref’d)', async () => {
    const t0 = Date.now();
    await Promise.all([w0.exit(), w1.exit()]);
    assert.ok(Date.now() - t0 < 3000);
  });

  await step('no fd leaked', async () => {
    await gcSettle();
    await waitFor('fd count back to the start', () => fdCount() === fdsBefore, 3000).catch(() => {
      const now = fdList();
      console.error('before:', fdsBeforeList.filter((x) => !now.includes(x)));
      console.error('after only:', now.filter((x) => !fdsBeforeList.includes(x)));
      throw new Error(`fd count ${fdCount()} != ${fdsBefore}`);
    });
  });

  console.log(`${passed} passed, 0 failed`);
}

/** Child process: the acceptor runs out of fds (EMFILE) and must not spin. */
async function emfileChild() {
  const addon = loadAddon();
  const loop = new addon.AcceptLoop(loopOptions({ workers: 1, peekTimeoutMs: 0 }));
  const worker = new TestWorker('e0');
  await worker.call('attach', { loopId: loop.id, index: 0, expectPeek: false });
  loop.start();
  const lines = [];
  let wake = null;
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    lines.push(...chunk.split('\n').filter(Boolean));
    if (wake) wake();
  });
  const next = async () => {
    while (lines.length === 0) await new Promise((r) => (wake = r));
    return lines.shift();
  };
  const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
  const fillers = [];
  try {
    for (;;) fillers.push(fs.openSync('/dev/null', 'r'));
  } catch (e) {
    if (e.code !== 'EMFILE') throw e;
  }
  say({ port: loop.address().port, fillers: fillers.length });
  await next(); // 'measure'
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  await sleep(500);
  const cpu = process.cpuUsage(cpu0);
  say({ stats: loop.stats(), cpuMs: (cpu.user + cpu.system) / 1000, wallMs: Date.now() - t0 });
  await next(); // 'free'
  for (const fd of fillers) fs.closeSync(fd);
  say({ freed: true });
  await next(); // 'done'
  say({ stats: loop.stats() });
  loop.stop();
  await worker.exit();
  process.stdin.destroy();
}

async function emfileStep() {
  const { spawn } = require('node:child_process');
  const child = spawn(process.execPath, ['--expose-gc', __filename, '--emfile-child'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const lines = [];
  let wake = null;
  let buffered = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    let i;
    while ((i = buffered.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buffered.slice(0, i)));
      buffered = buffered.slice(i + 1);
    }
    if (wake) wake();
  });
  const next = async () => {
    while (lines.length === 0) await new Promise((r) => (wake = r));
    return lines.shift();
  };
  try {
    const { port } = await next();
    const shed = await request(port, '127.0.0.1', '/emfile');
    assert.equal(shed.body, null, 'no fd to serve it: closed by the reserve-fd trick');
    const blocked = request(port, '127.0.0.1', '/waits');
    await sleep(100);
    child.stdin.write('measure\n');
    const m = await next();
    console.log('   during EMFILE', JSON.stringify(m));
    assert.ok(m.stats.resourceErrors >= 1, 'resourceErrors counted');
    assert.ok(m.cpuMs < 150, `acceptor must not spin on EMFILE (${m.cpuMs} ms CPU in ${m.wallMs} ms)`);
    child.stdin.write('free\n');
    await next();
    const late = await blocked; // shed, or served once fds were freed
    if (late.body) checkResponse(late);
    const ok = await request(port, '127.0.0.1', '/after');
    checkResponse(ok);
    child.stdin.write('done\n');
    const end = await next();
    assert.ok(end.stats.accepted >= 2);
  } finally {
    child.stdin.end();
    const code = await exited;
    assert.equal(code, 0, 'emfile child exit code');
  }
}

if (process.argv.includes('--emfile-child')) {
  emfileChild().catch((e) => {
    console.error('emfile child FAIL', e);
    process.exit(1);
  });
} else if (isMainThread) {
  const watchdog = setTimeout(() => {
    console.error('FAIL: smoke test hung for 60 s');
    process.exit(1);
  }, 60_000);
  watchdog.unref();
  main().then(
    () => process.exit(process.exitCode || 0),
    (err) => {
      console.error('FAIL', err);
      console.log(`${passed} passed, 1 failed`);
      process.exit(1);
    },
  );
} else {
  workerMain();
}
