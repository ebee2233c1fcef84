/**
 * h2:// upstreams: HTTP/2 over TLS (ALPN h2) behind zproxy, reached by
 * node:http2 clients with prior knowledge. Verified against `ca_file`,
 * refused (502) without it, accepted with `tls_verify: false`; SNI, ALPN and
 * `:scheme` as sent; bodies of several MiB both ways and trailers; many
 * concurrent streams over one upstream TLS connection; connect failures (an
 * upstream that does not select h2, a refused connection, a handshake past
 * the connect timeout: 502, retried on another target); HTTP/1 clients (505)
 * and extended CONNECT (501) on such routes; active health checks over HTTP/2
 * with TLS; gRPC unary and bidirectional to a TLS gRPC server.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import tls, { type TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { HealthCheckConfig } from '../src/config/types';
import type { Server } from '../dist/index';
import { HealthChecker } from '../dist/upstream/health-check';
import { Target } from '../dist/upstream/target';
import { startProxy } from './helpers/server';
import { errorBody, refusedPort, request } from './helpers/upstreams';
import { checkBidi, checkErrorStatus, checkUnary, sha, startGrpcThroughProxy, type GrpcThroughProxy } from './helpers/grpc-echo';

const FIXTURES = path.join(__dirname, 'fixtures', 'tls');
const file = (name: string): string => path.join(FIXTURES, name);
const CERT = readFileSync(file('localhost.pem'));
const KEY = readFileSync(file('localhost.key'));
const CA_FILE = file('ca.pem');
/** Requests the upstream holds until this many are open at once. */
const HELD_STREAMS = 50;
const CONNECT_TIMEOUT_MS = 500;

interface Seen {
  path: string;
  scheme: string;
  servername: string | false;
  alpn: string | false | null;
  session: http2.Http2Session;
  /** The upstream may push on this stream (the client's SETTINGS_ENABLE_PUSH). */
  pushAllowed: boolean;
}

interface H2Response {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders;
}

/** One request on `session`; the body, if any, is sent whole. */
function h2Request(session: http2.ClientHttp2Session, requestPath: string, body?: Buffer): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': body ? 'POST' : 'GET', ':path': requestPath, ':authority': 'app.example' }, { endStream: !body });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (headers = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks), trailers }));
    stream.on('error', reject);
    if (body) stream.end(body);
  });
}

/** Sends the request body back as it arrives, then its sha256 as a trailer. */
function echoWithDigest(stream: http2.ServerHttp2Stream): void {
  const hash = createHash('sha256');
  let digest = '';
  stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'x-body-sha256': digest }));
  stream.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    if (!stream.write(chunk)) {
      stream.pause();
      stream.once('drain', () => stream.resume());
    }
  });
  stream.on('end', () => {
    digest = hash.digest('hex');
    stream.end();
  });
}

function listen(server: { listen(port: number, host: string, cb: () => void): unknown; address(): unknown }): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function close(server: { close(cb: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

test('an h2:// target is HTTP/2 over TLS, port 443 by default', () => {
  const target = new Target('h2://Grpc.Example');
  expect([target.scheme, target.port, target.authority, target.key, target.secure, target.http2]).toEqual(['h2', 443, 'grpc.example', 'h2://grpc.example:443', true, true]);
  expect([new Target('h2c://a').secure, new Target('h2c://a').http2, new Target('https://a').http2]).toEqual([false, true, false]);
});

describe('h2:// upstreams', () => {
  const seen: Seen[] = [];
  const held: http2.ServerHttp2Stream[] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  let upstream: http2.Http2SecureServer;
  let http1Only: https.Server;
  /** Accepts connections and never answers the TLS handshake. */
  let silent: net.Server;
  const silentSockets = new Set<net.Socket>();
  let proxy: Server;
  let client: http2.ClientHttp2Session;

  beforeAll(async () => {
    upstream = http2.createSecureServer({ cert: CERT, key: KEY });
    upstream.on('session', (session) => sessions.add(session));
    upstream.on('stream', (stream, headers) => {
      const socket = stream.session!.socket as TLSSocket;
      const streamPath = headers[':path']!;
      seen.push({ path: streamPath, scheme: headers[':scheme']!, servername: (socket as unknown as { servername: string | false }).servername, alpn: socket.alpnProtocol, session: stream.session!, pushAllowed: stream.pushAllowed });
      if (streamPath.endsWith('/echo')) return echoWithDigest(stream);
      if (streamPath.includes('/held/')) {
        held.push(stream);
        if (held.length === HELD_STREAMS) for (const h of held.splice(0)) h.respond({ ':status': 200 }, { endStream: true });
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(`h2 upstream ${streamPath}`);
    });
    const upstreamPort = await listen(upstream);
    http1Only = https.createServer({ cert: CERT, key: KEY, ALPNProtocols: ['http/1.1'] }, (_req, res) => res.end('http/1.1 only'));
    const http1OnlyPort = await listen(http1Only);
    silent = net.createServer((socket) => {
      silentSockets.add(socket);
      socket.on('error', () => undefined);
    });
    const silentPort = await listen(silent);

    const verified = (url: string) => ({ targets: [{ url }], ca_file: CA_FILE });
    proxy = await startProxy(
      {
        routes: [
          { path: '/verified', upstream: verified(`h2://localhost:${upstreamPort}`) },
          { path: '/by-ip', upstream: verified(`h2://127.0.0.1:${upstreamPort}`) },
          { path: '/unverified', retries: 0, upstream: `h2://localhost:${upstreamPort}` },
          { path: '/noverify', upstream: { targets: [{ url: `h2://localhost:${upstreamPort}` }], tls_verify: false } },
          { path: '/http1-only', retries: 0, upstream: verified(`h2://localhost:${http1OnlyPort}`) },
          { path: '/silent', retries: 0, upstream: verified(`h2://localhost:${silentPort}`) },
          // For requests that fail by design: no passive ejection of the target the other routes use.
          { path: '/refusing', upstream: { ...verified(`h2://localhost:${upstreamPort}`), max_fails: 0 } },
          {
            path: '/fallback',
            retries: 1,
            upstream: { targets: [{ url: `h2://localhost:${http1OnlyPort}` }, { url: `h2://localhost:${upstreamPort}` }], ca_file: CA_FILE, max_fails: 0 },
          },
          {
            path: '/refused',
            retries: 1,
            upstream: { targets: [{ url: `h2://localhost:${await refusedPort()}` }, { url: `h2://localhost:${upstreamPort}` }], ca_file: CA_FILE, max_fails: 0 },
          },
        ],
        upstream_connect_timeout_ms: CONNECT_TIMEOUT_MS,
      },
      false,
    );
    client = http2.connect(`http://127.0.0.1:${proxy.address().port}`);
  });

  afterAll(async () => {
    client?.close();
    await proxy?.stop();
    for (const session of sessions) session.destroy();
    http1Only?.closeAllConnections();
    for (const socket of silentSockets) socket.destroy();
    await Promise.all([upstream && close(upstream), http1Only && close(http1Only), silent && close(silent)]);
  });

  test('verified with ca_file: :scheme https, SNI by name (none for an IP), ALPN h2', async () => {
    seen.length = 0;
    const byName = await h2Request(client, '/verified/hello');
    expect([byName.status, byName.body.toString()]).toEqual([200, 'h2 upstream /verified/hello']);
    // zproxy refuses server push from upstreams (SETTINGS_ENABLE_PUSH 0): it has nobody to give pushed streams to.
    expect(seen[0]).toMatchObject({ scheme: 'https', servername: 'localhost', alpn: 'h2', pushAllowed: false });
    const byIp = await h2Request(client, '/by-ip/hello');
    expect([byIp.status, byIp.body.toString()]).toEqual([200, 'h2 upstream /by-ip/hello']);
    expect(seen[1].servername).toBeFalsy();
  });

  test('a body of several MiB arrives intact both ways, and trailers pass through', async () => {
    const upload = randomBytes(6 * 1024 * 1024 + 7);
    const res = await h2Request(client, '/verified/echo', upload);
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(upload.length);
    expect(sha(res.body)).toBe(sha(upload));
    expect(res.trailers['x-body-sha256']).toBe(sha(upload));
  }, 30_000);

  test(`${HELD_STREAMS} concurrent streams share one upstream TLS connection`, async () => {
    seen.length = 0;
    const responses = await Promise.all(Array.from({ length: HELD_STREAMS }, (_, i) => h2Request(client, `/verified/held/${i}`)));
    expect(responses.map((r) => r.status)).toEqual(Array(HELD_STREAMS).fill(200));
    const served = seen.filter((s) => s.path.includes('/held/'));
    expect(served).toHaveLength(HELD_STREAMS);
    expect(new Set(served.map((s) => s.session)).size).toBe(1);
  });

  test('without the CA the certificate is refused: 502 with the JSON error body', async () => {
    const res = await h2Request(client, '/unverified/x');
    expect(res.status).toBe(502);
    expect(res.headers['content-type']).toBe('application/json');
    expect(JSON.parse(res.body.toString())).toMatchObject({ status: 502, error: expect.stringMatching(/^upstream connection failed/) });
  });

  test('tls_verify false accepts the certificate, on a session of its own', async () => {
    seen.length = 0;
    await h2Request(client, '/verified/first');
    const res = await h2Request(client, '/noverify/y');
    expect([res.status, res.body.toString()]).toEqual([200, 'h2 upstream /noverify/y']);
    expect(seen[1].session).not.toBe(seen[0].session);
  });

  test('an upstream that only offers http/1.1 by ALPN is a connect failure (502), retried on another target', async () => {
    const refused = await h2Request(client, '/http1-only/x');
    expect(refused.status).toBe(502);
    expect(JSON.parse(refused.body.toString()).error).toMatch(/^upstream connection failed/);
    const answers = await Promise.all([1, 2, 3, 4].map((i) => h2Request(client, `/fallback/${i}`)));
    expect(answers.map((r) => r.body.toString())).toEqual([1, 2, 3, 4].map((i) => `h2 upstream /fallback/${i}`));
  });

  test('a refused connection is a connect failure, retried on another target', async () => {
    const answers = await Promise.all([1, 2, 3, 4].map((i) => h2Request(client, `/refused/${i}`)));
    expect(answers.map((r) => r.body.toString())).toEqual([1, 2, 3, 4].map((i) => `h2 upstream /refused/${i}`));
  });

  test('the connect timeout covers the TLS handshake', async () => {
    const started = Date.now();
    const res = await h2Request(client, '/silent/x');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body.toString()).error).toBe('upstream connection failed: ETIMEDOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 50);
  });

  test('an HTTP/1 client is answered 505 by zproxy itself, as on h2c:// routes: the upstream sees nothing', async () => {
    const res = await request(proxy.address().port, 'GET /refusing/h1 HTTP/1.1\r\nHost: app.example\r\n\r\n');
    expect(res.status).toBe(505);
    expect(errorBody(res).error).toBe("HTTP version not supported: this route's upstream speaks HTTP/2 only");
    expect(seen.some((s) => s.path === '/refusing/h1')).toBe(false);
  });

  test('WebSocket over HTTP/2 (extended CONNECT) is not tunnelled to an HTTP/2 upstream: 501, the upstream sees nothing', async () => {
    if (!client.remoteSettings.enableConnectProtocol) await new Promise((resolve) => client.once('remoteSettings', resolve));
    const stream = client.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/refusing/ws', ':scheme': 'http', 'sec-websocket-version': '13' });
    const status = await new Promise((resolve, reject) => {
      stream.once('response', (headers) => resolve(headers[':status']));
      stream.once('error', reject);
    });
    stream.close();
    expect(status).toBe(501);
    expect(seen.some((s) => s.path === '/refusing/ws')).toBe(false);
  });
});

test('an upstream that completes the handshake without selecting h2 is refused with a clear error', async () => {
  const noAlpn = tls.createServer({ cert: CERT, key: KEY }, (socket) => {
    socket.on('error', () => undefined);
    socket.resume(); // reads the peer's end, so the socket closes
    socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
  });
  const port = await listen(noAlpn);
  const proxy = await startProxy({ routes: [{ path: '/', retries: 0, upstream: { targets: [{ url: `h2://localhost:${port}` }], ca_file: CA_FILE } }] }, false);
  const client = http2.connect(`http://127.0.0.1:${proxy.address().port}`);
  try {
    const res = await h2Request(client, '/x');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body.toString()).error).toBe('upstream connection failed: ALPN: the upstream selected no protocol, not "h2"');
  } finally {
    client.close();
    await proxy.stop();
    await close(noAlpn);
  }
});

describe('active health checks of h2:// targets', () => {
  const config: HealthCheckConfig = { interval_ms: 200, path: '/healthz', timeout_ms: 150, expected_status: 200, healthy_threshold: 1, unhealthy_threshold: 1 };
  const checks: Array<{ headers: http2.IncomingHttpHeaders; servername: string | false; alpn: string | false | null }> = [];
  let status = 200;
  let server: http2.Http2SecureServer;
  let target: InstanceType<typeof Target>;
  let checker: HealthChecker | null = null;

  /** Polls `condition` every 20 ms until it holds or 5 s pass. */
  async function waitFor(condition: () => boolean): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  beforeAll(async () => {
    server = http2.createSecureServer({ cert: CERT, key: KEY });
    server.on('stream', (stream, headers) => {
      const socket = stream.session!.socket as TLSSocket;
      checks.push({ headers, servername: (socket as unknown as { servername: string | false }).servername, alpn: socket.alpnProtocol });
      stream.respond({ ':status': status });
      stream.end();
    });
    target = new Target(`h2://localhost:${await listen(server)}`);
  });

  afterEach(() => checker?.stop());
  afterAll(() => close(server));

  test('are HTTP/2 over TLS, verified against ca_file, and follow the status', async () => {
    checker = new HealthChecker([target], config, () => {}, { verify: true, ca: readFileSync(CA_FILE) });
    checker.start();
    await waitFor(() => checks.length >= 1);
    expect(checks[0]).toMatchObject({ servername: 'localhost', alpn: 'h2' });
    expect([checks[0].headers[':method'], checks[0].headers[':scheme'], checks[0].headers[':path']]).toEqual(['GET', 'https', '/healthz']);
    status = 503;
    await waitFor(() => !target.healthy);
    status = 200;
    await waitFor(() => target.healthy);
  });

  test('fail when the certificate cannot be verified', async () => {
    checker = new HealthChecker([target], config, () => {}, { verify: true });
    checker.start();
    await waitFor(() => !target.healthy);
    checker.stop();
    checker = new HealthChecker([target], config, () => {}, { verify: false });
    checker.start();
    await waitFor(() => target.healthy);
  });
});

describe('gRPC through an h2:// upstream', () => {
  let setup: GrpcThroughProxy;
  let client: any;

  beforeAll(async () => {
    const credentials = grpc.ServerCredentials.createSsl(null, [{ cert_chain: CERT, private_key: KEY }]);
    setup = await startGrpcThroughProxy(credentials, (port) => ({ targets: [{ url: `h2://localhost:${port}` }], ca_file: CA_FILE }), false);
    client = setup.client;
  });
  afterAll(() => setup?.stop());

  test('unary with metadata, and a 5 MB message intact both ways', () => checkUnary(client));

  test('bidirectional streaming, with large messages', () => checkBidi(client));

  test('an error status and its metadata reach the client (trailers-only response)', () => checkErrorStatus(client));
});

test('a reload applies a new upstream_connect_timeout_ms to HTTP/2 sessions opened after it', async () => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => sockets.add(socket)); // accepts, never answers the ClientHello
  const silentPort = await listen(silent);
  const config = { routes: [{ path: '/', retries: 0, upstream: { targets: [{ url: `h2://localhost:${silentPort}` }], ca_file: CA_FILE } }] };
  const proxy = await startProxy({ ...config, upstream_connect_timeout_ms: 20_000 }, false);
  const client = http2.connect(`http://127.0.0.1:${proxy.address().port}`);
  try {
    await proxy.reload({ host: '127.0.0.1', port: proxy.address().port, admin: null, thread_count: 2, log_level: 'warn', ...config, upstream_connect_timeout_ms: 300 });
    const started = Date.now();
    const res = await h2Request(client, '/x');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body.toString()).error).toBe('upstream connection failed: ETIMEDOUT');
    expect(Date.now() - started).toBeLessThan(5000);
  } finally {
    client.close();
    await proxy.stop();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});
