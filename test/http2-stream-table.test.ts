/**
 * The arrays zproxy puts in place of node:http2's per-session stream Map and
 * Set (src/protocol/http2/stream-table.ts): Map/Set semantics, installed on
 * this Node.js for server and client sessions alike, and sessions that still
 * behave — many concurrent streams, a session torn down with a stream open,
 * a client session destroyed while its requests wait for the connection.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { installStreamTable, PendingStreams, StreamTable } from '../dist/protocol/http2/stream-table';

describe('StreamTable', () => {
  test('get, set, has, delete and size like a Map keyed by stream id', () => {
    const table = new StreamTable<string>();
    for (const id of [1, 3, 5, 7]) table.set(id, `s${id}`);
    expect(table.size).toBe(4);
    expect(table.get(5)).toBe('s5');
    expect(table.has(4)).toBe(false);
    expect(table.delete(3)).toBe(true);
    expect(table.delete(3)).toBe(false);
    expect(table.get(3)).toBeUndefined();
    expect([...table.keys()]).toEqual([1, 5, 7]);
    table.set(5, 'again');
    expect(table.size).toBe(3);
    expect(table.get(5)).toBe('again');
  });

  test('an id lower than the last goes to its place', () => {
    const table = new StreamTable<number>();
    for (const id of [9, 3, 7, 1, 5]) table.set(id, id * 10);
    expect([...table]).toEqual([
      [1, 10],
      [3, 30],
      [5, 50],
      [7, 70],
      [9, 90],
    ]);
    for (const id of [1, 3, 5, 7, 9]) expect(table.get(id)).toBe(id * 10);
  });

  test('forEach visits every entry even when the callback deletes (streams leave the table as they close)', () => {
    const table = new StreamTable<number>();
    for (let id = 1; id <= 21; id += 2) table.set(id, id);
    const seen: number[] = [];
    table.forEach((value, id) => {
      seen.push(value);
      table.delete(id);
    });
    expect(seen).toEqual([1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21]);
    expect(table.size).toBe(0);
  });

  test('a long churn keeps lookups right', () => {
    const table = new StreamTable<number>();
    const live: number[] = [];
    let missed = 0;
    for (let id = 1; id < 20000; id += 2) {
      table.set(id, id);
      live.push(id);
      if (live.length > 10) {
        // Streams finish out of order.
        const gone = live.splice((id >> 1) % live.length, 1)[0];
        if (!table.delete(gone)) missed++;
      }
    }
    expect(missed).toBe(0);
    expect(table.size).toBe(live.length);
    expect(live.map((id) => table.get(id))).toEqual(live);
  });
});

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x80000000;
  };
}

describe('StreamTable against a Map', () => {
  test('random operations give the same answers, sizes and contents as a Map (holes and compactions included)', () => {
    const next = random(7);
    const table = new StreamTable<number>();
    const map = new Map<number, number>();
    let nextId = 1;
    const mismatches: string[] = [];
    for (let op = 0; op < 50_000; op++) {
      const roll = next();
      if (roll < 0.45) {
        // Mostly new, growing ids; sometimes a lower even one (a pushed stream).
        const id = next() < 0.05 ? 2 * Math.floor(next() * (nextId / 2)) : (nextId += 2);
        table.set(id, op);
        map.set(id, op);
      } else if (roll < 0.9) {
        const keys = [...map.keys()];
        const id = keys.length > 0 && next() < 0.9 ? keys[Math.floor(next() * keys.length)] : Math.floor(next() * nextId);
        if (table.delete(id) !== map.delete(id)) mismatches.push(`delete ${id} at ${op}`);
      } else {
        const id = Math.floor(next() * (nextId + 2));
        if (table.get(id) !== map.get(id)) mismatches.push(`get ${id} at ${op}`);
      }
      if (table.size !== map.size) mismatches.push(`size at ${op}`);
    }
    expect(mismatches).toEqual([]);
    expect([...table].sort((x, y) => x[0] - y[0])).toEqual([...map].sort((x, y) => x[0] - y[0]));
  });

  test('50 000 open streams torn down by forEach, and the table reused afterwards', () => {
    const table = new StreamTable<number>();
    for (let id = 1; id < 100_000; id += 2) table.set(id, id);
    expect(table.size).toBe(50_000);
    let visited = 0;
    table.forEach((_value, id) => {
      visited++;
      table.delete(id);
    });
    expect(visited).toBe(50_000);
    expect(table.size).toBe(0);
    table.set(100_001, 1);
    expect([...table]).toEqual([[100_001, 1]]);
  });

  test('a deleted id set again comes back', () => {
    const table = new StreamTable<string>();
    for (let id = 1; id <= 99; id += 2) table.set(id, `v${id}`);
    table.delete(51);
    table.set(51, 'again');
    expect(table.get(51)).toBe('again');
    expect(table.size).toBe(50);
  });
});

describe('PendingStreams', () => {
  test('add, delete, has, size and forEach like a Set', () => {
    const set = new PendingStreams<object>();
    const a = {};
    const b = {};
    set.add(a).add(b); // node:http2 adds each stream once
    expect(set.size).toBe(2);
    expect(set.has(b)).toBe(true);
    const seen: object[] = [];
    set.forEach((value) => {
      seen.push(value);
      set.delete(value);
    });
    expect(seen).toEqual([a, b]);
    expect(set.size).toBe(0);
    expect(set.delete(a)).toBe(false);
  });
});

describe('PendingStreams at scale', () => {
  test('50 000 requests queued before a connection, leaving in order and at random, with forEach on the rest', () => {
    const set = new PendingStreams<{ n: number }>();
    const all = Array.from({ length: 50_000 }, (_, n) => ({ n }));
    for (const item of all) set.add(item);
    // The first half leaves in order (streams get their ids as the session connects).
    let missed = 0;
    for (let n = 0; n < 25_000; n++) if (!set.delete(all[n])) missed++;
    expect(missed).toBe(0);
    expect(set.size).toBe(25_000);
    // A few leave out of order (a request cancelled while waiting).
    for (let n = 49_999; n >= 25_000; n -= 50) set.delete(all[n]);
    const left = all.slice(25_000).filter((_, k) => (49_999 - (25_000 + k)) % 50 !== 0);
    expect(set.size).toBe(left.length);
    expect(set.has(all[0])).toBe(false);
    expect(set.has(left[0])).toBe(true);
    const seen: number[] = [];
    set.forEach((item) => {
      seen.push(item.n);
      set.delete(item);
    });
    expect(seen).toEqual(left.map((item) => item.n));
    expect(set.size).toBe(0);
  });
});

describe('installed on node:http2 sessions', () => {
  let server: http2.Http2Server;
  let port: number;
  const installedOnServer: boolean[] = [];
  /** Resolves with the server's side of a `/hang` stream once it arrives. */
  let hangArrived: (stream: http2.ServerHttp2Stream) => void = () => undefined;

  beforeAll(async () => {
    server = http2.createServer();
    server.on('session', (session) => installedOnServer.push(installStreamTable(session)));
    server.on('stream', (stream, headers) => {
      const path = headers[':path'] ?? '/';
      if (path === '/hang') return hangArrived(stream); // never answered: the session is torn down around it
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(path);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function get(client: http2.ClientHttp2Session, path: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = client.request({ ':path': path });
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => resolve(body));
      req.on('error', reject);
      req.end();
    });
  }

  test('500 concurrent streams over one session, both sides with the tables', async () => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    expect(installStreamTable(client)).toBe(true);
    try {
      const paths = Array.from({ length: 500 }, (_, i) => `/p${i}`);
      const bodies = await Promise.all(paths.map((p) => get(client, p)));
      expect(bodies).toEqual(paths);
      expect(installedOnServer.length).toBeGreaterThan(0);
      expect(installedOnServer.every(Boolean)).toBe(true);
    } finally {
      client.destroy();
    }
  });

  test('installing twice does nothing the second time', async () => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    try {
      expect(installStreamTable(client)).toBe(true);
      expect(installStreamTable(client)).toBe(false);
      expect(await get(client, '/after')).toBe('/after');
    } finally {
      client.destroy();
    }
  });

  test('a session torn down with a stream open closes that stream on both sides', async () => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    installStreamTable(client);
    expect(await get(client, '/warm')).toBe('/warm');
    const arrived = new Promise<http2.ServerHttp2Stream>((resolve) => (hangArrived = resolve));
    const hanging = client.request({ ':path': '/hang' });
    const clientClosed = new Promise<void>((resolve) => hanging.on('close', () => resolve()));
    hanging.on('error', () => undefined);
    hanging.end();
    const serverStream = await arrived;
    const serverClosed = new Promise<void>((resolve) => serverStream.on('close', () => resolve()));
    client.destroy();
    await Promise.all([clientClosed, serverClosed]);
    expect(hanging.destroyed).toBe(true);
    expect(serverStream.destroyed).toBe(true);
  });

  test('a client session destroyed before it connects cancels its waiting requests', async () => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    installStreamTable(client);
    client.on('error', () => undefined);
    const waiting = [1, 2, 3].map(
      () =>
        new Promise<string>((resolve) => {
          const req = client.request({ ':path': '/never' });
          req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'no code'));
          req.on('close', () => resolve('closed without an error'));
        }),
    );
    client.destroy(new Error('gone'));
    expect(await Promise.all(waiting)).toEqual(['ERR_HTTP2_STREAM_CANCEL', 'ERR_HTTP2_STREAM_CANCEL', 'ERR_HTTP2_STREAM_CANCEL']);
  });
});
