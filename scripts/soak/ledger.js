'use strict';
/**
 * The soak's book of requests: every request is opened when sent and
 * settled once with the judge's verdict; a sweep settles as hung any request
 * older than the hang bound (and tells its client to give up on it).
 *
 * The kill window: a good upstream killed mid-run breaks what it was serving
 * at that instant (a POST in flight there gets a 502 or a cut, a WebSocket
 * tunnel closes). Those failures are excused, counted apart, for requests
 * sent before the kill plus KILL_GRACE_MS and settled after it; anything
 * sent later must be retried on the other target and succeed.
 */
const { judge, label, FAILURES } = require('./requests');

/** How long after the kill a request may still have picked the killed target's open connection. */
const KILL_GRACE_MS = 500;
/** Failures a kill may cause (a 502, a break; the judge rules out a 504); a wrong body never is one. */
const EXCUSABLE = new Set(['unexpected-5xx', 'unexpected-cut']);
const SAMPLES_PER_FAILURE = 6;

class Ledger {
  constructor(hangMs) {
    this.hangMs = hangMs;
    this.outstanding = new Set();
    /** label -> { ok, error, cut, unanswered, excused, failed } */
    this.rows = new Map();
    /** failure class -> { count, samples } */
    this.failures = new Map();
    this.kills = [];
    this.settled = 0;
  }

  /** `req.onHang()`, if set, is called when the request is declared hung. */
  open(req, proto) {
    req.proto = proto;
    req.sentAt = Date.now();
    req.settled = false;
    this.outstanding.add(req);
  }

  /** Records the verdict on `result` (see judge()); a request is settled once. */
  settle(req, result) {
    if (req.settled) return;
    this.record(req, judge(req, result));
  }

  /** Records an outcome the client decided itself (WebSocket messages, follow-up items); `verdict.excusable: false` rules out the kill window. */
  record(req, verdict) {
    if (req.settled) return;
    req.settled = true;
    this.outstanding.delete(req);
    this.settled++;
    const now = Date.now();
    let { outcome, failure } = verdict;
    if (outcome === 'failed' && EXCUSABLE.has(failure) && verdict.excusable !== false && this.kills.some((at) => req.sentAt <= at + KILL_GRACE_MS && now >= at)) outcome = 'excused';
    const key = label(req, req.proto);
    if (!this.rows.has(key)) this.rows.set(key, { ok: 0, error: 0, cut: 0, unanswered: 0, excused: 0, failed: 0 });
    this.rows.get(key)[outcome]++;
    if (outcome !== 'failed') return;
    this.addFailure(failure, `${req.proto} ${req.method} ${req.path}${req.upload ? ` upload ${req.upload.length} B${req.chunkedUpload ? ' chunked' : ''}` : ''} after ${now - req.sentAt} ms: ${verdict.detail}`);
  }

  /** A failure seen outside any one request (e.g. bytes nobody asked for). */
  note(failure, detail) {
    this.addFailure(failure, detail);
  }

  addFailure(failure, sample) {
    if (!this.failures.has(failure)) this.failures.set(failure, { count: 0, samples: [] });
    const entry = this.failures.get(failure);
    entry.count++;
    if (entry.samples.length < SAMPLES_PER_FAILURE) entry.samples.push(sample);
  }

  /** A good upstream was killed now. */
  killed() {
    this.kills.push(Date.now());
  }

  /** Settles as hung every request older than the bound; returns how many. */
  sweep() {
    const now = Date.now();
    let hung = 0;
    for (const req of this.outstanding) {
      if (now - req.sentAt <= this.hangMs) continue;
      hung++;
      this.record(req, { outcome: 'failed', failure: 'hang', detail: `no outcome in ${this.hangMs} ms${req.progress ? ` (${req.progress()})` : ''}` });
      req.onHang?.();
    }
    return hung;
  }

  failureCount() {
    let n = 0;
    for (const { count } of this.failures.values()) n += count;
    return n;
  }
}

module.exports = { Ledger, FAILURES };
