'use strict';
/**
 * What the soak sends and how each answer is judged; every client (HTTP/1,
 * HTTP/2) plans with `planRequest` and reports to `judge`, so "correct" is
 * decided in one place.
 *
 * Every request carries its id three ways: in the path, in `x-soak-id` and
 * as `X-Request-Id` (which zproxy passes both ways and puts in its error
 * bodies). A good upstream echoes all of them in its body's first line
 * together with the upload's length and SHA-256 as it arrived, and describes
 * the whole body in `x-soak-len` / `x-soak-sha256`.
 */
const crypto = require('node:crypto');
const { FAULTS } = require('./faults');

/** Kinds of request and how often each is sent. */
const KINDS = [
  ['good-get', 45],
  ['good-post', 25],
  ['fault', 26],
  ['toggle', 4],
];

/** Response body sizes of good requests: mostly small, a few past the body-splice threshold (256 KiB). */
const RESPONSE_SIZES = [
  [[0, 2048], 60],
  [[2048, 65536], 28],
  [[65536, 262144], 10],
  [[262144, 600 * 1024], 2],
];
/** Upload sizes, up to 256 KiB. */
const UPLOAD_SIZES = [
  [[1, 4096], 50],
  [[4096, 65536], 30],
  [[65536, 262144], 20],
];
/** Uploads of `large` faults: more than loopback socket buffers hold. */
const LARGE_UPLOAD = [1 << 20, 3 << 20];

/**
 * The next request of one client. `shared.pool` is the seeded byte block
 * uploads are cut from (at least 3 MiB), `shared.faults` the faults to ask
 * for; `chunkedUploads` says whether the client can send a chunked body (HTTP/1).
 */
function planRequest(random, shared, { chunkedUploads }) {
  const id = shared.nextId();
  const pool = shared.pool;
  let kind = random.weighted(KINDS);
  if (kind === 'fault' && shared.faults.length === 0) kind = 'good-get';
  const rid = `soak-${id}`;
  const req = { id: String(id), rid, kind, fault: null, method: 'GET', path: '', upload: null, uploadSha: null, chunkedUpload: false };
  if (kind === 'toggle') {
    req.path = `/toggle/${id}`;
    return req;
  }
  let upload = kind === 'good-post';
  if (kind === 'fault') {
    req.fault = random.pick(shared.faults);
    upload = FAULTS[req.fault].method === 'POST' || random.chance(0.3);
    req.path = `/fault/${req.fault}/${id}`;
  } else {
    const [lo, hi] = random.weighted(RESPONSE_SIZES);
    req.path = `/good/${id}?size=${random.int(lo, hi)}&chunked=${random.chance(0.25) ? 1 : 0}&delay=${random.chance(0.1) ? random.int(1, 50) : 0}`;
  }
  if (upload) {
    req.method = 'POST';
    const fault = FAULTS[req.fault];
    const [lo, hi] = fault?.large ? LARGE_UPLOAD : random.weighted(fault?.method === 'POST' ? UPLOAD_SIZES.slice(1) : UPLOAD_SIZES);
    const size = random.int(lo, hi);
    const offset = random.int(0, pool.length - size);
    req.upload = pool.subarray(offset, offset + size);
    req.uploadSha = crypto.createHash('sha256').update(req.upload).digest('hex');
    req.chunkedUpload = chunkedUploads && random.chance(0.3);
  }
  return req;
}

/** Header fields every request carries (lower-case names). */
function soakHeaders(req) {
  const headers = { 'x-soak-id': req.id, 'x-request-id': req.rid };
  if (req.upload) {
    headers['x-soak-upload-sha256'] = req.uploadSha;
    headers['x-soak-upload-len'] = String(req.upload.length);
  }
  return headers;
}

/** The row of the summary table a request counts in. */
function label(req, proto) {
  return `${proto.padEnd(7)} ${req.fault ? `fault ${req.fault}` : req.kind}`;
}

/** Failure classes: any one of them makes the run fail. */
const FAILURES = {
  hang: 'no outcome within the hang bound',
  truncated: 'a body shorter than announced, presented as complete',
  corrupt: 'a complete body whose bytes differ from what the upstream sent',
  mismatch: "an answer carrying another request's id",
  'upload-corrupt': 'the upstream received an upload other than the one sent',
  'wrong-status': 'a status this kind of request must not get',
  'unexpected-5xx': 'a 5xx from a good route (outside the kill window)',
  'unexpected-cut': 'a break where a complete answer or clean error was due',
  invalid: 'bytes from zproxy that are not a valid response',
  unsolicited: 'bytes from zproxy with no request outstanding',
  refused: 'an HTTP/2 stream refused before any head (the client stays under max_concurrent_streams)',
};

/**
 * Judges one answer. `result` is one of
 *   { type: 'complete', status, headers (lower-case names), body }  the framing said "complete"
 *   { type: 'cut', status | null, bytes }                           closed, reset or RST_STREAM
 *   { type: 'unanswered' }   never answered on a connection the proxy had announced closing
 *   { type: 'invalid', detail }  bytes that are not a response
 *   { type: 'refused', detail }  an HTTP/2 stream refused, or cut off by a GOAWAY
 * Returns { outcome, failure?, detail? }: outcome is ok, error (a clean
 * error status), cut, unanswered, or failed.
 */
function judge(req, result) {
  if (result.type === 'unanswered') return { outcome: 'unanswered' };
  if (result.type === 'invalid') return { outcome: 'failed', failure: 'invalid', detail: result.detail };
  if (result.type === 'refused') return { outcome: 'failed', failure: 'refused', detail: result.detail };
  if (result.type === 'cut') return judgeCut(req, result);
  const { status, headers, body } = result;
  const fail = (failure, detail) => ({ outcome: 'failed', failure, detail: `${status} ${detail}` });
  if (headers['x-request-id'] !== undefined && headers['x-request-id'] !== req.rid) return fail('mismatch', `x-request-id ${headers['x-request-id']}`);
  if (headers['x-soak-id'] !== undefined && headers['x-soak-id'] !== req.id) return fail('mismatch', `x-soak-id ${headers['x-soak-id']}`);
  const announced = headers['x-soak-len'];
  if (announced !== undefined && body.length !== Number(announced)) {
    return fail(body.length < Number(announced) ? 'truncated' : 'corrupt', `body ${body.length} bytes, announced ${announced}`);
  }
  const sha = headers['x-soak-sha256'];
  if (sha !== undefined && crypto.createHash('sha256').update(body).digest('hex') !== sha) return fail('corrupt', `body of ${body.length} bytes has another SHA-256`);
  if (status >= 400 && /json/.test(headers['content-type'] || '')) {
    const rid = parseJson(body)?.request_id;
    if (rid !== req.rid) return fail('mismatch', `error body request_id ${rid}`);
  }
  if (req.kind === 'toggle') {
    if (status === 404 || (status === 200 && /^toggle v\d+$/.test(body.toString()))) return { outcome: status === 200 ? 'ok' : 'error' };
    return fail('wrong-status', body.toString('latin1', 0, 80));
  }
  if (req.fault) return judgeFaultAnswer(req, status, body, fail);
  if (status !== 200) return { ...fail(status >= 500 ? 'unexpected-5xx' : 'wrong-status', body.toString('latin1', 0, 120)), excusable: status === 502 };
  const summary = parseJson(body.subarray(0, body.indexOf(10)));
  if (!summary || summary.id !== req.id || summary.rid !== req.rid) return fail('mismatch', `body says ${body.toString('latin1', 0, 120)}`);
  if (req.upload && (summary.received !== req.upload.length || summary.sha256 !== req.uploadSha)) {
    return fail('upload-corrupt', `sent ${req.upload.length} bytes, upstream got ${summary.received}${summary.received === req.upload.length ? ' (other bytes)' : ''}`);
  }
  return { outcome: 'ok' };
}

function judgeFaultAnswer(req, status, body, fail) {
  const fault = FAULTS[req.fault];
  if (fault.when === 'before' && status === fault.status) return { outcome: 'error' };
  if (fault.when === 'early' && status === 502) return { outcome: 'error' };
  if (fault.when === 'early' && status === 200 && parseJson(body)?.id === req.id) return { outcome: 'ok' };
  return fail('wrong-status', `for fault ${req.fault}: ${body.toString('latin1', 0, 120)}`);
}

function judgeCut(req, result) {
  const fault = req.fault && FAULTS[req.fault];
  if (fault && (fault.when === 'after' || fault.when === 'early')) return { outcome: 'cut' };
  const seen = result.status === null ? 'before any head' : `after a ${result.status} head and ${result.bytes} body bytes`;
  return { outcome: 'failed', failure: 'unexpected-cut', detail: `closed ${seen}${result.detail ? ` (${result.detail})` : ''}` };
}

function parseJson(buf) {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    return null;
  }
}

module.exports = { planRequest, soakHeaders, judge, label, FAILURES };
