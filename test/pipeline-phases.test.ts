/**
 * The pipeline's phases end to end (issue 11), with a test-only middleware
 * loaded as a `module` (test/fixtures/middleware/async-key.js): a request
 * phase that answers 401 asynchronously after a timer, with pipelined
 * HTTP/1 requests behind it answered in order; fields edited on the way up
 * and down; the log phase run exactly once per request, whatever happened;
 * a phase that throws or rejects costs its request a 500, never the worker.
 * On HTTP/1 and HTTP/2, native and fallback.
 */
import http2 from 'node:http2';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RUNTIMES, startProxy } from './helpers/server';
import { RawClient, closeAll, header, startRecordingUpstream, sleep, type RecordingUpstream } from './helpers/upstreams';
import type { Server } from '../dist/index';

const MODULE = path.join(__dirname, 'fixtures', 'middleware', 'async-key.js');

describe.each(RUNTIMES)('%s', (_name, noNative) => {
  let up: RecordingUpstream;
  let proxy: Server;
  let port: number;
  let logFile: string;

  const logLines = (): Array<{ path: string; status: number; keyed: boolean; protocol: string }> =>
    readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line));

  beforeEach(async () => {
    logFile = path.join(mkdtempSync(path.join(tmpdir(), 'zproxy-phases-')), 'log.jsonl');
    up = await startRecordingUpstream();
    const keyed = { type: 'module', config: { path: MODULE, key: 'secret', delay_ms: 20, log_file: logFile } };
    proxy = await startProxy(
      {
        drain_timeout_ms: 1000,
        thread_count: 1,
        routes: [
          { path: '/direct', respond: { status: 200, headers: {}, body: 'direct' }, middlewares: [keyed] },
          { path: '/', upstream: up.url, middlewares: [keyed] },
        ],
      },
      noNative,
    );
    port = proxy.address().port;
  });

  afterEach(async () => {
    await closeAll();
    await proxy.stop();
  });

  test('HTTP/1: a 401 given after a timer, with pipelined requests behind it answered in order', async () => {
    const client = await RawClient.open(port);
    client.write(
      'GET /a HTTP/1.1\r\nHost: h\r\n\r\n' +
        'GET /b HTTP/1.1\r\nHost: h\r\nX-Key: secret\r\n\r\n' +
        'POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello' +
        'POST /d HTTP/1.1\r\nHost: h\r\nX-Key: secret\r\nContent-Length: 5\r\n\r\nworld' +
        'GET /direct HTTP/1.1\r\nHost: h\r\nX-Key: secret\r\n\r\n',
    );
    const responses = await client.responses(['GET', 'GET', 'POST', 'POST', 'GET'], 10_000);
    client.destroy();
    expect(responses.map((r) => r.status)).toEqual([401, 200, 401, 200, 200]);
    expect(header(responses[0], 'www-authenticate')).toBe('Key');
    expect(responses[0].body.toString()).toBe('{"error":"no key"}');
    // Response phases edit zproxy's own answers and the upstream's alike.
    expect(responses.map((r) => header(r, 'x-seen'))).toEqual(['401', '200', '401', '200', '200']);
    expect(responses[4].body.toString()).toBe('direct');
    // Only the keyed requests went upstream, in order, with the bodies intact and the fields edited.
    expect(up.requests.map((r) => [r.method, r.target, r.body.toString()])).toEqual([
      ['GET', '/b', ''],
      ['POST', '/d', 'world'],
    ]);
    for (const req of up.requests) {
      expect(header(req, 'x-checked')).toBe('yes');
      expect(header(req, 'x-key')).toBeUndefined();
    }
    await waitForLines(5);
    expect(logLines().map((l) => [l.path, l.status, l.keyed])).toEqual([
      ['/a', 401, false],
      ['/b', 200, true],
      ['/c', 401, false],
      ['/d', 200, true],
      ['/direct', 200, true],
    ]);
  });

  test('HTTP/1: a phase that throws or rejects gives that request a 500, and the connection goes on', async () => {
    const client = await RawClient.open(port);
    client.write('GET /x HTTP/1.1\r\nHost: h\r\nX-Fail: throw-sync\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\nX-Fail: reject\r\n\r\nGET /z HTTP/1.1\r\nHost: h\r\nX-Key: secret\r\n\r\n');
    const responses = await client.responses(['GET', 'GET', 'GET'], 10_000);
    client.destroy();
    expect(responses.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(up.requests.map((r) => r.target)).toEqual(['/z']);
    await waitForLines(3);
    expect(logLines().map((l) => l.status)).toEqual([500, 500, 200]);
  });

  test('HTTP/1: a client that leaves while its request is held is logged once, and nothing goes upstream', async () => {
    const client = await RawClient.open(port);
    client.write('GET /gone HTTP/1.1\r\nHost: h\r\nX-Key: secret\r\n\r\n');
    await sleep(2);
    client.destroy();
    await waitForLines(1);
    await sleep(100);
    expect(logLines()).toHaveLength(1);
    expect(up.requests).toHaveLength(0);
  });

  test('HTTP/2: the same phases, streams answered each in its turn', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const get = (p: string, headers: Record<string, string> = {}) =>
        new Promise<{ status: number; seen: string | undefined; body: string }>((resolve, reject) => {
          const stream = session.request({ ':path': p, ...headers });
          let body = '';
          let status = 0;
          let seen: string | undefined;
          stream.on('response', (h) => {
            status = Number(h[':status']);
            seen = h['x-seen'] as string | undefined;
          });
          stream.setEncoding('utf8');
          stream.on('data', (d: string) => (body += d));
          stream.on('end', () => resolve({ status, seen, body }));
          stream.on('error', reject);
          stream.end();
        });
      const results = await Promise.all([get('/a'), get('/b', { 'x-key': 'secret' }), get('/c', { 'x-fail': 'reject' })]);
      expect(results.map((r) => r.status)).toEqual([401, 200, 500]);
      expect(results.map((r) => r.seen)).toEqual(['401', '200', '500']);
      expect(up.requests.map((r) => r.target)).toEqual(['/b']);
      expect(header(up.requests[0], 'x-checked')).toBe('yes');
      await waitForLines(3);
      expect(logLines().every((l) => l.protocol === 'HTTP/2')).toBe(true);
    } finally {
      session.close();
    }
  });

  async function waitForLines(count: number): Promise<void> {
    for (let i = 0; i < 200; i++) {
      try {
        if (logLines().length >= count) return;
      } catch {
        // not written yet
      }
      await sleep(10);
    }
    throw new Error(`the log phase wrote ${logLines().length} lines, expected ${count}`);
  }
});
