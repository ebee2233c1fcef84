/**
 * Edge cases of HTTP/1.1 forwarding: bodies where none may be (HEAD, 204,
 * 304 with Content-Length), a 101 nobody asked for, Connection: close from
 * the client, heads near the size limit, obs-text bytes copied byte for
 * byte, and path normalisation with the query untouched.
 */
import type { Server } from '../dist/index';
import { startProxy } from './helpers/server';
import { RawClient, type RecordingUpstream, closeAll, echoHandler, header, requestHead, sleep, startRecordingUpstream } from './helpers/upstreams';

let up: RecordingUpstream;
let proxy: Server;
let port: number;

beforeAll(async () => {
  up = await startRecordingUpstream();
  proxy = await startProxy({ drain_timeout_ms: 1000, thread_count: 1, routes: [{ path: '/', upstream: up.url }] }, false);
  port = proxy.address().port;
});

afterAll(async () => {
  await closeAll();
  await proxy?.stop();
});

beforeEach(() => up.reset(echoHandler));

const last = () => up.requests[up.requests.length - 1];

test('an upstream that wrongly sends a body after a HEAD response: the body never reaches the client as a response, nor the next exchange', async () => {
  up.reset((req, res) => {
    if (req.method === 'HEAD') {
      res.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
      res.finished = true;
      return;
    }
    res.send(200, [], `get ${req.target}`);
  });
  const client = await RawClient.open(port);
  client.write(requestHead('HEAD', '/h', []));
  expect((await client.response('HEAD')).status).toBe(200);
  await sleep(50);
  expect(client.data.toString('latin1')).not.toContain('hello');
  if (!client.closed) {
    client.write(requestHead('GET', '/after', []));
    expect((await client.response()).body.toString()).toBe('get /after');
  }
  client.destroy();
  const other = await RawClient.open(port);
  other.write(requestHead('GET', '/other', []));
  expect((await other.response()).body.toString()).toBe('get /other');
  other.destroy();
});

test('a 204 with body bytes from the upstream: the bytes are not passed on as a response', async () => {
  up.reset((req, res) => {
    if (req.target === '/204') {
      res.write('HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil');
      res.finished = true;
      return;
    }
    res.send(200, [], `get ${req.target}`);
  });
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/204', []));
  expect((await client.response()).status).toBe(204);
  if (!client.closed) {
    client.write(requestHead('GET', '/next', []));
    expect((await client.response()).body.toString()).toBe('get /next');
  }
  client.destroy();
  for (let i = 0; i < 2; i++) {
    const other = await RawClient.open(port);
    other.write(requestHead('GET', `/o${i}`, []));
    expect((await other.response()).body.toString()).toBe(`get /o${i}`);
    other.destroy();
  }
});

test('a 304 carrying Content-Length (the size of the unsent representation) is answered at once, no body awaited', async () => {
  up.reset((req, res) => {
    if (req.target === '/304') return res.send(304, [['ETag', '"e"'], ['Content-Length', '1234']]);
    res.send(200, [], 'next');
  });
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/304', [['If-None-Match', '"e"']]));
  const res = await client.response('GET', 3000);
  expect(res.status).toBe(304);
  client.write(requestHead('GET', '/after', []));
  expect((await client.response('GET', 3000)).body.toString()).toBe('next');
  client.destroy();
});

test('a HEAD answered with Transfer-Encoding: chunked and no body keeps both connections in step', async () => {
  up.reset((req, res) => (req.method === 'HEAD' ? res.chunked(200, [], ['x']) : res.send(200, [], 'ok')));
  const client = await RawClient.open(port);
  for (let i = 0; i < 3; i++) {
    client.write(requestHead('HEAD', '/h', []));
    expect((await client.response('HEAD')).status).toBe(200);
    client.write(requestHead('GET', '/g', []));
    expect((await client.response('GET')).body.toString()).toBe('ok');
  }
  client.destroy();
});

test('a 101 Switching Protocols for a request that asked for no upgrade → 502', async () => {
  up.reset((_req, res) => {
    res.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n');
    res.finished = true;
  });
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/101', []));
  await client.waitFor(() => client.closed || client.data.includes('\r\n\r\n'), 5000, 'an answer');
  expect(client.data.toString('latin1')).toMatch(/^HTTP\/1\.1 502 /);
  client.destroy();
});

test('Connection: close from the client: the answer says close and the connection ends', async () => {
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/bye', [['Connection', 'close']]));
  const res = await client.response();
  expect(res.status).toBe(200);
  expect(header(res, 'connection')).toMatch(/close/i);
  await client.waitClosed(3000);
  // The client's Connection: close is hop-by-hop: the upstream connection may stay pooled.
  expect(header(last(), 'connection') ?? 'keep-alive').not.toMatch(/x/);
});

test('a head just under max_header_bytes (64 KiB) is forwarded whole', async () => {
  const headers: Array<[string, string]> = Array.from({ length: 60 }, (_, i) => [`X-Fill-${i}`, String(i).padStart(4, '0') + 'f'.repeat(1000)]);
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/big-head', headers));
  expect((await client.response()).status).toBe(200);
  const got = last();
  expect(got.headers.filter(([n]) => n.startsWith('X-Fill-'))).toEqual(headers);
  client.destroy();
});

test('obs-text bytes in header values are copied byte for byte both ways', async () => {
  up.reset((_req, res) => res.send(200, [['X-Name', 'caf\xe9 \xff']], 'ok'));
  const client = await RawClient.open(port);
  client.write(Buffer.from(requestHead('GET', '/bytes', [['X-Name', 'na\xefve \x80']]), 'latin1'));
  const res = await client.response();
  expect(res.head).toContain('caf\xe9 \xff');
  expect(last().raw.includes(Buffer.from('X-Name: na\xefve \x80\r\n', 'latin1'))).toBe(true);
  client.destroy();
});

test.each([
  ['/x//y/./z/../w?q=1', '/x/y/w?q=1'],
  ['/a%2Fb/c?d=%2F', '/a%2Fb/c?d=%2F'],
  ['/p?next=/../etc//x&y=./z', '/p?next=/../etc//x&y=./z'],
  ['/%7Euser/%2e/file', '/~user/file'],
  ['/q?', '/q?'],
])('the normalised path goes upstream with the query untouched: %s → %s', async (sent, expected) => {
  const client = await RawClient.open(port);
  client.write(requestHead('GET', sent, []));
  expect((await client.response()).status).toBe(200);
  expect(last().target).toBe(expected);
  client.destroy();
});

test('a path climbing above / gets 400 and nothing is forwarded', async () => {
  const before = up.requests.length;
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/../etc/passwd', []));
  expect((await client.response()).status).toBe(400);
  client.destroy();
  expect(up.requests.length).toBe(before);
});
