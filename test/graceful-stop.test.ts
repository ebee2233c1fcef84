/**
 * SIGTERM through the CLI: the listener closes, an in-flight request (its
 * body still arriving) completes with `Connection: close`, idle keep-alive
 * connections are closed, and the process exits 0.
 */
import { writeFileSync, mkdtempSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { RUNTIMES, connect, listeningPort, readResponse, startCli, waitForClose } from './helpers/server';
import { formatCpuList } from '../dist/server/placement';

describe.each(RUNTIMES)('graceful stop (%s)', (_name, noNative) => {
  test('stop during a slow in-flight request: it completes, then the process exits 0', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'zproxy-stop-'));
    const file = path.join(dir, 'zproxy.json');
    writeFileSync(
      file,
      JSON.stringify({
        host: '127.0.0.1',
        port: 0,
        thread_count: 2,
        admin: null,
        drain_timeout_ms: 10000,
        routes: [{ path: '/upload', methods: ['POST'], respond: { status: 201, headers: {}, body: 'stored' } }],
      }),
    );
    const proxy = await startCli(['start', '--config', file], noNative ? { ZPROXY_NO_NATIVE: '1' } : {});
    const port = listeningPort(proxy.output());
    // One line says which OS layer runs and why; the listening line gives the address, threads and NUMA layout.
    expect(proxy.output()).toMatch(
      noNative ? /"msg":"accept loop and OS primitives: TypeScript fallback \(ZPROXY_NO_NATIVE=1\)"/ : /"msg":"accept loop and OS primitives: native addon \(addon loaded\)"/,
    );
    const cpus = formatCpuList(os.cpus().map((_, i) => i));
    const layout = [0, 1].map((w) => `worker ${w} -> node 0 -> cpus ${noNative ? 'any \\(not pinned\\)' : cpus}`).join('; ');
    expect(proxy.output()).toMatch(new RegExp(`"msg":"listening on 127\\.0\\.0\\.1:${port} with 2 threads, NUMA ${noNative ? 'sysfs' : 'libnuma'}: ${layout}"`));

    const idle = await connect(port);
    const slow = await connect(port);
    slow.write('POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello');
    await new Promise((r) => setTimeout(r, 200));

    proxy.child.kill('SIGTERM');
    // The idle connection goes at once; the listener stops taking new ones.
    await waitForClose(idle, 3000);
    await new Promise((r) => setTimeout(r, 300));
    await expect(connect(port)).rejects.toThrow(/ECONNREFUSED/);

    const answer = readResponse(slow);
    slow.write('world');
    const response = await answer;
    expect(response.status).toBe(201);
    expect(response.body).toBe('stored');
    expect(response.head).toMatch(/connection: close/i);
    expect(await proxy.exited).toBe(0);
    expect(proxy.output()).toMatch(/stopped/);
  });
});
