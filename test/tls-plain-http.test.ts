/**
 * Plain HTTP sent to a TLS listener (issue 10.5, SPEC §6): with `tls.enabled`
 * the listener speaks TLS only. A cleartext HTTP/1 request is answered 400
 * (as nginx answers "The plain HTTP request was sent to HTTPS port") and the
 * connection closed; HTTP/2 prior knowledge in clear is closed unanswered.
 * Neither ever reaches the upstream, and TLS clients are still served.
 * On each listener implementation (the native ones peek at the first bytes,
 * the fallback reads them).
 */
import https from 'node:https';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Server } from '../dist/index';
import { LISTENERS, startProxy } from './helpers/server';
import { RawClient, closeAll, errorBody, requestHead, startRecordingUpstream, type RecordingUpstream } from './helpers/upstreams';

const FIXTURES = path.join(__dirname, 'fixtures', 'tls');
const file = (name: string): string => path.join(FIXTURES, name);
const HTTP2_PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
/** An empty SETTINGS frame, as an h2c client sends right after the preface. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

function httpsGet(port: number, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: target, servername: 'a.test', headers: { host: 'a.test' }, ca: readFileSync(file('ca.pem')), agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

describe.each(LISTENERS)('plain HTTP on a TLS listener (%s)', (_name, noNative, threads) => {
  let up: RecordingUpstream;
  let proxy: Server;
  let port: number;

  beforeAll(async () => {
    up = await startRecordingUpstream();
    proxy = await startProxy(
      {
        thread_count: threads,
        tls: { enabled: true, cert_file: file('a.test.pem'), key_file: file('a.test.key') },
        routes: [{ path: '/', upstream: up.url }],
      },
      noNative,
    );
    port = proxy.address().port;
  });

  afterAll(async () => {
    await proxy?.stop();
    await closeAll();
  });

  test('a cleartext GET is answered 400 and closed; the upstream sees nothing', async () => {
    const client = await RawClient.open(port);
    try {
      client.write(requestHead('GET', '/secret', [['X-Probe', '1']]));
      const response = await client.response();
      expect(response.status).toBe(400);
      expect(response.headers).toContainEqual(['connection', 'close']);
      expect(errorBody(response)).toMatchObject({ status: 400, error: expect.stringMatching(/plain HTTP request was sent to a TLS port/) });
      await client.waitClosed();
    } finally {
      client.destroy();
    }
    expect(up.connectionCount).toBe(0);
  });

  test('a cleartext request sent in pieces, with a body and pipelined requests behind it, is refused whole', async () => {
    const client = await RawClient.open(port);
    try {
      client.write('PO');
      await new Promise((resolve) => setTimeout(resolve, 50));
      client.write(`ST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello${requestHead('GET', '/second')}`);
      expect((await client.response('POST')).status).toBe(400);
      await client.waitClosed();
      // Exactly one response: nothing behind the refusal is answered.
      expect(client.data.length).toBe(0);
    } finally {
      client.destroy();
    }
    expect(up.connectionCount).toBe(0);
  });

  test('HTTP/2 prior knowledge in clear is closed without an answer', async () => {
    const client = await RawClient.open(port);
    try {
      client.write(Buffer.concat([Buffer.from(HTTP2_PREFACE, 'latin1'), EMPTY_SETTINGS]));
      await client.waitClosed();
      expect(client.data.length).toBe(0);
    } finally {
      client.destroy();
    }
    expect(up.connectionCount).toBe(0);
  });

  test('TLS clients are served as before', async () => {
    expect(await httpsGet(port, '/over-tls')).toMatchObject({ status: 200 });
    expect(up.requests.map((r) => r.target)).toEqual(['/over-tls']);
  });
});
