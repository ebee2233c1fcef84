/**
 * Proxying on both listener runtimes (the native addon reads client bytes
 * into a reused per-worker buffer; the TypeScript fallback gets fresh
 * chunks): concurrent uploads and downloads compared by sha256, so a body
 * slice that outlives its read buffer would show up as corruption.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Server } from '../dist/index';
import { RUNTIMES, startProxy } from './helpers/server';
import { RawClient, type RecordingUpstream, closeAll, requestHead, sleep, startRecordingUpstream } from './helpers/upstreams';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe.each(RUNTIMES)('proxying (%s)', (_name, noNative) => {
  let up: RecordingUpstream;
  let proxy: Server;
  let port: number;
  const download = randomBytes(3 * 1024 * 1024);

  beforeAll(async () => {
    up = await startRecordingUpstream(async (req, res) => {
      if (req.method === 'POST') return res.send(200, [], sha256(req.body));
      return res.chunked(200, [], [download.subarray(0, 1_000_000), download.subarray(1_000_000, 2_000_000), download.subarray(2_000_000)]);
    });
    proxy = await startProxy({ drain_timeout_ms: 1000, routes: [{ path: '/', upstream: up.url }] }, noNative);
    port = proxy.address().port;
  });

  afterAll(async () => {
    await closeAll();
    await proxy?.stop();
  });

  test('20 concurrent uploads of 1 MiB in uneven writes, two per connection, arrive intact', async () => {
    await Promise.all(
      Array.from({ length: 10 }, async (_, c) => {
        const client = await RawClient.open(port);
        try {
          for (let r = 0; r < 2; r++) {
            const body = randomBytes(1024 * 1024);
            const chunked = (c + r) % 2 === 1;
            const head = chunked ? 'POST /u HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n' : `POST /u HTTP/1.1\r\nHost: p\r\nContent-Length: ${body.length}\r\n\r\n`;
            client.write(head);
            for (let at = 0, step = 1000 + c * 777; at < body.length; at += step) {
              const piece = body.subarray(at, at + step);
              client.write(chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece);
              if (at % (step * 64) === 0) await sleep(0);
            }
            if (chunked) client.write('0\r\n\r\n');
            const res = await client.response('POST', 15_000);
            expect(res.body.toString()).toBe(sha256(body));
          }
        } finally {
          client.destroy();
        }
      }),
    );
  }, 30_000);

  test('10 concurrent chunked downloads of 3 MiB arrive intact; pipelined GETs in order', async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const client = await RawClient.open(port);
        try {
          client.write(requestHead('GET', '/d1', []) + requestHead('GET', '/d2', []));
          const responses = await client.responses(['GET', 'GET'], 15_000);
          return responses.map((r) => sha256(r.body));
        } finally {
          client.destroy();
        }
      }),
    );
    for (const pair of results) expect(pair).toEqual([sha256(download), sha256(download)]);
  }, 30_000);
});
