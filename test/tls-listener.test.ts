/**
 * TLS on the listener, on both runtimes (the native acceptor hands over an
 * unread socket; the fallback puts the bytes it read back in front): SNI
 * with exact, wildcard and default certificates (node and curl clients),
 * TLS 1.2 minimum, ALPN by `protocols`, X-Forwarded-Proto https, bodies of
 * several MiB both ways, keep-alive, and broken or stalled handshakes.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import WebSocket, { WebSocketServer } from 'ws';
import type { Server } from '../dist/index';
import { LISTENERS, RUNTIMES, startProxy, waitForClose } from './helpers/server';
import { type RecordingUpstream, closeAll, header, startRecordingUpstream } from './helpers/upstreams';

const FIXTURES = path.join(__dirname, 'fixtures', 'tls');
const file = (name: string): string => path.join(FIXTURES, name);
const CA = readFileSync(file('ca.pem'));
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const TLS_CONFIG = {
  enabled: true,
  cert_file: file('default.pem'),
  key_file: file('default.key'),
  certificates: [
    { server_names: ['a.test', 'localhost'], cert_file: file('a.test.pem'), key_file: file('a.test.key') },
    { server_names: ['*.wild.test'], cert_file: file('wild.test.pem'), key_file: file('wild.test.key') },
  ],
};

interface Handshake {
  subject: string;
  alpn: string | false | null;
  version: string | null;
}

/** One handshake: the served certificate's CN and the negotiated ALPN protocol. */
function handshake(port: number, options: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: CA, rejectUnauthorized: false, ...options }, () => {
      const result = { subject: String(socket.getPeerCertificate().subject?.CN), alpn: socket.alpnProtocol, version: socket.getProtocol() };
      socket.destroy();
      resolve(result);
    });
    socket.once('error', reject);
  });
}

/** One HTTPS request with node's client (SNI `servername`, verified against the test CA). */
function request(
  port: number,
  options: { path?: string; method?: string; body?: Buffer; servername?: string; agent?: https.Agent } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: options.path ?? '/',
        method: options.method ?? 'GET',
        servername: options.servername ?? 'a.test',
        headers: { host: options.servername ?? 'a.test' },
        ca: CA,
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', args, { encoding: 'utf8', timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as NodeJS.ErrnoException).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe.each(LISTENERS)('TLS listener (%s)', (_name, noNative, threads) => {
  let up: RecordingUpstream;
  let proxy: Server;
  let port: number;
  const download = randomBytes(5 * 1024 * 1024 + 7);
  const alternating = Array.from({ length: 60 }, (_, i) => download.subarray(i * 65000, i * 65000 + (i % 2 === 0 ? 60_000 : 4_000)));

  beforeAll(async () => {
    up = await startRecordingUpstream(async (req, res) => {
      if (req.method === 'POST') return res.send(200, [['x-sha256', sha256(req.body)]], 'ok');
      if (req.target === '/download') return res.chunked(200, [], [download.subarray(0, 2_000_000), download.subarray(2_000_000)]);
      // A large chunk and a small one in the same upstream read: one relayed, one copied behind it.
      if (req.target === '/download/alternating') return res.chunked(200, [], alternating);
      return res.send(200, [['content-type', 'text/plain']], `proto=${header(req, 'x-forwarded-proto')}`);
    });
    proxy = await startProxy(
      {
        thread_count: threads,
        tls: TLS_CONFIG,
        connection_timeout_ms: 800,
        routes: [
          { path: '/', respond: { status: 200, headers: { 'content-type': 'text/plain' }, body: 'hello over tls' } },
          { path: '/proxy', upstream: up.url },
          { path: '/download', upstream: up.url },
        ],
      },
      noNative,
    );
    port = proxy.address().port;
  });

  afterAll(async () => {
    await closeAll();
    await proxy?.stop();
  });

  test('SNI picks the certificate: exact name, one-label wildcard, default for the rest', async () => {
    expect((await handshake(port, { servername: 'a.test' })).subject).toBe('a.test');
    expect((await handshake(port, { servername: 'A.Test' })).subject).toBe('a.test');
    expect((await handshake(port, { servername: 'localhost' })).subject).toBe('a.test');
    expect((await handshake(port, { servername: 'x.wild.test' })).subject).toBe('*.wild.test');
    // A wildcard covers exactly one label, as browsers match it.
    expect((await handshake(port, { servername: 'a.b.wild.test' })).subject).toBe('default.test');
    expect((await handshake(port, { servername: 'wild.test' })).subject).toBe('default.test');
    expect((await handshake(port, { servername: 'other.test' })).subject).toBe('default.test');
    // No SNI at all (an IP address as the host).
    expect((await handshake(port, {})).subject).toBe('default.test');
  });

  test('curl gets the right certificate per name and verifies it against the CA', async () => {
    for (const [name, subject] of [
      ['a.test', 'CN=a.test'],
      ['x.wild.test', 'CN=\\*.wild.test|CN=\\*\\.wild\\.test'],
      ['default.test', 'CN=default.test'],
    ]) {
      const result = await curl(['-sS', '-v', '--http1.1', '--cacert', file('ca.pem'), '--resolve', `${name}:${port}:127.0.0.1`, `https://${name}:${port}/`]);
      expect(result.stdout).toBe('hello over tls');
      expect(result.code).toBe(0);
      expect(result.stderr).toMatch(new RegExp(`subject: .*(${subject})`));
      expect(result.stderr).toMatch(/ALPN.*http\/1\.1/);
    }
  });

  test('TLS 1.2 is the minimum: a TLS 1.1 client is refused by the server, TLS 1.2 and 1.3 work', async () => {
    // SECLEVEL=0 lets the client itself offer TLS 1.1, so the refusal is the server's protocol_version alert.
    const old = handshake(port, { servername: 'a.test', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    await expect(old).rejects.toMatchObject({ code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
    expect((await handshake(port, { servername: 'a.test', maxVersion: 'TLSv1.2', ciphers: 'DEFAULT@SECLEVEL=0' })).version).toBe('TLSv1.2');
    expect((await handshake(port, { servername: 'a.test' })).version).toBe('TLSv1.3');
  });

  test('ALPN offers h2 and http/1.1 when protocols allow both; an h2 request works over TLS', async () => {
    expect((await handshake(port, { servername: 'a.test', ALPNProtocols: ['h2', 'http/1.1'] })).alpn).toBe('h2');
    expect((await handshake(port, { servername: 'a.test', ALPNProtocols: ['http/1.1', 'h2'] })).alpn).toBe('h2');
    expect((await handshake(port, { servername: 'a.test', ALPNProtocols: ['http/1.1'] })).alpn).toBe('http/1.1');
    const session = http2.connect(`https://a.test:${port}`, { ca: CA, servername: 'a.test', host: '127.0.0.1', port } as http2.SecureClientSessionOptions);
    const h2get = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':path': path, ':authority': 'a.test' });
        let status = 0;
        let body = '';
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.setEncoding('utf8');
        stream.on('data', (d: string) => (body += d));
        stream.on('end', () => resolve({ status, body }));
        stream.on('error', reject);
      });
    try {
      expect(await h2get('/')).toEqual({ status: 200, body: 'hello over tls' });
      expect(await h2get('/proxy')).toEqual({ status: 200, body: 'proto=https' });
    } finally {
      session.destroy();
    }
  });

  test('a request over TLS is proxied with X-Forwarded-Proto https; keep-alive works', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await request(port, { path: '/proxy', agent });
      const second = await request(port, { path: '/proxy', agent });
      expect(first.status).toBe(200);
      expect(first.body.toString()).toBe('proto=https');
      expect(second.body.toString()).toBe('proto=https');
      const last = up.requests[up.requests.length - 1];
      expect(header(last, 'x-forwarded-proto')).toBe('https');
    } finally {
      agent.destroy();
    }
  });

  test('a chunked body of large and small chunks read together never stalls over TLS', async () => {
    for (let i = 0; i < 10; i++) {
      const got = await request(port, { path: '/download/alternating' });
      expect(got.status).toBe(200);
      expect(sha256(got.body)).toBe(sha256(Buffer.concat(alternating)));
    }
  });

  test('bodies of several MiB arrive intact both ways over TLS', async () => {
    const upload = randomBytes(6 * 1024 * 1024 + 3);
    const [sent, got] = await Promise.all([request(port, { path: '/proxy', method: 'POST', body: upload }), request(port, { path: '/download' })]);
    expect(sent.status).toBe(200);
    expect(sent.headers['x-sha256']).toBe(sha256(upload));
    expect(got.status).toBe(200);
    expect(got.body.length).toBe(download.length);
    expect(sha256(got.body)).toBe(sha256(download));
  }, 30_000);

  test('a WebSocket over TLS (wss://) is tunnelled to the upstream', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((resolve) => wss.once('listening', resolve));
    wss.on('connection', (ws, req) => {
      ws.send(`proto=${req.headers['x-forwarded-proto']}`);
      ws.on('message', (data) => ws.send(data));
    });
    const wsProxy = await startProxy({ thread_count: threads, tls: TLS_CONFIG, routes: [{ path: '/', upstream: `http://127.0.0.1:${(wss.address() as net.AddressInfo).port}` }] }, noNative);
    try {
      const client = new WebSocket(`wss://127.0.0.1:${wsProxy.address().port}/chat`, { ca: CA, servername: 'a.test', headers: { host: 'a.test' } } as WebSocket.ClientOptions & tls.ConnectionOptions);
      const messages: string[] = [];
      const payload = randomBytes(300_000);
      const echoed = new Promise<Buffer>((resolve, reject) => {
        client.on('message', (data: Buffer, isBinary: boolean) => (isBinary ? resolve(data) : messages.push(data.toString())));
        client.on('error', reject);
      });
      await new Promise((resolve, reject) => {
        client.once('open', resolve);
        client.once('error', reject);
      });
      client.send(payload);
      expect(sha256(await echoed)).toBe(sha256(payload));
      expect(messages).toEqual(['proto=https']);
      client.close();
    } finally {
      await wsProxy.stop();
      await new Promise((resolve) => wss.close(resolve));
    }
  });

  test('a broken handshake closes that connection only', async () => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    // A TLS record header announcing a handshake, then garbage.
    socket.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x20]), Buffer.alloc(32, 0x41)]));
    await waitForClose(socket, 3000);
    expect((await request(port)).body.toString()).toBe('hello over tls');
  });

  test('a handshake that stalls is closed after connection_timeout_ms', async () => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x01, 0x00, 0x01])); // the start of a ClientHello, then nothing
    const waited = await waitForClose(socket, 5000);
    expect(waited).toBeGreaterThanOrEqual(500);
    expect((await request(port)).status).toBe(200);
  });

  test('every TLS connection, finished or failed, gave its slot back', async () => {
    const deadline = Date.now() + 5000;
    let open = -1;
    while (Date.now() < deadline) {
      const stats = (await proxy.stats()) as { workers: Array<{ connections: number }> };
      open = stats.workers.reduce((sum, w) => sum + w.connections, 0);
      if (open === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(open).toBe(0);
  });
});

describe.each(RUNTIMES)('TLS session resumption across workers (%s)', (_name, noNative) => {
  /** One TLS 1.3 connection that reads its response; resolves with whether it resumed and the first ticket it was given. */
  function connect(port: number, session?: Buffer): Promise<{ reused: boolean; ticket: Buffer | undefined }> {
    return new Promise((resolve, reject) => {
      let ticket: Buffer | undefined;
      let reused = false;
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'a.test', ca: CA, session, minVersion: 'TLSv1.3' }, () => {
        reused = socket.isSessionReused();
        socket.write('GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
      });
      // TLS 1.3 tickets come after the handshake, with the first records.
      socket.on('session', (s: Buffer) => (ticket ??= s));
      socket.on('data', () => undefined);
      socket.once('end', () => resolve({ reused, ticket }));
      socket.once('error', reject);
    });
  }

  test('a ticket from one worker resumes on every worker (the keys are shared)', async () => {
    const proxy = await startProxy({ tls: TLS_CONFIG, thread_count: 2 }, noNative);
    try {
      const port = proxy.address().port;
      const first = await connect(port);
      expect(first.reused).toBe(false);
      expect(first.ticket).toBeInstanceOf(Buffer);
      // Connections one after another: both workers take some of them.
      const resumed: boolean[] = [];
      for (let i = 0; i < 12; i++) resumed.push((await connect(port, first.ticket)).reused);
      expect(resumed).toEqual(Array(12).fill(true));
    } finally {
      await proxy.stop();
    }
  });
});

describe.each(RUNTIMES)('TLS ALPN without http2 in protocols (%s)', (_name, noNative) => {
  let proxy: Server;
  let port: number;

  beforeAll(async () => {
    proxy = await startProxy({ tls: TLS_CONFIG, protocols: ['http1'] }, noNative);
    port = proxy.address().port;
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  test('a client offering h2 and http/1.1 gets http/1.1; one offering only h2 is refused', async () => {
    expect((await handshake(port, { servername: 'a.test', ALPNProtocols: ['h2', 'http/1.1'] })).alpn).toBe('http/1.1');
    await expect(handshake(port, { servername: 'a.test', ALPNProtocols: ['h2'] })).rejects.toMatchObject({ code: 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' });
    expect((await request(port)).body.toString()).toBe('hello');
  });
});
