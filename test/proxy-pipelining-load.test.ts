/**
 * Pipelined requests through the proxy are answered in order (even when a
 * later one's upstream answers first), and a bounded load — 20 000 requests
 * over 100 keep-alive connections — where every response reaches the client
 * that asked for it.
 */
import type { Server } from '../dist/index';
import { startProxy } from './helpers/server';
import { RawClient, closeAll, header, requestHead, sleep, startEchoUpstream, startRecordingUpstream } from './helpers/upstreams';

let proxy: Server;
let port: number;

beforeAll(async () => {
  const marker = await startRecordingUpstream(async (req, res) => {
    if (req.target.startsWith('/slow')) await sleep(300);
    res.send(200, [['X-Marker', req.target]], `marker=${req.target} body=${req.body.toString()}`);
  });
  const slow = await startRecordingUpstream(async (req, res) => {
    await sleep(250);
    res.send(200, [], `marker=${req.target}`);
  });
  const [e1, e2] = await Promise.all([startEchoUpstream('e1'), startEchoUpstream('e2')]);
  proxy = await startProxy(
    {
      drain_timeout_ms: 1000,
      max_connections: 1000,
      routes: [
        { path: '/', upstream: marker.url },
        { path: '/other-slow', upstream: slow.url },
        { path: '/load', upstream: [e1.url, e2.url] },
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

test('pipelined requests in one write are answered in order', async () => {
  const client = await RawClient.open(port);
  const methods: string[] = [];
  let batch = '';
  for (let i = 0; i < 12; i++) {
    if (i % 4 === 1) {
      batch += `POST /p${i} HTTP/1.1\r\nHost: t\r\nContent-Length: ${String(i).length}\r\n\r\n${i}`;
      methods.push('POST');
    } else if (i % 4 === 3) {
      batch += requestHead('HEAD', `/p${i}`, []);
      methods.push('HEAD');
    } else {
      batch += requestHead('GET', `/p${i}`, []);
      methods.push('GET');
    }
  }
  client.write(batch);
  const responses = await client.responses(methods, 10_000);
  responses.forEach((res, i) => {
    expect([i, res.status, header(res, 'x-marker')]).toEqual([i, 200, `/p${i}`]);
    if (methods[i] === 'GET') expect(res.body.toString()).toBe(`marker=/p${i} body=`);
    if (methods[i] === 'POST') expect(res.body.toString()).toBe(`marker=/p${i} body=${i}`);
    if (methods[i] === 'HEAD') expect(res.body.length).toBe(0);
  });
  client.destroy();
});

test('pipelined requests stay in order when an earlier one is slower (same and different upstreams)', async () => {
  const client = await RawClient.open(port);
  const targets = ['/slow-1', '/fast-1', '/other-slow/1', '/fast-2', '/slow-2', '/fast-3'];
  client.write(targets.map((t) => requestHead('GET', t, [])).join(''));
  const responses = await client.responses(targets.map(() => 'GET'), 10_000);
  expect(responses.map((r) => /marker=(\S+)/.exec(r.body.toString())?.[1])).toEqual(targets);
  client.destroy();
});

test('pipelined requests split at odd byte boundaries are answered in order', async () => {
  const client = await RawClient.open(port);
  const raw = Array.from({ length: 6 }, (_, i) => requestHead('GET', `/split${i}`, [['X-Pad', 'p'.repeat(i * 37)]])).join('');
  for (let at = 0; at < raw.length; at += 13) {
    client.write(raw.slice(at, at + 13));
    if (at % 91 === 0) await sleep(1);
  }
  const responses = await client.responses(Array(6).fill('GET'), 10_000);
  expect(responses.map((r) => header(r, 'x-marker'))).toEqual(Array.from({ length: 6 }, (_, i) => `/split${i}`));
  client.destroy();
});

test('20 000 requests over 100 keep-alive connections: every response reaches the client that asked', async () => {
  const CONNECTIONS = 100;
  const PER_CONNECTION = 200;
  const started = Date.now();
  const mismatches: string[] = [];
  let done = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, c) => {
      const client = await RawClient.open(port);
      try {
        for (let i = 0; i < PER_CONNECTION; i++) {
          const id = `c${c}-r${i}`;
          client.write(requestHead('GET', `/load/x?id=${id}`, [['X-Request-Id', id]]));
          const res = await client.response('GET', 10_000);
          const body = res.body.toString();
          if (res.status !== 200 || !body.startsWith(`id=${id} `) || header(res, 'x-request-id') !== id) {
            mismatches.push(`${id}: ${res.status} ${header(res, 'x-request-id')} ${body}`);
          }
          done++;
        }
      } finally {
        client.destroy();
      }
    }),
  );
  expect(mismatches.slice(0, 10)).toEqual([]);
  expect(done).toBe(CONNECTIONS * PER_CONNECTION);
  expect(Date.now() - started).toBeLessThan(30_000);
}, 60_000);

test('pipelined load: 50 connections × 40 requests in batches of 5, ids matched in order', async () => {
  const mismatches: string[] = [];
  await Promise.all(
    Array.from({ length: 50 }, async (_, c) => {
      const client = await RawClient.open(port);
      try {
        for (let batch = 0; batch < 8; batch++) {
          const ids = Array.from({ length: 5 }, (_, k) => `p${c}-${batch}-${k}`);
          client.write(ids.map((id) => requestHead('GET', `/load/y?id=${id}`, [])).join(''));
          const responses = await client.responses(ids.map(() => 'GET'), 10_000);
          responses.forEach((res, k) => {
            if (!res.body.toString().startsWith(`id=${ids[k]} `)) mismatches.push(`${ids[k]}: ${res.body.toString()}`);
          });
        }
      } finally {
        client.destroy();
      }
    }),
  );
  expect(mismatches.slice(0, 10)).toEqual([]);
}, 60_000);
