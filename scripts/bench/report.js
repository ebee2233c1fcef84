'use strict';
/**
 * Medians per (scenario, proxy), the Markdown tables, and the target
 * checks. Everything here works on the raw run records of scripts/bench.js
 * and the skipped (scenario, proxy) pairs with their reasons.
 */

function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function max(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x));
  return v.length ? Math.max(...v) : null;
}

/**
 * One row per (scenario, proxy) that ran or was skipped, in scenario order
 * then `proxyOrder`, with medians over the counted rounds. `row.cpu` is the
 * scenario's CPU figure (µs per its cpuUnit), `row.rate` its rate.
 */
function summarise(runs, skips, scenarioIds, proxyOrder, scenarios, catalogue) {
  const rows = [];
  for (const s of scenarioIds) {
    const sc = scenarios[s];
    for (const p of proxyOrder) {
      const label = (sc.labels && sc.labels[p]) || catalogue[p].label;
      const skip = skips.find((k) => k.scenario === s && k.proxy === p);
      if (skip) {
        rows.push({ scenario: s, scenario_title: sc.title, proxy: p, label, skipped: skip.reason, rounds: 0, cpu: null, ratio_to_nginx: null });
        continue;
      }
      const mine = runs.filter((r) => r.scenario === s && r.proxy === p);
      if (!mine.length) continue;
      const ok = mine.filter((r) => r.ok);
      const row = {
        scenario: s,
        scenario_title: sc.title,
        proxy: p,
        label,
        skipped: null,
        rounds: ok.length,
        failed_rounds: mine.length - ok.length,
        failure: mine.find((r) => !r.ok)?.error || null,
        rate: median(ok.map((r) => r.rate)),
        rate_unit: sc.rateUnit,
        rps: median(ok.map((r) => r.rps)),
        p50_us: median(ok.map((r) => r.p50_us)),
        p99_us: median(ok.map((r) => r.p99_us)),
        mean_us: median(ok.map((r) => r.mean_us)),
        cpu_unit: sc.cpuUnit,
        cpu: median(ok.map((r) => r.cpu_us_per_unit)),
        cpu_us_per_req: median(ok.map((r) => r.cpu_us_per_req)),
        cpu_us_per_mib: median(ok.map((r) => r.cpu_us_per_mib)),
        backend_cpu_us_per_unit: median(ok.map((r) => r.backend_cpu_us_per_unit)),
        peak_rss_kib: max(ok.map((r) => r.peak_rss_kib)),
        error_rounds: ok.filter((r) => r.errors_total > 0).length,
        errors_total: ok.reduce((a, r) => a + r.errors_total, 0),
        warnings: [...new Set(ok.flatMap((r) => r.warnings))],
        noisy_rounds: ok.filter((r) => r.noisy).length,
        ratio_to_nginx: null,
      };
      const cpus = ok.map((r) => r.cpu_us_per_unit).filter((x) => x != null);
      row.cpu_min = cpus.length ? Math.min(...cpus) : null;
      row.cpu_max = cpus.length ? Math.max(...cpus) : null;
      rows.push(row);
    }
  }
  for (const row of rows) {
    const ng = rows.find((r) => r.scenario === row.scenario && r.proxy === 'nginx');
    if (ng && ng.cpu && row.cpu != null) row.ratio_to_nginx = row.cpu / ng.cpu;
  }
  return rows;
}

const fmtInt = (x) => (x == null ? '—' : Math.round(x).toLocaleString('en-US'));
const fmtMs = (us) => (us == null ? '—' : `${(us / 1000).toFixed(2)} ms`);
const fmtCpu = (x) => (x == null ? '—' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const fmtRatio = (x) => (x == null ? '—' : `${x.toFixed(2)}×`);
const fmtRss = (kib) => (kib == null ? '—' : `${(kib / 1024).toFixed(1)} MiB`);

function notes(r) {
  if (r.skipped) return `SKIPPED: ${r.skipped}`;
  const out = [];
  if (r.failed_rounds) out.push(`FAILED ${r.failed_rounds} round(s): ${r.failure}`);
  if (r.error_rounds) out.push(`⚠ errors in ${r.error_rounds} round(s) (${r.errors_total} total)`);
  for (const w of r.warnings) out.push(`⚠ ${w}`);
  if (r.rounds > 1) out.push(`CPU ${fmtCpu(r.cpu_min)}–${fmtCpu(r.cpu_max)}`);
  if (r.noisy_rounds) out.push(`noisy ${r.noisy_rounds}/${r.rounds}`);
  return out.join('; ').replace(/\|/g, '/');
}

/** Scenarios a–c: the original layout (req/s; CPU per request, b per MiB). */
function markdownTable(rows, scenarios) {
  const lines = [
    '| scenario | proxy | req/s | p50 | p99 | CPU µs/req (b: µs/MiB) | ratio to nginx | peak RSS | notes |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.scenario}. ${scenarios[r.scenario].title} | ${r.label} | ${fmtInt(r.rps)} | ${fmtMs(r.p50_us)} | ${fmtMs(r.p99_us)} | ${fmtCpu(
        r.cpu,
      )} | ${fmtRatio(r.ratio_to_nginx)} | ${fmtRss(r.peak_rss_kib)} | ${notes(r)} |`,
    );
  }
  return lines.join('\n');
}

/**
 * Scenarios d–h: units in the cells (req/s, handshakes/s, msg/s, MiB/s; CPU
 * µs per request, handshake, message or MiB). Without percentiles (h2load),
 * the mean latency goes in the p50 column, marked "mean".
 */
function markdownTableMore(rows, scenarios) {
  const lines = [
    '| scenario | proxy | rate | p50 | p99 | proxy CPU | ratio to nginx | peak RSS | notes |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const r of rows) {
    const sc = scenarios[r.scenario];
    const rate = r.rate == null ? '—' : `${sc.rateUnit === 'MiB/s' && r.rate < 100 ? r.rate.toFixed(1) : fmtInt(r.rate)} ${sc.rateUnit}`;
    const p50 = r.p50_us == null && r.mean_us != null ? `mean ${fmtMs(r.mean_us)}` : fmtMs(r.p50_us);
    const cpu = r.cpu == null ? '—' : `${fmtCpu(r.cpu)} µs/${sc.cpuUnit}`;
    lines.push(
      `| ${r.scenario}. ${sc.title} | ${r.label} | ${rate} | ${p50} | ${fmtMs(r.p99_us)} | ${cpu} | ${fmtRatio(r.ratio_to_nginx)} | ${fmtRss(
        r.peak_rss_kib,
      )} | ${notes(r)} |`,
    );
  }
  return lines.join('\n');
}

/**
 * The first targets, all with thread_count 1, for the scenarios that
 * were selected. Informational only (PASS / MISS / n/a), never an exit failure.
 */
const PEER_LABELS = { nginx: 'nginx', haproxy: 'HAProxy' };

function targetChecks(rows, { zproxyMode, scenarios: selected }) {
  const get = (s, p) => rows.find((r) => r.scenario === s && r.proxy === p && r.cpu != null);
  const standIn = zproxyMode === 'respond' ? ' [direct-response stand-in, not proxying]' : '';
  const out = [];
  /** zproxy 1 thread's CPU figure against a peer's: ≤ limit × theirs. */
  const atMost = (s, peer, limit, what) => {
    if (!selected.includes(s)) return;
    const z = get(s, 'zproxy1');
    const n = get(s, peer);
    const name = `${s}. ${what}: zproxy 1 thread ≤ ${limit.toFixed(1)}× ${PEER_LABELS[peer]}`;
    if (!z || !n) return out.push({ target: name, status: 'n/a', line: `n/a  ${name} (not measured)` });
    const ratio = z.cpu / n.cpu;
    const status = ratio <= limit ? 'PASS' : 'MISS';
    out.push({
      target: name,
      status,
      value: ratio,
      line: `${status} ${name}: ${fmtCpu(z.cpu)} vs ${fmtCpu(n.cpu)} = ${ratio.toFixed(2)}×${standIn}`,
    });
  };
  atMost('a', 'nginx', 2.0, 'small keep-alive GET CPU/req');
  if (selected.includes('a')) {
    const z = get('a', 'zproxy1');
    const b = get('a', 'baseline');
    const name = 'a. small keep-alive GET CPU/req: zproxy 1 thread ≥ 3.5× better than node:http + undici';
    if (!z || !b) out.push({ target: name, status: 'n/a', line: `n/a  ${name} (not measured)` });
    else {
      const factor = b.cpu / z.cpu;
      const status = factor >= 3.5 ? 'PASS' : 'MISS';
      out.push({
        target: name,
        status,
        value: factor,
        line: `${status} ${name}: ${fmtCpu(b.cpu)} / ${fmtCpu(z.cpu)} = ${factor.toFixed(2)}×${standIn}`,
      });
    }
  }
  atMost('b', 'nginx', 1.0, '1 MiB GET CPU/MiB');
  atMost('c', 'nginx', 3.0, 'new connection per request CPU/req');
  atMost('d', 'nginx', 3.0, 'h2c multiplexed GET CPU/req');
  atMost('h', 'haproxy', 1.0, 'WebSocket bulk CPU/MiB (splice tunnel)');
  return out;
}

module.exports = { median, summarise, markdownTable, markdownTableMore, targetChecks };
