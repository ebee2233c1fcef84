/**
 * Generated responses through the proxy, byte for byte: small and large
 * bodies (Content-Length or chunked), hop-by-hop fields, 103s, upstream
 * writes split at random points, several requests pipelined on one client
 * connection that reads slowly. Each must reach the client exactly as
 * forwardResponseHead builds its head, followed by its body, in order:
 * whichever way the proxy made it (in place in the upstream read buffer,
 * in the worker scratch, or held for a later body) and however the kernel
 * took it. Written by the review of the in-place response path.
 */
import net from 'node:net';
import type { Server } from '../dist/index';
import { parseResponseHead } from '../dist/protocol/http1/response-head';
import { forwardResponseHead } from '../dist/proxy/forward-head';
import { startProxy } from './helpers/server';
import { mulberry32 } from './helpers/random';
import { sleep } from './helpers/upstreams';

const FIELDS: Array<[string, string]> = [
  ['Server', 'nginx'], ['Connection', 'keep-alive'], ['Connection', 'keep-alive, X-Hop'], ['Keep-Alive', 'timeout=5'],
  ['X-Hop', 'x'.repeat(80)], ['Proxy-Connection', 'keep-alive'], ['TE', 'trailers'], ['Set-Cookie', 'a=b'], ['X-Long', 'L'.repeat(300)],
];

let upstream: net.Server;
let proxy: Server;
let port: number;
const sockets = new Set<net.Socket>();
let plan: Array<{ bytes: Buffer; splits: number[] }> = [];

beforeAll(async () => {
  upstream = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let buf = Buffer.alloc(0);
    let busy = Promise.resolve();
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.indexOf('\r\n\r\n') >= 0) {
        buf = buf.subarray(buf.indexOf('\r\n\r\n') + 4);
        const p = plan.shift()!;
        busy = busy.then(async () => {
          let from = 0;
          for (const at of [...p.splits, p.bytes.length]) {
            if (at > from) s.write(p.bytes.subarray(from, at));
            from = at;
            await sleep(2);
          }
        });
      }
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  proxy = await startProxy({ routes: [{ path: '/', upstream: `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}` }] }, false);
  port = proxy.address().port;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  upstream.close();
  await proxy.stop();
});

test('generated responses, pipelined to a slow reader, arrive byte for byte', async () => {
  const rand = mulberry32(7);
  for (let round = 0; round < 30; round++) {
    const n = 1 + Math.floor(rand() * 6);
    const expected: Buffer[] = [];
    plan = [];
    let reqs = '';
    for (let i = 0; i < n; i++) {
      const fields = FIELDS.filter(() => rand() < 0.3);
      const size = rand() < 0.6 ? Math.floor(rand() * 200) : Math.floor(rand() * 40000);
      const body = Buffer.alloc(size, 0x61 + (i % 26));
      const chunked = rand() < 0.3;
      let wire: Buffer;
      if (chunked) {
        const parts: Buffer[] = [];
        for (let at = 0; at < size; ) {
          const len = Math.min(size - at, 1 + Math.floor(rand() * 5000));
          parts.push(Buffer.from(len.toString(16) + '\r\n'), body.subarray(at, at + len), Buffer.from('\r\n'));
          at += len;
        }
        parts.push(Buffer.from('0\r\n\r\n'));
        wire = Buffer.concat(parts);
      } else wire = body;
      const interim = rand() < 0.15 ? 'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n' : '';
      const headText = `HTTP/1.1 200 OK\r\n${fields.map(([k, v]) => `${k}: ${v}\r\n`).join('')}${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${size}`}\r\n\r\n`;
      const all = Buffer.concat([Buffer.from(interim + headText, 'latin1'), wire]);
      const splits: number[] = [];
      if (rand() < 0.5) splits.push(1 + Math.floor(rand() * (all.length - 1)));
      if (rand() < 0.3) splits.push(Math.floor(rand() * all.length));
      splits.sort((a, b) => a - b);
      plan.push({ bytes: all, splits });
      const head = parseResponseHead(Buffer.from(headText, 'latin1'), 0, headText.length, { maxHeaderBytes: 65536 });
      if (head.kind !== 'head') throw new Error(`the test's own head does not parse: ${headText}`);
      const fwd = forwardResponseHead(head.head, { requestId: `rid-${round}-${i}`, addRequestId: true, chunked, close: false, keepAliveHeader: false });
      const interimOut = interim ? Buffer.from('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n', 'latin1') : Buffer.alloc(0);
      expected.push(interimOut, fwd, wire);
      reqs += `GET /r${i} HTTP/1.1\r\nHost: h\r\nX-Request-Id: rid-${round}-${i}\r\n\r\n`;
    }
    const want = Buffer.concat(expected);
    const c = net.connect(port, '127.0.0.1');
    await new Promise((r) => c.once('connect', r));
    c.pause();
    const got: Buffer[] = [];
    c.on('data', (d) => got.push(d));
    c.write(reqs);
    await sleep(30);
    let total = 0;
    for (let i = 0; i < 400 && total < want.length; i++) {
      c.resume();
      await sleep(5);
      c.pause();
      await sleep(5);
      total = got.reduce((a, b) => a + b.length, 0);
    }
    c.destroy();
    const out = Buffer.concat(got);
    if (!out.equals(want)) {
      let k = 0;
      while (k < out.length && out[k] === want[k]) k++;
      throw new Error(`round ${round}: differs at ${k} of ${want.length} (got ${out.length}): got ${JSON.stringify(out.subarray(Math.max(0, k - 40), k + 60).toString('latin1'))} want ${JSON.stringify(want.subarray(Math.max(0, k - 40), k + 60).toString('latin1'))}`);
    }
  }
}, 120_000);
