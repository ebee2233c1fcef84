/**
 * The upstream test servers themselves (test/helpers/upstreams.ts), talked to
 * directly without the proxy, so a proxy test failure is never the harness.
 */
import net from 'node:net';
import { execFile } from 'node:child_process';
import {
  RawClient,
  closeAll,
  header,
  headerNames,
  refusedPort,
  startBlackhole,
  startEchoUpstream,
  startRecordingUpstream,
  sleep,
} from './helpers/upstreams';

afterAll(closeAll);

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '5', ...args], (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout)));
  });
}

test('recording upstream: keeps raw bytes, header case and order, decodes chunked with trailers, counts connections', async () => {
  const up = await startRecordingUpstream();
  const client = await RawClient.open(up.port);
  client.write('POST /a?x=1 HTTP/1.1\r\nHost: h\r\nX-CaSe: 1\r\nContent-Length: 5\r\n\r\nhello');
  client.write('PUT /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 9\r\n\r\n');
  const [a, b] = await client.responses(['POST', 'PUT']);
  expect(a.status).toBe(200);
  expect(JSON.parse(a.body.toString()).body).toBe('hello');
  expect(JSON.parse(b.body.toString()).body).toBe('abcde');
  expect(up.requests).toHaveLength(2);
  expect(headerNames(up.requests[0])).toEqual(['Host', 'X-CaSe', 'Content-Length']);
  expect(up.requests[0].raw.toString('latin1')).toBe('POST /a?x=1 HTTP/1.1\r\nHost: h\r\nX-CaSe: 1\r\nContent-Length: 5\r\n\r\nhello');
  expect(up.requests[1].trailers).toEqual([['X-T', '9']]);
  expect(up.requests[1].chunked).toBe(true);
  expect(up.connectionCount).toBe(1);
  client.destroy();
  await up.connections[0].closed;
  expect(up.connections[0].peerClosed).toBe(true);
});

test('recording upstream: every response shape parses on the client side', async () => {
  const up = await startRecordingUpstream(async (req, res) => {
    switch (req.target) {
      case '/chunked': return res.chunked(200, [], ['ab', 'cd'], [['X-Trailer', 'yes']]);
      case '/interim': res.interim(103, [['Link', '</x>']]); return res.send(200, [], 'final');
      case '/204': return res.send(204);
      case '/304': return res.send(304, [['ETag', '"x"']]);
      case '/close': return res.closeDelimited(200, [], 'until close');
      default: return res.send(200, [], 'plain');
    }
  });
  const client = await RawClient.open(up.port);
  client.write('GET /chunked HTTP/1.1\r\nHost: h\r\n\r\nGET /interim HTTP/1.1\r\nHost: h\r\n\r\nGET /204 HTTP/1.1\r\nHost: h\r\n\r\nGET /304 HTTP/1.1\r\nHost: h\r\n\r\nHEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET /close HTTP/1.1\r\nHost: h\r\n\r\n');
  const r = await client.responses(['GET', 'GET', 'GET', 'GET', 'HEAD', 'GET']);
  expect(r[0].body.toString()).toBe('abcd');
  expect(r[0].trailers).toEqual([['X-Trailer', 'yes']]);
  expect(r[1].interim[0]).toMatch(/^HTTP\/1\.1 103/);
  expect(r[1].body.toString()).toBe('final');
  expect([r[2].status, r[3].status, r[4].status]).toEqual([204, 304, 200]);
  expect(r[4].body.length).toBe(0);
  expect(r[5].framing).toBe('close');
  expect(r[5].body.toString()).toBe('until close');
  client.destroy();
});

test('recording upstream: idle connections are closed after idleCloseMs', async () => {
  const up = await startRecordingUpstream({ idleCloseMs: 100 });
  const client = await RawClient.open(up.port);
  client.write('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
  await client.response();
  await client.waitClosed(2000);
  await up.connections[0].closed;
  expect(up.connections[0].peerClosed).toBe(false);
});

test('echo upstream echoes the id, with curl', async () => {
  const echo = await startEchoUpstream('e1');
  expect(await curl([`${echo.url}/x?id=42`])).toBe('id=42 name=e1 method=GET path=/x bytes=0');
  expect(await curl(['-H', 'X-Request-Id: r7', `${echo.url}/`])).toMatch(/^id=r7 /);
});

test('refused port refuses; blackhole connects hang (loopback only)', async () => {
  const port = await refusedPort();
  await expect(new Promise((resolve, reject) => net.connect({ host: '127.0.0.1', port }).once('connect', resolve).once('error', reject))).rejects.toThrow(/ECONNREFUSED/);
  const hole = await startBlackhole();
  const socket = net.connect({ host: '127.0.0.1', port: hole.port });
  socket.on('error', () => undefined);
  let connected = false;
  socket.once('connect', () => (connected = true));
  await sleep(500);
  expect(connected).toBe(false);
  socket.destroy();
  await hole.close();
});

test('header() is case-insensitive', () => {
  expect(header({ headers: [['X-A', '1']] }, 'x-a')).toBe('1');
});
