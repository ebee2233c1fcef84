'use strict';
/**
 * HTTP/2 load of the soak: node:http2 sessions (cleartext, prior knowledge),
 * each keeping many streams in flight, with uploads (with and without
 * content-length). A response is complete when END_STREAM arrives; RST_STREAM
 * or the session's end before that is a cut. A stream zproxy refuses before
 * any head (REFUSED_STREAM, ENHANCE_YOUR_CALM, or beyond a GOAWAY) is a
 * failure of its own: the client never has more streams open than
 * max_concurrent_streams allows.
 *
 * A response that ends while its upload is still being sent leaves "the rest
 * of the upload" to account for (RFC 9113 §8.1): zproxy must read it or
 * reset the stream, so the stream closes; one that stays open holds the
 * client's stream slot and flow-control window, and is a hang of its own.
 *
 * A session that has hung HANGS_PER_SESSION streams is given up (its other
 * streams count as unanswered) and a new one takes over.
 */
const http2 = require('node:http2');
const { planRequest, soakHeaders } = require('./requests');

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;
const HANGS_PER_SESSION = 3;
/** A stream cancelled after a hang that has not closed by then takes its session with it (frames no longer flow). */
const CANCEL_BOUND_MS = 2000;

class H2Client {
  /** `shared`: { port, pool, ledger, nextId(), stopping(), stats }; `streams` in flight per session. */
  constructor(shared, random, streams) {
    this.shared = shared;
    this.random = random;
    this.streams = streams;
  }

  async run() {
    while (!this.shared.stopping()) {
      this.shared.stats.h2Sessions++;
      await new Session(this.shared, this.random, this.streams, this.random.int(100, 1000)).run();
    }
  }
}

class Session {
  constructor(shared, random, streams, lifetime) {
    this.shared = shared;
    this.random = random;
    this.streams = streams;
    /** Requests this session sends before it closes gracefully. */
    this.left = lifetime;
    this.open = new Set();
    this.hangs = 0;
    this.givenUp = false;
  }

  run() {
    return new Promise((resolve) => {
      // The client holds unsent uploads too: its own 10 MB session limit must not be what refuses streams.
      const session = http2.connect(`http://127.0.0.1:${this.shared.port}`, { maxSessionMemory: 1024 });
      this.session = session;
      session.on('error', () => undefined);
      session.once('goaway', () => {
        if (!this.givenUp) this.shared.stats.h2GoawaysFromProxy++;
      });
      // A session zproxy never accepts is a hang of its own.
      const setup = { id: 'session', rid: '', kind: 'h2-session', fault: null, method: 'PRI', path: '*', upload: null, onHang: () => session.destroy() };
      this.shared.ledger.open(setup, 'h2');
      session.once('connect', () => {
        this.shared.ledger.record(setup, { outcome: 'ok' });
        for (let i = 0; i < this.streams; i++) this.next();
      });
      session.once('close', () => {
        this.shared.ledger.record(setup, { outcome: 'failed', failure: 'unexpected-cut', detail: 'session closed before SETTINGS' });
        // Its streams have been settled by their own 'close' by now.
        resolve();
      });
    });
  }

  next() {
    if (this.givenUp || this.session.closed || this.session.destroyed) return;
    if (this.shared.stopping() || this.left <= 0) {
      if (this.open.size === 0) this.session.close();
      return;
    }
    this.left--;
    const req = planRequest(this.random, this.shared, { chunkedUploads: false });
    this.send(req);
  }

  send(req) {
    const headers = { ':method': req.method, ':path': req.path, ':authority': 'soak.test', ...soakHeaders(req) };
    if (req.upload && this.random.chance(0.7)) headers['content-length'] = String(req.upload.length);
    const { ledger } = this.shared;
    ledger.open(req, 'h2');
    let stream;
    try {
      stream = this.session.request(headers, { endStream: !req.upload });
    } catch (err) {
      ledger.settle(req, { type: 'refused', detail: err.code || err.message });
      return;
    }
    this.open.add(stream);
    let status = null;
    let responseHeaders = null;
    let ended = false;
    const parts = [];
    let bytes = 0;
    req.progress = () => (status === null ? 'no HEADERS yet' : `${status} HEADERS and ${bytes} DATA bytes, no END_STREAM yet`);
    req.onHang = () => {
      stream.close(NGHTTP2_CANCEL);
      if (++this.hangs >= HANGS_PER_SESSION) return this.giveUp();
      setTimeout(() => stream.closed || this.giveUp(), CANCEL_BOUND_MS).unref();
    };
    stream.on('error', () => undefined);
    stream.on('response', (h) => {
      if (Number(h[':status']) >= 200) {
        status = Number(h[':status']);
        responseHeaders = h;
      }
    });
    stream.on('data', (chunk) => {
      parts.push(chunk);
      bytes += chunk.length;
    });
    /** Opened when the response ends before the upload was all sent; settled when the stream closes. */
    let rest = null;
    stream.on('end', () => {
      ended = true;
      if (status === null) return;
      ledger.settle(req, { type: 'complete', status, headers: responseHeaders, body: Buffer.concat(parts) });
      if (!req.upload || stream.writableFinished) return;
      rest = { ...req, kind: `${req.fault ? `fault ${req.fault}` : req.kind}, rest of upload`, fault: null, onHang: req.onHang, progress: () => 'answered; the rest of the upload neither read nor reset' };
      ledger.open(rest, 'h2');
    });
    stream.once('close', () => {
      this.open.delete(stream);
      if (rest) ledger.record(rest, { outcome: 'ok' });
      if (ended && status !== null) return setImmediate(() => this.next());
      if (this.givenUp) ledger.settle(req, { type: 'unanswered' });
      else if (status === null && (stream.rstCode === NGHTTP2_REFUSED_STREAM || stream.rstCode === NGHTTP2_ENHANCE_YOUR_CALM || this.session.closed)) {
        // Node refuses a new stream with ENHANCE_YOUR_CALM when the session is over maxSessionMemory or its stream count.
        ledger.settle(req, { type: 'refused', detail: `rst code ${stream.rstCode}` });
      } else ledger.settle(req, { type: 'cut', status, bytes, detail: `rst code ${stream.rstCode}` });
      setImmediate(() => this.next());
    });
    if (req.upload) stream.end(req.upload);
  }

  giveUp() {
    if (this.givenUp) return;
    this.givenUp = true;
    this.shared.stats.h2SessionsGivenUp++;
    this.session.destroy();
  }
}

module.exports = { H2Client };
