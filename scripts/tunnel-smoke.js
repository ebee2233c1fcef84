#!/usr/bin/env node
'use strict';
/*
 * Smoke test of the addon's splice tunnels (createTunnel/closeTunnel/
 * tunnelStats), independent of the TS wrapper: real loopback sockets, the
 * hand-off as the proxy does it (dup inside createTunnel, then destroy the JS
 * sockets), data both ways with sha256, queued prefixes, half-close, idle
 * timeout, closeTunnel, a reset, tunnels in a worker torn down while open,
 * transfers (spliceBody: exactly N bytes one way, both sockets kept), and no
 * fd leaked. Exits non-zero on the first failure.
 *
 *   node scripts/tunnel-smoke.js
 *   ZPROXY_ADDON=build-asan/Release/zproxy.node ASAN_OPTIONS=detect_leaks=0 \
 *     LD_PRELOAD=$(gcc -print-file-name=libasan.so) node scripts/tunnel-smoke.js
 */
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { Worker, isMainThread, parentPort } = require('node:worker_threads');

const root = path.join(__dirname, '..');
function loadAddon() {
  if (process.env.ZPROXY_ADDON) return require(path.resolve(root, process.env.ZPROXY_ADDON));
  return require('node-gyp-build')(root);
}
const addon = loadAddon();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const fdList = () =>
  fs.readdirSync('/proc/self/fd').map((fd) => {
    try {
      return `${fd} ${fs.readlinkSync(`/proc/self/fd/${fd}`)}`;
    } catch {
      return `${fd} ?`;
    }
  });
const fdCount = () => fs.readdirSync('/proc/self/fd').length;

/** A connected pair: `outer` (a test peer) and `inner` (the socket the proxy would own). */
async function socketPair() {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise((r) => server.once('connection', r));
  const outer = net.connect({ port: server.address().port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise((r) => outer.once('connect', r));
  const inner = await accepted;
  server.close();
  outer.on('error', () => {});
  return { outer, inner };
}

/** Two pairs joined by a tunnel; resolves the tunnel's report through `closed`. */
async function tunnel({ idleMs = 0, toB, toA } = {}) {
  const a = await socketPair();
  const b = await socketPair();
  let report;
  const closed = new Promise((resolve) => (report = resolve));
  const id = addon.createTunnel(a.inner._handle.fd, b.inner._handle.fd, idleMs, report, toB, toA);
  a.inner.destroy();
  b.inner.destroy();
  return { id, a: a.outer, b: b.outer, closed };
}

function collect(socket) {
  const chunks = [];
  socket.on('data', (c) => chunks.push(c));
  return {
    ended: new Promise((r) => socket.once('end', r)),
    closed: new Promise((r) => socket.once('close', r)),
    bytes: () => Buffer.concat(chunks),
  };
}

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

async function main() {
  let passed = 0;
  const step = async (name, fn) => {
    await fn();
    passed++;
    console.log(`ok ${passed} - ${name}`);
  };
  const beforeList = fdList();
  const before = fdCount();
  // Tunnel reports come through unref'd TSFNs: keep the loop alive while waiting for them.
  const keepAlive = setInterval(() => {}, 1000);

  await step('bytes both ways (8 MiB each, sha256), prefixes first, half-close then eof', async () => {
    const t = await tunnel({ toB: Buffer.from('prefix-to-b|'), toA: Buffer.from('prefix-to-a|') });
    const atB = collect(t.b);
    const atA = collect(t.a);
    const upA = crypto.randomBytes(8 << 20);
    const upB = crypto.randomBytes(8 << 20);
    t.a.end(upA);
    await atB.ended; // A's FIN reached B: half-close
    assert.equal(sha(atB.bytes()), sha(Buffer.concat([Buffer.from('prefix-to-b|'), upA])));
    t.b.end(upB); // the other direction still flows
    await atA.ended;
    assert.equal(sha(atA.bytes()), sha(Buffer.concat([Buffer.from('prefix-to-a|'), upB])));
    const r = await t.closed;
    assert.equal(r.reason, 'eof');
    assert.equal(r.bytesAtoB, upA.length + 12);
    assert.equal(r.bytesBtoA, upB.length + 12);
    t.a.destroy();
    t.b.destroy();
  });

  await step('idle timeout closes both sides', async () => {
    const t = await tunnel({ idleMs: 150 });
    const atA = collect(t.a);
    const atB = collect(t.b);
    t.a.write('ping');
    const t0 = Date.now();
    const r = await t.closed;
    assert.equal(r.reason, 'idle');
    assert.ok(Date.now() - t0 >= 100, 'not before the timeout');
    await Promise.all([atA.closed, atB.closed].map((p) => Promise.race([p, sleep(50).then(() => t.a.destroy())])));
    assert.equal(atB.bytes().toString(), 'ping');
    t.a.destroy();
    t.b.destroy();
  });

  await step('closeTunnel: reported as closed, peers see the end; a second close is false', async () => {
    const t = await tunnel();
    const atB = collect(t.b);
    assert.equal(addon.closeTunnel(t.id), true);
    const r = await t.closed;
    assert.equal(r.reason, 'closed');
    await atB.ended;
    assert.equal(addon.closeTunnel(t.id), false);
    t.a.destroy();
    t.b.destroy();
  });

  await step('a reset on one side closes the other (error)', async () => {
    const t = await tunnel();
    const atA = collect(t.a);
    t.b.resetAndDestroy();
    const r = await t.closed;
    assert.ok(r.reason === 'error' || r.reason === 'eof', r.reason);
    await atA.ended; // the tunnel closed its dup of A: A's peer sees the end
    t.a.destroy();
  });

  await step('bad arguments throw; failed creation keeps nothing', async () => {
    assert.throws(() => addon.createTunnel(-1, 3, 0, () => {}), RangeError);
    assert.throws(() => addon.createTunnel(3, 4, 0, 'x'), TypeError);
    assert.throws(() => addon.createTunnel(100000, 100001, 0, () => {}), (e) => e.code === 'EBADF');
  });

  await step('tunnels of a worker torn down while open are closed silently', async () => {
    const worker = new Worker(__filename);
    const a = await socketPair();
    const ready = new Promise((r) => worker.once('message', r));
    await ready;
    // The worker makes its own pairs (fds are per process: any thread may use them).
    worker.postMessage({ cmd: 'open', count: 5 });
    const opened = await new Promise((r) => worker.once('message', r));
    assert.equal(opened.active >= 5, true);
    await worker.terminate();
    a.outer.destroy();
    a.inner.destroy();
    for (let i = 0; i < 50 && addon.tunnelStats().active > 0; i++) await sleep(20);
    assert.equal(addon.tunnelStats().active, 0);
  });

  await step('200 tunnels at once, each echoing', async () => {
    const tunnels = await Promise.all(Array.from({ length: 200 }, () => tunnel()));
    await Promise.all(
      tunnels.map(async (t, i) => {
        t.b.on('data', (d) => t.b.write(d));
        const atA = collect(t.a);
        t.a.write(`hello ${i}`);
        for (let k = 0; k < 100 && atA.bytes().length < `hello ${i}`.length; k++) await sleep(5);
        assert.equal(atA.bytes().toString(), `hello ${i}`);
        t.a.destroy();
        t.b.destroy();
        await t.closed;
      }),
    );
    assert.equal(addon.tunnelStats().active, 0);
  });

  await step('transfer: exactly N bytes A->B; the rest stays in A, B stays open, both sockets kept', async () => {
    const a = await socketPair();
    const b = await socketPair();
    const atB = collect(b.outer);
    const body = crypto.randomBytes(5 << 20);
    a.outer.write(Buffer.concat([body, Buffer.from('NEXT')]));
    const r = await new Promise((resolve) => addon.spliceBody(a.inner._handle.fd, b.inner._handle.fd, body.length, 0, resolve));
    assert.equal(r.reason, 'done');
    assert.equal(r.bytesAtoB, body.length);
    // JS reads on where the transfer stopped, and writes on after it.
    a.inner.resume();
    const rest = await new Promise((resolve) => a.inner.once('data', resolve));
    assert.equal(rest.toString(), 'NEXT');
    b.inner.end('|after');
    await atB.ended;
    assert.equal(sha(atB.bytes()), sha(Buffer.concat([body, Buffer.from('|after')])));
    for (const s of [a.outer, a.inner, b.outer, b.inner]) s.destroy();
  });

  await step('transfer: a short source is eof, a closed reader is a write error, closeTunnel stops it', async () => {
    const a = await socketPair();
    const b = await socketPair();
    a.outer.end(Buffer.alloc(1000, 1));
    const short = await new Promise((resolve) => addon.spliceBody(a.inner._handle.fd, b.inner._handle.fd, 5000, 0, resolve));
    assert.equal(short.reason, 'eof');
    assert.equal(short.bytesAtoB, 1000);
    for (const s of [a.outer, a.inner, b.outer, b.inner]) s.destroy();

    const c = await socketPair();
    const d = await socketPair();
    d.outer.resetAndDestroy();
    await sleep(20);
    c.outer.write(crypto.randomBytes(1 << 20));
    const broken = await new Promise((resolve) => addon.spliceBody(c.inner._handle.fd, d.inner._handle.fd, 2 << 20, 0, resolve));
    assert.equal(broken.reason, 'error');
    assert.equal(broken.side, 'destination');
    for (const s of [c.outer, c.inner, d.inner]) s.destroy();

    const e = await socketPair();
    const f = await socketPair();
    let report;
    const reported = new Promise((resolve) => (report = resolve));
    const id = addon.spliceBody(e.inner._handle.fd, f.inner._handle.fd, 1 << 20, 0, report);
    assert.equal(addon.closeTunnel(id), true);
    assert.equal((await reported).reason, 'closed');
    for (const s of [e.outer, e.inner, f.outer, f.inner]) s.destroy();
    assert.throws(() => addon.spliceBody(3, 4, 0, 0, () => {}), RangeError);
  });

  await step('no fd leaked', async () => {
    // The reactor keeps its epoll fd and eventfd while this environment lives.
    const expected = before + (addon.tunnelStats().running ? 2 : 0);
    for (let i = 0; i < 150 && fdCount() !== expected; i++) await sleep(20);
    const now = fdList();
    assert.equal(fdCount(), expected, `new fds: ${now.filter((x) => !beforeList.includes(x)).join('; ')}`);
    const s = addon.tunnelStats();
    assert.equal(s.active, 0);
    assert.equal(s.created, s.closed);
  });
  clearInterval(keepAlive);
  console.log(`${passed} passed, 0 failed`);
}

if (isMainThread) {
  const watchdog = setTimeout(() => {
    console.error('FAIL: tunnel smoke test hung for 60 s');
    process.exit(1);
  }, 60_000);
  watchdog.unref();
  main().then(
    () => process.exit(0),
    (err) => {
      console.error('FAIL', err);
      process.exit(1);
    },
  );
} else {
  const open = [];
  parentPort.on('message', async (msg) => {
    if (msg.cmd === 'open') {
      for (let i = 0; i < msg.count; i++) open.push(await tunnel());
      parentPort.postMessage({ active: addon.tunnelStats().active });
    }
  });
  parentPort.postMessage('ready');
}
