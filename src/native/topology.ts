/**
 * NUMA topology: nodes, their CPUs and memory, the node of a CPU.
 *
 * Sources, in order: libnuma through the addon; the sysfs tree
 * (`/sys/devices/system/node`, or a recorded tree under another root for
 * tests); a single node holding every CPU the OS reports.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import type { RawNumaNode } from './addon-types';

export interface NumaNode {
  id: number;
  cpus: readonly number[];
  memoryBytes: number;
}

export interface Topology {
  source: 'libnuma' | 'sysfs' | 'single';
  nodes: readonly NumaNode[];
}

/** Parses a kernel CPU list such as `0-3,8,10-11`. */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(',')) {
    if (part === '') continue;
    const [lo, hi] = part.split('-').map((s) => Number.parseInt(s, 10));
    if (!Number.isInteger(lo) || (hi !== undefined && !Number.isInteger(hi))) {
      throw new Error(`invalid cpu list: ${JSON.stringify(text)}`);
    }
    for (let cpu = lo; cpu <= (hi ?? lo); cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** Reads `<root>/devices/system/node/node*`; null when the tree is absent. */
export function readSysfsTopology(sysfsRoot = '/sys'): NumaNode[] | null {
  const dir = join(sysfsRoot, 'devices/system/node');
  let entries: string[];
  try {
    entries = readdirSync(dir).filter((name) => /^node\d+$/.test(name));
  } catch {
    return null;
  }
  if (entries.length === 0) return null;
  const nodes = entries.map((name) => ({
    id: Number(name.slice(4)),
    cpus: parseCpuList(readFileSync(join(dir, name, 'cpulist'), 'utf8')),
    memoryBytes: readNodeMemory(join(dir, name, 'meminfo')),
  }));
  return nodes.sort((a, b) => a.id - b.id);
}

function readNodeMemory(meminfoPath: string): number {
  try {
    const match = /MemTotal:\s+(\d+) kB/.exec(readFileSync(meminfoPath, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function singleNode(): NumaNode[] {
  return [{ id: 0, cpus: os.cpus().map((_, i) => i), memoryBytes: os.totalmem() }];
}

/**
 * The topology of this host (or of a recorded sysfs tree when `sysfsRoot`
 * is given, in which case libnuma is not asked).
 */
export function detectTopology(libnuma: (() => RawNumaNode[] | null) | null, sysfsRoot?: string): Topology {
  if (sysfsRoot === undefined && libnuma) {
    const nodes = libnuma();
    if (nodes && nodes.length > 0) return freezeTopology('libnuma', nodes);
  }
  const fromSysfs = readSysfsTopology(sysfsRoot);
  if (fromSysfs) return freezeTopology('sysfs', fromSysfs);
  return freezeTopology('single', singleNode());
}

/** The node whose CPU list holds `cpu`, or -1. */
export function nodeOfCpu(topology: Topology, cpu: number): number {
  const node = topology.nodes.find((n) => n.cpus.includes(cpu));
  return node ? node.id : -1;
}

function freezeTopology(source: Topology['source'], nodes: readonly NumaNode[]): Topology {
  return Object.freeze({
    source,
    nodes: Object.freeze(nodes.map((n) => Object.freeze({ id: n.id, cpus: Object.freeze([...n.cpus]), memoryBytes: n.memoryBytes }))),
  });
}
