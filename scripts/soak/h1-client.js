'use strict';
/**
 * HTTP/1.1 load of the soak: raw keep-alive connections (node:net), each
 * sending one request at a time or, now and then, a pipelined batch of 2–4,
 * with Content-Length or chunked uploads. Responses are parsed here, byte by
 * byte as they come, so the client sees exactly what zproxy framed: a body
 * is "complete" only when its Content-Length is met, its last chunk arrives,
 * or (read-until-close) the connection ends.
 *
 * When zproxy closes a connection, the request being answered is a cut (its
 * status if the head came), and those pipelined behind it are unanswered;
 * a new connection takes over.
 */
const net = require('node:net');
const { planRequest, soakHeaders } = require('./requests');

const PIPELINE_CHANCE = 0.2;

class H1Client {
  /** `shared`: { port, pool, ledger, nextId(), stopping(), stats } */
  constructor(shared, random) {
    this.shared = shared;
    this.random = random;
  }

  /** Runs connections one after another until the soak stops. */
  async run() {
    const { stats, stopping } = this.shared;
    while (!stopping()) {
      stats.h1Connections++;
      await new Connection(this.shared, this.random).run();
    }
  }
}

class Connection {
  constructor(shared, random) {
    this.shared = shared;
    this.random = random;
    /** Requests written and not yet answered, oldest first; the first one's response is being parsed. */
    this.queue = [];
    this.parser = new ResponseParser();
    this.announcedClose = false;
    /** The ledger item of the close zproxy announced, settled when it happens. */
    this.closing = null;
    /** Set when this client ends the connection (the soak stops, or a request hung). */
    this.endedByClient = false;
    this.closed = false;
  }

  run() {
    return new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: this.shared.port });
      this.socket = socket;
      socket.setNoDelay(true);
      socket.on('error', () => undefined);
      socket.on('data', (chunk) => this.onData(chunk));
      socket.once('close', () => {
        this.onClose();
        resolve();
      });
      socket.once('connect', () => this.sendBatch());
    });
  }

  sendBatch() {
    if (this.closed) return;
    if (this.shared.stopping()) {
      this.endedByClient = true;
      return this.socket.end();
    }
    const size = this.random.chance(PIPELINE_CHANCE) ? this.random.int(2, 4) : 1;
    const proto = size > 1 ? 'h1-pipe' : 'h1';
    /** What this batch held, for the report of a break in it. */
    const batch = [];
    for (let i = 0; i < size; i++) {
      const req = planRequest(this.random, this.shared, { chunkedUploads: true });
      req.onHang = () => this.destroyByClient();
      req.progress = () => this.parser.progress();
      req.batch = batch;
      batch.push(`${req.fault ? `fault ${req.fault}` : req.kind} ${req.id}`);
      this.queue.push(req);
      this.shared.ledger.open(req, proto);
      this.write(req);
    }
  }

  write(req) {
    let head = `${req.method} ${req.path} HTTP/1.1\r\nHost: soak.test\r\n`;
    for (const [name, value] of Object.entries(soakHeaders(req))) head += `${name}: ${value}\r\n`;
    if (!req.upload) return this.socket.write(`${head}\r\n`);
    if (!req.chunkedUpload) {
      this.socket.write(`${head}Content-Length: ${req.upload.length}\r\n\r\n`);
      return this.socket.write(req.upload);
    }
    this.socket.write(`${head}Transfer-Encoding: chunked\r\n\r\n`);
    for (let at = 0; at < req.upload.length; ) {
      const piece = req.upload.subarray(at, at + this.random.int(1, 16384));
      at += piece.length;
      this.socket.write(`${piece.length.toString(16)}\r\n`);
      this.socket.write(piece);
      this.socket.write('\r\n');
    }
    this.socket.write('0\r\n\r\n');
  }

  onData(chunk) {
    let at = 0;
    while (at < chunk.length) {
      if (this.queue.length === 0) {
        this.shared.ledger.note('unsolicited', `${chunk.length - at} bytes with no request outstanding: ${JSON.stringify(chunk.toString('latin1', at, at + 80))}`);
        return this.socket.destroy();
      }
      at = this.parser.push(chunk, at);
      if (this.parser.invalid) {
        this.shared.ledger.settle(this.queue.shift(), { type: 'invalid', detail: this.parser.invalid });
        return this.socket.destroy();
      }
      const response = this.parser.take();
      if (!response) continue;
      const req = this.queue.shift();
      this.shared.ledger.settle(req, response);
      if (/\bclose\b/i.test(response.headers.connection || '') && !this.announcedClose) this.awaitClose(req);
      if (this.queue.length === 0 && !this.announcedClose) setImmediate(() => this.sendBatch());
    }
  }

  destroyByClient() {
    this.endedByClient = true;
    this.socket.destroy();
  }

  /** zproxy said `Connection: close`: the close itself is due now, within the hang bound. */
  awaitClose(after) {
    this.announcedClose = true;
    this.closing = { ...after, kind: `${after.fault ? `fault ${after.fault}` : after.kind}, close announced`, fault: null, onHang: () => this.destroyByClient(), progress: () => 'Connection: close sent, the connection still open' };
    this.shared.ledger.open(this.closing, after.proto);
  }

  onClose() {
    this.closed = true;
    if (this.closing) this.shared.ledger.record(this.closing, { outcome: 'ok' });
    const [current, ...behind] = this.queue;
    this.queue = [];
    if (current) {
      const ended = this.parser.end();
      if (ended) this.shared.ledger.settle(current, ended);
      else if (this.parser.status === null && this.announcedClose) this.shared.ledger.settle(current, { type: 'unanswered' });
      else this.shared.ledger.settle(current, { type: 'cut', status: this.parser.status, bytes: this.parser.bodyBytes, detail: current.batch.length > 1 ? `pipelined batch: ${current.batch.join(', ')}` : undefined });
    }
    for (const req of behind) this.shared.ledger.settle(req, { type: 'unanswered' });
    if (!this.endedByClient) this.shared.stats.h1ClosedByProxy++;
  }
}

/**
 * An incremental HTTP/1.1 response parser for responses to GET and POST:
 * Content-Length, chunked (trailers skipped) and read-until-close bodies;
 * 1xx interim responses are skipped.
 */
class ResponseParser {
  constructor() {
    this.reset();
  }

  reset() {
    this.head = Buffer.alloc(0);
    this.status = null;
    this.headers = null;
    this.framing = null;
    this.parts = [];
    this.bodyBytes = 0;
    this.remaining = 0;
    /** Chunked decoding: 'size' line, 'data', the CRLF after data, 'trailers'. */
    this.chunkState = 'size';
    this.line = '';
    this.done = null;
    /** Set (to what was wrong) when the bytes are not HTTP/1.1 framing. */
    this.invalid = null;
  }

  progress() {
    return this.status === null ? `no response head yet, ${this.head.length} head bytes` : `${this.status} head and ${this.bodyBytes} body bytes`;
  }

  /** Consumes from `buf` at `at`; returns where it stopped (at a response's end, or the buffer's). */
  push(buf, at) {
    while (at < buf.length && !this.done && !this.invalid) {
      if (this.status === null) at = this.pushHead(buf, at);
      else if (this.framing === 'length') {
        const n = Math.min(this.remaining, buf.length - at);
        this.addBody(buf.subarray(at, at + n));
        at += n;
        this.remaining -= n;
        if (this.remaining === 0) this.finish();
      } else if (this.framing === 'chunked') at = this.pushChunked(buf, at);
      else {
        this.addBody(buf.subarray(at));
        at = buf.length;
      }
    }
    return at;
  }

  /** The response completed by the last push, if any (the parser is then ready for the next). */
  take() {
    const done = this.done;
    if (done) this.reset();
    return done;
  }

  /** The connection ended: a read-until-close body is complete now. */
  end() {
    if (this.status === null || this.framing !== 'close') return null;
    this.finish();
    return this.take();
  }

  pushHead(buf, at) {
    this.head = Buffer.concat([this.head, buf.subarray(at)]);
    const end = this.head.indexOf('\r\n\r\n');
    if (end < 0) return buf.length;
    const consumed = buf.length - (this.head.length - (end + 4));
    const lines = this.head.toString('latin1', 0, end).split('\r\n');
    this.head = Buffer.alloc(0);
    const status = Number(lines[0].split(' ')[1]);
    if (!/^HTTP\/1\.[01] \d{3}( |$)/.test(lines[0])) {
      this.invalid = `status line ${JSON.stringify(lines[0].slice(0, 80))}`;
      return buf.length;
    }
    if (status >= 100 && status < 200) return consumed;
    const headers = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    this.status = status;
    this.headers = headers;
    if (status === 204 || status === 304) this.finish();
    else if (/chunked/i.test(headers['transfer-encoding'] || '')) this.framing = 'chunked';
    else if (headers['content-length'] !== undefined) {
      this.framing = 'length';
      this.remaining = Number(headers['content-length']);
      if (this.remaining === 0) this.finish();
    } else this.framing = 'close';
    return consumed;
  }

  pushChunked(buf, at) {
    while (at < buf.length && !this.done) {
      if (this.chunkState === 'data') {
        const n = Math.min(this.remaining, buf.length - at);
        this.addBody(buf.subarray(at, at + n));
        at += n;
        this.remaining -= n;
        if (this.remaining === 0) this.chunkState = 'crlf';
        continue;
      }
      const lf = buf.indexOf(10, at);
      const end = lf < 0 ? buf.length : lf + 1;
      this.line += buf.toString('latin1', at, end);
      at = end;
      if (lf < 0) break;
      const line = this.line.replace(/\r?\n$/, '');
      this.line = '';
      if (this.chunkState === 'crlf') this.chunkState = 'size';
      else if (this.chunkState === 'trailers') {
        if (line === '') this.finish();
      } else {
        this.remaining = parseInt(line.split(';')[0], 16);
        if (Number.isNaN(this.remaining)) {
          this.invalid = `chunk size line ${JSON.stringify(line.slice(0, 40))}`;
          return buf.length;
        }
        this.chunkState = this.remaining === 0 ? 'trailers' : 'data';
      }
    }
    return at;
  }

  addBody(piece) {
    if (piece.length === 0) return;
    this.parts.push(Buffer.from(piece));
    this.bodyBytes += piece.length;
  }

  finish() {
    this.done = { type: 'complete', status: this.status, headers: this.headers, body: Buffer.concat(this.parts) };
  }
}

module.exports = { H1Client, ResponseParser };
