/**
 * The route's `timeout_ms` under backpressure: while the client has not
 * taken what was relayed, zproxy does not read the upstream, and the
 * deadline measures the client's silence instead of the upstream's. A client
 * that takes nothing for `timeout_ms` loses the exchange (connection closed,
 * upstream connection closed, not counted against the target); an upstream
 * that stalls still times out once the client has caught up. No exchange is
 * ever left without a timer. HTTP/1 and HTTP/2 clients, native and fallback.
 */
import http2 from 'node:http2';
import { RawClient, requestHead, sleep, startRecordingUpstream, waitAtMost, type RawResponder, type RecordedRequest } from './helpers/upstreams';
import { proxyFor } from './helpers/proxy-per-test';
import { RUNTIMES } from './helpers/server';

const MiB = 1024 * 1024;
const PART = Buffer.alloc(8 * MiB, 0x61);

/** `/length`: Content-Length 64 MiB, 8 MiB sent, then silence; `/chunked`: the same, chunked; anything else: 200 "ok". */
function stallingHandler(req: RecordedRequest, res: RawResponder): void {
  if (req.target === '/length') return res.stallMidBody(200, 64 * MiB, PART);
  if (req.target === '/chunked') {
    res.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
    res.write(`${PART.length.toString(16)}\r\n`);
    res.write(PART);
    res.write('\r\n');
    return res.hang();
  }
  res.send(200, [], 'ok');
}

describe.each(RUNTIMES)('%s', (_name, noNative) => {
  async function setUp(timeoutMs = 400): Promise<{ port: number; stalling: Awaited<ReturnType<typeof startRecordingUpstream>>; other: Awaited<ReturnType<typeof startRecordingUpstream>> }> {
    const stalling = await startRecordingUpstream(stallingHandler);
    const other = await startRecordingUpstream();
    // max_fails 1: an exchange blamed on `stalling` would eject it, and the GETs after would all go to `other`.
    const port = await proxyFor(
      [{ path: '/', timeout_ms: timeoutMs, upstream: { targets: [{ url: stalling.url }, { url: other.url }], max_fails: 1, fail_timeout_ms: 60_000 } }],
      { thread_count: 1, connection_timeout_ms: 60_000 },
      noNative,
    );
    return { port, stalling, other };
  }

  /** Round robin starts at `stalling`: two GETs reach each target once while neither is ejected. */
  async function bothServe(port: number, stalling: { requests: RecordedRequest[] }, other: { requests: RecordedRequest[] }): Promise<void> {
    const before = [stalling.requests.length, other.requests.length];
    const client = await RawClient.open(port);
    for (let i = 0; i < 4; i++) {
      client.write(requestHead('GET', `/after${i}`, []));
      expect((await client.response('GET', 5000)).status).toBe(200);
    }
    client.destroy();
    expect([stalling.requests.length - before[0], other.requests.length - before[1]]).toEqual([2, 2]);
  }

  test.each(['/length', '/chunked'])('HTTP/1: a client that stops reading %s mid-body is closed after timeout_ms, the upstream connection too; the target is not blamed', async (path) => {
    const { port, stalling, other } = await setUp();
    const client = await RawClient.open(port);
    client.write(requestHead('GET', path, []));
    await client.waitFor(() => client.data.length > 0, 5000, 'the response head');
    client.socket.pause(); // reads nothing more, ever
    await stalling.waitForRequests(1);
    const upstreamConn = stalling.requests[0].conn;
    await waitAtMost(upstreamConn.closed, 10_000);
    expect(upstreamConn.peerClosed).toBe(true);
    client.destroy();
    await bothServe(port, stalling, other);
  });

  test('HTTP/1: an upstream that stalls while the client reads slowly still times out, once the client has caught up, and is blamed', async () => {
    const { port, stalling, other } = await setUp(1500);
    const client = await RawClient.open(port);
    client.write(requestHead('GET', '/chunked', []));
    await client.waitFor(() => client.data.length > 0, 5000, 'the response head');
    // Slow, never silent for a whole timeout_ms (1.5 s): reads in short bursts, 250 ms apart.
    while (!client.closed) {
      client.socket.pause();
      await sleep(250);
      client.socket.resume();
      await sleep(100);
    }
    expect(client.data.length).toBeGreaterThan(PART.length);
    expect(client.data.toString('latin1')).not.toContain('\r\n0\r\n\r\n');
    await waitAtMost(stalling.requests[0].conn.closed, 5000);
    expect(stalling.requests[0].conn.peerClosed).toBe(true);
    // The upstream's silence was its failure (max_fails 1): it is out, and the GETs after all go to the other target.
    const before = other.requests.length;
    const next = await RawClient.open(port);
    for (let i = 0; i < 4; i++) {
      next.write(requestHead('GET', `/next${i}`, []));
      expect((await next.response('GET', 5000)).status).toBe(200);
    }
    next.destroy();
    expect(other.requests.length - before).toBe(4);
  });

  test('HTTP/2 client: a stream that stops reading mid-body is reset after timeout_ms, its upstream connection closed; the session goes on', async () => {
    const { port, stalling, other } = await setUp();
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    try {
      const stream = session.request({ ':path': '/chunked' });
      stream.on('error', () => undefined);
      const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
      await new Promise((resolve) => stream.once('response', resolve));
      stream.pause(); // its flow-control window fills, and nothing more is read
      await stalling.waitForRequests(1);
      const upstreamConn = stalling.requests[0].conn;
      await waitAtMost(upstreamConn.closed, 10_000);
      expect(upstreamConn.peerClosed).toBe(true);
      stream.resume();
      await waitAtMost(closed, 5000);
      expect(stream.closed).toBe(true);
      expect(stream.rstCode).not.toBe(0);
      const next = session.request({ ':path': '/next' });
      next.resume();
      const status = await new Promise((resolve) => next.once('response', (headers) => resolve(headers[':status'])));
      expect(status).toBe(200);
    } finally {
      session.destroy();
    }
    await bothServe(port, stalling, other);
  });
});
