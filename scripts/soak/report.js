'use strict';
/**
 * The soak's summary: requests by kind and outcome, the failures with
 * samples to reproduce them, the schedule, resources before and after, and
 * the invariants, each PASS or FAIL. Plain text on stdout.
 */
const { FAILURES } = require('./requests');

const OUTCOMES = ['ok', 'error', 'cut', 'unanswered', 'excused', 'failed'];

/** Invariants over failure classes: [title, classes]. */
const CLASS_INVARIANTS = [
  ['every answer matched to its request (ids in bodies and headers)', ['mismatch', 'unsolicited']],
  ['no request hangs longer than the bound', ['hang']],
  ['no truncated or altered body presented as complete, no invalid framing', ['truncated', 'corrupt', 'invalid', 'upload-corrupt']],
  ['faulty upstream: clean 502/504 before the head, a break after it; good routes: 200; HTTP/2 streams never refused', ['wrong-status', 'unexpected-5xx', 'unexpected-cut', 'refused']],
];

const LABEL_WIDTH = 56;
const mib = (kib) => (kib / 1024).toFixed(1);
const pad = (v, n) => String(v).padStart(n);

function requestTable(ledger) {
  const lines = [`${'kind'.padEnd(LABEL_WIDTH)}${pad('sent', 8)}${OUTCOMES.map((o) => pad(o === 'failed' ? 'FAILED' : o, 11)).join('')}`];
  const total = Object.fromEntries(OUTCOMES.map((o) => [o, 0]));
  for (const key of [...ledger.rows.keys()].sort()) {
    const row = ledger.rows.get(key);
    const sent = OUTCOMES.reduce((s, o) => s + row[o], 0);
    for (const o of OUTCOMES) total[o] += row[o];
    lines.push(`${key.padEnd(LABEL_WIDTH)}${pad(sent, 8)}${OUTCOMES.map((o) => pad(row[o] || '-', 11)).join('')}`);
  }
  const sent = OUTCOMES.reduce((s, o) => s + total[o], 0);
  lines.push(`${'total'.padEnd(LABEL_WIDTH)}${pad(sent, 8)}${OUTCOMES.map((o) => pad(total[o], 11)).join('')}`);
  return lines;
}

function failureLines(ledger) {
  const lines = [];
  for (const [failure, { count, samples }] of [...ledger.failures.entries()].sort((a, b) => b[1].count - a[1].count)) {
    lines.push(`  ${failure} (${FAILURES[failure] || failure}): ${count}`);
    for (const s of samples) lines.push(`      ${s}`);
  }
  return lines.length ? lines : ['  none'];
}

/**
 * `run`: { options, seed, runtime, ledger, schedule[], stats, resources: { start, afterLoad, afterQuiet,
 * quietMs, quietReached, extraFds[], upstreams{}, upstreamStats{}, timeline[] }, reloads: { sent, applied, slowest },
 * exit, problems, aliveThroughout }. Returns { text, failed }.
 */
function summarize(run) {
  const { ledger, resources: r } = run;
  const out = [];
  out.push('', `== zproxy soak: seed ${run.seed}, ${run.options.duration} s, ${run.runtime}, thread_count 2 ==`);
  out.push(`reproduce: npm run soak -- --seed ${run.seed} --duration ${run.options.duration}${run.options.noNative ? ' --no-native' : ''}`);
  out.push('', 'requests by kind and outcome (ok: correct answer; error: the clean error status due; cut: an honest break;', 'unanswered: pipelined behind a close zproxy announced, or given up with a hung stream; excused: broken by the upstream kill)', ...requestTable(ledger));
  out.push('', 'failures', ...failureLines(ledger));
  out.push('', 'schedule', ...run.schedule.map((s) => `  ${s}`));
  const s = run.stats;
  out.push(`  clients: ${s.h1Connections} HTTP/1 connections (${s.h1ClosedByProxy} closed by zproxy), ${s.h2Sessions} HTTP/2 sessions (${s.h2GoawaysFromProxy} GOAWAYs from zproxy, ${s.h2SessionsGivenUp} given up), ${s.wsConnections} WebSocket connections`);
  out.push('', 'resources                         fresh    baseline   after load   after quiet   (baseline: after the warm-up)');
  out.push(`  zproxy fds               ${pad(r.fresh.fds.count, 10)}${pad(r.start.fds.count, 12)}${pad(r.afterLoad.fds.count, 13)}${pad(r.afterQuiet.fds.count, 14)}   (back after ${(r.quietMs / 1000).toFixed(1)} s${r.quietReached ? '' : ': NOT back within the bound'}; memory read after at least 10 s)`);
  out.push(`    by kind after the warm-up: ${JSON.stringify(r.start.fds.kinds)}; after quiet: ${JSON.stringify(r.afterQuiet.fds.kinds)}`);
  for (const extra of r.extraFds) out.push(`    not at start: ${extra}`);
  const conns = (k) => Object.entries(r.upstreams[k]).map(([n, v]) => `${n} ${v}`).join(', ');
  out.push(`  upstream conns open      ${pad('0', 10)}${pad('0', 12)}   ${conns('afterLoad')}   -> ${conns('afterQuiet')}`);
  out.push(`  RSS MiB                  ${pad(mib(r.fresh.mem.rss), 10)}${pad(mib(r.start.mem.rss), 12)}${pad(mib(r.afterLoad.mem.rss), 13)}${pad(mib(r.afterQuiet.mem.rss), 14)}   (peak ${mib(r.afterQuiet.mem.hwm)})`);
  if (r.afterQuiet.mem.byKind) {
    for (const kind of Object.keys(r.fresh.mem.byKind)) {
      const at = (x) => pad(mib(x.mem.byKind[kind]), 0);
      out.push(`    ${kind.padEnd(21)}${pad(at(r.fresh), 10)}${pad(at(r.start), 12)}${pad(at(r.afterLoad), 13)}${pad(at(r.afterQuiet), 14)}`);
    }
  }
  if (r.afterTrim) {
    const k = r.afterTrim.byKind;
    out.push(`  RSS MiB after malloc_trim(0), after quiet: ${mib(r.afterTrim.rss)} (malloc arenas ${mib(k['malloc arenas'])}, brk heap ${mib(k['brk heap'])}, other anonymous ${mib(k['other anonymous'])}, files ${mib(k.files)})`);
  }
  if (r.start.heaps && r.afterQuiet.heaps) {
    out.push(`  RSS MiB after a full GC  ${pad('', 10)}${pad(mib(r.start.rssAfterGc), 12)}${pad('', 13)}${pad(mib(r.afterQuiet.rssAfterGc), 14)}`);
    for (const thread of Object.keys(r.start.heaps)) {
      const [x, y] = [r.start.heaps[thread], r.afterQuiet.heaps?.[thread]];
      if (!y) continue;
      const f = (h) => `heap ${h.usedMiB.toFixed(1)} of ${h.totalMiB.toFixed(1)}, external ${h.externalMiB.toFixed(1)} (ArrayBuffers ${h.arrayBuffersMiB.toFixed(1)})`;
      out.push(`  ${thread.padEnd(14)} MiB after GC: ${f(x)}  ->  ${f(y)}`);
    }
  }
  for (const file of [...(r.start.snapshots || []), ...(r.afterQuiet.snapshots || [])]) out.push(`  heap snapshot: ${file}`);
  if (r.start.snapshots?.length) out.push('  (RSS after the baseline includes what writing its snapshots cost: compare RSS with --inspect alone)');
  out.push(`  RSS timeline (s: MiB): ${r.timeline.map(([t, kib]) => `${t}: ${mib(kib)}`).join(', ')}`);
  const us = run.upstreamStats;
  if (us.faulty?.open) out.push(`  faulty upstream connections zproxy left open, by the fault they last acted out: ${JSON.stringify(us.faulty.openByFault)}`);
  out.push(`  upstreams: ${Object.entries(us).map(([n, v]) => `${n} ${v.accepted} conns accepted${v.requests !== undefined ? `, ${v.requests} requests` : ''}${v.uploadsIncomplete ? `, ${v.uploadsIncomplete} uploads cut short` : ''}`).join('; ')}`);
  if (run.problems.warn + run.problems.error) {
    out.push(`  zproxy logged ${run.problems.warn} warnings, ${run.problems.error} errors, e.g.:`);
    for (const line of run.problems.samples) out.push(`      ${line}`);
  }

  const checks = [];
  const count = (classes) => classes.reduce((n, c) => n + (ledger.failures.get(c)?.count || 0), 0);
  for (const [title, classes] of CLASS_INVARIANTS) {
    const n = count(classes);
    checks.push([n === 0, `${title} (${classes.map((c) => `${ledger.failures.get(c)?.count || 0} ${c}`).join(', ')})`]);
  }
  const upstreamBad = Object.values(us).reduce((n, v) => n + (v.uploadsCorrupt || 0) + (v.parseErrors || 0) + (v.badFraming || 0), 0);
  checks.push([upstreamBad === 0, `upstreams received intact uploads and valid requests (${Object.entries(us).map(([n, v]) => `${n}: ${v.uploadsCorrupt || 0} corrupt, ${(v.parseErrors || 0) + (v.badFraming || 0)} unparsable${v.corruptSamples?.length ? ` e.g. ${JSON.stringify(v.corruptSamples[0])}` : ''}`).join('; ')})`]);
  checks.push([r.fdsBack, `zproxy fds back after a quiet period: sockets to their fresh count, others to their count after the warm-up (sockets ${r.fresh.fds.sockets.size} -> ${r.afterQuiet.fds.sockets.size}, all ${r.start.fds.count} -> ${r.afterQuiet.fds.count})`]);
  const open = Object.values(r.upstreams.afterQuiet).reduce((a, b) => a + b, 0);
  checks.push([open === 0, `upstream connections back to 0 (${conns('afterQuiet')})`]);
  checks.push([run.aliveThroughout, `zproxy stayed up through the run${run.aliveThroughout ? '' : `: ${run.exitDuringRun}`}`]);
  checks.push([
    run.exit.code === 0 && run.exit.ms < run.options.stopBoundMs,
    `zproxy stopped on SIGTERM with nothing in flight: exit 0 within ${run.options.stopBoundMs} ms, not waiting out drain_timeout_ms (${run.exit.signal ? `killed by ${run.exit.signal}` : `exit ${run.exit.code}`} after ${run.exit.ms} ms)`,
  ]);
  checks.push([run.reloads.applied === run.reloads.sent, `every SIGHUP reload applied (${run.reloads.applied}/${run.reloads.sent}, slowest ${run.reloads.slowest} ms)`]);
  checks.push([run.problems.error === 0, `zproxy logged no errors (${run.problems.error})`]);
  out.push('', 'invariants');
  for (const [ok, text] of checks) out.push(`  ${ok ? 'PASS' : 'FAIL'}  ${text}`);
  out.push(`  INFO  RSS ${mib(r.start.mem.rss)} MiB at start, ${mib(r.afterLoad.mem.rss)} after load, ${mib(r.afterQuiet.mem.rss)} after quiet, peak ${mib(r.afterQuiet.mem.hwm)} (see docs/soak.md)`);
  const failed = checks.filter(([ok]) => !ok).length;
  out.push('', failed ? `RESULT: FAIL (${failed} invariant${failed > 1 ? 's' : ''} failed; seed ${run.seed})` : `RESULT: PASS (seed ${run.seed})`, '');
  return { text: out.join('\n'), failed };
}

module.exports = { summarize };
