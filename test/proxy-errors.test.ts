/**
 * Errors the client sees from a proxy route (SPEC §6): 502 for refused,
 * reset and invalid responses, 404/405, JSON error bodies with the request
 * id; a bad upstream response breaks only its own exchange, and the process
 * keeps serving.
 */
import type { Server } from '../dist/index';
import { startProxy } from './helpers/server';
import {
  INVALID_RESPONSE_HEADS,
  RawClient,
  type RecordingUpstream,
  closeAll,
  errorBody,
  header,
  refusedPort,
  request,
  requestHead,
  startRecordingUpstream,
} from './helpers/upstreams';

let good: RecordingUpstream;
let bad: RecordingUpstream;
let proxy: Server;
let port: number;
/** What the bad upstream answers next (raw bytes), then it closes. */
let badAnswer = '';

beforeAll(async () => {
  good = await startRecordingUpstream();
  bad = await startRecordingUpstream((_req, res) => {
    res.write(badAnswer);
    res.close();
  });
  const refused = `http://127.0.0.1:${await refusedPort()}`;
  const resetting = await startRecordingUpstream((_req, res) => res.reset());
  proxy = await startProxy(
    {
      drain_timeout_ms: 1000,
      routes: [
        { path: '/good', upstream: good.url },
        { path: '/bad', upstream: bad.url, retries: 0 },
        { path: '/refused', upstream: refused },
        { path: '/reset', upstream: resetting.url },
        { path: '/limited', methods: ['GET', 'POST'], upstream: good.url },
      ],
    },
    false,
  );
  port = proxy.address().port;
});

afterAll(async () => {
  await closeAll();
  await proxy?.stop();
});

function expectJsonError(res: { status: number; body: Buffer; headers: Array<[string, string]> }, status: number, requestId?: string): void {
  expect(res.status).toBe(status);
  const body = errorBody(res as never);
  expect(Object.keys(body).sort()).toEqual(['error', 'request_id', 'status']);
  expect(body.status).toBe(status);
  expect(typeof body.error).toBe('string');
  expect(body.error.length).toBeGreaterThan(0);
  if (requestId) expect(body.request_id).toBe(requestId);
  else expect(body.request_id).toBe(header(res, 'x-request-id'));
  expect(header(res, 'content-type') ?? '').toMatch(/application\/json/);
}

test('upstream refused → 502 JSON', async () => {
  expectJsonError(await request(port, requestHead('GET', '/refused', [['X-Request-Id', 'r-refused']])), 502, 'r-refused');
});

test('upstream reset before the response → 502 JSON (generated request id)', async () => {
  expectJsonError(await request(port, requestHead('GET', '/reset', [])), 502);
});

test('upstream closes without answering → 502', async () => {
  badAnswer = '';
  expectJsonError(await request(port, requestHead('GET', '/bad', [])), 502);
});

/** Heads no proxy may forward (the others can be repaired, or fail only in the body). */
const REJECTED_HEADS = INVALID_RESPONSE_HEADS.filter(([name]) => !/obs-fold|space before colon|bad chunk size/.test(name));

test.each(REJECTED_HEADS)('invalid response head → 502: %s', async (_name, raw) => {
  badAnswer = raw;
  expectJsonError(await request(port, requestHead('GET', '/bad', [['X-Request-Id', 'bad-head']])), 502, 'bad-head');
});

test.each([
  ['obs-fold in a header', 'HTTP/1.1 200 OK\r\nX-A: a\r\n folded\r\nContent-Length: 2\r\n\r\nok', /\r\nX-A: a +folded\r\n/],
  ['space before colon', 'HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 2\r\n\r\nok', /\r\nX-A: b\r\n/],
])('response head the proxy must reject (502) or repair before forwarding (RFC 9112 §5.1, §5.2): %s', async (_name, raw, repaired) => {
  badAnswer = raw;
  const res = await request(port, requestHead('GET', '/bad', []));
  if (res.status === 502) return;
  expect(res.status).toBe(200);
  expect(res.head).not.toMatch(/\r\n[ \t]|X-A :/);
  expect(res.head + '\r\n').toMatch(repaired);
});

test('a response head larger than any sane limit → 502', async () => {
  badAnswer = `HTTP/1.1 200 OK\r\nX-Huge: ${'h'.repeat(1024 * 1024)}\r\nContent-Length: 0\r\n\r\n`;
  expectJsonError(await request(port, requestHead('GET', '/bad', [])), 502);
});

test('a bad chunk size in the response body: 502 if nothing was sent yet, else the client connection closes without a complete body', async () => {
  badAnswer = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n';
  const client = await RawClient.open(port);
  client.write(requestHead('GET', '/bad', []));
  await client.waitFor(() => client.closed || /^HTTP\/1\.1 502/.test(client.data.toString('latin1')), 5000, '502 or close');
  const text = client.data.toString('latin1');
  if (!text.startsWith('HTTP/1.1 502')) {
    expect(client.closed).toBe(true);
    expect(text).not.toMatch(/\r\n0\r\n\r\n$/);
    expect(text).not.toContain('hello');
  }
  client.destroy();
});

test('no route → 404 JSON; method not allowed → 405 with Allow', async () => {
  expectJsonError(await request(port, requestHead('GET', '/nowhere', [['X-Request-Id', 'nr-1']])), 404, 'nr-1');
  const res = await request(port, requestHead('DELETE', '/limited/x', []));
  expectJsonError(res, 405);
  const allow = (header(res, 'allow') ?? '').split(/\s*,\s*/).sort();
  expect(allow).toEqual(expect.arrayContaining(['GET', 'POST']));
  expect(allow).not.toContain('DELETE');
  expect(good.requests.filter((r) => r.method === 'DELETE')).toHaveLength(0);
});

test('a bad upstream response breaks only its own exchange: another client keeps its connection and answers', async () => {
  const bystander = await RawClient.open(port);
  bystander.write(requestHead('GET', '/good/1', []));
  expect((await bystander.response()).status).toBe(200);
  for (const [, raw] of REJECTED_HEADS) {
    badAnswer = raw;
    const res = await request(port, requestHead('GET', '/bad', []));
    expect(res.status).toBe(502);
  }
  bystander.write(requestHead('GET', '/good/2', []));
  expect((await bystander.response()).status).toBe(200);
  expect(bystander.closed).toBe(false);
  bystander.destroy();
});

test('after a 502 on a keep-alive connection, that same connection still serves (or was closed cleanly)', async () => {
  const client = await RawClient.open(port);
  badAnswer = 'garbage\r\n\r\n';
  client.write(requestHead('GET', '/bad', []));
  expect((await client.response()).status).toBe(502);
  if (!client.closed) {
    client.write(requestHead('GET', '/good/after', []));
    expect((await client.response()).status).toBe(200);
  }
  client.destroy();
});

test('the process keeps serving after a barrage of broken upstream answers', async () => {
  const garbage = [
    '\x00\x01\x02\xff',
    'HTTP/1.1 200 OK\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort',
    'HTTP/1.1 999999999999 X\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n',
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  ];
  await Promise.all(
    Array.from({ length: 60 }, async (_, i) => {
      badAnswer = garbage[i % garbage.length];
      const client = await RawClient.open(port);
      client.write(requestHead('GET', '/bad', []));
      await client.waitFor(() => client.closed || client.data.includes('\r\n\r\n'), 8000, 'an answer or a close').catch(() => undefined);
      client.destroy();
    }),
  );
  const res = await request(port, requestHead('GET', '/good/still', []));
  expect(res.status).toBe(200);
});
