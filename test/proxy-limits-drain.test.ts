/**
 * Limits and draining on proxy routes: max_body_bytes → 413 with nothing
 * forwarded (Content-Length) or no complete request upstream (chunked);
 * a graceful stop lets an in-flight proxied request finish, refuses new
 * connections, and never hands a request to an upstream after the drain.
 */
import net from 'node:net';
import type { Server } from '../dist/index';
import { startProxy } from './helpers/server';
import { RawClient, closeAll, errorBody, header, requestHead, sleep, startRecordingUpstream } from './helpers/upstreams';

afterAll(closeAll);

test('max_body_bytes on a proxy route: 413 for a Content-Length over it (nothing forwarded), for a chunked body over it (no complete request upstream)', async () => {
  const up = await startRecordingUpstream();
  const proxy = await startProxy({ drain_timeout_ms: 1000, max_body_bytes: 1000, routes: [{ path: '/', upstream: up.url }] }, false);
  try {
    const port = proxy.address().port;
    const client = await RawClient.open(port);
    client.write(`POST /big HTTP/1.1\r\nHost: p\r\nContent-Length: 5000\r\n\r\n${'a'.repeat(5000)}`);
    const res = await client.response('POST');
    expect(res.status).toBe(413);
    expect(errorBody(res)).toMatchObject({ status: 413 });
    client.destroy();
    await sleep(50);
    expect(up.bytesReceived).toBe(0);

    const chunked = await RawClient.open(port);
    chunked.write('POST /big-chunked HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n' + ('400\r\n' + 'z'.repeat(1024) + '\r\n').repeat(3) + '0\r\n\r\n');
    await chunked.waitFor(() => chunked.closed || /^HTTP\/1\.1 \d{3}/.test(chunked.data.toString('latin1')), 5000, 'an answer');
    expect(chunked.data.toString('latin1')).toMatch(/^HTTP\/1\.1 413 /);
    chunked.destroy();
    await sleep(50);
    expect(up.requests.filter((r) => r.target === '/big-chunked')).toHaveLength(0);

    // A body within the limit still goes through.
    const ok = await RawClient.open(port);
    ok.write(`POST /small HTTP/1.1\r\nHost: p\r\nContent-Length: 1000\r\n\r\n${'s'.repeat(1000)}`);
    expect((await ok.response('POST')).status).toBe(200);
    ok.destroy();
  } finally {
    await closeAll();
    await proxy.stop();
  }
});

test('graceful stop: an in-flight proxied request finishes (Connection: close), new connections are refused', async () => {
  const up = await startRecordingUpstream(async (req, res) => {
    if (req.target === '/slow') await sleep(600);
    res.send(200, [], `done ${req.target}`);
  });
  const proxy: Server = await startProxy({ drain_timeout_ms: 5000, routes: [{ path: '/', upstream: up.url }] }, false);
  const port = proxy.address().port;
  const busy = await RawClient.open(port);
  const idle = await RawClient.open(port);
  idle.write(requestHead('GET', '/warm', []));
  expect((await idle.response()).status).toBe(200);
  busy.write(requestHead('GET', '/slow', []));
  await up.waitForRequests(2);
  const stopped = proxy.stop();
  const res = await busy.response('GET', 5000);
  expect(res.status).toBe(200);
  expect(res.body.toString()).toBe('done /slow');
  expect(header(res, 'connection')).toMatch(/close/i);
  await idle.waitClosed(5000);
  await stopped;
  await expect(
    new Promise((resolve, reject) => net.connect({ host: '127.0.0.1', port }).once('connect', resolve).once('error', reject)),
  ).rejects.toThrow(/ECONNREFUSED/);
  expect(up.requests.map((r) => r.target)).toEqual(['/warm', '/slow']);
  busy.destroy();
  await closeAll();
});
