'use strict';
/**
 * The faulty upstream's repertoire, and what a client may see for each: one
 * table, read by the faulty upstream (how to misbehave) and by the judge
 * (which outcomes are clean). A request names its fault in its path,
 * `/fault/<name>/<id>`.
 *
 * `before` faults break before any response head: the client must get a
 * clean error with exactly `status` (502 for a broken or invalid answer, 504
 * for none in time), never a bare close and never a hang. `after` faults
 * break after the head: the client must see the break (HTTP/1: the connection
 * closes before the framed end; HTTP/2: RST_STREAM), never a complete-looking
 * short body. `early` answers before reading the upload: a complete correct
 * answer, a 502 or a break are all honest. A `large` fault is sent an upload
 * of 1–3 MiB, more than the loopback socket buffers hold, so that an upload
 * the upstream does not read backs up into zproxy (and its HTTP/2 flow
 * control).
 */

/** Route timeout of the faulty route; `late` answers well after it. */
const FAULT_TIMEOUT_MS = 1000;
/** Content-Length the broken bodies announce, and how much of it they send. */
const DECLARED_BYTES = 4000;
const PARTIAL_BYTES = 1500;

/** Heads no proxy may pass on (SPEC §6: an invalid response is a 502). */
const MALFORMED_HEADS = [
  'this is not http\r\n\r\n',
  'HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok',
  'HTTP/3.7 200 OK\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX-A: a\r\n folded\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
  'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok',
];

const FILL = Buffer.alloc(DECLARED_BYTES, 'f');

function brokenHead(req, extra = '') {
  return `HTTP/1.1 200 OK\r\nx-soak-id: ${req.id}\r\nx-soak-len: ${DECLARED_BYTES}\r\n${extra}\r\n`;
}

/**
 * name -> { when, status?, method?, act(socket, req, pick) }. `act` runs once
 * the request is read (before its body for `early`); `pick(list)` is the
 * upstream's seeded choice. A socket left open is the proxy's to close.
 */
const FAULTS = {
  'reset-before-head': { when: 'before', status: 502, act: (s) => s.resetAndDestroy() },
  'close-before-head': { when: 'before', status: 502, act: (s) => s.end() },
  'malformed-status': { when: 'before', status: 502, act: (s, req, pick) => s.write(pick(MALFORMED_HEADS)) },
  'content-length-and-chunked': {
    when: 'before',
    status: 502,
    act: (s, req) => s.write(`HTTP/1.1 200 OK\r\nx-soak-id: ${req.id}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`),
  },
  'answer-late': {
    when: 'before',
    status: 504,
    act: (s, req) => {
      const timer = setTimeout(() => s.write(`HTTP/1.1 200 OK\r\nx-soak-id: ${req.id}\r\nContent-Length: 4\r\n\r\nlate`), FAULT_TIMEOUT_MS * 2);
      s.once('close', () => clearTimeout(timer));
    },
  },
  'stall-before-head': { when: 'before', status: 504, act: () => undefined },
  'close-mid-body': { when: 'after', act: (s, req) => s.end(Buffer.concat([Buffer.from(brokenHead(req, `Content-Length: ${DECLARED_BYTES}\r\n`)), FILL.subarray(0, PARTIAL_BYTES)])) },
  'reset-mid-body': {
    when: 'after',
    act: (s, req) => {
      s.write(brokenHead(req, `Content-Length: ${DECLARED_BYTES}\r\n`));
      s.write(FILL.subarray(0, PARTIAL_BYTES), () => setTimeout(() => s.destroyed || s.resetAndDestroy(), 20));
    },
  },
  'close-mid-chunked-body': {
    when: 'after',
    act: (s, req) => s.end(`${brokenHead(req, 'Transfer-Encoding: chunked\r\n')}400\r\n${FILL.toString('latin1', 0, 1024)}\r\n100\r\n${FILL.toString('latin1', 0, 100)}`),
  },
  'stall-mid-body': {
    when: 'after',
    act: (s, req) => s.write(Buffer.concat([Buffer.from(brokenHead(req, `Content-Length: ${DECLARED_BYTES}\r\n`)), FILL.subarray(0, PARTIAL_BYTES)])),
  },
  'ignore-upload': {
    when: 'before',
    status: 504,
    method: 'POST',
    large: true,
    // Reads the head only, not the upload, until well after the route timed out: zproxy's writes
    // back up and the client's upload stalls. Then it reads again (discarding), so it sees zproxy's close.
    act: (s) => {
      s.pause();
      const timer = setTimeout(() => s.resume(), FAULT_TIMEOUT_MS * 3);
      s.once('close', () => clearTimeout(timer));
    },
  },
  'early-answer-then-close': {
    when: 'early',
    method: 'POST',
    act: (s, req) => {
      const body = `{"id":"${req.id}","early":true}`;
      // Connection: close, as RFC 9112 §9.6 asks of a server that closes: zproxy must not reuse this connection.
      s.end(`HTTP/1.1 200 OK\r\nx-soak-id: ${req.id}\r\nx-soak-len: ${body.length}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      setTimeout(() => s.destroy(), 50);
    },
  },
};

const FAULT_NAMES = Object.keys(FAULTS);

module.exports = { FAULTS, FAULT_NAMES, FAULT_TIMEOUT_MS };
