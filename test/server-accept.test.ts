/**
 * The listener stage with real loopback clients: connections spread over the
 * workers, `max_connections` holds across them, and direct responses are
 * served — against the addon's accept loop and the TypeScript fallback alike.
 */
import type net from 'node:net';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import { LISTENERS, connect, get, readResponse, startProxy } from './helpers/server';
import type { Server } from '../dist/index';

describe.each(LISTENERS)('accepting connections (%s)', (_name, noNative, threads) => {
  let server: Server | undefined;
  const sockets: net.Socket[] = [];

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await server?.stop();
    server = undefined;
  });

  test('reports which OS layer and which listener run', async () => {
    server = await startProxy({ thread_count: threads }, noNative);
    expect(server.platform.kind).toBe(noNative ? 'fallback' : 'native');
    expect(server.listenerKind()).toBe(noNative ? 'shared' : threads === 1 ? 'worker' : 'native');
  });

  test('serves a direct response, counted by the listener; stop frees the port', async () => {
    server = await startProxy({ thread_count: threads }, noNative);
    const { port } = server.address();
    const answer = await get(port);
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(answer).toMatch(/\r\n\r\nhello$/);
    expect((await server.stats()).listener.accepted).toBe(1);
    await server.stop();
    server = undefined;
    await expect(connect(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  test('listens on IPv6 loopback too', async () => {
    server = await startProxy({ thread_count: threads, host: '::1' }, noNative);
    expect(server.address()).toMatchObject({ address: '::1', family: 'IPv6' });
    const socket = await connect(server.address().port, '::1');
    sockets.push(socket);
    socket.write('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
    expect((await readResponse(socket)).status).toBe(200);
  });

  test('stop ends every thread the server started and leaks no fd (listener, connections, loops)', async () => {
    const fds = () => readdirSync('/proc/self/fd').map((fd) => {
      try {
        return `${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`;
      } catch {
        return `${fd} -> ?`;
      }
    });
    const threadsOfProcess = () => readdirSync('/proc/self/task').length;
    const serveAndStop = async () => {
      const proxy = await startProxy({ thread_count: threads }, noNative);
      const clients = await Promise.all(Array.from({ length: 6 }, () => connect(proxy.address().port)));
      await Promise.all(
        clients.map((socket) => {
          socket.write('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
          return readResponse(socket);
        }),
      );
      await proxy.stop();
      for (const socket of clients) socket.destroy();
    };
    // A first run pays the process's one-time set-up (the addon, libuv's own fds).
    await serveAndStop();
    const fdsBefore = fds();
    const threadsBefore = threadsOfProcess();
    await serveAndStop();
    let fdsAfter = fds();
    for (let i = 0; i < 40 && fdsAfter.length !== fdsBefore.length; i++) {
      await new Promise((r) => setTimeout(r, 50));
      fdsAfter = fds();
    }
    expect(fdsAfter.filter((fd) => !fdsBefore.includes(fd))).toEqual([]);
    expect(fdsAfter).toHaveLength(fdsBefore.length);
    expect(threadsOfProcess()).toBe(threadsBefore);
  });

  test('numa_aware pins each worker to the CPUs of its node (addon); without it, or in the fallback, workers float', async () => {
    const allCpus = hostCpus();
    server = await startProxy({ thread_count: threads }, noNative);
    const pinned = (await server.stats()).workers as Array<{ node: number; pinned: boolean; affinity: number[] }>;
    expect(pinned).toHaveLength(threads);
    for (const worker of pinned) {
      // This host has one NUMA node holding every CPU.
      expect(worker.node).toBe(0);
      expect(worker.pinned).toBe(!noNative);
      expect(worker.affinity).toEqual(allCpus);
    }
    await server.stop();
    server = await startProxy({ thread_count: threads, numa_aware: false }, noNative);
    const floating = (await server.stats()).workers as Array<{ pinned: boolean }>;
    expect(floating.map((w) => w.pinned)).toEqual(Array(threads).fill(false));
  });

  if (threads > 1) test('a worker thread that dies: the other keeps serving, and stop still drains and resolves', async () => {
    server = await startProxy({ thread_count: threads }, noNative);
    const { port } = server.address();
    // No public way to kill a worker: reach into the pool, as a fatal error in that thread would.
    const pool = (server as unknown as { pool: { workers: Array<{ terminate(): Promise<number> }> } }).pool;
    await pool.workers[0].terminate();
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 10; i++) expect(await get(port)).toMatch(/^HTTP\/1\.1 200 OK/);
    expect((await server.stats()).workers).toHaveLength(threads - 1);
    const held = await connect(port);
    sockets.push(held);
    held.write('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
    expect((await readResponse(held)).status).toBe(200);
    await server.stop();
    expect(server.state).toBe('stopped');
    server = undefined;
  });

  if (threads > 1) test('connections spread over 2 workers', async () => {
    server = await startProxy({ thread_count: 2 }, noNative);
    const { port } = server.address();
    // Held-open connections, each proven served, opened in waves so both workers get woken.
    for (let wave = 0; wave < 8; wave++) {
      const batch = await Promise.all(Array.from({ length: 5 }, () => connect(port)));
      sockets.push(...batch);
      await Promise.all(
        batch.map((socket) => {
          socket.write('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
          return readResponse(socket);
        }),
      );
    }
    const stats = await server.stats();
    const perWorker = (stats.workers as Array<{ connections: number }>).map((w) => w.connections);
    expect(perWorker.reduce((a, b) => a + b, 0)).toBe(40);
    expect(Math.min(...perWorker)).toBeGreaterThan(0);
    if (!noNative) {
      // Least-connections with round-robin ties: an even split.
      expect(Math.abs(perWorker[0] - perWorker[1])).toBeLessThanOrEqual(1);
    }
  });

  test('max_connections 8 with 30 concurrent clients: at most 8 served at once, none hangs', async () => {
    server = await startProxy({ thread_count: threads, max_connections: 8 }, noNative);
    const { port } = server.address();
    const clients = await Promise.all(Array.from({ length: 30 }, () => connect(port)));
    sockets.push(...clients);
    const answers = clients.map((socket) => {
      socket.write('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
      return readResponse(socket, 10000).then(() => socket);
    });
    // Let every client that can be served be served, then look.
    const served: net.Socket[] = [];
    for (const answer of answers) void answer.then((socket) => served.push(socket));
    await new Promise((r) => setTimeout(r, 300));
    expect(served.length).toBe(8);
    const stats = await server.stats();
    const held = (stats.workers as Array<{ connections: number }>).reduce((sum, w) => sum + w.connections, 0);
    expect(held).toBeLessThanOrEqual(8);

    // Closing served clients lets the waiting ones in, a slot at a time.
    let maxSeen = held;
    while (served.length < 30) {
      const batch = served.filter((s) => !s.destroyed);
      for (const socket of batch) socket.destroy();
      await new Promise((r) => setTimeout(r, 100));
      const now = await server.stats();
      maxSeen = Math.max(maxSeen, (now.workers as Array<{ connections: number }>).reduce((sum, w) => sum + w.connections, 0));
      if (batch.length === 0) await Promise.race([Promise.all(answers), new Promise((r) => setTimeout(r, 200))]);
    }
    await Promise.all(answers);
    expect(maxSeen).toBeLessThanOrEqual(8);
    expect(served.length).toBe(30);

    // Service is normal afterwards.
    for (const socket of served) socket.destroy();
    expect(await get(port)).toMatch(/^HTTP\/1\.1 200 OK/);
  });
});

function hostCpus(): number[] {
  return Array.from({ length: os.cpus().length }, (_, i) => i);
}

test('TypeScript fallback: each worker listens on its own fd of the one socket, and stop closes them all', async () => {
  const listeningFds = (port: number): string[] => {
    // The inode of the socket listening on `port` (state 0A), then every fd of this process on it.
    const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    const row = readFileSync('/proc/net/tcp', 'utf8').split('\n').find((line) => {
      const fields = line.trim().split(/\s+/);
      return fields[1]?.endsWith(hexPort) && fields[3] === '0A';
    });
    if (!row) return [];
    const inode = row.trim().split(/\s+/)[9];
    return readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === `socket:[${inode}]`;
      } catch {
        return false;
      }
    });
  };
  const server = await startProxy({ thread_count: 3 }, true);
  const { port } = server.address();
  const fds = listeningFds(port);
  await server.stop();
  expect(new Set(fds).size).toBe(3);
  expect(listeningFds(port)).toEqual([]);
});
