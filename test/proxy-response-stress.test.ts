/**
 * Generated responses through the proxy, byte for byte: small and large
 * bodies (Content-Length or chunked), hop-by-hop fields, 103s, upstream
 * writes split at random points, several requests pipelined on one client
 * connection that reads slowly. Each must reach the client exactly as
 * forwardResponseHead builds its head, followed by its body, in order:
 * whichever way the proxy made it (in place in the upstream read buffer,
 * in the worker scratch, or held for a later body) and however the kernel
 * took it. A chunked body is framed by the proxy itself (however the
 * upstream chunked it): its chunks must be canonical (lower-case hex, no
 * leading zero, no extension) and carry exactly the upstream's data.
 * Written by the review of the in-place response path.
 */
import net from 'node:net';
import type { Server } from '../dist/index';
import { parseResponseHead } from '../dist/protocol/http1/response-head';
import { forwardResponseHead } from '../dist/protocol/http1/forward-head';
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
    const expected: Expected[] = [];
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
      const fwd = forwardResponseHead(head.head, { requestId: `rid-${round}-${i}`, addRequestId: true, chunked, close: false, keepAliveHeader: false, edits: null });
      const interimOut = interim ? Buffer.from('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n', 'latin1') : Buffer.alloc(0);
      expected.push({ head: Buffer.concat([interimOut, fwd]), body, chunked });
      reqs += `GET /r${i} HTTP/1.1\r\nHost: h\r\nX-Request-Id: rid-${round}-${i}\r\n\r\n`;
    }
    const c = net.connect(port, '127.0.0.1');
    await new Promise((r) => c.once('connect', r));
    c.pause();
    const got: Buffer[] = [];
    c.on('data', (d) => got.push(d));
    c.write(reqs);
    await sleep(30);
    for (let i = 0; i < 400 && !complete(Buffer.concat(got), expected); i++) {
      c.resume();
      await sleep(5);
      c.pause();
      await sleep(5);
    }
    c.destroy();
    const out = Buffer.concat(got);
    const at = check(out, expected, round);
    expect(at).toBe(out.length); // nothing after the last response
  }
}, 120_000);

interface Expected {
  /** Interim responses and the final head, exactly. */
  head: Buffer;
  body: Buffer;
  chunked: boolean;
}

function complete(out: Buffer, expected: Expected[]): boolean {
  try {
    return check(out, expected, -1) === out.length;
  } catch {
    return false;
  }
}

/** Walks `out` through the expected responses; returns where the last ends. Throws on the first difference (or missing byte). */
function check(out: Buffer, expected: Expected[], round: number): number {
  let at = 0;
  const fail = (what: string): never => {
    throw new Error(`round ${round}: ${what} at ${at} of ${out.length}: ${JSON.stringify(out.subarray(Math.max(0, at - 40), at + 60).toString('latin1'))}`);
  };
  for (const e of expected) {
    if (!out.subarray(at, at + e.head.length).equals(e.head)) fail(`head differs from ${JSON.stringify(e.head.toString('latin1').slice(0, 200))}`);
    at += e.head.length;
    if (!e.chunked) {
      if (!out.subarray(at, at + e.body.length).equals(e.body)) fail('body differs');
      at += e.body.length;
      continue;
    }
    const data: Buffer[] = [];
    for (;;) {
      const lineEnd = out.indexOf('\r\n', at);
      if (lineEnd < 0) fail('chunk size line missing');
      const size = out.toString('latin1', at, lineEnd);
      if (!/^(0|[1-9a-f][0-9a-f]*)$/.test(size)) fail(`chunk size ${JSON.stringify(size)} is not canonical`);
      const n = parseInt(size, 16);
      at = lineEnd + 2;
      if (n === 0) break;
      data.push(out.subarray(at, at + n));
      at += n;
      if (out.toString('latin1', at, at + 2) !== '\r\n') fail('chunk data not followed by CRLF');
      at += 2;
    }
    if (out.toString('latin1', at, at + 2) !== '\r\n') fail('no empty trailer section');
    at += 2;
    if (!Buffer.concat(data).equals(e.body)) fail('chunked data differs');
  }
  return at;
}
