/**
 * One pooled HTTP/1.1 connection to an upstream target: a small state
 * machine (connecting -> idle <-> busy -> closed) that writes a request,
 * parses the response head once, and relays the response body as raw bytes
 * to the exchange that owns it.
 *
 * It reads into its own buffer (onread), reused for every read of its life;
 * the exchange pauses it while the client still holds unwritten bytes of
 * that buffer, so nothing is copied on the way to the client.
 *
 * The response timeout is a deadline its pool checks on a sweep, not a
 * socket timer: arming and clearing a timer for every request, and
 * refreshing it on every read, cost more than the rest of the bookkeeping.
 * Reads and writes do not even read the clock: they mark the connection
 * heard from, and the sweep moves the deadline on from its own time. It runs
 * whenever the connection is busy, so no exchange is ever without a timer:
 * while paused for the client it measures the client's silence (the
 * exchange marks the client's progress), and a failure then is the
 * client's (`client_stalled`); only a body transfer, which has an idle
 * timeout of its own, stops it.
 *
 * A write that fails does not end the connection: an upstream that answers
 * before reading the whole request and closes (an early 413; python's
 * http.server answering a large POST with 501, then resetting for the
 * unread upload) has its response in the kernel already. The rest of the
 * request is dropped, and the response, or the end or reset behind it, is
 * read as usual.
 */
import net from 'node:net';
import { parseResponseHead, type ResponseHead, type BodyFraming } from '../protocol/http1/response-head';
import { ChunkedDecoder } from '../protocol/http1/chunked';
import type { MessageHead } from '../protocol/http1/field-lines';
import { connectTls, type UpstreamTlsOptions } from './tls-connect';
import type { TunnelResult } from '../native/addon-types';
import { writeThrough } from '../util/socket-fd';
import { ClientStalledError, UpstreamBadResponseError, UpstreamConnectError, UpstreamResetError, UpstreamTimeoutError, UpstreamTruncatedError, type ZproxyError } from '../errors';
import { offersWebSocket } from '../http/forwarding-rules';
import { upstreamConnect } from '../pipeline/diagnostics';

/** `upgraded`: a 101 switched it to a tunnel; its bytes go to the raw reader, never to an exchange again. */
export type UpstreamState = 'connecting' | 'idle' | 'busy' | 'upgraded' | 'closed';


/** What the connection reports to the request it carries. */
export interface UpstreamExchange {
  readonly method: string;
  /** The request asked to switch protocols (WebSocket): only then is a 101 acceptable. */
  readonly upgrading?: boolean;
  /**
   * The 101 to an upgrading request: the connection now belongs to the
   * caller (see `readRaw`); `rest` holds the bytes that followed the head in
   * the same read (valid only during the call).
   */
  onSwitchingProtocols?(head: ResponseHead, rest: Buffer): void;
  /** The socket connected (only for new connections). */
  onConnected(): void;
  /** The socket's write queue drained. */
  onWritable(): void;
  onInterim(head: ResponseHead): void;
  /** The response head; `buf[bodyStart..]` continues with body bytes, delivered next. */
  onResponseHead(head: ResponseHead, framing: BodyFraming): void;
  /**
   * Body bytes, without the upstream's framing (a chunked body arrives
   * decoded: the client side frames it itself); valid only during the call.
   */
  onResponseBody(buf: Buffer, start: number, end: number): void;
  /** The response is complete; `trailers`: a chunked body's trailer section, if it had one. */
  onResponseEnd(trailers: MessageHead | null): void;
  /** Everything of one read was delivered (a chance to write what was held back to join later bytes). */
  onReadDone?(): void;
  /**
   * The exchange failed, as a ZproxyError made where it happened: never
   * connected (UpstreamConnectError), closed or reset before any response
   * byte (UpstreamResetError), silent past the timeout (UpstreamTimeoutError),
   * an invalid response (UpstreamBadResponseError), a body broken off
   * (UpstreamTruncatedError), or a client that took nothing in time
   * (ClientStalledError).
   */
  onUpstreamError(error: ZproxyError): void;
}

/** Largest upstream response head accepted. */
const RESPONSE_HEAD_LIMITS = { maxHeaderBytes: 64 * 1024 };

export class UpstreamConnection {
  state: UpstreamState = 'connecting';
  /** Requests this connection has carried (so a failure on a reused one can be told apart). */
  requests = 0;
  /** When it became idle (ms), for the pool's keep-alive timeout. */
  idleSince = 0;
  readonly socket: net.Socket;
  private exchange: UpstreamExchange | null = null;
  private partialHead: Buffer | null = null;
  private framing: BodyFraming = 'none';
  private remaining = 0;
  /** Decodes chunked bodies (this connection's, reset per response), handing each data range to the exchange. */
  private chunkedDecoder: ChunkedDecoder | null = null;
  private chunked: ChunkedDecoder | null = null;
  private readonly onChunkData = (buf: Buffer, start: number, end: number): void => this.exchange?.onResponseBody(buf, start, end);
  /** Any byte of a response (interim included) has arrived: a failure now is no longer a clean reset. */
  private responseStarted = false;
  /** The final response head has not been parsed yet. */
  private awaitingHead = true;
  private reusable = true;
  /** The upstream stopped reading the request (a write failed): what is left of it is dropped. */
  private writeRefused = false;
  /** The route's response timeout for the current exchange. */
  private timeoutMs = 0;
  /**
   * The response timeout runs: busy, and no body transfer with its own idle
   * timeout in progress. Like nginx's proxy_read_timeout it limits silence,
   * not the whole exchange.
   */
  private timing = false;
  /** Not reading while the client holds relayed bytes: the silence the deadline measures is the client's. */
  private paused = false;
  /** A read or write since the last sweep: the sweep restarts the deadline from its own time. */
  private heard = false;
  /** When the silence since the last sweep that saw activity fails the exchange (ms since the epoch). */
  private deadline = 0;
  /** Plain TCP (not TLS): its fd may be spliced. */
  private readonly plain: boolean;

  constructor(
    host: string,
    port: number,
    readBuffer: Buffer,
    connectTimeoutMs: number,
    private readonly onClosed: (conn: UpstreamConnection) => void,
    /** For https:// targets (see tls-connect.ts). */
    tlsOptions?: UpstreamTlsOptions,
  ) {
    this.plain = !tlsOptions;
    const onread = { buffer: readBuffer, callback: (n: number, buf: Buffer) => this.onRead(buf, n) };
    this.socket = tlsOptions
      ? connectTls(host, port, onread, tlsOptions)
      : net.connect({ host, port, noDelay: true, onread } as unknown as net.NetConnectOpts);
    // The connect timeout (a socket timer, once per connection) covers the TLS handshake too: connected means ready for the request.
    this.socket.setTimeout(connectTimeoutMs);
    autoDestroy(this.socket, false);
    this.socket.on(tlsOptions ? 'secureConnect' : 'connect', () => this.onConnect());
    this.socket.on('drain', () => this.exchange?.onWritable());
    this.socket.on('timeout', () => this.onTimeout());
    this.socket.on('error', (err) => this.onError(err));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('close', () => this.onClose());
  }

  /** Carries `exchange` from now on. */
  assign(exchange: UpstreamExchange, responseTimeoutMs: number): void {
    this.exchange = exchange;
    this.requests++;
    this.responseStarted = false;
    this.awaitingHead = true;
    this.reusable = true;
    this.timeoutMs = responseTimeoutMs;
    if (this.state === 'idle') {
      this.state = 'busy';
      this.startTiming();
    }
  }

  write(data: Buffer): boolean {
    if (this.writeRefused) return true;
    this.heard = true;
    return writeThrough(this.socket, data);
  }

  /**
   * The pool's sweep: a busy connection silent past its deadline fails the
   * exchange with a timeout. A timeout fires after `timeoutMs` of silence
   * and at most two sweep intervals later; never early.
   */
  checkDeadline(now: number): void {
    if (!this.timing || this.state !== 'busy') return;
    if (this.heard) {
      this.heard = false;
      this.deadline = now + this.timeoutMs;
    } else if (now >= this.deadline) {
      if (this.paused) this.fail(new ClientStalledError());
      else this.fail(new UpstreamTimeoutError());
    }
  }

  private startTiming(): void {
    this.timing = true;
    this.heard = true;
  }

  /** Back to the pool: no exchange, no timeout (the pool times idle connections out). */
  release(): boolean {
    this.exchange = null;
    this.paused = false;
    if (!this.reusable || this.state !== 'busy') return false;
    this.state = 'idle';
    this.idleSince = Date.now();
    this.timing = false;
    return true;
  }

  /** The request was not fully sent, or the exchange was abandoned: never reuse. */
  spoil(): void {
    this.reusable = false;
  }

  destroy(): void {
    this.exchange = null;
    this.socket.destroy();
  }

  /** Bytes of a length-framed response body still to come over plain TCP, which could be spliced; 0 otherwise. */
  get spliceableBody(): number {
    return this.plain && this.state === 'busy' && !this.awaitingHead && this.framing === 'length' ? this.remaining : 0;
  }

  /**
   * The exchange spliced the rest of the body past this connection (see
   * proxy/body-splice.ts): the outcome, as if the bytes had been read here.
   */
  bodySpliced(result: TunnelResult): void {
    if (this.state !== 'busy' || !this.exchange) return;
    if (result.reason === 'done' && result.bytesAtoB === this.remaining) {
      this.remaining = 0;
      return this.finishResponse();
    }
    if (result.reason === 'idle') return this.fail(new UpstreamTimeoutError());
    this.fail(new UpstreamTruncatedError(result.error ?? (result.reason === 'eof' ? 'upstream closed the connection' : `body transfer ${result.reason}`)));
  }

  /**
   * Waiting for the client to take what was relayed: nothing is read, so
   * the deadline now measures the client's silence (see markProgress).
   */
  pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    this.paused = false;
    if (this.state === 'busy') this.startTiming();
    this.socket.resume();
  }

  /** The client took relayed bytes: the exchange moves, though nothing is read here. */
  markProgress(): void {
    this.heard = true;
  }

  /** The rest of the body moves in the kernel (proxy/body-splice.ts), bounded by the transfer's own idle timeout. */
  transferRunning(): void {
    this.timing = false;
  }

  private onConnect(): void {
    if (this.state !== 'connecting') return;
    this.state = this.exchange ? 'busy' : 'idle';
    this.socket.setTimeout(0);
    if (upstreamConnect.hasSubscribers) upstreamConnect.publish({ address: this.socket.remoteAddress, port: this.socket.remotePort, tls: !this.plain });
    if (this.exchange) this.startTiming();
    this.exchange?.onConnected();
  }

  private onTimeout(): void {
    if (this.state === 'connecting') this.fail(new UpstreamConnectError('ETIMEDOUT'));
  }

  private onError(err: NodeJS.ErrnoException): void {
    if (err.syscall === 'write' && this.state === 'busy' && this.exchange !== null) return this.refuseWrites();
    this.fail(this.failureNow(err.code ?? err.message));
  }

  /**
   * The upstream stopped reading the request (it answered early, or reset):
   * the rest of it is dropped, and the socket goes on reading. The failed
   * write marked the socket's reading side errored too, which would swallow
   * the upstream's end: only the writing side failed.
   */
  private refuseWrites(): void {
    this.writeRefused = true;
    this.reusable = false;
    (this.socket as unknown as StreamStates)._readableState.errored = null;
  }

  /** The failure a socket error or close means now, by how far the exchange got. */
  private failureNow(detail: string): ZproxyError {
    if (this.state === 'connecting') return new UpstreamConnectError(detail);
    return this.responseStarted ? new UpstreamTruncatedError(detail) : new UpstreamResetError(detail);
  }

  private onEnd(): void {
    if (this.state === 'upgraded') return; // the tunnel passes the end on
    // Read-until-close bodies end here; anything else half-done is a failure.
    if (this.state === 'busy' && !this.awaitingHead && this.framing === 'close') {
      this.reusable = false;
      return this.finishResponse();
    }
    if (this.state === 'busy') return this.fail(this.failureNow('upstream closed the connection'));
    this.socket.destroy();
  }

  private onClose(): void {
    const exchange = this.exchange;
    const failure = this.failureNow('upstream connection closed');
    const wasBusy = this.state === 'busy' || this.state === 'connecting';
    this.state = 'closed';
    this.exchange = null;
    this.onClosed(this);
    if (exchange && wasBusy) exchange.onUpstreamError(failure);
  }

  private fail(error: ZproxyError): void {
    const exchange = this.exchange;
    this.exchange = null;
    this.reusable = false;
    this.socket.destroy();
    exchange?.onUpstreamError(error);
  }

  /** After a 101: every read goes to `reader` (bytes valid only during the call: the buffer is reused). */
  readRaw(reader: (buf: Buffer, n: number) => void): void {
    this.rawReader = reader;
  }

  private rawReader: ((buf: Buffer, n: number) => void) | null = null;

  private switchProtocols(head: ResponseHead, rest: Buffer): void {
    const exchange = this.exchange!;
    if (!exchange.onSwitchingProtocols) return this.fail(new UpstreamBadResponseError('101 Switching Protocols with nobody to take the connection'));
    this.exchange = null;
    this.state = 'upgraded';
    this.reusable = false;
    this.awaitingHead = false;
    this.timing = false;
    autoDestroy(this.socket, true);
    exchange.onSwitchingProtocols(head, rest);
  }

  private onRead(buf: Buffer, n: number): void {
    if (this.state === 'upgraded') {
      this.rawReader?.(buf, n);
      return;
    }
    const exchange = this.exchange;
    if (this.state !== 'busy' || !exchange) {
      // Bytes nobody asked for: the connection's framing can no longer be trusted.
      return this.fail(new UpstreamBadResponseError('unexpected bytes from an idle upstream connection'));
    }
    this.heard = true;
    const at = this.awaitingHead ? this.readHead(buf, n) : 0;
    if (at >= 0 && at < n) this.readBody(buf, at, n);
    exchange.onReadDone?.();
  }

  /** Parses (interim and final) heads; returns where the body starts, or -1 to wait or stop. */
  private readHead(buf: Buffer, n: number): number {
    const exchange = this.exchange;
    let data = buf;
    let start = 0;
    let end = n;
    if (this.partialHead) {
      data = Buffer.concat([this.partialHead, buf.subarray(0, n)]);
      end = data.length;
      this.partialHead = null;
    }
    for (;;) {
      const parsed = parseResponseHead(data, start, end, RESPONSE_HEAD_LIMITS);
      if (parsed.kind === 'incomplete') {
        this.partialHead = Buffer.from(data.subarray(start, end));
        this.responseStarted = true;
        return -1;
      }
      if (parsed.kind === 'error') {
        this.fail(new UpstreamBadResponseError(`invalid upstream response: ${parsed.reason}`));
        return -1;
      }
      this.responseStarted = true;
      const head = parsed.head;
      if (head.status === 101 && !this.exchange!.upgrading) {
        this.fail(new UpstreamBadResponseError('101 Switching Protocols to a request that asked for no upgrade'));
        return -1;
      }
      if (head.status === 101) {
        // Only the protocol zproxy asked for: anything else would tunnel bytes no one checked.
        if (!offersWebSocket(head.upgrade)) {
          this.fail(new UpstreamBadResponseError('101 Switching Protocols without Connection: upgrade and Upgrade: websocket'));
          return -1;
        }
        this.switchProtocols(head, data.subarray(parsed.headEnd, end));
        return -1;
      }
      if (head.status >= 100 && head.status < 200) {
        this.exchange!.onInterim(head);
        start = parsed.headEnd;
        if (start === end) return -1;
        continue;
      }
      this.startBody(head, parsed.headEnd < end);
      // Finished already (no body) or failed: the connection may even carry the client's next request by now.
      if (this.exchange !== exchange) return -1;
      if (data !== buf) {
        // The head spanned reads: deliver the rest of the joined copy now.
        if (parsed.headEnd < end) this.readBody(data, parsed.headEnd, end);
        return -1;
      }
      return parsed.headEnd;
    }
  }

  /** `more`: bytes follow the head in this read. */
  private startBody(head: ResponseHead, more: boolean): void {
    const exchange = this.exchange!;
    this.awaitingHead = false;
    this.framing = head.bodyFraming(exchange.method);
    if (!head.reusable(exchange.method)) this.reusable = false;
    this.remaining = this.framing === 'length' ? (head.contentLength ?? 0) : 0;
    this.chunked = this.framing === 'chunked' ? this.freshDecoder() : null;
    exchange.onResponseHead(head, this.framing);
    if (this.framing === 'none' || (this.framing === 'length' && this.remaining === 0)) {
      if (more) this.reusable = false; // bytes past the response: do not trust this connection again
      this.finishResponse();
    }
  }

  private readBody(buf: Buffer, start: number, end: number): void {
    const exchange = this.exchange;
    if (!exchange) return;
    let take = end - start;
    if (this.framing === 'length') {
      take = Math.min(take, this.remaining);
      this.remaining -= take;
    } else if (this.chunked) {
      // The decoder hands the data ranges to the exchange as it finds them.
      const result = this.chunked.push(buf, start, end);
      if (result.error) return this.fail(new UpstreamBadResponseError(`invalid chunked body from upstream: ${result.error}`));
      take = result.consumed;
    } else if (this.framing === 'none') {
      take = 0;
    }
    if (take > 0 && this.chunked === null) exchange.onResponseBody(buf, start, start + take);
    const complete = this.framing === 'length' ? this.remaining === 0 : this.chunked ? this.chunked.done : false;
    if (complete) {
      if (start + take < end) this.reusable = false; // bytes past the response: do not trust this connection again
      this.finishResponse();
    }
  }

  private finishResponse(): void {
    const exchange = this.exchange;
    const trailers = this.chunked?.trailers ?? null;
    this.chunked = null;
    this.responseStarted = false;
    exchange?.onResponseEnd(trailers);
  }

  private freshDecoder(): ChunkedDecoder {
    if (this.chunkedDecoder === null) this.chunkedDecoder = new ChunkedDecoder({ onData: this.onChunkData });
    else this.chunkedDecoder.reset();
    return this.chunkedDecoder;
  }
}

/** Node's stream state objects, as far as autoDestroy and refuseWrites need them. */
interface StreamStates {
  _readableState: { autoDestroy: boolean; errored: Error | null };
  _writableState: { autoDestroy: boolean };
}

/**
 * Whether Node destroys the socket by itself, on a failed write and once
 * both directions have ended. Off while the connection carries requests: a
 * failed write must not drop the response an upstream sent before it
 * stopped reading (see the header), and every way out of this class
 * destroys the socket itself (a failure, an end, a release that does not
 * keep it). On again for a WebSocket tunnel, which relies on it.
 */
function autoDestroy(socket: net.Socket, on: boolean): void {
  const states = socket as unknown as StreamStates;
  states._readableState.autoDestroy = on;
  states._writableState.autoDestroy = on;
}
