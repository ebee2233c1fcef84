/**
 * Pooled upstream connections must never carry one exchange's leftovers into
 * the next: a response with Connection: close, extra bytes after a complete
 * response, a request body cut short by the client, an HTTP/1.0 upstream
 * response — each must retire the connection, and the next request must get
 * its own answer.
 */
import type { Server } from '../dist/index';
import { startProxy } from './helpers/server';
import { RawClient, type RecordingUpstream, closeAll, header, requestHead, sleep, startRecordingUpstream, waitAtMost } from './helpers/upstreams';

let up: RecordingUpstream;
let proxy: Server;
let port: number;

beforeAll(async () => {
  up = await startRecordingUpstream();
  // One thread: every request shares one pool, so a poisoned connection would be reused.
  proxy = await startProxy({ drain_timeout_ms: 1000, thread_count: 1, routes: [{ path: '/', upstream: up.url }] }, false);
  port = proxy.address().port;
});

afterAll(async () => {
  await closeAll();
  await proxy?.stop();
});

async function get(target: string): Promise<{ status: number; body: string; conn: string | undefined }> {
  const client = await RawClient.open(port);
  try {
    client.write(requestHead('GET', target, []));
    const res = await client.response('GET', 5000);
    return { status: res.status, body: res.body.toString(), conn: header(res, 'x-upstream-conn') };
  } finally {
    client.destroy();
  }
}

const plain = (req: { target: string; conn: { id: number } }, res: { send(s: number, h: Array<[string, string]>, b: string): void }) =>
  res.send(200, [['X-Upstream-Conn', String(req.conn.id)]], `plain ${req.target}`);

test('a response with Connection: close retires the connection even if the upstream leaves it open', async () => {
  up.reset((req, res) => {
    if (req.target === '/close') return res.send(200, [['Connection', 'close'], ['X-Upstream-Conn', String(req.conn.id)]], 'closing'); // but the socket stays open
    plain(req, res);
  });
  const first = await get('/close');
  expect(first.body).toBe('closing');
  const second = await get('/next');
  expect(second.body).toBe('plain /next');
  expect(second.conn).not.toBe(first.conn);
});

test('extra bytes after a complete Content-Length response never reach the next client (no response desync)', async () => {
  up.reset((req, res) => {
    if (req.target === '/extra') {
      res.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nevil!!');
      res.finished = true;
      return;
    }
    plain(req, res);
  });
  const first = await get('/extra');
  expect(first.status === 502 || first.body === 'ok').toBe(true);
  for (let i = 0; i < 3; i++) {
    const next = await get(`/victim${i}`);
    expect(next.body).toBe(`plain /victim${i}`);
  }
});

test('extra bytes after a bodiless response retire its connection, and a pipelined request with a body behind it gets its own answer', async () => {
  up.reset((req, res) => {
    if (req.target === '/zero') {
      // Complete at its head (Content-Length: 0), with junk after it in the same write.
      res.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nJUNK');
      res.finished = true;
      return;
    }
    plain(req, res);
  });
  const client = await RawClient.open(port);
  try {
    // The POST starts as soon as the first exchange ends, within the upstream read that carried the junk.
    client.write(requestHead('GET', '/zero', []) + 'POST /second HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\n\r\nabc');
    const [zero, second] = await client.responses(['GET', 'POST'], 5000);
    expect(zero.status).toBe(200);
    expect(zero.body.length).toBe(0);
    expect(second.body.toString()).toBe('plain /second');
    const zeroConn = up.requests.find((r) => r.target === '/zero')!.conn;
    const secondConn = up.requests.find((r) => r.target === '/second')!.conn;
    expect(secondConn).not.toBe(zeroConn); // the junk-carrying connection was not reused
  } finally {
    client.destroy();
  }
});

test('an unsolicited response on an idle pooled connection does not answer the next request', async () => {
  up.reset((req, res) => {
    if (req.target === '/early') {
      res.send(200, [['X-Upstream-Conn', String(req.conn.id)]], 'early');
      // An unsolicited second response on the idle connection.
      setTimeout(() => res.write('HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nunrequest'), 30);
      return;
    }
    plain(req, res);
  });
  expect((await get('/early')).body).toBe('early');
  await sleep(100);
  for (let i = 0; i < 3; i++) expect((await get(`/after${i}`)).body).toBe(`plain /after${i}`);
});

test('a request body cut short by the client: the upstream connection is closed, never reused with a partial body', async () => {
  up.reset(plain);
  const client = await RawClient.open(port);
  client.write('POST /partial HTTP/1.1\r\nHost: p\r\nContent-Length: 1000\r\n\r\n' + 'a'.repeat(100));
  const carrying = () => up.connections.filter((c) => !c.isClosed && c.received.toString('latin1').includes('/partial'));
  for (const start = Date.now(); carrying().length === 0 && Date.now() - start < 2000; ) await sleep(10);
  const used = carrying();
  expect(used).toHaveLength(1); // the head and the first bytes were streamed upstream
  client.destroy();
  for (const conn of used) {
    await waitAtMost(conn.closed, 3000);
    expect(conn.isClosed).toBe(true);
  }
  // The next requests are parsed on their own by the upstream.
  for (let i = 0; i < 3; i++) expect((await get(`/clean${i}`)).body).toBe(`plain /clean${i}`);
  expect(up.requests.filter((r) => r.target === '/partial')).toHaveLength(0);
});

test('an HTTP/1.0 upstream response without Content-Length is read to the close and not pooled', async () => {
  up.reset((req, res) => {
    if (req.target === '/http10') {
      res.write('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold school');
      return res.close();
    }
    plain(req, res);
  });
  const first = await get('/http10');
  expect(first.body).toBe('old school');
  expect((await get('/modern')).body).toBe('plain /modern');
});

test('an HTTP/1.0 client gets a chunked upstream response de-chunked, and the upstream gets one Host', async () => {
  up.reset((_req, res) => res.chunked(200, [], ['one ', 'two ', 'three']));
  const client = await RawClient.open(port);
  client.write('GET /old HTTP/1.0\r\n\r\n');
  await client.waitClosed(5000);
  const text = client.data.toString('latin1');
  expect(text).toMatch(/^HTTP\/1\.[01] 200 /);
  expect(text).not.toMatch(/transfer-encoding/i);
  expect(text.slice(text.indexOf('\r\n\r\n') + 4)).toBe('one two three');
  const got = up.requests[up.requests.length - 1];
  expect(got.target).toBe('/old');
  expect(got.headers.filter(([n]) => n.toLowerCase() === 'host')).toHaveLength(1);
  client.destroy();
});
