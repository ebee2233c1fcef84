/**
 * Differential test of parseRequestHead against Node's own llhttp.
 *
 * A seeded PRNG mutates valid request heads (CTLs, whitespace, duplicated
 * or removed fields, CL/TE mixes, versions, methods, targets, bare LF/CR,
 * obs-fold, ...). Each head goes to a real node:http server on loopback
 * (one server; a new raw connection per case) and to parseRequestHead.
 * The server echoes what llhttp parsed; llhttp rejections show up as
 * Node's 400/431 from the default clientError handler, or a closed socket.
 *
 * Asserted: zproxy never accepts a head llhttp rejects, and where both
 * accept they agree on method, target, version and fields (OWS-trimmed).
 *
 * The one deliberate exception: zproxy accepts any token as a method
 * (RFC 9110 §9.1: methods are extensible), llhttp only its fixed table
 * (http.METHODS). Such cases are counted apart and must differ only there.
 *
 * Where zproxy is deliberately stricter than llhttp (accepted by llhttp,
 * rejected by zproxy; counted, not asserted; DIFF_VERBOSE=1 lists them):
 *   - Host: more than one; not a valid authority (spaces, '@', '/',
 *     obs-text); missing on an HTTP/1.1 CONNECT; differing from an
 *     absolute-form target's authority;
 *   - request-target form must match the method: authority-form only and
 *     always with CONNECT, `*` only with OPTIONS; absolute-form only
 *     http/https, with no userinfo;
 *   - exactly one SP between request-line parts; a bare CR or LF before
 *     the request line (llhttp skips them; zproxy skips only CRLF);
 *   - HTTP/1.0 with Transfer-Encoding; Transfer-Encoding other than exactly
 *     `chunked` (llhttp takes e.g. `gzip, chunked`);
 *   - Connection must be a list of tokens.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { parseRequestHead } from '../dist/protocol/http1/request-head';
import { fieldsOf } from './fixtures/http1-feed';
import { mulberry32 } from './helpers/random';

const CASES = 2000;
const SEED = 0x5eed1234;
const MAX_HEADER_BYTES = 16384;
const CONCURRENCY = 48;
/** After this long without an answer, half-close: llhttp then reports an incomplete head. */
const FIN_AFTER_MS = 150;
const CASE_TIMEOUT_MS = 3000;

// ---------------------------------------------------------------------------
// Seeded generator

interface Draft {
  prefix: string;
  method: string;
  target: string;
  version: string;
  lines: string[];
  eol: string;
}

const BASES: Draft[] = [
  { prefix: '', method: 'GET', target: '/', version: 'HTTP/1.1', lines: ['Host: example.com', 'User-Agent: diff/1.0', 'Accept: */*'], eol: '\r\n' },
  { prefix: '', method: 'POST', target: '/submit?x=1', version: 'HTTP/1.1', lines: ['Host: example.com', 'Content-Length: 5', 'Content-Type: text/plain'], eol: '\r\n' },
  { prefix: '', method: 'POST', target: '/upload', version: 'HTTP/1.1', lines: ['Host: example.com', 'Transfer-Encoding: chunked'], eol: '\r\n' },
  { prefix: '', method: 'GET', target: '/old', version: 'HTTP/1.0', lines: ['Accept: text/html'], eol: '\r\n' },
  { prefix: '', method: 'OPTIONS', target: '*', version: 'HTTP/1.1', lines: ['Host: example.com'], eol: '\r\n' },
  { prefix: '', method: 'CONNECT', target: 'example.com:443', version: 'HTTP/1.1', lines: ['Host: example.com:443'], eol: '\r\n' },
  { prefix: '', method: 'GET', target: 'http://example.com/abs', version: 'HTTP/1.1', lines: ['Host: example.com'], eol: '\r\n' },
  { prefix: '', method: 'GET', target: '/ws', version: 'HTTP/1.1', lines: ['Host: example.com', 'Connection: Upgrade', 'Upgrade: websocket'], eol: '\r\n' },
  { prefix: '', method: 'PUT', target: '/a/b%20c', version: 'HTTP/1.1', lines: ['Host: example.com:8080', 'Content-Length: 0', 'Expect: 100-continue', 'Connection: keep-alive'], eol: '\r\n' },
];

const METHODS = ['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'PROPFIND', 'M-SEARCH', 'PURGE', 'QUERY', 'get', 'Get', 'FOO', 'G(ET', 'GE T', 'GET\x00', '', 'PRI', 'G@T', 'GET/', 'X'];
const TARGETS = [
  '/', '/a/b?c=d&e', '*', 'http://example.com/x', 'https://example.com', 'http://other.com/', 'HTTP://EXAMPLE.COM/', 'example.com:443',
  '/a b', '/a\tb', '/\x01', '/\x7f', '/caf\xe9', '/a#frag', '//x', 'http://u@example.com/', '', '/%zz', 'a/b', '/?', '/\x0c', 'http://[::1]:80/',
  'http://example.com?q', 'ftp://example.com/', 'http:/x', '/a"b', '/{x}|^`', 'http://exa mple.com/', 'example.com', ':443',
];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.0', 'HTTP/1.2', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/3.0', 'http/1.1', 'HTTP/1.1 ', 'HTTP/1', 'HTTP/11', 'HTTP/1.10', 'HTTP/1.x', 'HTTPS/1.1', ' HTTP/1.1'];
const FIELDS = [
  'Host: example.com', 'Host: other.com', 'Host:', 'Host: example.com:443', 'Host: [::1]', 'Host: a b', 'Host: user@example.com',
  'Content-Length: 5', 'Content-Length: 0', 'Content-Length: 5, 5', 'Content-Length: 5,6', 'Content-Length: +5', 'Content-Length: -1',
  'Content-Length: 0x5', 'Content-Length: 99999999999999999999', 'Content-Length:  7 ', 'Content-Length:', 'Content-Length: 1 2',
  'Transfer-Encoding: chunked', 'Transfer-Encoding: xchunked', 'Transfer-Encoding: chunked, identity', 'Transfer-Encoding: gzip, chunked',
  'Transfer-encoding: CHUNKED', 'Transfer-Encoding:\tchunked', 'Transfer-Encoding : chunked', 'Transfer-Encoding: chunked,', 'Transfer-Encoding: identity',
  'Transfer-Encoding:', 'Transfer-Encoding: chunked\x0b', 'Connection: close', 'Connection: keep-alive', 'Connection: Upgrade', 'Connection: close, x-a',
  'Connection: ,', 'Upgrade: websocket', 'Expect: 100-continue', 'Expect: nope', 'X-Empty:', ': novalue', 'X Y: z', 'X-Obs: a\x80\xffb', 'X-Del: a\x7fb',
  'TE: trailers', 'Keep-Alive: timeout=5', 'X-Tab:\tv\t', 'X-Quote: "a, b"', 'X-Long: ' + 'v'.repeat(200), 'x-lower: 1', 'X-UPPER: 2', 'Cookie: a=b; c=d',
];
const CTLS = [0x00, 0x01, 0x07, 0x08, 0x0b, 0x0c, 0x0e, 0x1b, 0x1f, 0x7f];
const EOLS = ['\n', '\r', '\r\r\n', ' \r\n', '\n\r', '\r\n\r\n'];

function generate(rand: () => number): string {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)];
  const base = pick(BASES);
  const d: Draft = { ...base, lines: [...base.lines] };
  const insertAt = (s: string, what: string): string => {
    const i = Math.floor(rand() * (s.length + 1));
    return s.slice(0, i) + what + s.slice(i);
  };
  const anyLine = (): number => Math.floor(rand() * d.lines.length);
  const lineEnds: Array<string | undefined> = [];
  let rawEdits = 0;
  const mutations = rand() < 0.15 ? 0 : rand() < 0.6 ? 1 : 2 + Math.floor(rand() * 2);
  for (let m = 0; m < mutations; m++) {
    switch (Math.floor(rand() * 17)) {
      case 0: d.method = pick(METHODS); break;
      case 1: d.target = pick(TARGETS); break;
      case 2: d.version = pick(VERSIONS); break;
      case 3: case 4: d.lines.splice(Math.floor(rand() * (d.lines.length + 1)), 0, pick(FIELDS)); break;
      case 5: if (d.lines.length) d.lines.splice(anyLine(), 1); break;
      case 6: if (d.lines.length) { const i = anyLine(); d.lines.splice(i, 0, d.lines[i]); } break;
      case 7: if (d.lines.length) { const i = anyLine(); d.lines[i] = insertAt(d.lines[i], pick([' ', '\t', '  '])); } break;
      case 8: if (d.lines.length) { const i = anyLine(); d.lines[i] = insertAt(d.lines[i], String.fromCharCode(pick(CTLS))); } break;
      case 9: lineEnds[Math.floor(rand() * (d.lines.length + 2))] = pick(EOLS); break;
      case 10: d.lines.splice(Math.floor(rand() * (d.lines.length + 1)), 0, pick([' folded', '\tfolded', ' ', ' Transfer-Encoding: chunked'])); break;
      case 11: if (d.lines.length) { const i = anyLine(); const c = d.lines[i].indexOf(':'); if (c > 0) d.lines[i] = d.lines[i].slice(0, c) + pick([' ', '\t']) + d.lines[i].slice(c); } break;
      case 12: if (d.lines.length) { const i = anyLine(); d.lines[i] = rand() < 0.5 ? d.lines[i].toUpperCase() : d.lines[i].toLowerCase(); } break;
      case 13: d.prefix = pick(['\r\n', '\r\n\r\n', '\n', ' ', '\r']); break;
      case 14: d.target = insertAt(d.target, pick([' ', '\t', '\x00', '\x7f', '\x80', '#', '?', '%'])); break;
      case 15: d.method = insertAt(d.method, pick([' ', '\t', '\x00', '-', '_', '!', '(', 'a'])); break;
      case 16: rawEdits++; break;
    }
  }
  const all = [`${d.method} ${d.target} ${d.version}`, ...d.lines];
  let out = d.prefix;
  for (let i = 0; i < all.length; i++) out += all[i] + (lineEnds[i] ?? d.eol);
  out += lineEnds[all.length] ?? d.eol;
  for (let i = 0; i < rawEdits; i++) {
    const at = Math.floor(rand() * out.length);
    const byte = String.fromCharCode(rand() < 0.5 ? pick(CTLS) : Math.floor(rand() * 256));
    out = rand() < 0.5 ? out.slice(0, at) + byte + out.slice(at + 1) : out.slice(0, at) + byte + out.slice(at);
  }
  return out;
}

// ---------------------------------------------------------------------------
// The llhttp side

interface Echo {
  method: string;
  url: string;
  httpVersion: string;
  rawHeaders: string[];
}

function echoOf(req: http.IncomingMessage): string {
  return JSON.stringify({ method: req.method, url: req.url, httpVersion: req.httpVersion, rawHeaders: req.rawHeaders });
}

/** The echo travels base64-encoded in a header, so HEAD answers carry it too. */
function rawResponse(echo: string): string {
  return `HTTP/1.1 200 OK\r\nX-Echo: ${Buffer.from(echo).toString('base64')}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
}

let server: http.Server;
let port = 0;

beforeAll(async () => {
  const answer = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.writeHead(200, { 'x-echo': Buffer.from(echoOf(req)).toString('base64'), connection: 'close', 'content-length': 0 });
    res.end();
  };
  server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, insecureHTTPParser: false }, answer);
  server.on('checkContinue', answer);
  server.on('checkExpectation', answer);
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket) => socket.end(rawResponse(echoOf(req))));
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => socket.end(rawResponse(echoOf(req))));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function askLlhttp(input: Buffer): Promise<Echo | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1');
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(fin);
      clearTimeout(deadline);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const echo = /\r\nx-echo: ([A-Za-z0-9+/=]+)\r\n/i.exec(text);
      resolve(/^HTTP\/1\.[01] 200 /.test(text) && echo ? (JSON.parse(Buffer.from(echo[1], 'base64').toString('utf8')) as Echo) : null);
    };
    const fin = setTimeout(() => socket.end(), FIN_AFTER_MS);
    const deadline = setTimeout(finish, CASE_TIMEOUT_MS);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      // The first answer's head is all we need.
      if (Buffer.concat(chunks).indexOf('\r\n\r\n') >= 0) finish();
    });
    socket.on('error', () => finish());
    socket.on('close', () => finish());
    socket.write(input);
  });
}

// ---------------------------------------------------------------------------

const trimOws = (s: string): string => s.replace(/^[ \t]+|[ \t]+$/g, '');

test('parseRequestHead never accepts what llhttp rejects, and agrees where both accept', async () => {
  const rand = mulberry32(SEED);
  const inputs = Array.from({ length: CASES }, () => {
    const input = Buffer.from(generate(rand), 'latin1');
    // Both sides judge the same head: bytes after the head zproxy found (a body, or a
    // pipelined request the mutations made) would make llhttp answer for those instead.
    const ours = parseRequestHead(input, 0, input.length, { maxHeaderBytes: MAX_HEADER_BYTES });
    return ours.kind === 'head' ? input.subarray(0, ours.headEnd) : input;
  });
  const answers: Array<Echo | null> = new Array(CASES);
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < CASES) {
        const i = next++;
        answers[i] = await askLlhttp(inputs[i]);
      }
    }),
  );

  const knownMethods = new Set(http.METHODS);
  const problems: string[] = [];
  const stricter: string[] = [];
  const tally = { bothAccept: 0, bothReject: 0, zproxyStricter: 0, extensionMethod: 0 };
  for (let i = 0; i < CASES; i++) {
    const input = inputs[i];
    const ours = parseRequestHead(input, 0, input.length, { maxHeaderBytes: MAX_HEADER_BYTES });
    const theirs = answers[i];
    const show = JSON.stringify(input.toString('latin1'));
    if (ours.kind !== 'head') {
      if (theirs) {
        tally.zproxyStricter++;
        if (process.env.DIFF_VERBOSE) stricter.push(`${ours.kind === 'error' ? ours.reason : ours.kind}: ${show}`);
      }
      else tally.bothReject++;
      continue;
    }
    if (!theirs) {
      if (!knownMethods.has(ours.head.method)) {
        tally.extensionMethod++; // the documented exception
        continue;
      }
      problems.push(`accepted by zproxy, rejected by llhttp: ${show}`);
      continue;
    }
    tally.bothAccept++;
    const head = ours.head;
    const mine = {
      method: head.method,
      url: head.target,
      httpVersion: `1.${head.versionMinor}`,
      fields: fieldsOf(head).map(([n, v]) => [n, trimOws(v)]),
    };
    const raw = theirs.rawHeaders;
    const node = {
      method: theirs.method,
      url: theirs.url,
      httpVersion: theirs.httpVersion,
      fields: Array.from({ length: raw.length / 2 }, (_, k) => [raw[2 * k], trimOws(raw[2 * k + 1])]),
    };
    if (JSON.stringify(mine) !== JSON.stringify(node)) problems.push(`disagree on ${show}: zproxy ${JSON.stringify(mine)} llhttp ${JSON.stringify(node)}`);
  }
  // DIFF_VERBOSE=1 lists what zproxy rejects and llhttp accepts, with zproxy's reason.
  if (process.env.DIFF_VERBOSE) console.log(tally, stricter.sort().join('\n'));
  expect(problems.slice(0, 20)).toEqual([]);
  // The generator must exercise all sides.
  expect(tally.bothAccept).toBeGreaterThan(CASES / 5);
  expect(tally.bothReject).toBeGreaterThan(CASES / 5);
}, 60000);
