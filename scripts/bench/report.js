'use strict';
/**
 * Medians per (scenario, proxy), the Markdown table, and the target
 * checks. Everything here works on the raw run records of scripts/bench.js.
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

/** One row per (scenario, proxy) in the requested order, with medians over the counted rounds. */
function summarise(runs, scenarioIds, proxyIds, scenarios, catalogue) {
  const rows = [];
  for (const s of scenarioIds) {
    for (const p of proxyIds) {
      const mine = runs.filter((r) => r.scenario === s && r.proxy === p);
      if (!mine.length) continue;
      const ok = mine.filter((r) => r.ok);
      const row = {
        scenario: s,
        scenario_title: scenarios[s].title,
        proxy: p,
        label: catalogue[p].label,
        rounds: ok.length,
        failed_rounds: mine.length - ok.length,
        failure: mine.find((r) => !r.ok)?.error || null,
        rps: median(ok.map((r) => r.rps)),
        p50_us: median(ok.map((r) => r.p50_us)),
        p99_us: median(ok.map((r) => r.p99_us)),
        cpu_us_per_req: median(ok.map((r) => r.cpu_us_per_req)),
        cpu_us_per_mib: median(ok.map((r) => r.cpu_us_per_mib)),
        backend_cpu_us_per_req: median(ok.map((r) => r.backend_cpu_us_per_req)),
        peak_rss_kib: max(ok.map((r) => r.peak_rss_kib)),
        error_rounds: ok.filter((r) => r.errors_total > 0).length,
        errors_total: ok.reduce((a, r) => a + r.errors_total, 0),
        warnings: [...new Set(ok.flatMap((r) => r.warnings))],
        noisy_rounds: ok.filter((r) => r.noisy).length,
        ratio_to_nginx: null,
      };
      const key = scenarios[s].perMiB ? 'cpu_us_per_mib' : 'cpu_us_per_req';
      row.cpu = row[key];
      row.cpu_min = ok.length ? Math.min(...ok.map((r) => r[key])) : null;
      row.cpu_max = ok.length ? Math.max(...ok.map((r) => r[key])) : null;
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

function markdownTable(rows, scenarios) {
  const lines = [
    '| scenario | proxy | req/s | p50 | p99 | CPU µs/req (b: µs/MiB) | ratio to nginx | peak RSS | notes |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const r of rows) {
    const notes = [];
    if (r.failed_rounds) notes.push(`FAILED ${r.failed_rounds} round(s): ${r.failure}`);
    if (r.error_rounds) notes.push(`⚠ errors in ${r.error_rounds} round(s) (${r.errors_total} total)`);
    for (const w of r.warnings) notes.push(`⚠ ${w}`);
    if (r.rounds > 1) notes.push(`CPU ${fmtCpu(r.cpu_min)}–${fmtCpu(r.cpu_max)}`);
    if (r.noisy_rounds) notes.push(`noisy ${r.noisy_rounds}/${r.rounds}`);
    lines.push(
      `| ${r.scenario}. ${scenarios[r.scenario].title} | ${r.label} | ${fmtInt(r.rps)} | ${fmtMs(r.p50_us)} | ${fmtMs(r.p99_us)} | ${fmtCpu(
        r.cpu,
      )} | ${fmtRatio(r.ratio_to_nginx)} | ${fmtRss(r.peak_rss_kib)} | ${notes.join('; ').replace(/\|/g, '/')} |`,
    );
  }
  return lines.join('\n');
}

/** The first targets, all with thread_count 1. Informational only. */
function targetChecks(rows, { zproxyMode }) {
  const get = (s, p) => rows.find((r) => r.scenario === s && r.proxy === p && r.cpu != null);
  const standIn = zproxyMode === 'respond' ? ' [direct-response stand-in, not proxying]' : '';
  const out = [];
  const vsNginx = (s, limit, what) => {
    const z = get(s, 'zproxy1');
    const n = get(s, 'nginx');
    const name = `${s}. ${what}: zproxy 1 thread ≤ ${limit.toFixed(1)}× nginx`;
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
  vsNginx('a', 2.0, 'small keep-alive GET CPU/req');
  {
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
  vsNginx('b', 1.0, '1 MiB GET CPU/MiB');
  vsNginx('c', 3.0, 'new connection per request CPU/req');
  return out;
}

module.exports = { median, summarise, markdownTable, targetChecks };
