/**
 * Incremental validator/decoder of a chunked body (RFC 9112 §7.1).
 *
 * It never copies chunk data: push() reports how many bytes of the input
 * belong to the chunked body (the proxy may forward exactly those bytes
 * raw) and hands each data range to `onData` (for decoding). Rules, each a
 * fatal error (400 for a request, 502 for a response):
 *   - chunk-size is 1*HEXDIG only: no sign, no `0x`, no whitespace, at most
 *     2^53-1;
 *   - chunk extensions are accepted and ignored, but only in the strict
 *     grammar `;name[=token|quoted-string]`, repeated, with no whitespace
 *     around `;` and `=` (BWS is rejected); the whole size line, extensions
 *     included, is capped (maxChunkLineBytes, default 4096);
 *   - every line ends with CRLF exactly, and chunk data is followed by CRLF
 *     exactly: a bare LF or bare CR is an error;
 *   - the trailer section obeys the head's field-line rules (no obs-fold,
 *     no whitespace before ':', no CTLs) and is capped (maxTrailerBytes,
 *     default 16 KiB). Its fields are exposed as `trailers`.
 */

import { CR, DQUOTE, EQUALS, HEX_VALUE, LF, BACKSLASH, QDTEXT, SEMICOLON, TCHAR, FIELD_VALUE } from './chars';
import { INCOMPLETE, MALFORMED, MessageHead, scanFieldLines, scanState, takeOffsets } from './field-lines';

export interface ChunkedPushResult {
  /** Bytes of the input that belong to the chunked body (framing included). */
  consumed: number;
  /** The last chunk and the trailer section have been read. */
  done: boolean;
  /** Set when the body is malformed; the decoder stays failed. */
  error?: string;
  /** Chunk data bytes within the consumed bytes. */
  dataBytes: number;
}

export type ChunkDataHandler = (buf: Buffer, start: number, end: number) => void;

export interface ChunkedDecoderOptions {
  /** Called with each range of chunk data, in order (the bytes are the caller's). */
  onData?: ChunkDataHandler;
  /** Largest chunk-size line, extensions and CRLF included. Default 4096. */
  maxChunkLineBytes?: number;
  /** Largest trailer section, final CRLF included. Default 16384. */
  maxTrailerBytes?: number;
}

const enum State {
  SizeStart,
  Size,
  ExtNameStart,
  ExtName,
  ExtValueStart,
  ExtToken,
  ExtQuoted,
  ExtQuotedEscape,
  ExtAfterQuoted,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  LastLf,
  Trailer,
  Done,
  Failed,
}

export class ChunkedDecoder {
  private state = State.SizeStart;
  private size = 0;
  private remaining = 0;
  private lineBytes = 0;
  private total = 0;
  private failure = '';
  private trailerBytes: Buffer | null = null;
  private readonly onData: ChunkDataHandler | null;
  private readonly maxLine: number;
  private readonly maxTrailer: number;
  /** The trailer section's fields, when it had any (a view over a private copy). */
  trailers: MessageHead | null = null;

  constructor(options: ChunkedDecoderOptions = {}) {
    this.onData = options.onData ?? null;
    this.maxLine = options.maxChunkLineBytes ?? 4096;
    this.maxTrailer = options.maxTrailerBytes ?? 16384;
  }

  /** The whole chunked body has been read. */
  get done(): boolean {
    return this.state === State.Done;
  }

  /** Chunk data bytes decoded so far. */
  get bodyBytes(): number {
    return this.total;
  }

  /** The error that failed the body, or null. */
  get error(): string | null {
    return this.state === State.Failed ? this.failure : null;
  }

  /** Ready for a new body. */
  reset(): void {
    this.state = State.SizeStart;
    this.size = 0;
    this.remaining = 0;
    this.lineBytes = 0;
    this.total = 0;
    this.failure = '';
    this.trailerBytes = null;
    this.trailers = null;
  }

  push(buf: Buffer, start: number, end: number): ChunkedPushResult {
    const before = this.total;
    let p = start;
    let state = this.state;
    let line = this.lineBytes;
    let error = '';
    scan: while (p < end) {
      const c = buf[p];
      if (state <= State.SizeLf && ++line > this.maxLine) {
        error = 'chunk line too long';
        break;
      }
      switch (state) {
        case State.SizeStart:
          if (HEX_VALUE[c] === 0xff) {
            error = c === LF ? 'bare LF in chunk' : 'invalid chunk size';
            break scan;
          }
          this.size = HEX_VALUE[c];
          state = State.Size;
          p++;
          continue;
        case State.Size: {
          const d = HEX_VALUE[c];
          if (d !== 0xff) {
            this.size = this.size * 16 + d;
            if (this.size > Number.MAX_SAFE_INTEGER) {
              error = 'chunk size too large';
              break scan;
            }
            p++;
            continue;
          }
          if (c === CR) state = State.SizeLf;
          else if (c === SEMICOLON) state = State.ExtNameStart;
          else {
            error = c === LF ? 'bare LF in chunk' : 'invalid chunk size';
            break scan;
          }
          p++;
          continue;
        }
        case State.ExtNameStart:
        case State.ExtName:
          if (TCHAR[c] === 1) state = State.ExtName;
          else if (state === State.ExtName && c === EQUALS) state = State.ExtValueStart;
          else if (state === State.ExtName && c === SEMICOLON) state = State.ExtNameStart;
          else if (state === State.ExtName && c === CR) state = State.SizeLf;
          else {
            error = c === LF ? 'bare LF in chunk' : 'invalid chunk extension';
            break scan;
          }
          p++;
          continue;
        case State.ExtValueStart:
        case State.ExtToken:
          if (TCHAR[c] === 1) state = State.ExtToken;
          else if (state === State.ExtValueStart && c === DQUOTE) state = State.ExtQuoted;
          else if (state === State.ExtToken && c === SEMICOLON) state = State.ExtNameStart;
          else if (state === State.ExtToken && c === CR) state = State.SizeLf;
          else {
            error = c === LF ? 'bare LF in chunk' : 'invalid chunk extension';
            break scan;
          }
          p++;
          continue;
        case State.ExtQuoted:
          if (c === DQUOTE) state = State.ExtAfterQuoted;
          else if (c === BACKSLASH) state = State.ExtQuotedEscape;
          else if (QDTEXT[c] !== 1) {
            error = 'invalid chunk extension';
            break scan;
          }
          p++;
          continue;
        case State.ExtQuotedEscape:
          // quoted-pair: HTAB / SP / VCHAR / obs-text
          if (FIELD_VALUE[c] === 0) {
            error = 'invalid chunk extension';
            break scan;
          }
          state = State.ExtQuoted;
          p++;
          continue;
        case State.ExtAfterQuoted:
          if (c === SEMICOLON) state = State.ExtNameStart;
          else if (c === CR) state = State.SizeLf;
          else {
            error = c === LF ? 'bare LF in chunk' : 'invalid chunk extension';
            break scan;
          }
          p++;
          continue;
        case State.SizeLf:
          if (c !== LF) {
            error = 'bare CR in chunk';
            break scan;
          }
          p++;
          line = 0;
          if (this.size === 0) state = State.TrailerStart;
          else {
            this.remaining = this.size;
            state = State.Data;
          }
          continue;
        case State.Data: {
          const n = Math.min(this.remaining, end - p);
          if (this.onData !== null) this.onData(buf, p, p + n);
          p += n;
          this.total += n;
          this.remaining -= n;
          if (this.remaining === 0) state = State.DataCr;
          continue;
        }
        case State.DataCr:
          if (c !== CR) {
            error = c === LF ? 'bare LF after chunk data' : 'missing CRLF after chunk data';
            break scan;
          }
          state = State.DataLf;
          p++;
          continue;
        case State.DataLf:
          if (c !== LF) {
            error = 'bare CR after chunk data';
            break scan;
          }
          state = State.SizeStart;
          p++;
          continue;
        case State.TrailerStart:
          if (c === CR) {
            state = State.LastLf;
            p++;
            continue;
          }
          state = State.Trailer;
          continue;
        case State.LastLf:
          if (c !== LF) {
            error = 'bare CR in chunk';
            break scan;
          }
          state = State.Done;
          p++;
          break scan;
        case State.Trailer: {
          const r = this.trailer(buf, p, end);
          if (r === MALFORMED) {
            error = this.failure;
            break scan;
          }
          if (r === INCOMPLETE) p = end;
          else {
            p = r;
            state = State.Done;
          }
          break scan;
        }
        case State.Done:
          break scan;
        case State.Failed:
          error = this.failure;
          break scan;
      }
    }
    this.lineBytes = line;
    const dataBytes = this.total - before;
    if (error !== '') {
      this.state = State.Failed;
      this.failure = error;
      return { consumed: p - start, done: false, error, dataBytes };
    }
    this.state = state;
    return { consumed: p - start, done: state === State.Done, dataBytes };
  }

  /** Accumulates the trailer section; returns the index after it in buf, INCOMPLETE or MALFORMED. */
  private trailer(buf: Buffer, p: number, end: number): number {
    const had = this.trailerBytes === null ? 0 : this.trailerBytes.length;
    const piece = buf.subarray(p, end);
    const bytes = this.trailerBytes === null ? Buffer.from(piece) : Buffer.concat([this.trailerBytes, piece]);
    this.trailerBytes = bytes;
    const r = scanFieldLines(bytes, 0, bytes.length, scanState);
    if (r === MALFORMED) {
      this.failure = 'trailer: ' + scanState.reason;
      return MALFORMED;
    }
    if ((r === INCOMPLETE ? bytes.length : r) > this.maxTrailer) {
      this.failure = 'trailer section too large';
      return MALFORMED;
    }
    if (r === INCOMPLETE) return INCOMPLETE;
    const view = new MessageHead(bytes, takeOffsets(scanState));
    view.headEnd = r;
    this.trailers = view;
    this.trailerBytes = null;
    return p + (r - had);
  }
}
