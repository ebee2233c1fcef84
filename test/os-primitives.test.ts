/**
 * The OS primitives through the one TypeScript API, addon and fallback alike:
 * NUMA topology (this host and recorded sysfs trees of bigger machines),
 * thread affinity inside a worker thread, node-local buffers.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import os from 'node:os';
import { ROOT, RUNTIMES } from './helpers/server';
import { detectTopology, nodeOfCpu, parseCpuList } from '../dist/native/topology';
import { planPlacement, formatCpuList } from '../dist/server/placement';

const SYSFS = path.join(__dirname, 'fixtures', 'sysfs');

/** Runs `script` in a fresh Node process (with --expose-gc) and returns its JSON output. */
function inChild(script: string, noNative: boolean): any {
  const env = { ...process.env, ZPROXY_NO_NATIVE: noNative ? '1' : '0' };
  const out = execFileSync(process.execPath, ['--expose-gc', '-e', script], { cwd: ROOT, env, encoding: 'utf8', timeout: 20000 });
  return JSON.parse(out);
}

describe('NUMA topology from recorded sysfs trees', () => {
  test('a 2-socket machine', () => {
    const topology = detectTopology(null, path.join(SYSFS, 'two-socket'));
    expect(topology.source).toBe('sysfs');
    expect(topology.nodes.map((n) => n.id)).toEqual([0, 1]);
    expect(topology.nodes[0].cpus).toEqual([...range(0, 15), ...range(32, 47)]);
    expect(topology.nodes[1].cpus).toEqual([...range(16, 31), ...range(48, 63)]);
    expect(topology.nodes[0].memoryBytes).toBe(131876880 * 1024);
    expect(nodeOfCpu(topology, 40)).toBe(0);
    expect(nodeOfCpu(topology, 20)).toBe(1);
    expect(nodeOfCpu(topology, 64)).toBe(-1);
  });

  test('a 4-node machine, and workers placed round-robin over its nodes', () => {
    const topology = detectTopology(null, path.join(SYSFS, 'four-node'));
    expect(topology.nodes).toHaveLength(4);
    expect(topology.nodes[3].cpus).toEqual([...range(24, 31), ...range(56, 63)]);
    const placements = planPlacement(topology, 6, range(0, 63), true);
    expect(placements.map((p) => p.node)).toEqual([0, 1, 2, 3, 0, 1]);
    expect(formatCpuList(placements[2].cpus)).toBe('16-23,48-55');
    // CPUs the process may not use are left out; nodes with none left are skipped.
    const restricted = planPlacement(topology, 2, [...range(8, 15), ...range(24, 27)], true);
    expect(restricted.map((p) => [p.node, formatCpuList(p.cpus)])).toEqual([[1, '8-15'], [3, '24-27']]);
    expect(planPlacement(topology, 2, range(0, 63), false).every((p) => p.cpus.length === 0)).toBe(true);
  });

  test('no sysfs tree: one node with every CPU', () => {
    const topology = detectTopology(null, path.join(SYSFS, 'missing'));
    expect(topology.source).toBe('single');
    expect(topology.nodes).toHaveLength(1);
    expect(topology.nodes[0].cpus).toHaveLength(os.cpus().length);
  });

  test('cpu lists', () => {
    expect(parseCpuList('0-2,5,7-8\n')).toEqual([0, 1, 2, 5, 7, 8]);
    expect(() => parseCpuList('0-x')).toThrow(/invalid cpu list/);
  });
});

describe.each(RUNTIMES)('OS primitives (%s)', (_name, noNative) => {
  test('this host: one node holding all CPUs', () => {
    const result = inChild(`
      const { platform } = require('./dist/native/platform');
      const p = platform();
      console.log(JSON.stringify({ kind: p.kind, topology: p.topology() }));
    `, noNative);
    expect(result.kind).toBe(noNative ? 'fallback' : 'native');
    expect(result.topology.source).toBe(noNative ? 'sysfs' : 'libnuma');
    expect(result.topology.nodes).toHaveLength(1);
    expect(result.topology.nodes[0].cpus).toEqual(range(0, os.cpus().length - 1));
    expect(result.topology.nodes[0].memoryBytes).toBeGreaterThan(0);
  });

  test('affinity set inside a worker is seen inside that worker', () => {
    const result = inChild(`
      const { Worker } = require('node:worker_threads');
      const code = "const { parentPort } = require('node:worker_threads');" +
        "const { platform } = require('./dist/native/platform');" +
        "const p = platform(); const before = p.getThreadAffinity(); const set = p.setThreadAffinity([1]);" +
        "let spin = 0; for (let i = 0; i < 1e6; i++) spin += i;" +
        "parentPort.postMessage({ before, set, after: p.getThreadAffinity(), cpu: p.currentCpu() });";
      const w = new Worker(code, { eval: true });
      w.once('message', (m) => {
        const { platform } = require('./dist/native/platform');
        console.log(JSON.stringify({ ...m, main: platform().getThreadAffinity() }));
        w.terminate();
      });
    `, noNative);
    expect(result.before).toEqual(range(0, os.cpus().length - 1));
    if (noNative) {
      expect(result.set).toBe(false);
      expect(result.after).toEqual(result.before);
    } else {
      expect(result.set).toBe(true);
      expect(result.after).toEqual([1]);
      expect(result.cpu).toBe(1);
    }
    // Only the worker's own thread moved.
    expect(result.main).toEqual(range(0, os.cpus().length - 1));
  });

  test('a node-local buffer is written, read and freed', () => {
    const result = inChild(`
      const { platform } = require('./dist/native/platform');
      const p = platform();
      const before = p.nodeBufferStats();
      (function () {
        const buf = p.allocOnNode(1 << 20, 0);
        buf.fill(0xab);
        buf.writeUInt32LE(0xdeadbeef, 4096);
        globalThis.readBack = { length: buf.length, word: buf.readUInt32LE(4096), byte: buf[1 << 19] };
      })();
      const live = p.nodeBufferStats();
      const finish = () => console.log(JSON.stringify({ before, live, after: p.nodeBufferStats(), readBack: globalThis.readBack }));
      let rounds = 0;
      (function collect() {
        global.gc();
        if (p.nodeBufferStats().freed > before.freed || ++rounds > 50) return finish();
        setTimeout(collect, 10);
      })();
    `, noNative);
    expect(result.readBack).toEqual({ length: 1 << 20, word: 0xdeadbeef, byte: 0xab });
    expect(result.live.allocated).toBe(result.before.allocated + 1);
    expect(result.live.liveBytes).toBe(result.before.liveBytes + (1 << 20));
    expect(result.after.freed).toBe(result.before.freed + 1);
    expect(result.after.liveBytes).toBe(result.before.liveBytes);
    expect(result.after.numa).toBe(!noNative);
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
