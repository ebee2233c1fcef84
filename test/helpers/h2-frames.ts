/**
 * A raw HTTP/2 client for frame-level tests: writes frames byte by byte as
 * a test wants them (including ones a real client never sends) and records
 * every frame the server sends. Header blocks are encoded with plain HPACK
 * literals (no Huffman), so any byte can go into a name or value; response
 * header blocks are not decoded (tests look at frame types, flags, codes
 * and DATA).
 */
import net from 'node:net';
import tls from 'node:tls';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const F = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
export const E = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, FLOW_CONTROL_ERROR: 3, STREAM_CLOSED: 5, REFUSED_STREAM: 7, CANCEL: 8, COMPRESSION_ERROR: 9, CONNECT_ERROR: 10 } as const;

export interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

export function frame(type: number, flags: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(id, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1); `first` holds the representation's bits. */
export function hpackInteger(prefixBits: number, first: number, n: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (n < max) return Buffer.from([first | n]);
  const out = [first | max];
  n -= max;
  while (n >= 128) {
    out.push((n % 128) + 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1');
  return Buffer.concat([hpackInteger(7, 0, bytes.length), bytes]);
}

export type Field = [name: string, value: string];

/** How a field is encoded: a literal without indexing (default), with incremental indexing, or a reference to a table index. */
export type Encoded = Field | { field: Field; indexing: true } | { index: number };

export function headerBlock(fields: Encoded[]): Buffer {
  return Buffer.concat(
    fields.map((f) => {
      if ('index' in f) return hpackInteger(7, 0x80, f.index);
      const [name, value] = Array.isArray(f) ? f : f.field;
      const indexing = !Array.isArray(f);
      return Buffer.concat([Buffer.from([indexing ? 0x40 : 0x00]), hpackString(name), hpackString(value)]);
    }),
  );
}

/** A request's pseudo-header fields. */
export function requestFields(path = '/', method = 'GET', authority = 'h2.test'): Field[] {
  return [
    [':method', method],
    [':scheme', 'http'],
    [':path', path],
    [':authority', authority],
  ];
}

export class H2Raw {
  readonly frames: Frame[] = [];
  closed = false;
  /** Bytes received after the connection closed without being frames (e.g. an HTTP/1 answer). */
  private inbox = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  /** Send WINDOW_UPDATE for DATA received (on by default). */
  autoWindow = true;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.inbox = Buffer.concat([this.inbox, chunk]);
      for (;;) {
        if (this.inbox.length < 9) break;
        const length = this.inbox.readUIntBE(0, 3);
        if (this.inbox.length < 9 + length) break;
        const f: Frame = { type: this.inbox[3], flags: this.inbox[4], id: this.inbox.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(this.inbox.subarray(9, 9 + length)) };
        this.inbox = this.inbox.subarray(9 + length);
        this.frames.push(f);
        if (f.type === T.SETTINGS && (f.flags & F.ACK) === 0 && !socket.destroyed) socket.write(frame(T.SETTINGS, F.ACK, 0));
        // Like a real client, give the flow-control credit back for what arrived.
        if (f.type === T.DATA && f.payload.length > 0 && this.autoWindow && !socket.destroyed) {
          this.windowUpdate(0, f.payload.length);
          if ((f.flags & F.END_STREAM) === 0) this.windowUpdate(f.id, f.payload.length);
        }
      }
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Connects, sends the preface and an empty SETTINGS (unless `preface` is false). */
  static async connect(port: number, options: { tls?: boolean; preface?: boolean; settings?: Buffer } = {}): Promise<H2Raw> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = options.tls
        ? tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], rejectUnauthorized: false, servername: 'localhost' }, () => resolve(s))
        : net.connect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
    socket.setNoDelay(true);
    const raw = new H2Raw(socket);
    if (options.preface !== false) raw.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0, options.settings ?? Buffer.alloc(0))]));
    return raw;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  write(data: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  headers(id: number, fields: Encoded[], options: { endStream?: boolean; endHeaders?: boolean } = {}): void {
    const flags = (options.endStream ? F.END_STREAM : 0) | (options.endHeaders === false ? 0 : F.END_HEADERS);
    this.write(frame(T.HEADERS, flags, id, headerBlock(fields)));
  }

  /** A request: HEADERS (and DATA when `body` is given). */
  request(id: number, path = '/', options: { method?: string; body?: Buffer; extra?: Encoded[]; endStream?: boolean } = {}): void {
    const fields: Encoded[] = [...requestFields(path, options.method ?? (options.body ? 'POST' : 'GET')), ...(options.extra ?? [])];
    const endStream = options.endStream ?? options.body === undefined;
    this.headers(id, fields, { endStream: options.body === undefined && endStream });
    if (options.body) this.data(id, options.body, endStream);
  }

  data(id: number, payload: Buffer, endStream = false): void {
    this.write(frame(T.DATA, endStream ? F.END_STREAM : 0, id, payload));
  }

  rst(id: number, code: number): void {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(code);
    this.write(frame(T.RST_STREAM, 0, id, p));
  }

  ping(ack: boolean, opaque = Buffer.from('h2-tests')): void {
    this.write(frame(T.PING, ack ? F.ACK : 0, 0, opaque));
  }

  windowUpdate(id: number, increment: number): void {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(increment);
    this.write(frame(T.WINDOW_UPDATE, 0, id, p));
  }

  /** Resolves once `predicate` holds over the frames received (checked on every frame and on close). */
  async waitFor(predicate: (frames: Frame[], closed: boolean) => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.frames, this.closed)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what} not met within ${timeoutMs} ms; frames: ${this.describe()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The GOAWAY's error code, once one arrived (or the connection closed: null if none came). */
  async goaway(timeoutMs = 5000): Promise<number | null> {
    await this.waitFor((fs, closed) => closed || fs.some((f) => f.type === T.GOAWAY), timeoutMs, 'GOAWAY or close');
    const g = this.frames.find((f) => f.type === T.GOAWAY);
    return g ? g.payload.readUInt32BE(4) : null;
  }

  /** Frames of stream `id`. */
  stream(id: number): Frame[] {
    return this.frames.filter((f) => f.id === id);
  }

  /** How stream `id` ended so far: END_STREAM seen, RST_STREAM code, DATA bytes. */
  outcome(id: number): { headers: boolean; endStream: boolean; rst: number | null; dataBytes: number; body: Buffer } {
    let headers = false;
    let endStream = false;
    let rst: number | null = null;
    let dataBytes = 0;
    const body: Buffer[] = [];
    for (const f of this.stream(id)) {
      if (f.type === T.HEADERS) headers = true;
      if (f.type === T.DATA) {
        dataBytes += f.payload.length;
        body.push(f.payload);
      }
      if ((f.type === T.HEADERS || f.type === T.DATA) && (f.flags & F.END_STREAM) !== 0) endStream = true;
      if (f.type === T.RST_STREAM) rst = f.payload.readUInt32BE(0);
    }
    return { headers, endStream, rst, dataBytes, body: Buffer.concat(body) };
  }

  /** Resolves when stream `id` has ended (END_STREAM or RST_STREAM), or the connection closed. */
  async ended(id: number, timeoutMs = 5000): Promise<ReturnType<H2Raw['outcome']>> {
    await this.waitFor((_fs, closed) => closed || this.outcome(id).endStream || this.outcome(id).rst !== null, timeoutMs, `end of stream ${id}`);
    return this.outcome(id);
  }

  describe(): string {
    return this.frames.map((f) => `${Object.keys(T).find((k) => T[k as keyof typeof T] === f.type) ?? f.type}(${f.id}${f.flags ? `,0x${f.flags.toString(16)}` : ''})`).join(' ') + (this.closed ? ' [closed]' : '');
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * A TCP relay in front of an HTTP/2 server that records the frames of both
 * directions (`toServer` starts after the client preface): what really
 * crossed the wire, which node's stream events do not tell (node emits 'end'
 * on streams it destroys).
 */
export class FrameTap {
  readonly toServer: Frame[] = [];
  readonly toClient: Frame[] = [];
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  private constructor(targetPort: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
      this.sockets.add(client);
      this.sockets.add(upstream);
      const reader = (into: Frame[], skip: number) => {
        let buf = Buffer.alloc(0);
        let preface = skip;
        return (chunk: Buffer) => {
          buf = Buffer.concat([buf, chunk]);
          if (preface > 0) {
            const n = Math.min(preface, buf.length);
            buf = buf.subarray(n);
            preface -= n;
          }
          while (buf.length >= 9) {
            const length = buf.readUIntBE(0, 3);
            if (buf.length < 9 + length) break;
            into.push({ type: buf[3], flags: buf[4], id: buf.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(buf.subarray(9, 9 + length)) });
            buf = buf.subarray(9 + length);
          }
        };
      };
      const up = reader(this.toServer, PREFACE.length);
      const down = reader(this.toClient, 0);
      client.on('data', (d: Buffer) => {
        up(d);
        upstream.write(d);
      });
      upstream.on('data', (d: Buffer) => {
        down(d);
        client.write(d);
      });
      for (const s of [client, upstream]) {
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
    });
  }

  static async start(targetPort: number): Promise<FrameTap> {
    const tap = new FrameTap(targetPort);
    await new Promise<void>((resolve) => tap.server.listen(0, '127.0.0.1', () => resolve()));
    return tap;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
