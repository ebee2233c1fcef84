/**
 * A thin check in front of node:http2's codec on each listener connection.
 *
 * node:http2 normally reads its socket in C++ (nghttp2 consumes the stream
 * directly), so JavaScript never sees the frames. zproxy instead hands the
 * HTTP/2 server this FrameGuard, a socket-like object (node wraps it in its
 * JSStreamSocket), which reads the real socket, looks at every frame header
 * (and header blocks) on the way in, and writes what node sends out, looking
 * at frame headers there too. It enforces what nghttp2, as node:http2 drives
 * it, leaves out (h2spec cases in docs/http2.md):
 *
 * - frames on closed streams (RFC 9113 §5.1): DATA or HEADERS on a stream
 *   the client already ended (END_STREAM) or reset are a connection error
 *   STREAM_CLOSED (nghttp2 ignores them once the stream is closed; a stream
 *   error may be treated as a connection error, §5.4.1). Frames on a stream
 *   the *server* reset are still ignored, as §5.1 requires for frames in
 *   flight. Kept for the last STREAM_WINDOW client streams; older ones are
 *   left to nghttp2.
 * - a HEADERS frame opening a stream id lower than one already used (§5.1.1)
 *   is a connection error PROTOCOL_ERROR (nghttp2 ignores the frame).
 * - an unsolicited PING ACK (§6.7) is dropped (node closes the connection
 *   with an internal error on one).
 * - a WINDOW_UPDATE that takes the connection's send window past 2^31-1
 *   (§6.9.1) is a connection error FLOW_CONTROL_ERROR (node reports
 *   INTERNAL_ERROR). The window is tracked from the DATA frames written.
 * - request header fields nghttp2 would silently drop (hpack-check.ts) mark
 *   the stream malformed: the listener refuses it with PROTOCOL_ERROR.
 *
 * Everything else goes through unchanged, in order. Frames are never
 * rewritten, only passed, dropped whole (PING ACK) or cut off at a connection
 * error, after which nothing more reaches the codec.
 */
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import type net from 'node:net';
import { BLOCK_MALFORMED, BLOCK_UNDECODABLE, HeaderBlockChecker } from './hpack-check';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER = 9;

const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const PING = 0x6;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;

const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

/** A write batch up to this size is joined into one buffer (a copy, but one write and one completion). */
const JOIN_MAX_BYTES = 64 * 1024;

/** How long a connection closing after our GOAWAY may take to send it. */
const GOAWAY_GRACE_MS = 1000;

const MAX_WINDOW = 2 ** 31 - 1;
const INITIAL_WINDOW = 65535;

/** Client streams (odd ids) whose state is remembered, most recent first. */
const STREAM_WINDOW = 1024;
/** Stream states (per odd id, in a ring). */
const SKIPPED = 0; // never opened: a lower id than one already used
const OPEN = 1; // opened; the client has not finished sending
const FINISHED = 2; // the client sent END_STREAM or RST_STREAM

const { NGHTTP2_PROTOCOL_ERROR, NGHTTP2_STREAM_CLOSED, NGHTTP2_FLOW_CONTROL_ERROR, NGHTTP2_COMPRESSION_ERROR, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

/** What the guard's decisions call. */
export interface GuardHooks {
  /** A connection error: GOAWAY with `code`, then close. Nothing more reaches the codec. */
  connectionError(code: number, reason: string): void;
  /** Stream `id` carries a request field nghttp2 would drop; `trailers`: the field is in its trailers. */
  malformed(id: number, trailers: boolean): void;
}

/** What to do with the payload of the frame being read. */
const PASS = 0;
const DROP = 1;
/** Passed, and kept (a header block fragment, or a connection WINDOW_UPDATE). */
const KEEP = 2;

export class FrameGuard extends EventEmitter {
  // What node's JSStreamSocket reads of the stream it wraps.
  readonly readableObjectMode = false;
  readable = true;
  writable = true;

  /** Preface bytes still to be seen. */
  private prefaceLeft = PREFACE.length;
  /** Stopped checking (the peer is not speaking HTTP/2 as expected; nghttp2 will end it): bytes pass as they are. */
  private bypass = false;
  /** A connection error was raised: nothing more is passed. */
  private dead = false;
  /** goAway() wrote the last frame: the socket only finishes sending it and closes. */
  private closing = false;

  // Inbound frame being read.
  private readonly header = Buffer.alloc(FRAME_HEADER);
  private headerHave = 0;
  private payloadLeft = 0;
  private mode = PASS;
  private frameType = 0;
  private frameFlags = 0;
  private kept: Buffer[] = [];
  private keptBytes = 0;

  // Header block being assembled (HEADERS + CONTINUATION).
  private blockStream = 0;
  private blockTrailers = false;
  private blockParts: Buffer[] = [];
  private blockBytes = 0;
  private readonly checker = new HeaderBlockChecker();

  // Client streams.
  private readonly states = new Uint8Array(STREAM_WINDOW);
  private maxOpened = 0;

  // Connection flow control, outbound: the send window, and PINGs awaiting their ACK.
  private sendWindow = INITIAL_WINDOW;
  private pingsSent = 0;
  private readonly outHeader = Buffer.alloc(FRAME_HEADER);
  private outHave = 0;
  private outSkip = 0;

  constructor(
    readonly socket: net.Socket,
    private readonly hooks: GuardHooks,
    /** Largest header block (compressed) examined; a larger one is a connection error. */
    private readonly maxBlockBytes: number,
  ) {
    super();
    socket.on('data', (chunk: Buffer) => this.inbound(chunk));
    socket.on('end', () => this.emit('end'));
    socket.on('error', (err) => this.emit('error', err));
    socket.on('close', () => this.emit('close'));
  }

  // --- the socket side node:http2 uses -----------------------------------------

  pause(): this {
    this.socket.pause();
    return this;
  }

  resume(): this {
    this.socket.resume();
    return this;
  }

  /**
   * node writes each batch of frames as cork(), one write() per buffer (a
   * frame header, a payload...), uncork(). The buffers of a batch are joined
   * into one socket write with one completion, unless the batch is large
   * (DATA payloads are then written as they are, in one writev).
   */
  cork(): void {
    this.corked++;
  }

  uncork(): void {
    if (this.corked === 0 || --this.corked > 0) return;
    const chunks = this.batch;
    const callbacks = this.batchCallbacks;
    const bytes = this.batchBytes;
    this.batch = [];
    this.batchCallbacks = [];
    this.batchBytes = 0;
    if (chunks.length === 0) return;
    if (chunks.length === 1) {
      this.socket.write(chunks[0], callbacks[0]);
      return;
    }
    const done = (err?: Error | null): void => {
      for (const callback of callbacks) callback?.(err);
    };
    if (bytes <= JOIN_MAX_BYTES) {
      this.socket.write(Buffer.concat(chunks, bytes), done);
      return;
    }
    this.socket.cork();
    for (let i = 0; i < chunks.length - 1; i++) this.socket.write(chunks[i]);
    this.socket.write(chunks[chunks.length - 1], done);
    this.socket.uncork();
  }

  write(data: Buffer, callback?: (err?: Error | null) => void): boolean {
    if (this.closing) {
      // After our GOAWAY nothing more goes out (the codec's own GOAWAY included).
      if (callback) process.nextTick(callback);
      return true;
    }
    this.outbound(data);
    if (this.corked > 0) {
      this.batch.push(data);
      this.batchCallbacks.push(callback);
      this.batchBytes += data.length;
      return true;
    }
    return this.socket.write(data, callback);
  }

  private corked = 0;
  private batch: Buffer[] = [];
  private batchCallbacks: Array<((err?: Error | null) => void) | undefined> = [];
  private batchBytes = 0;

  end(callback?: () => void): this {
    if (this.closing) {
      if (callback) this.socket.once('close', callback);
      return this;
    }
    this.socket.end(callback);
    return this;
  }

  destroy(err?: Error): this {
    // Closing after GOAWAY: the socket closes once the frame is sent (or after a grace period).
    if (!this.closing) this.socket.destroy(err);
    return this;
  }

  /**
   * Ends the connection with GOAWAY(`code`), written here rather than by the
   * codec: with node's JS stream socket, a GOAWAY the codec queues while a
   * write is in flight is lost when the session is destroyed right after.
   * What was already written goes first; nothing the codec sends afterwards.
   */
  goAway(lastStreamId: number, code: number): void {
    this.dead = true;
    if (this.closing || this.socket.destroyed) return;
    this.closing = true;
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(lastStreamId & 0x7fffffff, 0);
    payload.writeUInt32BE(code, 4);
    const head = Buffer.from([0, 0, 8, 0x7, 0, 0, 0, 0, 0]);
    this.socket.end(Buffer.concat([head, payload]));
    const timer = setTimeout(() => this.socket.destroy(), GOAWAY_GRACE_MS);
    timer.unref();
    this.socket.once('close', () => clearTimeout(timer));
  }

  // --- inbound ------------------------------------------------------------------

  private pass(buf: Buffer, start: number, end: number): void {
    if (end > start) this.emit('data', start === 0 && end === buf.length ? buf : buf.subarray(start, end));
  }

  private inbound(buf: Buffer): void {
    if (this.dead) return;
    if (this.bypass) return this.pass(buf, 0, buf.length);
    let i = 0;
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, buf.length);
      const at = PREFACE.length - this.prefaceLeft;
      if (PREFACE.compare(buf, 0, n, at, at + n) !== 0) {
        this.bypass = true;
        return this.pass(buf, 0, buf.length);
      }
      this.prefaceLeft -= n;
      i = n;
    }
    /** Start of the bytes of this chunk not passed yet. */
    let from = 0;
    /** Where the frame being read starts in this chunk (0 if it began in an earlier one). */
    let frameStart = 0;
    const end = buf.length;
    while (i < end) {
      if (this.payloadLeft > 0) {
        const n = Math.min(this.payloadLeft, end - i);
        if (this.mode === DROP) {
          this.pass(buf, from, i);
          from = i + n;
        } else if (this.mode === KEEP) {
          this.kept.push(buf.subarray(i, i + n));
          this.keptBytes += n;
        }
        i += n;
        this.payloadLeft -= n;
        if (this.payloadLeft === 0 && this.mode === KEEP && !this.frameDone()) return this.fail(buf, from, frameStart);
        continue;
      }
      // A frame header, possibly begun in an earlier chunk (those bytes were held back).
      const held = this.headerHave;
      const n = Math.min(FRAME_HEADER - held, end - i);
      buf.copy(this.header, held, i, i + n);
      this.headerHave += n;
      if (this.headerHave < FRAME_HEADER) {
        // Held until complete: the frame may be one to drop.
        this.pass(buf, from, i);
        return;
      }
      this.headerHave = 0;
      frameStart = i;
      i += n;
      const verdict = this.frameHeader();
      if (verdict < 0) return this.fail(buf, from, frameStart);
      if (verdict === DROP) {
        this.pass(buf, from, frameStart);
        from = i;
      } else if (held > 0) {
        // The held bytes go first, then this chunk from its start.
        this.emit('data', Buffer.from(this.header.subarray(0, held)));
      }
      this.mode = verdict;
      if (this.payloadLeft === 0 && verdict === KEEP && !this.frameDone()) return this.fail(buf, from, i);
    }
    this.pass(buf, from, end);
  }

  /** A connection error at a frame starting at `frameStart`: what came before it is passed, the rest never. */
  private fail(buf: Buffer, from: number, frameStart: number): void {
    this.pass(buf, from, Math.max(from, frameStart));
    this.dead = true;
    const { code, reason } = this.failure!;
    this.hooks.connectionError(code, reason);
  }

  private failure: { code: number; reason: string } | null = null;

  private error(code: number, reason: string): -1 {
    this.failure = { code, reason };
    return -1;
  }

  /** Reads the complete frame header; returns PASS, DROP or KEEP for its payload, or -1 for a connection error. */
  private frameHeader(): number {
    const h = this.header;
    const length = (h[0] << 16) | (h[1] << 8) | h[2];
    const type = h[3];
    const flags = h[4];
    const id = h.readUInt32BE(5) & 0x7fffffff;
    this.payloadLeft = length;
    this.frameType = type;
    this.frameFlags = flags;
    if (this.blockParts.length > 0 && type !== CONTINUATION) {
      // A header block interrupted: nghttp2 ends the connection (PROTOCOL_ERROR); nothing left to check.
      this.bypass = true;
      return PASS;
    }
    switch (type) {
      case DATA:
        return this.onData(id, flags);
      case HEADERS:
        return this.onHeaders(id, flags, length);
      case CONTINUATION:
        if (this.blockParts.length === 0 || id !== this.blockStream) {
          this.bypass = true;
          return PASS;
        }
        return this.keep(length);
      case RST_STREAM:
        if (id !== 0 && (id & 1) === 1 && this.known(id) && this.state(id) === OPEN) this.setState(id, FINISHED);
        return PASS;
      case PING:
        if ((flags & ACK) !== 0 && id === 0 && length === 8) {
          if (this.pingsSent === 0) return DROP; // unsolicited: nothing was asked
          this.pingsSent--;
        }
        return PASS;
      case WINDOW_UPDATE:
        return id === 0 && length === 4 ? this.keep(length) : PASS;
      default:
        return PASS;
    }
  }

  private onData(id: number, flags: number): number {
    if ((id & 1) === 0 || id > this.maxOpened || !this.known(id)) return PASS;
    const state = this.state(id);
    if (state !== OPEN) return this.error(NGHTTP2_STREAM_CLOSED, `DATA on closed stream ${id}`);
    if ((flags & END_STREAM) !== 0) this.setState(id, FINISHED);
    return PASS;
  }

  private onHeaders(id: number, flags: number, length: number): number {
    if (id === 0 || (id & 1) === 0) {
      // nghttp2 refuses these itself; the block still changes the HPACK state.
      this.blockTrailers = false;
    } else if (id > this.maxOpened) {
      this.open(id, (flags & END_STREAM) !== 0);
      this.blockTrailers = false;
    } else if (this.known(id)) {
      const state = this.state(id);
      if (state === SKIPPED) return this.error(NGHTTP2_PROTOCOL_ERROR, `HEADERS on stream ${id}, lower than stream ${this.maxOpened} already opened`);
      if (state === FINISHED) return this.error(NGHTTP2_STREAM_CLOSED, `HEADERS on closed stream ${id}`);
      if ((flags & END_STREAM) !== 0) this.setState(id, FINISHED);
      this.blockTrailers = true;
    } else {
      this.blockTrailers = true;
    }
    this.blockStream = id;
    return this.keep(length);
  }

  /** Keeps the payload of the current frame (`length` bytes), within bounds. */
  private keep(length: number): number {
    if (this.blockBytes + this.keptBytes + length > this.maxBlockBytes) return this.error(NGHTTP2_ENHANCE_YOUR_CALM, 'header block too large');
    this.kept = [];
    this.keptBytes = 0;
    return KEEP;
  }

  /** The kept payload is complete: acts on it; false for a connection error. */
  private frameDone(): boolean {
    const payload = this.kept.length === 1 ? this.kept[0] : Buffer.concat(this.kept, this.keptBytes);
    this.kept = [];
    this.keptBytes = 0;
    const type = this.frameType;
    if (type === WINDOW_UPDATE) {
      const increment = payload.readUInt32BE(0) & 0x7fffffff;
      if (this.sendWindow + increment > MAX_WINDOW) {
        this.error(NGHTTP2_FLOW_CONTROL_ERROR, 'connection flow-control window above 2^31-1');
        return false;
      }
      this.sendWindow += increment;
      return true;
    }
    // A header block fragment: HEADERS (maybe padded, maybe with priority) or CONTINUATION.
    let fragment = payload;
    if (type === HEADERS) {
      let start = 0;
      let end = payload.length;
      if ((this.frameFlags & PADDED) !== 0) {
        if (payload.length < 1) return this.stop();
        end -= payload[0];
        start = 1;
      }
      if ((this.frameFlags & PRIORITY) !== 0) start += 5;
      if (end < start) return this.stop();
      fragment = payload.subarray(start, end);
    }
    this.blockParts.push(fragment);
    this.blockBytes += fragment.length;
    if ((this.frameFlags & END_HEADERS) === 0) return true;
    const block = this.blockParts.length === 1 ? this.blockParts[0] : Buffer.concat(this.blockParts, this.blockBytes);
    this.blockParts = [];
    this.blockBytes = 0;
    const result = this.checker.check(block);
    if (result === BLOCK_UNDECODABLE) {
      this.error(NGHTTP2_COMPRESSION_ERROR, 'undecodable header block');
      return false;
    }
    if (result === BLOCK_MALFORMED && this.blockStream !== 0) this.hooks.malformed(this.blockStream, this.blockTrailers);
    return true;
  }

  /** The frame is invalid in a way nghttp2 reports itself: stop checking. */
  private stop(): true {
    this.bypass = true;
    this.blockParts = [];
    this.blockBytes = 0;
    return true;
  }

  // --- client stream states ----------------------------------------------------------

  /** Whether `id` (odd, ≤ maxOpened) is recent enough to be remembered. */
  private known(id: number): boolean {
    return this.maxOpened - id < STREAM_WINDOW * 2;
  }

  private state(id: number): number {
    return this.states[(id >>> 1) % STREAM_WINDOW];
  }

  private setState(id: number, state: number): void {
    this.states[(id >>> 1) % STREAM_WINDOW] = state;
  }

  private open(id: number, ended: boolean): void {
    // The ids skipped over are closed for good (§5.1.1); at most the remembered window of them.
    const next = this.maxOpened === 0 ? 1 : this.maxOpened + 2;
    for (let skipped = Math.max(next, id - STREAM_WINDOW * 2 + 2); skipped < id; skipped += 2) this.setState(skipped, SKIPPED);
    this.maxOpened = id;
    this.setState(id, ended ? FINISHED : OPEN);
  }

  // --- outbound -------------------------------------------------------------------

  /** Follows the frames node writes: DATA spends the connection's send window; PINGs expect an ACK. */
  private outbound(data: Buffer): void {
    let i = 0;
    const end = data.length;
    while (i < end) {
      if (this.outSkip > 0) {
        const n = Math.min(this.outSkip, end - i);
        this.outSkip -= n;
        i += n;
        continue;
      }
      const n = Math.min(FRAME_HEADER - this.outHave, end - i);
      data.copy(this.outHeader, this.outHave, i, i + n);
      this.outHave += n;
      i += n;
      if (this.outHave < FRAME_HEADER) return;
      this.outHave = 0;
      const h = this.outHeader;
      const length = (h[0] << 16) | (h[1] << 8) | h[2];
      const type = h[3];
      if (type === DATA) this.sendWindow -= length;
      else if (type === PING && (h[4] & ACK) === 0) this.pingsSent++;
      this.outSkip = length;
    }
  }
}
