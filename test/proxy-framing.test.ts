/**
 * The framing of every message zproxy writes is its own (issue 10, SPEC §5):
 * a field named in `Connection` never removes Content-Length,
 * Transfer-Encoding, Host or the proxy's own fields; Content-Length is
 * written normalised; chunked bodies leave in zproxy's own chunks (canonical
 * sizes, no extensions); both directions. The first case is the attack the
 * issue reports: with `Connection: Content-Length` the upstream used to get
 * the POST without its length, and its body as a second request.
 */
import { RUNTIMES, startProxy } from './helpers/server';
import { RawClient, closeAll, header, headerAll, headerNames, startRecordingUpstream, type RecordingUpstream, type RecordedRequest } from './helpers/upstreams';
import type { Server } from '../dist/index';

const SMUGGLED = 'GET /admin HTTP/1.1\r\nHost: victim.example\r\n\r\n';

/** Sends `raw` and waits for `count` responses; returns them with what the upstream recorded. */
async function through(port: number, up: RecordingUpstream, raw: string, methods = ['POST']): Promise<{ requests: RecordedRequest[]; statuses: number[] }> {
  const client = await RawClient.open(port);
  try {
    client.write(raw);
    const responses = await client.responses(methods);
    return { requests: up.requests.slice(), statuses: responses.map((r) => r.status) };
  } finally {
    client.destroy();
  }
}

describe.each(RUNTIMES)('%s', (_name, noNative) => {
  let up: RecordingUpstream;
  let proxy: Server;
  let port: number;

  beforeEach(async () => {
    up = await startRecordingUpstream();
    proxy = await startProxy({ drain_timeout_ms: 1000, routes: [{ path: '/public', upstream: up.url }] }, noNative);
    port = proxy.address().port;
  });

  afterEach(async () => {
    await closeAll();
    await proxy.stop();
  });

  describe('Connection cannot remove the framing (the attack of issue 10 and its variants)', () => {
    const variants: Array<[string, string[]]> = [
      ['Connection: Content-Length', ['Connection: Content-Length']],
      ['mixed case', ['connection: CONTENT-length']],
      ['in a list', ['Connection: keep-alive, Content-Length, x-other']],
      ['on a second Connection line', ['Connection: keep-alive', 'Connection: content-length']],
      ['with Host and X-Forwarded-For named too', ['Connection: host, x-forwarded-for, x-request-id, content-length']],
    ];
    test.each(variants)('%s', async (_variant, connection) => {
      const raw = `POST /public HTTP/1.1\r\nHost: a\r\n${connection.map((c) => c + '\r\n').join('')}X-Request-Id: rid-1\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`;
      const { requests } = await through(port, up, raw);
      expect(requests).toHaveLength(1);
      const [req] = requests;
      expect(req.method).toBe('POST');
      expect(req.target).toBe('/public');
      expect(headerAll(req, 'content-length')).toEqual([String(SMUGGLED.length)]);
      expect(req.body.toString('latin1')).toBe(SMUGGLED);
      expect(header(req, 'host')).toBe('a');
      expect(header(req, 'x-request-id')).toBe('rid-1');
      expect(header(req, 'x-forwarded-for')).toBe('127.0.0.1');
      expect(headerAll(req, 'connection')).toEqual([]);
      if (connection.join().includes('x-other')) expect(headerNames(req).map((n) => n.toLowerCase())).not.toContain('x-other');
    });

    test('Connection: Transfer-Encoding on a chunked request keeps it chunked', async () => {
      const raw = `POST /public HTTP/1.1\r\nHost: a\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`;
      const { requests } = await through(port, up, raw);
      expect(requests).toHaveLength(1);
      expect(headerAll(requests[0], 'transfer-encoding')).toEqual(['chunked']);
      expect(requests[0].body.toString('latin1')).toBe(SMUGGLED);
    });

    test('an ordinary field named in Connection is removed', async () => {
      const raw = 'GET /public HTTP/1.1\r\nHost: a\r\nConnection: X-Secret\r\nX-Secret: s\r\nX-Kept: k\r\n\r\n';
      const { requests } = await through(port, up, raw, ['GET']);
      expect(header(requests[0], 'x-secret')).toBeUndefined();
      expect(header(requests[0], 'x-kept')).toBe('k');
    });
  });

  describe('the request framing is written from zproxy\'s parse', () => {
    test('Content-Length with leading zeros goes upstream normalised', async () => {
      const { requests } = await through(port, up, 'POST /public HTTP/1.1\r\nHost: a\r\nContent-Length: 0005\r\n\r\nhello');
      expect(headerAll(requests[0], 'content-length')).toEqual(['5']);
      expect(requests[0].body.toString()).toBe('hello');
    });

    test('chunk sizes are re-framed: no leading zeros, no extensions, no trailers', async () => {
      const body = '0005;name="q;uo\\"ted"\r\nhello\r\n00A;x=y\r\n0123456789\r\n000;last\r\nX-Trailer: t\r\nContent-Length: 1\r\n\r\n';
      const { requests } = await through(port, up, `POST /public HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
      const [req] = requests;
      expect(req.body.toString()).toBe('hello0123456789');
      expect(req.rawBody.toString('latin1')).toMatch(/^(?:(?:[1-9a-f][0-9a-f]*)\r\n[^\r]*\r\n)+0\r\n\r\n$/);
      expect(req.rawBody.toString('latin1')).not.toContain(';');
      expect(req.trailers).toEqual([]);
    });

    test('only websocket is ever forwarded as an Upgrade', async () => {
      const raw = 'GET /public HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n';
      const { requests } = await through(port, up, raw, ['GET']);
      expect(header(requests[0], 'upgrade')).toBeUndefined();
      expect(header(requests[0], 'http2-settings')).toBeUndefined();
      const offered = 'GET /public HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
      up.handler = (_req, res) => res.send(400, [], 'no');
      const second = await through(port, up, offered, ['GET']);
      expect(headerAll(second.requests[1], 'upgrade')).toEqual(['websocket']);
    });
  });

  describe('responses: the framing is zproxy\'s own', () => {
    test('Connection: Content-Length in a response keeps the length, and the next response on the connection is intact', async () => {
      up.handler = (req, res) => {
        if (req.target === '/public/a') res.send(200, [['Connection', 'Content-Length, X-Drop'], ['X-Drop', 'x']], 'first');
        else res.send(200, [], 'second');
      };
      const client = await RawClient.open(port);
      client.write('GET /public/a HTTP/1.1\r\nHost: a\r\n\r\nGET /public/b HTTP/1.1\r\nHost: a\r\n\r\n');
      const [first, second] = await client.responses(['GET', 'GET']);
      client.destroy();
      expect(headerAll(first, 'content-length')).toEqual(['5']);
      expect(first.body.toString()).toBe('first');
      expect(header(first, 'x-drop')).toBeUndefined();
      expect(second.body.toString()).toBe('second');
    });

    test('a leading-zero Content-Length is normalised, and a 204 carries none', async () => {
      up.handler = (req, res) => {
        if (req.target === '/public/zero') res.write('HTTP/1.1 200 OK\r\nContent-Length: 0002\r\n\r\nok');
        else res.write('HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n');
        res.finished = true;
      };
      const client = await RawClient.open(port);
      client.write('GET /public/zero HTTP/1.1\r\nHost: a\r\n\r\nGET /public/none HTTP/1.1\r\nHost: a\r\n\r\n');
      const [zero, none] = await client.responses(['GET', 'GET']);
      client.destroy();
      expect(headerAll(zero, 'content-length')).toEqual(['2']);
      expect(zero.body.toString()).toBe('ok');
      expect(none.status).toBe(204);
      expect(header(none, 'content-length')).toBeUndefined();
    });

    test('a chunked response is re-framed: canonical sizes, no extensions, trailers filtered', async () => {
      up.handler = (_req, res) => {
        res.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: transfer-encoding\r\n\r\n');
        res.write('0003;ext=1\r\nabc\r\n00B;"x"=y\r\n');
        res.write('\r\n'); // part of the bad extension above: the upstream's chunked body is invalid -> cut off
        res.finished = true;
      };
      const bad = await RawClient.open(port);
      bad.write('GET /public/bad HTTP/1.1\r\nHost: a\r\n\r\n');
      await bad.waitClosed();
      const text = bad.data.toString('latin1');
      // The head and the data before the malformed chunk went out; then the connection was closed, never a clean end.
      expect(text).not.toMatch(/\r\n0\r\n\r\n$/);
      expect(text).not.toContain(';');
      bad.destroy();

      up.handler = (_req, res) => {
        res.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0003;ext=1\r\nabc\r\n000004;a=b;c="d"\r\ndefg\r\n0\r\nX-Checksum: 9\r\nContent-Length: 7\r\nSet-Cookie: s=1\r\n\r\n');
        res.finished = true;
      };
      const client = await RawClient.open(port);
      client.write('GET /public/good HTTP/1.1\r\nHost: a\r\n\r\n');
      const response = await client.response();
      client.destroy();
      expect(response.framing).toBe('chunked');
      expect(response.body.toString()).toBe('abcdefg');
      expect(response.rawBody.toString('latin1')).toMatch(/^(?:(?:[1-9a-f][0-9a-f]*)\r\n[a-g]+\r\n)+0\r\n/);
      expect(response.rawBody.toString('latin1')).not.toContain(';');
      expect(response.trailers).toEqual([['X-Checksum', '9']]);
      expect(header(response, 'content-length')).toBeUndefined();
    });

    test('a 101 without Upgrade: websocket is a 502, never a tunnel', async () => {
      up.handler = (_req, res) => {
        res.write('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n');
        res.finished = true;
      };
      const client = await RawClient.open(port);
      client.write('GET /public HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      const response = await client.response();
      client.destroy();
      expect(response.status).toBe(502);
    });
  });
});
