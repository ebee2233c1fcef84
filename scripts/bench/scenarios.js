'use strict';
/**
 * The scenarios of `npm run bench`. Each says which backend it needs, what
 * the proxies' listener speaks (`frontend`), which load generator drives it
 * (`load`, run by scripts/bench/drivers.js), what one unit of work is (the
 * CPU figure is per unit) and which proxies take part.
 *
 *   cpuUnit   'req' | 'handshake' | 'msg' | 'MiB': the proxy's CPU time is divided by it
 *   rateUnit  'req/s' | 'handshakes/s' | 'msg/s' | 'MiB/s'
 *   probe     what the readiness check must get back: { status, bytes }
 *   needs     executables without which the scenario is skipped (reported, not fatal)
 *   proxies   { supported, defaults }: `--proxies` picks among `supported`;
 *             without it, `defaults` run
 *   table     'http1' (a–c, the original table layout) or 'more' (d–h)
 */
const { BIG_BYTES } = require('./servers');

const HTTP_PEERS = ['nginx', 'haproxy', 'baseline', 'zproxy1', 'zproxyN'];
const ALL_HTTP = ['direct', 'nginx', 'haproxy', 'baseline', 'zproxy1', 'zproxy1js', 'zproxyN'];
const NO_BASELINE = ['nginx', 'haproxy', 'zproxy1', 'zproxy1js', 'zproxyN'];

const http1 = (extra) => ({
  backend: 'nginx',
  frontend: 'http',
  table: 'http1',
  needs: ['wrk', 'nginx'],
  proxies: { supported: ALL_HTTP, defaults: HTTP_PEERS },
  ...extra,
});

const SCENARIOS = {
  a: http1({
    proxies: { supported: [...ALL_HTTP, 'floor'], defaults: HTTP_PEERS },
    title: '13-byte GET, keep-alive, wrk -c64',
    path: '/small',
    probe: { status: 200, bytes: 13 },
    load: { tool: 'wrk', args: ['-t1', '-c64'] },
    cpuUnit: 'req',
    rateUnit: 'req/s',
  }),
  b: http1({
    title: '1 MiB GET, keep-alive, wrk -c16',
    path: '/1m',
    probe: { status: 200, bytes: BIG_BYTES },
    load: { tool: 'wrk', args: ['-t1', '-c16'] },
    cpuUnit: 'MiB',
    rateUnit: 'req/s',
  }),
  c: http1({
    title: 'new connection per request, wrk -c32',
    path: '/small',
    probe: { status: 200, bytes: 13 },
    load: { tool: 'wrk', args: ['-t1', '-c32', '-H', 'Connection: close'] },
    cpuUnit: 'req',
    rateUnit: 'req/s',
  }),
  d: moreSmallGet({
    title: 'h2c 13-byte GET, h2load -c16 -m10',
    frontend: 'h2c',
    needs: ['h2load', 'nginx'],
    load: { tool: 'h2load', args: ['-c16', '-m10'] },
    cpuUnit: 'req',
    rateUnit: 'req/s',
  }),
  e: moreSmallGet({
    title: 'TLS 1.2 full handshake per request, wrk -c32',
    frontend: 'tls',
    needs: ['wrk', 'nginx', 'openssl'],
    load: { tool: 'wrk', args: ['-t1', '-c32', '-H', 'Connection: close'], fullHandshakes: true },
    cpuUnit: 'handshake',
    rateUnit: 'handshakes/s',
  }),
  f: moreSmallGet({
    title: 'TLS 1.3 13-byte GET, keep-alive, wrk -c64',
    frontend: 'tls',
    needs: ['wrk', 'nginx', 'openssl'],
    load: { tool: 'wrk', args: ['-t1', '-c64'] },
    cpuUnit: 'req',
    rateUnit: 'req/s',
  }),
  g: webSocketScenario({
    title: 'WebSocket 1 KiB echo, 32 conns × 1 in flight',
    load: { tool: 'websocket', mode: 'echo', connections: 32, size: 1024 },
    cpuUnit: 'msg',
    rateUnit: 'msg/s',
  }),
  h: webSocketScenario({
    title: 'WebSocket bulk echo, 4 conns × 64 KiB frames',
    load: { tool: 'websocket', mode: 'bulk', connections: 4, size: 65536 },
    cpuUnit: 'MiB',
    rateUnit: 'MiB/s',
  }),
};

/** The HTTP/2 and TLS scenarios: the 13-byte GET from the nginx backend, without the node:http baseline. */
function moreSmallGet({ title, frontend, needs, load, cpuUnit, rateUnit }) {
  return {
    title,
    backend: 'nginx',
    frontend,
    table: 'more',
    needs,
    path: '/small',
    probe: { status: 200, bytes: 13 },
    load,
    cpuUnit,
    rateUnit,
    proxies: { supported: NO_BASELINE, defaults: ['nginx', 'haproxy', 'zproxy1', 'zproxyN'] },
  };
}

/** The WebSocket scenarios: the echo backend behind each proxy, splice and JS tunnel side by side. */
function webSocketScenario({ title, load, cpuUnit, rateUnit }) {
  return {
    title,
    backend: 'ws-echo',
    frontend: 'http',
    websocket: true,
    table: 'more',
    needs: [],
    path: '/ws',
    probe: { status: 101, bytes: 1024 + 8 },
    load,
    cpuUnit,
    rateUnit,
    proxies: { supported: ['direct', ...NO_BASELINE], defaults: ['nginx', 'haproxy', 'zproxy1', 'zproxy1js'] },
    labels: { zproxy1: 'zproxy 1 thread (splice tunnel)', zproxy1js: 'zproxy 1 thread (JS tunnel, ZPROXY_NO_NATIVE=1)' },
  };
}

module.exports = { SCENARIOS };
