/**
 * Real upstream servers for the proxy tests, all on 127.0.0.1 port 0.
 *
 * - RecordingUpstream: a raw `net` HTTP/1.1 server. It records every byte it
 *   receives (per connection, and per request: head + body exactly as sent),
 *   parses requests itself (Content-Length, chunked with trailers, pipelined,
 *   keep-alive), and answers each through a per-test handler with a
 *   RawResponder, which can produce every framing and every failure the proxy
 *   must cope with: Content-Length, chunked with trailers, close-delimited,
 *   1xx before the final response, 204/304, HEAD, delays, stalls mid-body,
 *   abrupt close or reset before or mid response, and invalid heads.
 * - startEchoUpstream: a node:http keep-alive server for load tests that
 *   echoes a per-request id.
 * - startBlackhole: a loopback port whose connects hang (accept queue full).
 *
 * Everything is closed by `close()` (open sockets destroyed) so jest exits on
 * its own; `closeAll()` closes whatever a test file started.
 */
import net from 'node:net';
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for `promise`, but at most `ms` (its timer cleared either way, so it never holds the test process open). */
export async function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Everything started here, closed by closeAll(). */
const started = new Set<{ close(): Promise<void> }>();

export async function closeAll(): Promise<void> {
  const all = [...started];
  started.clear();
  await Promise.all(all.map((s) => s.close().catch(() => undefined)));
}

// ---------------------------------------------------------------- requests

export interface RecordedRequest {
  /** 0-based over the whole server, in arrival order. */
  index: number;
  /** The connection it arrived on. */
  conn: UpstreamConnection;
  /** 0-based position on its connection. */
  seq: number;
  /** Head + body exactly as received (bytes). */
  raw: Buffer;
  /** The head as received, latin1, without the final CRLFCRLF. */
  head: string;
  method: string;
  target: string;
  version: string;
  /** Header fields as received: name case and order kept. */
  headers: Array<[string, string]>;
  /** The body bytes as received (chunk framing included when chunked). */
  rawBody: Buffer;
  /** The decoded body. */
  body: Buffer;
  chunked: boolean;
  trailers: Array<[string, string]>;
}

/** The first value of a header (case-insensitive name), or undefined. */
export function header(req: { headers: Array<[string, string]> }, name: string): string | undefined {
  const lower = name.toLowerCase();
  return req.headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

/** Every value of a header (case-insensitive name). */
export function headerAll(req: { headers: Array<[string, string]> }, name: string): string[] {
  const lower = name.toLowerCase();
  return req.headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

/** The header names in order, as received. */
export function headerNames(req: { headers: Array<[string, string]> }): string[] {
  return req.headers.map(([n]) => n);
}

function parseFields(lines: string[]): Array<[string, string]> {
  const fields: Array<[string, string]> = [];
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return fields;
}

// ---------------------------------------------------------------- connections

export class UpstreamConnection {
  readonly id: number;
  readonly socket: net.Socket;
  private receivedChunks: Buffer[] = [];
  private receivedLength = 0;
  /** Every byte received on this connection. */
  get received(): Buffer {
    if (this.receivedChunks.length > 1) this.receivedChunks = [Buffer.concat(this.receivedChunks)];
    return this.receivedChunks[0] ?? Buffer.alloc(0);
  }
  get receivedBytes(): number {
    return this.receivedLength;
  }
  addReceived(chunk: Buffer): void {
    this.receivedChunks.push(chunk);
    this.receivedLength += chunk.length;
  }
  requests: RecordedRequest[] = [];
  closedAt: number | null = null;
  /** Resolves when the socket closes (either side). */
  readonly closed: Promise<void>;
  /** True when the peer (the proxy) ended or reset the connection before this server closed it. */
  peerClosed = false;
  /** True when this server closed (or reset) the connection first. */
  closedLocally = false;
  constructor(id: number, socket: net.Socket) {
    this.id = id;
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.closedAt = Date.now();
      resolve();
    }));
  }
  get isClosed(): boolean {
    return this.closedAt !== null;
  }
  /** Called before this server ends or resets the connection itself. */
  markLocalClose(): void {
    if (!this.peerClosed) this.closedLocally = true;
  }
}

// ---------------------------------------------------------------- responder

export type HeaderList = Array<[string, string]> | Record<string, string>;

function renderHead(status: number, headers: HeaderList = [], reason?: string): string {
  const list = Array.isArray(headers) ? headers : Object.entries(headers);
  let head = `HTTP/1.1 ${status} ${reason ?? http.STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  for (const [n, v] of list) head += `${n}: ${v}\r\n`;
  return head + '\r\n';
}

/** Answers one request. All methods write raw bytes; nothing is added implicitly. */
export class RawResponder {
  /** Set once the response is complete (or the connection was given up). */
  finished = false;
  /** Set by close()/reset(): the connection goes away after this exchange. */
  closing = false;
  constructor(
    readonly req: RecordedRequest,
    readonly socket: net.Socket,
  ) {}

  get isHead(): boolean {
    return this.req.method === 'HEAD';
  }

  write(data: string | Buffer): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** A 1xx interim response. */
  interim(status = 100, headers: HeaderList = []): void {
    this.write(renderHead(status, headers));
  }

  /** A complete response with Content-Length (no body bytes for HEAD, 204, 304 unless `forceBody`). */
  send(status: number, headers: HeaderList = [], body: string | Buffer = '', options: { contentLength?: boolean; reason?: string } = {}): void {
    const buf = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
    const list = Array.isArray(headers) ? [...headers] : Object.entries(headers);
    const noBody = this.isHead || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (options.contentLength !== false && !list.some(([n]) => n.toLowerCase() === 'content-length') && status !== 204 && status !== 304) {
      list.push(['Content-Length', String(buf.length)]);
    }
    this.write(renderHead(status, list, options.reason));
    if (!noBody && buf.length > 0) this.write(buf);
    this.finished = true;
  }

  /** A JSON response. */
  json(status: number, value: unknown, headers: HeaderList = []): void {
    const list = Array.isArray(headers) ? [...headers] : Object.entries(headers);
    this.send(status, [['Content-Type', 'application/json'], ...list], JSON.stringify(value));
  }

  /** A chunked response: each element of `chunks` is one chunk; trailers after the last chunk. */
  async chunked(status: number, headers: HeaderList, chunks: Array<string | Buffer>, trailers: HeaderList = [], options: { gapMs?: number } = {}): Promise<void> {
    const list = Array.isArray(headers) ? [...headers] : Object.entries(headers);
    list.push(['Transfer-Encoding', 'chunked']);
    this.write(renderHead(status, list));
    if (this.isHead) {
      this.finished = true;
      return;
    }
    for (const chunk of chunks) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
      if (buf.length === 0) continue;
      this.write(`${buf.length.toString(16)}\r\n`);
      this.write(buf);
      this.write('\r\n');
      if (options.gapMs) await sleep(options.gapMs);
    }
    const trailerList = Array.isArray(trailers) ? trailers : Object.entries(trailers);
    this.write('0\r\n' + trailerList.map(([n, v]) => `${n}: ${v}\r\n`).join('') + '\r\n');
    this.finished = true;
  }

  /** A response with neither Content-Length nor chunked: the body ends when the connection closes. */
  closeDelimited(status: number, headers: HeaderList, body: string | Buffer): void {
    this.write(renderHead(status, headers));
    this.write(typeof body === 'string' ? Buffer.from(body, 'latin1') : body);
    this.close();
  }

  /** Head with Content-Length `total`, then only `partial` of the body, then nothing (a stall). */
  stallMidBody(status: number, total: number, partial: string | Buffer, headers: HeaderList = []): void {
    const list = Array.isArray(headers) ? [...headers] : Object.entries(headers);
    this.write(renderHead(status, [...list, ['Content-Length', String(total)]]));
    this.write(typeof partial === 'string' ? Buffer.from(partial, 'latin1') : partial);
    this.finished = true; // never completes; the connection is simply left open
    this.closing = true;
  }

  /** Head with Content-Length `total`, `partial` of the body, then an abrupt close (FIN) or reset (RST). */
  abortMidBody(status: number, total: number, partial: string | Buffer, how: 'close' | 'reset' = 'close', headers: HeaderList = []): void {
    const list = Array.isArray(headers) ? [...headers] : Object.entries(headers);
    this.write(renderHead(status, [...list, ['Content-Length', String(total)]]));
    this.write(typeof partial === 'string' ? Buffer.from(partial, 'latin1') : partial);
    if (how === 'reset') setTimeout(() => this.reset(), 20);
    else this.close();
  }

  /** Graceful close (FIN) after what was written. */
  close(): void {
    this.finished = true;
    this.closing = true;
    this.req.conn.markLocalClose();
    this.socket.end();
  }

  /** Abrupt reset (RST), dropping anything unsent. */
  reset(): void {
    this.finished = true;
    this.closing = true;
    this.req.conn.markLocalClose();
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  /** Never answer: the connection stays open until someone else closes it. */
  hang(): void {
    this.finished = true;
    this.closing = true;
  }
}

/** Heads a proxy must refuse (502). */
export const INVALID_RESPONSE_HEADS: Array<[string, string]> = [
  ['garbage instead of a status line', 'this is not http\r\n\r\n'],
  ['status code with two digits', 'HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n'],
  ['unknown version', 'HTTP/3.7 200 OK\r\nContent-Length: 0\r\n\r\n'],
  ['differing Content-Length values', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
  ['Content-Length and Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ['obs-fold in a header', 'HTTP/1.1 200 OK\r\nX-A: a\r\n folded\r\nContent-Length: 0\r\n\r\n'],
  ['space before colon', 'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok'],
  ['NUL in a header value', 'HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n'],
  ['bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
  ['negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'],
];

// ---------------------------------------------------------------- server

export type Handler = (req: RecordedRequest, res: RawResponder) => void | Promise<void>;

export interface RecordingOptions {
  /** Per-request handler; default: echo (200, JSON summary of the request). */
  handler?: Handler;
  /** Close connections idle (between requests) for this long. */
  idleCloseMs?: number;
  /** How idle connections are closed: FIN (default) or RST. */
  idleCloseHow?: 'fin' | 'reset';
  /** Answer `Expect: 100-continue` with 100 Continue as soon as the head arrives (default true). */
  autoContinue?: boolean;
}

/** The default answer: 200 with a JSON summary of what arrived. */
export const echoHandler: Handler = (req, res) => {
  res.json(200, { method: req.method, target: req.target, headers: req.headers, body: req.body.toString('latin1'), conn: req.conn.id, seq: req.seq }, [['X-Upstream-Conn', String(req.conn.id)]]);
};

export class RecordingUpstream {
  readonly server: net.Server;
  port = 0;
  handler: Handler;
  readonly connections: UpstreamConnection[] = [];
  readonly requests: RecordedRequest[] = [];
  private readonly options: RecordingOptions;
  private waiters: Array<{ count: number; resolve: () => void }> = [];
  private nextConnId = 0;

  constructor(options: RecordingOptions = {}) {
    this.options = options;
    this.handler = options.handler ?? echoHandler;
    this.server = net.createServer((socket) => this.onConnection(socket));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get authority(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Total connections accepted so far. */
  get connectionCount(): number {
    return this.connections.length;
  }

  get openConnections(): UpstreamConnection[] {
    return this.connections.filter((c) => !c.isClosed);
  }

  /** Every byte received, over all connections. */
  get bytesReceived(): number {
    return this.connections.reduce((sum, c) => sum + c.receivedBytes, 0);
  }

  /** All bytes received, concatenated in connection order (latin1). */
  receivedText(): string {
    return this.connections.map((c) => c.received.toString('latin1')).join('');
  }

  /** Forgets what was recorded (connections stay open). */
  reset(handler?: Handler): void {
    this.requests.length = 0;
    for (const c of this.connections) c.requests.length = 0;
    if (handler) this.handler = handler;
  }

  /** Resolves when at least `count` requests have arrived. */
  waitForRequests(count: number, timeoutMs = 5000): Promise<void> {
    if (this.requests.length >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = { count, resolve: () => { clearTimeout(timer); resolve(); } };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`upstream :${this.port} got ${this.requests.length} requests, expected ${count} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  listen(port = 0): Promise<this> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: '127.0.0.1', port }, () => {
        this.server.off('error', reject);
        this.port = (this.server.address() as net.AddressInfo).port;
        started.add(this);
        resolve(this);
      });
    });
  }

  /** Stops listening (new connects are refused) and destroys every open connection. */
  close(): Promise<void> {
    started.delete(this);
    for (const c of this.connections) {
      c.markLocalClose();
      c.socket.destroy();
    }
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
    });
  }

  /** Stops listening but keeps established connections. */
  stopListening(): Promise<void> {
    return new Promise((resolve) => (this.server.listening ? this.server.close(() => resolve()) : resolve()));
  }

  private onConnection(socket: net.Socket): void {
    const conn = new UpstreamConnection(this.nextConnId++, socket);
    this.connections.push(conn);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    let buffer: Buffer = Buffer.alloc(0);
    let queue: Promise<void> = Promise.resolve();
    let idleTimer: NodeJS.Timeout | null = null;
    let pending = 0;
    let gone = false;
    const armIdle = () => {
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = null;
      if (this.options.idleCloseMs !== undefined && pending === 0 && !gone) {
        idleTimer = setTimeout(() => {
          conn.markLocalClose();
          if (this.options.idleCloseHow === 'reset') socket.resetAndDestroy();
          else socket.end();
        }, this.options.idleCloseMs);
      }
    };
    socket.once('end', () => {
      if (!conn.closedLocally) conn.peerClosed = true;
    });
    socket.once('close', () => {
      if (!conn.closedLocally) conn.peerClosed = true;
      gone = true;
      if (idleTimer) clearTimeout(idleTimer);
    });
    // Parsing state for the request in progress.
    let state: 'head' | 'body' = 'head';
    let current: {
      start: number;
      head: string;
      method: string;
      target: string;
      version: string;
      headers: Array<[string, string]>;
      chunked: boolean;
      length: number;
      continued: boolean;
    } | null = null;

    const parse = () => {
      for (;;) {
        if (state === 'head') {
          // Skip blank lines between requests.
          while (buffer.length >= 2 && buffer[0] === 0x0d && buffer[1] === 0x0a) buffer = buffer.subarray(2);
          const end = buffer.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buffer.subarray(0, end).toString('latin1');
          const lines = head.split('\r\n');
          const [method = '', target = '', version = ''] = lines[0].split(' ');
          const headers = parseFields(lines.slice(1));
          const te = header({ headers }, 'transfer-encoding');
          const cl = header({ headers }, 'content-length');
          current = {
            start: 0,
            head,
            method,
            target,
            version,
            headers,
            chunked: te !== undefined && /chunked\s*$/i.test(te),
            length: cl !== undefined ? Number(cl) : 0,
            continued: false,
          };
          state = 'body';
          if (this.options.autoContinue !== false && /100-continue/i.test(header({ headers }, 'expect') ?? '')) {
            socket.write('HTTP/1.1 100 Continue\r\n\r\n');
            current.continued = true;
          }
          buffer = buffer.subarray(0); // keep the head: raw is sliced below
          current.start = end + 4;
        }
        if (state === 'body' && current) {
          const bodyStart = current.start;
          let bodyEnd = -1;
          let body: Buffer = Buffer.alloc(0);
          let trailers: Array<[string, string]> = [];
          if (current.chunked) {
            const decoded = decodeChunkedLenient(buffer, bodyStart);
            if (!decoded) return;
            bodyEnd = decoded.end;
            body = decoded.data;
            trailers = decoded.trailers;
          } else {
            if (buffer.length < bodyStart + current.length) return;
            bodyEnd = bodyStart + current.length;
            body = Buffer.from(buffer.subarray(bodyStart, bodyEnd));
          }
          const req: RecordedRequest = {
            index: this.requests.length,
            conn,
            seq: conn.requests.length,
            raw: Buffer.from(buffer.subarray(0, bodyEnd)),
            head: current.head,
            method: current.method,
            target: current.target,
            version: current.version,
            headers: current.headers,
            rawBody: Buffer.from(buffer.subarray(bodyStart, bodyEnd)),
            body,
            chunked: current.chunked,
            trailers,
          };
          buffer = buffer.subarray(bodyEnd);
          state = 'head';
          current = null;
          this.requests.push(req);
          conn.requests.push(req);
          pending++;
          if (idleTimer) clearTimeout(idleTimer);
          idleTimer = null;
          const ready = this.waiters.filter((w) => this.requests.length >= w.count);
          this.waiters = this.waiters.filter((w) => this.requests.length < w.count);
          for (const w of ready) w.resolve();
          queue = queue.then(async () => {
            if (gone) return;
            const res = new RawResponder(req, socket);
            try {
              await this.handler(req, res);
            } catch (err) {
              if (!res.finished) res.send(500, [], String(err));
            }
            pending--;
            const wantsClose = /\bclose\b/i.test(header(req, 'connection') ?? '') || req.version === 'HTTP/1.0';
            if (res.closing) return;
            if (wantsClose) {
              conn.markLocalClose();
              socket.end();
              gone = true;
              return;
            }
            armIdle();
          });
        }
      }
    };
    // Chunks not yet joined into `buffer` (a large Content-Length body is joined once, when complete).
    let waiting: Buffer[] = [];
    let waitingBytes = 0;
    socket.on('data', (chunk: Buffer) => {
      conn.addReceived(chunk);
      waiting.push(chunk);
      waitingBytes += chunk.length;
      if (state === 'body' && current && !current.chunked && buffer.length + waitingBytes < current.start + current.length) return;
      buffer = buffer.length === 0 && waiting.length === 1 ? waiting[0] : Buffer.concat([buffer, ...waiting]);
      waiting = [];
      waitingBytes = 0;
      if (idleTimer && pending === 0 && state === 'head') {
        clearTimeout(idleTimer);
        idleTimer = null;
      }
      parse();
    });
    armIdle();
  }
}

/** Decodes a chunked body starting at `start`; null while incomplete. Lenient (it is a test server). */
function decodeChunkedLenient(buf: Buffer, start: number): { end: number; data: Buffer; trailers: Array<[string, string]> } | null {
  let at = start;
  const parts: Buffer[] = [];
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', at);
    if (lineEnd < 0) return null;
    const size = parseInt(buf.subarray(at, lineEnd).toString('latin1').split(';')[0], 16);
    if (Number.isNaN(size)) throw new Error(`upstream: bad chunk size ${JSON.stringify(buf.subarray(at, lineEnd).toString('latin1'))}`);
    at = lineEnd + 2;
    if (size === 0) {
      const trailers: string[] = [];
      for (;;) {
        const e = buf.indexOf('\r\n', at);
        if (e < 0) return null;
        const line = buf.subarray(at, e).toString('latin1');
        at = e + 2;
        if (line === '') return { end: at, data: Buffer.concat(parts), trailers: parseFields(trailers) };
        trailers.push(line);
      }
    }
    if (buf.length < at + size + 2) return null;
    parts.push(Buffer.from(buf.subarray(at, at + size)));
    at += size + 2;
  }
}

export async function startRecordingUpstream(options: RecordingOptions | Handler = {}): Promise<RecordingUpstream> {
  const opts = typeof options === 'function' ? { handler: options } : options;
  return new RecordingUpstream(opts).listen();
}

// ---------------------------------------------------------------- node:http echo

export interface EchoUpstream {
  server: http.Server;
  port: number;
  url: string;
  /** Requests served. */
  count(): number;
  /** Connections accepted. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * A node:http keep-alive server: answers 200 with `id=<X-Request-Id or ?id>` and
 * `name=<name>` in the body (text/plain), so a client can check that its response is its own.
 * `delayMs` delays every answer.
 */
export function startEchoUpstream(name = 'echo', options: { delayMs?: number; status?: number } = {}): Promise<EchoUpstream> {
  let served = 0;
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      served++;
      const url = new URL(req.url ?? '/', 'http://x');
      const id = url.searchParams.get('id') ?? (req.headers['x-request-id'] as string | undefined) ?? '';
      const body = `id=${id} name=${name} method=${req.method} path=${url.pathname} bytes=${Buffer.concat(chunks).length}`;
      const answer = () => {
        res.writeHead(options.status ?? 200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'x-upstream': name });
        res.end(body);
      };
      if (options.delayMs) setTimeout(answer, options.delayMs);
      else answer();
    });
  });
  server.on('connection', (s) => {
    accepted++;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return new Promise((resolve) => {
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const port = (server.address() as net.AddressInfo).port;
      const handle: EchoUpstream = {
        server,
        port,
        url: `http://127.0.0.1:${port}`,
        count: () => served,
        connections: () => accepted,
        close: () => {
          started.delete(handle);
          for (const s of sockets) s.destroy();
          return new Promise((r) => (server.listening ? server.close(() => r()) : r()));
        },
      };
      started.add(handle);
      resolve(handle);
    });
  });
}

// ---------------------------------------------------------------- ports that refuse or hang

/** A loopback port that nothing listens on (bound, then released): connects are refused. */
export async function refusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Blackhole {
  port: number;
  url: string;
  close(): Promise<void>;
}

/**
 * A loopback port whose connects hang: a child process listens with backlog 1
 * and never accepts (its event loop is blocked), and the accept queue is
 * filled, so the kernel drops further SYNs. Rejects if a connect does not hang.
 */
export async function startBlackhole(): Promise<Blackhole> {
  const script = `
    const net = require('net');
    const s = net.createServer();
    s.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
      process.stdout.write(String(s.address().port) + '\\n', () => {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      });
    });`;
  const child: ChildProcess = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('blackhole child did not start')), 5000);
    child.stdout!.on('data', (c) => {
      out += c;
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(Number(out.trim()));
      }
    });
  });
  const fillers: net.Socket[] = [];
  const tryConnect = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      fillers.push(s);
      const timer = setTimeout(() => resolve(false), ms);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  const close = async () => {
    started.delete(handle);
    for (const s of fillers) s.destroy();
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  const handle: Blackhole = { port, url: `http://127.0.0.1:${port}`, close };
  started.add(handle);
  // Fill the accept queue until a connect hangs.
  for (let i = 0; i < 16; i++) {
    if (!(await tryConnect(300))) return handle;
  }
  await close();
  throw new Error('could not make a loopback connect hang');
}

// ---------------------------------------------------------------- raw client helpers

export interface ParsedResponse {
  status: number;
  /** Head without the final CRLFCRLF. */
  head: string;
  headers: Array<[string, string]>;
  /** Decoded body. */
  body: Buffer;
  /** Bytes of the body as framed on the wire. */
  rawBody: Buffer;
  trailers: Array<[string, string]>;
  framing: 'length' | 'chunked' | 'close' | 'none';
  /** Interim (1xx) heads seen before the final one. */
  interim: string[];
}

/**
 * Parses complete responses from `data` (a byte stream from the proxy) for requests with the given methods.
 * Returns the responses and the offset where parsing stopped. `closed` says the stream has ended
 * (a close-delimited body then ends at the end of the data).
 */
export function parseResponses(data: Buffer, methods: string[], closed = false): { responses: ParsedResponse[]; consumed: number; incomplete: boolean } {
  const responses: ParsedResponse[] = [];
  let at = 0;
  let interim: string[] = [];
  while (responses.length < methods.length) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end < 0) return { responses, consumed: at, incomplete: data.length > at };
    const head = data.subarray(at, end).toString('latin1');
    const lines = head.split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers = parseFields(lines.slice(1));
    const bodyStart = end + 4;
    if (status >= 100 && status < 200 && status !== 101) {
      interim.push(head);
      at = bodyStart;
      continue;
    }
    const method = methods[responses.length];
    const te = header({ headers }, 'transfer-encoding');
    const cl = header({ headers }, 'content-length');
    let response: ParsedResponse;
    if (method === 'HEAD' || status === 204 || status === 304) {
      response = { status, head, headers, body: Buffer.alloc(0), rawBody: Buffer.alloc(0), trailers: [], framing: 'none', interim };
      at = bodyStart;
    } else if (te !== undefined && /chunked/i.test(te)) {
      const decoded = decodeChunkedLenient(data, bodyStart);
      if (!decoded) return { responses, consumed: at, incomplete: true };
      response = { status, head, headers, body: decoded.data, rawBody: Buffer.from(data.subarray(bodyStart, decoded.end)), trailers: decoded.trailers, framing: 'chunked', interim };
      at = decoded.end;
    } else if (cl !== undefined) {
      const length = Number(cl);
      if (data.length < bodyStart + length) return { responses, consumed: at, incomplete: true };
      const body = Buffer.from(data.subarray(bodyStart, bodyStart + length));
      response = { status, head, headers, body, rawBody: body, trailers: [], framing: 'length', interim };
      at = bodyStart + length;
    } else {
      if (!closed) return { responses, consumed: at, incomplete: true };
      const body = Buffer.from(data.subarray(bodyStart));
      response = { status, head, headers, body, rawBody: body, trailers: [], framing: 'close', interim };
      at = data.length;
    }
    responses.push(response);
    interim = [];
  }
  return { responses, consumed: at, incomplete: false };
}

/**
 * A raw keep-alive client connection that reads framed responses one at a time.
 */
export class RawClient {
  /** Everything received and not yet consumed by `responses()`. */
  get data(): Buffer {
    return this.store.subarray(this.from, this.length);
  }
  set data(value: Buffer) {
    this.store = Buffer.from(value);
    this.from = 0;
    this.length = value.length;
  }
  /**
   * Received bytes live in a buffer that doubles when full, so appending a
   * chunk copies only that chunk: re-joining every chunk on each read made
   * multi-megabyte responses quadratic (and flaky under load).
   */
  private store: Buffer = Buffer.alloc(0);
  private from = 0;
  private length = 0;
  closed = false;
  private listeners: Array<() => void> = [];
  readonly ready: Promise<void>;
  constructor(readonly socket: net.Socket) {
    socket.on('error', () => undefined);
    socket.on('data', (c: Buffer) => {
      if (this.length + c.length > this.store.length) {
        const grown = Buffer.allocUnsafe(Math.max(2 * (this.length - this.from), this.length - this.from + c.length, 64 * 1024));
        this.store.copy(grown, 0, this.from, this.length);
        this.length -= this.from;
        this.from = 0;
        this.store = grown;
      }
      c.copy(this.store, this.length);
      this.length += c.length;
      this.kick();
    });
    socket.once('close', () => {
      this.closed = true;
      this.kick();
    });
    this.ready = new Promise((resolve, reject) => {
      if (!socket.connecting) return resolve();
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
  }

  static async open(port: number): Promise<RawClient> {
    const client = new RawClient(net.connect({ host: '127.0.0.1', port }));
    await client.ready;
    return client;
  }

  private kick(): void {
    const listeners = this.listeners;
    this.listeners = [];
    for (const l of listeners) l();
  }

  /** Waits until `predicate` holds (checked on every data/close); rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} not met within ${timeoutMs} ms; got ${JSON.stringify(this.data.toString('latin1').slice(0, 2000))}${this.closed ? ' (closed)' : ''}`)), timeoutMs);
      const check = () => {
        let ok = false;
        try {
          ok = predicate();
        } catch (err) {
          clearTimeout(timer);
          return reject(err);
        }
        if (ok) {
          clearTimeout(timer);
          resolve();
        } else if (this.closed) {
          clearTimeout(timer);
          try {
            if (predicate()) return resolve();
          } catch (err) {
            return reject(err);
          }
          reject(new Error(`closed before ${what}; got ${JSON.stringify(this.data.toString('latin1').slice(0, 2000))}`));
        } else {
          this.listeners.push(check);
        }
      };
      check();
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Reads the next `methods.length` responses (consuming them). */
  async responses(methods: string[], timeoutMs = 5000): Promise<ParsedResponse[]> {
    let result: ParsedResponse[] = [];
    let consumed = 0;
    await this.waitFor(() => {
      const parsed = parseResponses(this.data, methods, this.closed);
      if (parsed.responses.length < methods.length) return false;
      result = parsed.responses;
      consumed = parsed.consumed;
      return true;
    }, timeoutMs, `${methods.length} response(s)`);
    this.from += consumed;
    return result;
  }

  async response(method = 'GET', timeoutMs = 5000): Promise<ParsedResponse> {
    return (await this.responses([method], timeoutMs))[0];
  }

  /** Resolves once the proxy closed the connection. */
  waitClosed(timeoutMs = 5000): Promise<void> {
    return this.waitFor(() => this.closed, timeoutMs, 'close');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** One request on a fresh connection; returns the parsed response (closes after). */
export async function request(port: number, raw: string | Buffer, method = 'GET', timeoutMs = 5000): Promise<ParsedResponse> {
  const client = await RawClient.open(port);
  try {
    client.write(raw);
    return await client.response(method, timeoutMs);
  } finally {
    client.destroy();
  }
}

/** A simple request head. */
export function requestHead(method: string, target: string, headers: HeaderList = [], host = 'proxy.test'): string {
  const list = Array.isArray(headers) ? headers : Object.entries(headers);
  return `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\n${list.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
}

/** The JSON error body of a response, parsed. */
export function errorBody(response: ParsedResponse): { error: string; status: number; request_id: string } {
  return JSON.parse(response.body.toString('utf8'));
}
