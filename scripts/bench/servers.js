'use strict';
/**
 * The backends and the proxies under test. Each proxy writes its config into
 * the run's temp dir, starts one fresh process on a free 127.0.0.1 port and
 * returns { child, port }. Only loopback addresses are ever used.
 *
 * What a proxy's listener speaks and what it forwards is the scenario's
 * `frontend` ({ kind: 'http' | 'h2c' | 'tls', websocket, tls }): plain
 * HTTP/1.1, cleartext HTTP/2 with prior knowledge, or TLS with the bench's
 * certificate (tls: { certFile, keyFile, pemFile }); `websocket` adds what a
 * proxy needs to pass upgrades on. The upstream is always HTTP/1.1.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const proc = require('./proc');

const REPO = path.resolve(__dirname, '..', '..');
const SMALL_BODY = 'Hello, world!'; // 13 bytes
const BIG_BYTES = 1 << 20; // 1 MiB

function nginxTempPaths(dir) {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((k) => `  ${k}_temp_path ${path.join(dir, 'tmp', k)};`)
    .join('\n');
}

function nginxMain(dir, httpBody) {
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  return `# written by scripts/bench.js
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'error.log')} warn;
events { worker_connections 16384; }
http {
  access_log off;
${nginxTempPaths(dir)}
  default_type application/octet-stream;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
${httpBody}
}
`;
}

/** Starts nginx with `-p dir -c nginx.conf` (one process: master_process off). */
function startNginx(name, dir, conf) {
  const confFile = path.join(dir, 'nginx.conf');
  fs.writeFileSync(confFile, conf);
  return proc.start(name, proc.which('nginx') || 'nginx', ['-p', dir, '-c', confFile, '-e', path.join(dir, 'error.log')], {
    logFile: path.join(dir, 'stdio.log'),
  });
}

/** The backend: nginx, one worker, 13 bytes on /small and a 1 MiB static file on /1m. */
async function startBackend(dir) {
  fs.mkdirSync(path.join(dir, 'www'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'www', '1m'), Buffer.alloc(BIG_BYTES, 'x'));
  const port = await proc.freePort();
  const conf = nginxMain(
    dir,
    `  sendfile on;
  tcp_nopush on;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location = /small { default_type text/plain; return 200 "${SMALL_BODY}"; }
    location = /1m { root ${path.join(dir, 'www')}; }
  }`,
  );
  const child = startNginx('backend nginx', dir, conf);
  return { child, port };
}

const PLAIN = { kind: 'http', websocket: false, tls: null };

/** nginx `listen` (and TLS) lines for a frontend. */
function nginxListen(port, fe) {
  const addr = `127.0.0.1:${port}`;
  if (fe.kind === 'h2c') return `listen ${addr} http2 backlog=4096;`;
  if (fe.kind === 'tls') {
    // nginx 1.22 leaves TLS 1.3 out by default; the session cache stays at its default (none).
    return `listen ${addr} ssl backlog=4096;
    ssl_certificate ${fe.tls.certFile};
    ssl_certificate_key ${fe.tls.keyFile};
    ssl_protocols TLSv1.2 TLSv1.3;`;
  }
  return `listen ${addr} backlog=4096;`;
}

/** nginx as a reverse proxy: one worker, HTTP/1.1 upstream with keepalive. */
async function startNginxProxy(dir, backendPort, fe = PLAIN) {
  const port = await proc.freePort();
  // WebSocket: Upgrade passed on and Connection "upgrade" for upgrades only, as nginx's docs show.
  const upgradeMap = fe.websocket ? `  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }\n` : '';
  const connection = fe.websocket
    ? `proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;`
    : `proxy_set_header Connection "";`;
  const conf = nginxMain(
    dir,
    `${upgradeMap}  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    ${nginxListen(port, fe)}
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      ${connection}
    }
  }`,
  );
  return { child: startNginx('nginx proxy', dir, conf), port };
}

/** HAProxy: one process, one thread, server connections reused (http-reuse always). */
async function startHaproxy(dir, backendPort, fe = PLAIN) {
  const port = await proc.freePort();
  const bind = {
    http: `bind 127.0.0.1:${port}`,
    h2c: `bind 127.0.0.1:${port} proto h2`,
    tls: `bind 127.0.0.1:${port} ssl crt ${fe.tls ? fe.tls.pemFile : ''}`,
  }[fe.kind];
  const cfg = `# written by scripts/bench.js
global
  nbthread 1
  maxconn 4000
${fe.kind === 'tls' ? '  # no session-ID cache: scenario e counts full handshakes, as with nginx and zproxy\n  tune.ssl.cachesize 0\n' : ''}defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
${fe.websocket ? '  timeout tunnel 1h\n' : ''}  option http-keep-alive
frontend fe
  ${bind}
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:${backendPort}
`;
  const cfgFile = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(cfgFile, cfg);
  const child = proc.start('haproxy', proc.which('haproxy') || 'haproxy', ['-db', '-f', cfgFile], {
    logFile: path.join(dir, 'stdio.log'),
  });
  return { child, port };
}

/** A proxy script of ours under scripts/bench/ (`--port P --upstream URL`), run with this node. */
async function startNodeScript(name, script, dir, backendPort) {
  const port = await proc.freePort();
  const child = proc.start(
    name,
    process.execPath,
    [path.join(__dirname, script), '--port', String(port), '--upstream', `http://127.0.0.1:${backendPort}`],
    { cwd: REPO, logFile: path.join(dir, 'stdio.log') },
  );
  return { child, port };
}

/** The Node baseline: node:http + undici Pool (scripts/bench/node-baseline-proxy.js). */
const startBaseline = (dir, backendPort) => startNodeScript('node baseline', 'node-baseline-proxy.js', dir, backendPort);

/** The floor: the least a Node event loop spends per request of scenario a (scripts/bench/node-floor-proxy.js). */
const startFloor = (dir, backendPort) => startNodeScript('node floor', 'node-floor-proxy.js', dir, backendPort);

/**
 * zproxy from dist/ (`node bin/zproxy.js start --config FILE`). mode 'proxy'
 * forwards everything to the backend; mode 'respond' answers both paths itself
 * (a stand-in while upstream proxying is not there). `native: false` runs it
 * with ZPROXY_NO_NATIVE=1: the pure TypeScript runtime (JS accept loop, JS
 * WebSocket tunnel instead of splice).
 */
async function startZproxy(dir, backendPort, { threads, mode, native = true }, fe = PLAIN) {
  const port = await proc.freePort();
  const routes =
    mode === 'respond'
      ? [
          { path: '/small', respond: { status: 200, headers: { 'content-type': 'text/plain' }, body: SMALL_BODY } },
          {
            path: '/1m',
            respond: { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: 'x'.repeat(BIG_BYTES) },
          },
        ]
      : [{ path: '/', upstream: `http://127.0.0.1:${backendPort}` }];
  const config = {
    host: '127.0.0.1',
    port,
    admin: null,
    thread_count: threads,
    log_level: 'warn',
    drain_timeout_ms: 1000,
    max_connections: 20000,
    routes,
  };
  if (fe.kind === 'tls') config.tls = { enabled: true, cert_file: fe.tls.certFile, key_file: fe.tls.keyFile };
  const cfgFile = path.join(dir, 'zproxy.json');
  fs.writeFileSync(cfgFile, JSON.stringify(config, null, 2));
  const env = native ? process.env : { ...process.env, ZPROXY_NO_NATIVE: '1' };
  const child = proc.start(
    `zproxy (${threads} threads${native ? '' : ', ZPROXY_NO_NATIVE=1'})`,
    process.execPath,
    [path.join(REPO, 'bin', 'zproxy.js'), 'start', '--config', cfgFile],
    { cwd: REPO, env, logFile: path.join(dir, 'stdio.log') },
  );
  return { child, port };
}

/** The WebSocket backend: scripts/bench/ws-echo-backend.js (handshake, then raw echo). */
async function startWsEchoBackend(dir) {
  const port = await proc.freePort();
  const child = proc.start('ws echo backend', process.execPath, [path.join(__dirname, 'ws-echo-backend.js'), '--port', String(port)], {
    cwd: REPO,
    logFile: path.join(dir, 'stdio.log'),
  });
  return { child, port };
}

function allCpus() {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * The proxies, in report order. `unavailable()` gives the reason a proxy
 * cannot run here, or null. `start(dir, backendPort, frontend)` resolves
 * { child, port }; the 'direct' pseudo-proxy measures the backend itself (no
 * extra process).
 */
function proxyCatalogue({ zproxyMode }) {
  const n = allCpus();
  const zLabel = (t) => `zproxy ${t} thread${t === 1 ? '' : 's'}${zproxyMode === 'respond' ? ' (respond)' : ''}`;
  const zUnavailable = () =>
    fs.existsSync(path.join(REPO, 'dist', 'cli.js')) ? null : 'dist/cli.js missing: run `npm run build:ts` first';
  return {
    direct: { label: 'no proxy (backend)', unavailable: () => null, start: null },
    nginx: { label: 'nginx', unavailable: () => (proc.which('nginx') ? null : 'nginx not installed'), start: startNginxProxy },
    haproxy: {
      label: 'HAProxy',
      unavailable: () => (proc.which('haproxy') ? null : 'haproxy not installed (apt-get install haproxy)'),
      start: startHaproxy,
    },
    baseline: {
      label: 'node:http + undici',
      unavailable: () => {
        try {
          require.resolve('undici', { paths: [REPO] });
          return null;
        } catch {
          return 'undici not installed (npm install)';
        }
      },
      start: startBaseline,
    },
    floor: { label: 'Node floor (no proxy logic)', unavailable: zUnavailable, start: startFloor }, // writes with dist/'s writeThrough
    zproxy1: {
      label: zLabel(1),
      unavailable: zUnavailable,
      start: (dir, bp, fe) => startZproxy(dir, bp, { threads: 1, mode: zproxyMode }, fe),
    },
    zproxy1js: {
      label: `${zLabel(1)}, ZPROXY_NO_NATIVE=1`,
      unavailable: zUnavailable,
      start: (dir, bp, fe) => startZproxy(dir, bp, { threads: 1, mode: zproxyMode, native: false }, fe),
    },
    zproxyN: {
      label: zLabel(n),
      unavailable: zUnavailable,
      start: (dir, bp, fe) => startZproxy(dir, bp, { threads: n, mode: zproxyMode }, fe),
    },
  };
}

/** Backends by the scenario's `backend` key; each resolves { child, port }. */
const BACKENDS = { nginx: startBackend, 'ws-echo': startWsEchoBackend };

module.exports = { REPO, SMALL_BODY, BIG_BYTES, BACKENDS, startBackend, proxyCatalogue, allCpus };
