/**
 * Where each worker runs: with `numa_aware`, workers are spread over the
 * NUMA nodes round-robin and each is pinned to its node's CPUs (those this
 * process may use); otherwise workers float.
 */
import type { Topology } from '../native/topology';

export interface Placement {
  worker: number;
  node: number;
  /** Empty when the worker is not pinned. */
  cpus: number[];
}

export function planPlacement(topology: Topology, threadCount: number, allowedCpus: readonly number[], numaAware: boolean): Placement[] {
  const allowed = new Set(allowedCpus);
  const usableNodes = topology.nodes
    .map((node) => ({ id: node.id, cpus: node.cpus.filter((cpu) => allowed.has(cpu)) }))
    .filter((node) => node.cpus.length > 0);
  return Array.from({ length: threadCount }, (_, worker) => {
    if (!numaAware || usableNodes.length === 0) return { worker, node: usableNodes[0]?.id ?? 0, cpus: [] };
    const node = usableNodes[worker % usableNodes.length];
    return { worker, node: node.id, cpus: node.cpus };
  });
}

/** `0-3,8` style, for logs. */
export function formatCpuList(cpus: readonly number[]): string {
  const ranges: string[] = [];
  for (let i = 0; i < cpus.length; i++) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j] + 1) j++;
    ranges.push(i === j ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`);
    i = j;
  }
  return ranges.join(',');
}
