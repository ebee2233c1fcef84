'use strict';
/**
 * ns per pick for each load-balancing algorithm with 3 and 50 targets, each
 * scenario in a fresh process, next to a baseline measured in the same run:
 * a bare `targets[i++ % n]` that checks nothing. Each figure is the best of
 * ROUNDS runs and includes the request's begin()/end() (the least-connections
 * heap is kept in order there). Picked targets begin and
 * end a request (so least_connections and random see load move), and one
 * request in 64 varies the client and key. Needs a build:
 * `npx tsc -p tsconfig.json`.
 *   node scripts/bench-balancer.js
 */
const { spawnSync } = require('node:child_process');

const ITERATIONS = 1_000_000;
const ROUNDS = 4;
const ALGORITHMS = ['round_robin', 'least_connections', 'random', 'ip_hash', 'consistent_hash'];

function makeTargets(count) {
  const { Target } = require('../dist/upstream/target');
  return Array.from({ length: count }, (_, i) => new Target(`http://10.0.${i >> 8}.${i & 255}:8080`, 1 + (i % 3)));
}

function makeRequests() {
  return Array.from({ length: 64 }, (_, i) => {
    const headers = { 'x-user': `user-${i * 7919}`, cookie: `theme=dark; sid=session-${i}; lang=en` };
    return { clientIp: `198.51.${i}.${(i * 37) & 255}`, getHeader: (name) => headers[name] };
  });
}

function makeBalancer(algorithm, targets) {
  if (algorithm === 'baseline') {
    let next = 0;
    return { pick: () => targets[next++ % targets.length] };
  }
  const config = { targets: [], load_balancing: algorithm, hash_key: algorithm === 'consistent_hash' ? 'cookie:sid' : undefined };
  return require('../dist/balancer/create-balancer').createBalancer(config, targets);
}

/** The best of ROUNDS timed runs, in ns per pick (the first round also warms up). */
function measure(algorithm, count) {
  const targets = makeTargets(count);
  const balancer = makeBalancer(algorithm, targets);
  const requests = makeRequests();
  const inFlight = new Array(16).fill(null);
  let sink = 0;
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < ITERATIONS; i++) {
      const target = balancer.pick(requests[i & 63], null);
      target.begin();
      if (inFlight[i & 15] !== null) inFlight[i & 15].end();
      inFlight[i & 15] = target;
      sink += target.port;
    }
    best = Math.min(best, Number(process.hrtime.bigint() - started) / ITERATIONS);
  }
  return { ns: best, sink };
}

/** Runs one scenario in a fresh process. */
function scenario(algorithm, count) {
  const child = spawnSync(process.execPath, [__filename, `${algorithm}:${count}`], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(child.stderr);
  return JSON.parse(child.stdout).ns;
}

if (process.argv[2]) {
  const [algorithm, count] = process.argv[2].split(':');
  process.stdout.write(JSON.stringify(measure(algorithm, Number(count))));
} else {
  console.log('targets  algorithm               ns/pick  x baseline');
  for (const count of [3, 50]) {
    const baseline = scenario('baseline', count);
    console.log(`${String(count).padStart(7)}  ${'i++ % n (baseline)'.padEnd(22)} ${baseline.toFixed(1).padStart(8)}`);
    for (const algorithm of ALGORITHMS) {
      const ns = scenario(algorithm, count);
      console.log(`${String(count).padStart(7)}  ${algorithm.padEnd(22)} ${ns.toFixed(1).padStart(8)}  ${(ns / baseline).toFixed(1).padStart(10)}`);
    }
  }
}
