/**
 * https:// upstreams: verified against `ca_file`, refused (502) without it,
 * accepted with `tls_verify: false`; SNI and ALPN as sent; keep-alive reuse,
 * pools kept apart by TLS settings; bodies of several MiB both ways (the TLS
 * socket reads into the connection's reused buffer, with backpressure).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { Server } from '../dist/index';
import { startProxy } from './helpers/server';
import { RawClient } from './helpers/upstreams';

const FIXTURES = path.join(__dirname, 'fixtures', 'tls');
const file = (name: string): string => path.join(FIXTURES, name);
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('https:// upstreams', () => {
  let upstream: https.Server;
  let upstreamPort: number;
  let proxy: Server;
  let port: number;
  const seen: Array<{ path: string; servername: string | false; alpn: string | false | null; remotePort: number }> = [];
  const download = randomBytes(4 * 1024 * 1024 + 11);

  beforeAll(async () => {
    upstream = https.createServer({ cert: readFileSync(file('localhost.pem')), key: readFileSync(file('localhost.key')), ALPNProtocols: ['http/1.1'] }, (req, res) => {
      const socket = req.socket as TLSSocket;
      seen.push({ path: req.url!, servername: (socket as unknown as { servername: string | false }).servername, alpn: socket.alpnProtocol, remotePort: socket.remotePort! });
      if (req.method === 'POST') {
        const hash = createHash('sha256');
        req.on('data', (c: Buffer) => hash.update(c));
        req.on('end', () => res.end(hash.digest('hex')));
        return;
      }
      if (req.url!.endsWith('/download')) return void res.end(download);
      res.setHeader('content-type', 'text/plain');
      res.end(`secure upstream ${req.url}`);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;
    proxy = await startProxy(
      {
        routes: [
          { path: '/verified', upstream: { targets: [{ url: `https://localhost:${upstreamPort}` }], ca_file: file('ca.pem') } },
          { path: '/by-ip', upstream: { targets: [{ url: `https://127.0.0.1:${upstreamPort}` }], ca_file: file('ca.pem') } },
          { path: '/unverified', retries: 0, upstream: { targets: [{ url: `https://localhost:${upstreamPort}` }] } },
          { path: '/noverify', upstream: { targets: [{ url: `https://localhost:${upstreamPort}` }], tls_verify: false } },
        ],
      },
      false,
    );
    port = proxy.address().port;
  });

  afterAll(async () => {
    await proxy?.stop();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  async function get(client: RawClient, target: string): Promise<{ status: number; body: string }> {
    client.write(`GET ${target} HTTP/1.1\r\nHost: app.example\r\n\r\n`);
    const res = await client.response('GET', 10_000);
    return { status: res.status, body: res.body.toString() };
  }

  test('verified with ca_file (by name with SNI, and by IP without), connections reused', async () => {
    const client = await RawClient.open(port);
    try {
      seen.length = 0;
      expect(await get(client, '/verified/a')).toEqual({ status: 200, body: 'secure upstream /verified/a' });
      expect(await get(client, '/verified/b')).toEqual({ status: 200, body: 'secure upstream /verified/b' });
      expect(seen[0]).toMatchObject({ servername: 'localhost', alpn: 'http/1.1' });
      expect(seen[1].remotePort).toBe(seen[0].remotePort);
      expect(await get(client, '/by-ip')).toEqual({ status: 200, body: 'secure upstream /by-ip' });
      expect(seen[2].servername).toBeFalsy();
    } finally {
      client.destroy();
    }
  });

  test('without the CA the certificate is refused (502); tls_verify false accepts it; pools are kept apart', async () => {
    const client = await RawClient.open(port);
    try {
      // An idle verified-off connection to the same target must not serve the verifying route.
      expect((await get(client, '/noverify/x')).status).toBe(200);
      const refused = await get(client, '/unverified/x');
      expect(refused.status).toBe(502);
      expect(JSON.parse(refused.body)).toMatchObject({ status: 502 });
      expect((await get(client, '/noverify/y')).body).toBe('secure upstream /noverify/y');
    } finally {
      client.destroy();
    }
  });

  test('bodies of several MiB both ways arrive intact', async () => {
    const upload = randomBytes(5 * 1024 * 1024 + 5);
    const client = await RawClient.open(port);
    try {
      client.write(`POST /verified/up HTTP/1.1\r\nHost: app.example\r\nContent-Length: ${upload.length}\r\n\r\n`);
      client.write(upload);
      const posted = await client.response('POST', 20_000);
      expect(posted.status).toBe(200);
      expect(posted.body.toString()).toBe(sha256(upload));
      client.write('GET /verified/download HTTP/1.1\r\nHost: app.example\r\n\r\n');
      const got = await client.response('GET', 20_000);
      expect(got.status).toBe(200);
      expect(got.body.length).toBe(download.length);
      expect(sha256(got.body)).toBe(sha256(download));
    } finally {
      client.destroy();
    }
  }, 30_000);
});
