#!/usr/bin/env node
'use strict';
/**
 * Compares two heap snapshots of the same thread (V8 .heapsnapshot files,
 * both taken after a full GC, as `npm run soak -- --heap-snapshots` writes
 * them):
 *
 *   node scripts/soak/heap-diff.js BEFORE.heapsnapshot AFTER.heapsnapshot [--top 15]
 *
 * Prints, by constructor: count and self size in each, and their growth;
 * then the objects of AFTER that were born after BEFORE was taken (V8 keeps
 * object ids stable within an isolate) and are still alive: count, self
 * size and retained size (from the dominator tree) by constructor, each with
 * the retainer path of one of them to a GC root. A leak shows there as a
 * class whose survivors grow with the load; a heap that only looks bigger
 * does not.
 */
const fs = require('node:fs');

function load(file) {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8'));
  const meta = snap.snapshot.meta;
  const nf = meta.node_fields;
  const ef = meta.edge_fields;
  const nodeCount = snap.nodes.length / nf.length;
  const h = {
    strings: snap.strings,
    nodeTypes: meta.node_types[0],
    edgeTypes: meta.edge_types[0],
    nodeCount,
    type: new Uint8Array(nodeCount),
    name: new Uint32Array(nodeCount),
    id: new Float64Array(nodeCount),
    self: new Float64Array(nodeCount),
    firstEdge: new Uint32Array(nodeCount + 1),
    edgeType: null,
    edgeName: null,
    edgeTo: null,
  };
  const [iType, iName, iId, iSelf, iEdges] = ['type', 'name', 'id', 'self_size', 'edge_count'].map((f) => nf.indexOf(f));
  let edge = 0;
  for (let n = 0; n < nodeCount; n++) {
    const at = n * nf.length;
    h.type[n] = snap.nodes[at + iType];
    h.name[n] = snap.nodes[at + iName];
    h.id[n] = snap.nodes[at + iId];
    h.self[n] = snap.nodes[at + iSelf];
    h.firstEdge[n] = edge;
    edge += snap.nodes[at + iEdges];
  }
  h.firstEdge[nodeCount] = edge;
  const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((f) => ef.indexOf(f));
  h.edgeType = new Uint8Array(edge);
  h.edgeName = new Uint32Array(edge);
  h.edgeTo = new Uint32Array(edge);
  for (let e = 0; e < edge; e++) {
    const at = e * ef.length;
    h.edgeType[e] = snap.edges[at + eType];
    h.edgeName[e] = snap.edges[at + eName];
    h.edgeTo[e] = snap.edges[at + eTo] / nf.length;
  }
  h.weak = h.edgeTypes.indexOf('weak');
  h.shortcut = h.edgeTypes.indexOf('shortcut');
  return h;
}

/** What a node counts as: the constructor for objects, else its type (strings, code, arrays...). */
function className(h, n) {
  const type = h.nodeTypes[h.type[n]];
  if (type === 'object' || type === 'native') return h.strings[h.name[n]].split(' ')[0] || `(${type})`;
  if (type === 'closure') return '(closure)';
  return `(${type})`;
}

/** constructor -> { count, self } */
function byClass(h) {
  const out = new Map();
  for (let n = 0; n < h.nodeCount; n++) {
    const c = className(h, n);
    let row = out.get(c);
    if (!row) out.set(c, (row = { count: 0, self: 0 }));
    row.count++;
    row.self += h.self[n];
  }
  return out;
}

/** Strong edges (not weak, not the DevTools shortcuts), as V8's own retention sees them. */
function strong(h, e) {
  return h.edgeType[e] !== h.weak && h.edgeType[e] !== h.shortcut;
}

/**
 * Dominator tree (Cooper, Harvey, Kennedy: "A Simple, Fast Dominance
 * Algorithm") from node 0, the synthetic root; retained size of a node = its
 * self size plus that of everything it dominates.
 */
function retainedSizes(h) {
  const N = h.nodeCount;
  // Iterative DFS for a postorder.
  const order = new Int32Array(N).fill(-1);
  const post = new Uint32Array(N);
  let count = 0;
  const stack = new Uint32Array(N);
  const edgeAt = new Uint32Array(N);
  const seen = new Uint8Array(N);
  let sp = 0;
  stack[sp++] = 0;
  seen[0] = 1;
  edgeAt[0] = h.firstEdge[0];
  while (sp > 0) {
    const n = stack[sp - 1];
    if (edgeAt[n] < h.firstEdge[n + 1]) {
      const e = edgeAt[n]++;
      if (!strong(h, e)) continue;
      const to = h.edgeTo[e];
      if (seen[to]) continue;
      seen[to] = 1;
      edgeAt[to] = h.firstEdge[to];
      stack[sp++] = to;
    } else {
      sp--;
      order[n] = count;
      post[count++] = n;
    }
  }
  // Predecessors (strong edges, reachable nodes only).
  const predCount = new Uint32Array(N + 1);
  for (let n = 0; n < N; n++) {
    if (order[n] < 0) continue;
    for (let e = h.firstEdge[n]; e < h.firstEdge[n + 1]; e++) if (strong(h, e) && order[h.edgeTo[e]] >= 0) predCount[h.edgeTo[e] + 1]++;
  }
  for (let n = 0; n < N; n++) predCount[n + 1] += predCount[n];
  const preds = new Uint32Array(predCount[N]);
  const fill = predCount.slice(0, N);
  for (let n = 0; n < N; n++) {
    if (order[n] < 0) continue;
    for (let e = h.firstEdge[n]; e < h.firstEdge[n + 1]; e++) if (strong(h, e) && order[h.edgeTo[e]] >= 0) preds[fill[h.edgeTo[e]]++] = n;
  }
  const idom = new Int32Array(N).fill(-1);
  idom[0] = 0;
  const intersect = (a, b) => {
    while (a !== b) {
      while (order[a] < order[b]) a = idom[a];
      while (order[b] < order[a]) b = idom[b];
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = count - 1; i >= 0; i--) {
      const n = post[i];
      if (n === 0) continue;
      let dom = -1;
      for (let p = predCount[n]; p < predCount[n + 1]; p++) {
        const pred = preds[p];
        if (idom[pred] < 0) continue;
        dom = dom < 0 ? pred : intersect(pred, dom);
      }
      if (dom >= 0 && idom[n] !== dom) {
        idom[n] = dom;
        changed = true;
      }
    }
  }
  const retained = Float64Array.from(h.self);
  for (let i = 0; i < count; i++) {
    const n = post[i];
    if (n !== 0) retained[idom[n]] += retained[n];
  }
  return { retained, idom };
}

/** One retainer path from a GC root to `n`, shortest first (breadth-first distances over strong edges). */
function retainerPath(h, n, dist, preds) {
  const path = [];
  let at = n;
  for (let guard = 0; guard < 30 && at !== 0; guard++) {
    let best = -1;
    let bestEdge = -1;
    for (const [from, e] of preds.get(at) || []) {
      if (dist[from] < 0) continue;
      if (best < 0 || dist[from] < dist[best]) {
        best = from;
        bestEdge = e;
      }
    }
    if (best < 0) break;
    const type = h.edgeTypes[h.edgeType[bestEdge]];
    const label = type === 'element' || type === 'hidden' ? `[${h.edgeName[bestEdge]}]` : `.${h.strings[h.edgeName[bestEdge]]}`;
    path.unshift(`${className(h, best)}${label}`);
    at = best;
  }
  return `${path.join(' -> ')} -> ${className(h, n)}`;
}

function distances(h) {
  const dist = new Int32Array(h.nodeCount).fill(-1);
  const queue = new Uint32Array(h.nodeCount);
  let head = 0;
  let tail = 0;
  dist[0] = 0;
  queue[tail++] = 0;
  while (head < tail) {
    const n = queue[head++];
    for (let e = h.firstEdge[n]; e < h.firstEdge[n + 1]; e++) {
      if (!strong(h, e)) continue;
      const to = h.edgeTo[e];
      if (dist[to] >= 0) continue;
      dist[to] = dist[n] + 1;
      queue[tail++] = to;
    }
  }
  return dist;
}

/** Reverse strong edges into `targets` only (a full reverse index costs too much memory on large heaps). */
function reverseEdges(h, targets) {
  const preds = new Map();
  for (let n = 0; n < h.nodeCount; n++) {
    for (let e = h.firstEdge[n]; e < h.firstEdge[n + 1]; e++) {
      const to = h.edgeTo[e];
      if (!strong(h, e) || !targets.has(to)) continue;
      if (!preds.has(to)) preds.set(to, []);
      preds.get(to).push([n, e]);
    }
  }
  return preds;
}

const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;

function main() {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 15;
  if (args.length !== 2) {
    process.stderr.write('usage: node scripts/soak/heap-diff.js BEFORE.heapsnapshot AFTER.heapsnapshot [--top 15]\n');
    process.exit(2);
  }
  const before = load(args[0]);
  const after = load(args[1]);
  const total = (h) => h.self.reduce((a, b) => a + b, 0);
  process.stdout.write(`${args[0]}: ${before.nodeCount} objects, ${kib(total(before))}\n${args[1]}: ${after.nodeCount} objects, ${kib(total(after))}\n\n`);

  const a = byClass(before);
  const b = byClass(after);
  const rows = [...new Set([...a.keys(), ...b.keys()])].map((c) => {
    const x = a.get(c) || { count: 0, self: 0 };
    const y = b.get(c) || { count: 0, self: 0 };
    return { c, x, y, dSelf: y.self - x.self, dCount: y.count - x.count };
  });
  rows.sort((p, q) => Math.abs(q.dSelf) - Math.abs(p.dSelf));
  process.stdout.write(`largest changes by constructor (self size)\n${'constructor'.padEnd(40)}${'count before'.padStart(14)}${'after'.padStart(10)}${'self before'.padStart(16)}${'after'.padStart(14)}${'change'.padStart(14)}\n`);
  for (const r of rows.slice(0, top)) {
    process.stdout.write(`${r.c.slice(0, 39).padEnd(40)}${String(r.x.count).padStart(14)}${String(r.y.count).padStart(10)}${kib(r.x.self).padStart(16)}${kib(r.y.self).padStart(14)}${((r.dSelf >= 0 ? '+' : '') + kib(r.dSelf)).padStart(14)}\n`);
  }

  // Survivors: in AFTER (after its GC) and not in BEFORE. Ids are compared as a set: embedder
  // (native) nodes have ids of their own kind, so "greater than BEFORE's largest" would not do.
  const known = new Set(before.id);
  const { retained, idom } = retainedSizes(after);
  const isNew = (n) => !known.has(after.id[n]);
  const survivors = new Map();
  for (let n = 0; n < after.nodeCount; n++) {
    if (!isNew(n)) continue;
    const c = className(after, n);
    let row = survivors.get(c);
    if (!row) survivors.set(c, (row = { count: 0, self: 0, retained: 0, sample: n }));
    row.count++;
    row.self += after.self[n];
    // Retained by the survivors' topmost members only, so nothing is counted twice.
    if (!isNew(idom[n]) || idom[n] === n) row.retained += retained[n];
    if (retained[n] > retained[row.sample]) row.sample = n;
  }
  const ranked = [...survivors.entries()].sort((p, q) => q[1].retained - p[1].retained).slice(0, top);
  const newTotal = [...survivors.values()].reduce((s, r) => s + r.self, 0);
  const newCount = [...survivors.values()].reduce((s, r) => s + r.count, 0);
  process.stdout.write(`\nobjects born after the first snapshot and alive in the second: ${newCount}, ${kib(newTotal)} self\n`);
  process.stdout.write(`${'constructor'.padEnd(40)}${'count'.padStart(10)}${'self'.padStart(14)}${'retained'.padStart(14)}   retainer path of the largest\n`);
  const dist = distances(after);
  const preds = reverseEdges(after, new Set(ranked.map(([, r]) => r.sample)));
  // Walking up needs predecessors of the path's nodes too: extend on demand.
  const allPreds = { get: (n) => preds.get(n) || reverseEdges(after, new Set([n])).get(n) };
  for (const [c, r] of ranked) {
    process.stdout.write(`${c.slice(0, 39).padEnd(40)}${String(r.count).padStart(10)}${kib(r.self).padStart(14)}${kib(r.retained).padStart(14)}   ${retainerPath(after, r.sample, dist, allPreds)}\n`);
  }
}

main();
