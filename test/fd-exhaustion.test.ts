/**
 * A proxy with a low RLIMIT_NOFILE under a connection flood runs out of file
 * descriptors (EMFILE), does not spin or crash, and serves normally once the
 * flood ends.
 */
import { writeFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type net from 'node:net';
import { LISTENERS, connect, get, listeningPort, startCli } from './helpers/server';

const FD_LIMIT = 96;
const FLOOD = 300;

/** CPU time (user + system, in clock ticks) a process has used. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

describe.each(LISTENERS)('file descriptor exhaustion (%s)', (_name, noNative, threads) => {
  test(`RLIMIT_NOFILE ${FD_LIMIT} and ${FLOOD} connections: keeps serving once the flood ends`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'zproxy-emfile-'));
    const file = path.join(dir, 'zproxy.json');
    writeFileSync(file, JSON.stringify({ host: '127.0.0.1', port: 0, thread_count: threads, admin: null, backlog: 512, routes: [{ path: '/', respond: { status: 200, headers: {}, body: 'ok' } }] }));
    const proxy = await startCli(['start', '--config', file], { ...(noNative ? { ZPROXY_NO_NATIVE: '1' } : {}), ZPROXY_LOG_LEVEL: 'info' }, ['prlimit', `--nofile=${FD_LIMIT}:${FD_LIMIT}`]);
    try {
      const port = listeningPort(proxy.output());
      const flood: net.Socket[] = [];
      const settled = await Promise.allSettled(Array.from({ length: FLOOD }, () => connect(port)));
      for (const result of settled) if (result.status === 'fulfilled') flood.push(result.value);
      let closedByProxy = 0;
      for (const socket of flood) {
        socket.on('error', () => undefined);
        socket.once('close', () => closedByProxy++);
      }

      // Out of fds with clients still waiting: the proxy must not spin.
      const pid = proxy.child.pid!;
      const before = cpuTicks(pid);
      await new Promise((r) => setTimeout(r, 1000));
      const busyTicks = cpuTicks(pid) - before;
      expect(busyTicks).toBeLessThan(50); // 100 ticks = one core fully busy for the second
      if (noNative) {
        // The fallback never lets the process run out: past its fd budget (from RLIMIT_NOFILE) it closes new connections at once.
        expect(closedByProxy).toBeGreaterThan(0);
      } else {
        // The flood did run the proxy out of fds, and the failures were logged.
        expect(proxy.output()).toMatch(/accept failed [\s\S]*EMFILE/);
      }

      for (const socket of flood) socket.destroy();
      await new Promise((r) => setTimeout(r, 500));
      for (let i = 0; i < 5; i++) expect(await get(port)).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nok$/);
      expect(proxy.child.exitCode).toBeNull();
    } finally {
      proxy.child.kill('SIGTERM');
      expect(await proxy.exited).toBe(0);
    }
  });
});
