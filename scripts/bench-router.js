'use strict';
/**
 * ns per Router.match for 10 and 1000 routes, each scenario in a fresh
 * process, next to a baseline measured in the same run: a linear scan that
 * picks the longest literal prefix. Needs a build: `npx tsc -p tsconfig.json`.
 *   node scripts/bench-router.js
 */
const { spawnSync } = require('node:child_process');

const ITERATIONS = 1_000_000;

function makeRoutes(count) {
  const routes = [];
  for (let i = 0; routes.length < count; i++) {
    routes.push({ path: `/svc${i}` }, { path: `/svc${i}/users/:id`, methods: ['GET'] }, { path: `/svc${i}/files/*` });
  }
  routes.length = count;
  routes.push({ path: '/' });
  return routes;
}

function makePaths(count) {
  const services = Math.ceil(count / 3);
  const paths = [];
  for (let i = 0; i < 64; i++) {
    const svc = (i * 7919) % services;
    paths.push([`/svc${svc}/users/${i}`, `/svc${svc}/files/a/b.css`, `/svc${svc}/x`, '/nothing/here'][i % 4]);
  }
  return paths;
}

function linearScan(routes) {
  const prefixes = routes.map((r) => r.path.split('/:')[0].replace(/\/\*$/, ''));
  return {
    match(_method, _host, path) {
      let best = -1;
      for (let i = 0; i < prefixes.length; i++) {
        const p = prefixes[i];
        const hit = p === '/' || (path.startsWith(p) && (path.length === p.length || path[p.length] === '/'));
        if (hit && (best === -1 || p.length > prefixes[best].length)) best = i;
      }
      return best;
    },
  };
}

function measure(kind, count) {
  const routes = makeRoutes(count);
  const router = kind === 'router' ? require('../dist/router/compile').compileRoutes(routes) : linearScan(routes);
  const paths = makePaths(count);
  let sink = 0;
  const loop = (n) => {
    for (let i = 0; i < n; i++) if (router.match('GET', 'example.com', paths[i & 63]) !== null) sink++;
  };
  loop(ITERATIONS / 10);
  const start = process.hrtime.bigint();
  loop(ITERATIONS);
  const ns = Number(process.hrtime.bigint() - start) / ITERATIONS;
  return { ns, sink };
}

if (process.argv[2]) {
  const [kind, count] = process.argv[2].split(':');
  process.stdout.write(JSON.stringify(measure(kind, Number(count))));
} else {
  console.log('routes  matcher              ns/match');
  for (const count of [10, 1000]) {
    for (const kind of ['baseline', 'router']) {
      const child = spawnSync(process.execPath, [__filename, `${kind}:${count}`], { encoding: 'utf8' });
      if (child.status !== 0) throw new Error(child.stderr);
      const { ns } = JSON.parse(child.stdout);
      const label = kind === 'router' ? 'compileRoutes' : 'linear scan (baseline)';
      console.log(`${String(count).padStart(6)}  ${label.padEnd(22)} ${ns.toFixed(0).padStart(8)}`);
    }
  }
}
