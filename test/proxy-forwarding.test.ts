/**
 * HTTP/1.1 forwarding semantics (SPEC §5) against a recording upstream:
 * Host, X-Forwarded-*, X-Request-Id, hop-by-hop removal both ways, header
 * case and order, strip_prefix/rewrite, bodies both ways in every framing
 * (multi-megabyte by sha256), HEAD/204/304, 100-continue, 1xx relay, and
 * aborts on either side.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Server } from '../dist/index';
import { startProxy } from './helpers/server';
import {
  RawClient,
  type RecordedRequest,
  type RecordingUpstream,
  closeAll,
  echoHandler,
  header,
  headerAll,
  request,
  requestHead,
  sleep,
  startRecordingUpstream,
  waitAtMost,
} from './helpers/upstreams';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function curl(args: string[], timeoutS = 20): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', String(timeoutS), ...args], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(stderr.toString() || err.message)) : resolve({ stdout, stderr: stderr.toString() }),
    );
  });
}

let up: RecordingUpstream;
let proxy: Server;
let port: number;
let tmp: string;

beforeAll(async () => {
  up = await startRecordingUpstream();
  proxy = await startProxy(
    {
      drain_timeout_ms: 1000,
      routes: [
        { path: '/', upstream: up.url },
        { path: '/nohost', upstream: up.url, preserve_host: false },
        { path: '/api', upstream: up.url, strip_prefix: true },
        { path: '/v1/users/:id', upstream: up.url, rewrite: '/users/:id' },
        { path: '/files/*', upstream: up.url, rewrite: '/bucket/*' },
      ],
    },
    false,
  );
  port = proxy.address().port;
  tmp = mkdtempSync(path.join(os.tmpdir(), 'zproxy-fwd-'));
});

afterAll(async () => {
  await closeAll();
  await proxy?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => up.reset(echoHandler));

/** Sends one request on a fresh connection; returns the response and what the upstream got. */
async function roundTrip(raw: string | Buffer, method = 'GET'): Promise<{ res: Awaited<ReturnType<typeof request>>; got: RecordedRequest }> {
  const before = up.requests.length;
  const res = await request(port, raw, method);
  expect(up.requests.length).toBe(before + 1);
  return { res, got: up.requests[before] };
}

describe('Host', () => {
  test('the client Host header is preserved by default', async () => {
    const { res, got } = await roundTrip(requestHead('GET', '/x', [], 'proxy.test:8080'));
    expect(res.status).toBe(200);
    expect(headerAll(got, 'host')).toEqual(['proxy.test:8080']);
  });

  test('preserve_host: false sends the upstream authority', async () => {
    const { got } = await roundTrip(requestHead('GET', '/nohost/x', [], 'proxy.test:8080'));
    expect(headerAll(got, 'host')).toEqual([up.authority]);
    // The client's Host is still told in X-Forwarded-Host.
    expect(headerAll(got, 'x-forwarded-host')[0]).toMatch(/^proxy\.test(:8080)?$/);
  });
});

describe('X-Forwarded-* and X-Request-Id', () => {
  test('X-Forwarded-For is set to the client address when absent', async () => {
    const { got } = await roundTrip(requestHead('GET', '/', []));
    expect(headerAll(got, 'x-forwarded-for')).toEqual(['127.0.0.1']);
  });

  test('X-Forwarded-For gets the client address appended to an existing value', async () => {
    const { got } = await roundTrip(requestHead('GET', '/', [['X-Forwarded-For', '203.0.113.7, 198.51.100.2']]));
    const values = headerAll(got, 'x-forwarded-for').join(', ');
    expect(values.split(/\s*,\s*/)).toEqual(['203.0.113.7', '198.51.100.2', '127.0.0.1']);
  });

  test('X-Forwarded-For sent as several field lines: all kept, in order, the client address last', async () => {
    const { got } = await roundTrip(requestHead('GET', '/', [['X-Forwarded-For', '203.0.113.7'], ['X-Other', 'x'], ['X-Forwarded-For', '198.51.100.2']]));
    const values = headerAll(got, 'x-forwarded-for').join(', ');
    expect(values.split(/\s*,\s*/)).toEqual(['203.0.113.7', '198.51.100.2', '127.0.0.1']);
  });

  test('X-Forwarded-Host sent by the client is replaced, not trusted', async () => {
    const { got } = await roundTrip(requestHead('GET', '/', [['X-Forwarded-Host', 'evil.example']], 'proxy.test'));
    expect(headerAll(got, 'x-forwarded-host')).toEqual(['proxy.test']);
  });

  test('X-Forwarded-Proto is http, and a client-sent value is not trusted', async () => {
    const { got } = await roundTrip(requestHead('GET', '/', [['X-Forwarded-Proto', 'https']]));
    expect(headerAll(got, 'x-forwarded-proto')).toEqual(['http']);
    const { got: plain } = await roundTrip(requestHead('GET', '/', []));
    expect(headerAll(plain, 'x-forwarded-proto')).toEqual(['http']);
  });

  test('X-Forwarded-Host is the client Host', async () => {
    const { got } = await roundTrip(requestHead('GET', '/', [], 'proxy.test:8080'));
    const values = headerAll(got, 'x-forwarded-host');
    expect(values).toHaveLength(1);
    expect(values[0]).toMatch(/^proxy\.test(:8080)?$/);
  });

  test('X-Request-Id is generated when absent: the same id upstream and in the client response', async () => {
    const { res, got } = await roundTrip(requestHead('GET', '/', []));
    const sent = headerAll(got, 'x-request-id');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatch(/^[!-~]{8,}$/);
    expect(header(res, 'x-request-id')).toBe(sent[0]);
    const { got: second } = await roundTrip(requestHead('GET', '/', []));
    expect(header(second, 'x-request-id')).not.toBe(sent[0]);
  });

  test('X-Forwarded-* follow each request on one keep-alive connection: a new Host, an X-Forwarded-For, then neither', async () => {
    const client = await RawClient.open(port);
    const before = up.requests.length;
    const sends: Array<[string, Array<[string, string]>]> = [
      ['a.test', []],
      ['b.test', []],
      ['b.test', [['X-Forwarded-For', '203.0.113.7']]],
      ['b.test', []],
    ];
    for (const [host, headers] of sends) {
      client.write(requestHead('GET', '/', headers, host));
      expect((await client.response()).status).toBe(200);
    }
    client.destroy();
    const got = up.requests.slice(before);
    expect(got.map((r) => header(r, 'x-forwarded-host'))).toEqual(['a.test', 'b.test', 'b.test', 'b.test']);
    expect(got.map((r) => header(r, 'x-forwarded-for'))).toEqual(['127.0.0.1', '127.0.0.1', '203.0.113.7, 127.0.0.1', '127.0.0.1']);
    expect(new Set(got.map((r) => r.conn)).size).toBe(1);
  });

  test('X-Request-Id is generated as <16 hex digits>-<hex counter>, one more per request of a worker', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { res, got } = await roundTrip(requestHead('GET', '/', []));
      expect(header(res, 'x-request-id')).toBe(header(got, 'x-request-id'));
      ids.push(header(got, 'x-request-id')!);
    }
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}-[0-9a-f]+$/);
    const perWorker = new Map<string, number[]>();
    for (const id of ids) {
      const [prefix, count] = id.split('-');
      perWorker.set(prefix, [...(perWorker.get(prefix) ?? []), parseInt(count, 16)]);
    }
    for (const counts of perWorker.values()) for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeGreaterThan(counts[i - 1]);
  });

  test('an error answer carries the request id in its header and its JSON body', async () => {
    const res = await request(port, 'GET /x HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n');
    expect(res.status).toBe(400);
    const id = header(res, 'x-request-id');
    expect(id).toMatch(/^[0-9a-f]{16}-[0-9a-f]+$/);
    expect(JSON.parse(res.body.toString()).request_id).toBe(id);
  });

  test('X-Request-Id sent by the client passes through both ways', async () => {
    const { res, got } = await roundTrip(requestHead('GET', '/', [['X-Request-Id', 'client-id-42']]));
    expect(headerAll(got, 'x-request-id')).toEqual(['client-id-42']);
    expect(headerAll(res, 'x-request-id')).toEqual(['client-id-42']);
  });
});

describe('hop-by-hop headers', () => {
  test('are removed from the request: Connection and what it names, Keep-Alive, Proxy-Connection, TE, Upgrade, Transfer-Encoding', async () => {
    const raw =
      'POST /hop HTTP/1.1\r\nHost: proxy.test\r\nConnection: keep-alive, X-Secret, x-other\r\nX-Secret: s\r\nX-Other: o\r\n' +
      'Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: h2c\r\nX-Kept: yes\r\n' +
      'Transfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n';
    const { res, got } = await roundTrip(raw, 'POST');
    expect(res.status).toBe(200);
    for (const name of ['x-secret', 'x-other', 'keep-alive', 'proxy-connection', 'te', 'upgrade']) expect([name, header(got, name)]).toEqual([name, undefined]);
    // zproxy may send its own Connection (keep-alive/close), never the client's list.
    for (const value of headerAll(got, 'connection')) expect(value).toMatch(/^\s*(keep-alive|close)\s*$/i);
    expect(header(got, 'x-kept')).toBe('yes');
    // The body arrives in a framing of zproxy's own: one Content-Length or one chunked, never both.
    const te = headerAll(got, 'transfer-encoding');
    const cl = headerAll(got, 'content-length');
    expect(te.length + cl.length).toBe(1);
    if (te.length) expect(te[0].toLowerCase()).toBe('chunked');
    expect(got.body.toString()).toBe('body');
  });

  test('are removed from the response', async () => {
    up.reset((_req, res) => {
      void res.chunked(
        200,
        [['Connection', 'X-Hop, keep-alive'], ['X-Hop', '1'], ['Keep-Alive', 'timeout=5, max=100'], ['Proxy-Connection', 'keep-alive'], ['Upgrade', 'foo/1'], ['X-Kept', 'yes']],
        ['hello ', 'world'],
      );
    });
    const { res } = await roundTrip(requestHead('GET', '/', []));
    expect(res.status).toBe(200);
    for (const name of ['x-hop', 'keep-alive', 'proxy-connection', 'upgrade']) expect([name, header(res, name)]).toEqual([name, undefined]);
    for (const value of headerAll(res, 'connection')) expect(value).toMatch(/^\s*(keep-alive|close)\s*$/i);
    expect(header(res, 'x-kept')).toBe('yes');
    expect(res.body.toString()).toBe('hello world');
  });
});

describe('header names keep their case and order', () => {
  test('request', async () => {
    const sent: Array<[string, string]> = [['X-Zeta', '1'], ['x-alpha', '2'], ['X-MiXeD-CaSe', '3'], ['accept', '*/*'], ['X-Zeta', '4'], ['User-Agent', 'ua']];
    const { got } = await roundTrip(requestHead('GET', '/', sent));
    const names = new Set(sent.map(([n]) => n));
    expect(got.headers.filter(([n]) => names.has(n))).toEqual(sent);
  });

  test('response', async () => {
    const sent: Array<[string, string]> = [['X-Zeta', '1'], ['x-alpha', '2'], ['X-MiXeD-CaSe', '3'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ['content-type', 'text/plain']];
    up.reset((_req, res) => res.send(200, sent, 'ok'));
    const { res } = await roundTrip(requestHead('GET', '/', []));
    const names = new Set(sent.map(([n]) => n));
    expect(res.headers.filter(([n]) => names.has(n))).toEqual(sent);
  });
});

describe('paths', () => {
  test('strip_prefix removes the matched prefix and keeps the query', async () => {
    const { got } = await roundTrip(requestHead('GET', '/api/users/7?q=a%20b&x=1', []));
    expect(got.target).toBe('/users/7?q=a%20b&x=1');
    const { got: bare } = await roundTrip(requestHead('GET', '/api?only=query', []));
    expect(bare.target).toBe('/?only=query');
  });

  test('rewrite with a :param and with * keeps the query', async () => {
    const { got } = await roundTrip(requestHead('GET', '/v1/users/42?fields=name', []));
    expect(got.target).toBe('/users/42?fields=name');
    const { got: star } = await roundTrip(requestHead('GET', '/files/a/b.txt?v=2', []));
    expect(star.target).toBe('/bucket/a/b.txt?v=2');
  });

  test('an HTTP/1.0 request goes upstream as HTTP/1.1, its target unchanged', async () => {
    const { res, got } = await roundTrip('GET /old/client?x=1 HTTP/1.0\r\nHost: proxy.test\r\n\r\n');
    expect(res.status).toBe(200);
    expect(got.version).toBe('HTTP/1.1');
    expect(got.target).toBe('/old/client?x=1');
    expect(got.head.split('\r\n')[0]).toBe('GET /old/client?x=1 HTTP/1.1');
  });

  test('a path with dot-segments goes upstream normalised', async () => {
    const { got } = await roundTrip(requestHead('GET', '/a/./b//c/../d?q=1', []));
    expect(got.target).toBe('/a/b/d?q=1');
  });

  test('other paths reach the upstream unchanged', async () => {
    const { got } = await roundTrip(requestHead('GET', '/plain/path?k=v&k=w', []));
    expect(got.target).toBe('/plain/path?k=v&k=w');
  });
});

describe('bodies', () => {
  test('Content-Length request body arrives intact', async () => {
    const body = randomBytes(10_000);
    const { got } = await roundTrip(Buffer.concat([Buffer.from(`POST /b HTTP/1.1\r\nHost: p\r\nContent-Length: ${body.length}\r\n\r\n`), body]), 'POST');
    expect(got.body.equals(body)).toBe(true);
    expect(header(got, 'content-length')).toBe(String(body.length));
  });

  test('chunked request body (with trailers) arrives intact', async () => {
    const parts = ['hello', ' ', 'chunked', ' world', 'x'.repeat(5000)];
    const raw = 'POST /b HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n' + parts.map((p) => `${p.length.toString(16)}\r\n${p}\r\n`).join('') + '0\r\nX-Trailer: t\r\n\r\n';
    const { res, got } = await roundTrip(raw, 'POST');
    expect(res.status).toBe(200);
    expect(got.body.toString()).toBe(parts.join(''));
  });

  test('request body split across many small writes', async () => {
    const client = await RawClient.open(port);
    const body = 'z'.repeat(3000);
    const raw = `PUT /b HTTP/1.1\r\nHost: p\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    for (let i = 0; i < raw.length; i += 500) {
      client.write(raw.slice(i, i + 500));
      await sleep(5);
    }
    expect((await client.response()).status).toBe(200);
    expect(up.requests[up.requests.length - 1].body.toString()).toBe(body);
    client.destroy();
  });

  test('Content-Length, chunked (with trailers) and close-delimited responses reach the client intact', async () => {
    const big = randomBytes(200_000);
    up.reset(async (req, res) => {
      if (req.target === '/cl') return res.send(200, [['Content-Type', 'application/octet-stream']], big);
      if (req.target === '/chunked') return res.chunked(200, [], [big.subarray(0, 70_000), big.subarray(70_000, 140_000), big.subarray(140_000)], [['X-Checksum', 'abc']], { gapMs: 5 });
      return res.closeDelimited(200, [['Content-Type', 'application/octet-stream']], big);
    });
    const client = await RawClient.open(port);
    for (const target of ['/cl', '/chunked']) {
      client.write(requestHead('GET', target, []));
      const res = await client.response('GET', 10_000);
      expect([target, res.status, sha256(res.body)]).toEqual([target, 200, sha256(big)]);
    }
    client.write(requestHead('GET', '/close', []));
    const res = await client.response('GET', 10_000);
    expect(res.status).toBe(200);
    expect(sha256(res.body)).toBe(sha256(big));
    // A close-delimited upstream body is either re-framed (chunked) for a keep-alive client, or ends with the connection.
    if (res.framing === 'close') expect(client.closed).toBe(true);
    client.destroy();
  });

  test('a multi-megabyte upload (curl) arrives intact by sha256', async () => {
    const body = randomBytes(8 * 1024 * 1024 + 123);
    const file = path.join(tmp, 'upload.bin');
    writeFileSync(file, body);
    up.reset((req, res) => res.send(200, [], sha256(req.body)));
    const { stdout } = await curl(['--data-binary', `@${file}`, '-H', 'Content-Type: application/octet-stream', `http://127.0.0.1:${port}/upload`]);
    expect(stdout.toString()).toBe(sha256(body));
  });

  test('a multi-megabyte chunked upload (curl) arrives intact by sha256', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 7);
    const file = path.join(tmp, 'upload-chunked.bin');
    writeFileSync(file, body);
    up.reset((req, res) => res.send(200, [], sha256(req.body)));
    const { stdout } = await curl(['--data-binary', `@${file}`, '-H', 'Transfer-Encoding: chunked', `http://127.0.0.1:${port}/upload`]);
    expect(stdout.toString()).toBe(sha256(body));
  });

  test('a multi-megabyte download (curl) arrives intact by sha256, Content-Length and chunked', async () => {
    const body = randomBytes(16 * 1024 * 1024 + 1);
    up.reset(async (req, res) => {
      if (req.target === '/chunked') {
        const pieces: Buffer[] = [];
        for (let i = 0; i < body.length; i += 1024 * 1024) pieces.push(body.subarray(i, i + 1024 * 1024));
        return res.chunked(200, [], pieces);
      }
      return res.send(200, [['Content-Type', 'application/octet-stream']], body);
    });
    for (const target of ['/download', '/chunked']) {
      const out = path.join(tmp, 'download.bin');
      await curl(['-o', out, `http://127.0.0.1:${port}${target}`]);
      expect([target, sha256(readFileSync(out))]).toEqual([target, sha256(body)]);
    }
  });
});

describe('bodiless responses', () => {
  test('HEAD: the head (with the upstream Content-Length) and no body; the connection stays usable', async () => {
    up.reset((req, res) => res.send(200, [['Content-Length', '11']], req.method === 'HEAD' ? '' : 'hello world'));
    const client = await RawClient.open(port);
    client.write(requestHead('HEAD', '/h', []));
    const head = await client.response('HEAD');
    expect(head.status).toBe(200);
    expect(header(head, 'content-length')).toBe('11');
    client.write(requestHead('GET', '/h', []));
    const got = await client.response('GET');
    expect(got.body.toString()).toBe('hello world');
    expect(client.data.length).toBe(0);
    expect(up.requests.map((r) => r.method)).toEqual(['HEAD', 'GET']);
    client.destroy();
  });

  test('HEAD to an upstream answering chunked carries no chunk bytes', async () => {
    up.reset((_req, res) => res.chunked(200, [], ['never sent']));
    const client = await RawClient.open(port);
    client.write(requestHead('HEAD', '/h', []) + requestHead('GET', '/after', []));
    const [head, after] = await client.responses(['HEAD', 'GET']);
    expect(head.status).toBe(200);
    expect(after.status).toBe(200);
    expect(after.body.toString()).toBe('never sent');
    client.destroy();
  });

  test('204 and 304 are framed without a body and keep the connection usable', async () => {
    up.reset((req, res) => {
      if (req.target === '/204') return res.send(204, [['X-A', '1']]);
      if (req.target === '/304') return res.send(304, [['ETag', '"v1"']]);
      return res.send(200, [], 'after');
    });
    const client = await RawClient.open(port);
    client.write(requestHead('GET', '/204', []));
    const noContent = await client.response();
    expect(noContent.status).toBe(204);
    expect(header(noContent, 'transfer-encoding')).toBeUndefined();
    expect(header(noContent, 'content-length') ?? '0').toBe('0');
    client.write(requestHead('GET', '/304', [['If-None-Match', '"v1"']]));
    const notModified = await client.response();
    expect(notModified.status).toBe(304);
    expect(header(notModified, 'etag')).toBe('"v1"');
    expect(header(notModified, 'transfer-encoding')).toBeUndefined();
    client.write(requestHead('GET', '/x', []));
    const after = await client.response();
    expect(after.body.toString()).toBe('after');
    await sleep(50);
    expect(client.data.length).toBe(0);
    client.destroy();
  });
});

describe('interim responses', () => {
  test('Expect: 100-continue with curl', async () => {
    const body = randomBytes(50_000);
    const file = path.join(tmp, 'continue.bin');
    writeFileSync(file, body);
    up.reset((req, res) => res.send(200, [], sha256(req.body)));
    const started = Date.now();
    const { stdout, stderr } = await curl(['-v', '-H', 'Expect: 100-continue', '--expect100-timeout', '5', '--data-binary', `@${file}`, `http://127.0.0.1:${port}/continue`]);
    expect(stdout.toString()).toBe(sha256(body));
    expect(stderr).toMatch(/< HTTP\/1\.1 100 Continue/);
    expect(Date.now() - started).toBeLessThan(4000); // curl did not have to give up waiting for the 100
  });

  test('Expect: 100-continue raw: 100 before the body is sent, then the final response', async () => {
    const client = await RawClient.open(port);
    client.write('POST /continue HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    await client.waitFor(() => /^HTTP\/1\.1 100 Continue\r\n\r\n/.test(client.data.toString('latin1')), 3000, '100 Continue');
    expect(up.requests.length).toBe(0); // the body has not been sent, so no complete request upstream
    client.write('hello');
    const res = await client.response('POST');
    expect(res.status).toBe(200);
    expect(res.interim.length).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(res.body.toString()).body).toBe('hello');
    client.destroy();
  });

  test.each([
    ['in the same write', 0],
    ['the final response 50 ms later (a separate read)', 50],
  ])('1xx interim responses from the upstream are relayed before the final one: %s', async (_name, gapMs) => {
    up.reset(async (_req, res) => {
      res.interim(103, [['Link', '</style.css>; rel=preload']]);
      if (gapMs) await sleep(gapMs);
      res.send(200, [], 'final');
    });
    const client = await RawClient.open(port);
    client.write(requestHead('GET', '/early', []));
    const res = await client.response();
    expect(res.interim).toHaveLength(1);
    expect(res.interim[0]).toMatch(/^HTTP\/1\.1 103 .*\r\nLink: <\/style\.css>; rel=preload$/is);
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('final');
    client.destroy();
  });
});

describe('aborts', () => {
  test('a client abort mid-response cancels the upstream request (upstream sees its socket close)', async () => {
    up.reset((_req, res) => res.stallMidBody(200, 1_000_000, 'x'.repeat(1000)));
    const client = await RawClient.open(port);
    client.write(requestHead('GET', '/stall', []));
    await client.waitFor(() => client.data.includes('\r\n\r\n'), 3000, 'response head');
    await up.waitForRequests(1);
    const conn = up.requests[0].conn;
    client.destroy();
    await waitAtMost(conn.closed, 3000);
    expect(conn.isClosed).toBe(true);
    expect(conn.peerClosed).toBe(true);
  });

  test('a client abort before any response byte cancels the upstream request', async () => {
    up.reset((_req, res) => res.hang());
    const client = await RawClient.open(port);
    client.write(requestHead('GET', '/hang', []));
    await up.waitForRequests(1);
    const conn = up.requests[0].conn;
    client.destroy();
    await waitAtMost(conn.closed, 3000);
    expect(conn.isClosed).toBe(true);
  });

  test.each([
    ['Content-Length body, then FIN', 'close'],
    ['Content-Length body, then RST', 'reset'],
  ] as const)('an upstream abort mid-body ends the client connection instead of hanging (%s)', async (_name, how) => {
    up.reset((_req, res) => res.abortMidBody(200, 100_000, 'y'.repeat(2000), how));
    const client = await RawClient.open(port);
    client.write(requestHead('GET', '/abort', []));
    await client.waitClosed(5000);
    const text = client.data.toString('latin1');
    // Either the head and part of the body, then close; never a complete 100 000-byte body.
    if (text.startsWith('HTTP/1.1 200')) expect(text.length - text.indexOf('\r\n\r\n') - 4).toBeLessThan(100_000);
    client.destroy();
  });

  test('an upstream abort mid chunked body ends the client connection without a terminating chunk', async () => {
    up.reset(async (_req, res) => {
      res.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      await sleep(50);
      res.close();
    });
    const client = await RawClient.open(port);
    client.write(requestHead('GET', '/abort-chunked', []));
    await client.waitClosed(5000);
    const text = client.data.toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).not.toMatch(/\r\n0\r\n\r\n$/);
    client.destroy();
  });

  test('after all that the proxy still serves', async () => {
    const { res } = await roundTrip(requestHead('GET', '/still', []));
    expect(res.status).toBe(200);
  });
});

