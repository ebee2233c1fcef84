/**
 * A peer's FIN or RST ends the HTTP/2 connection and its streams at once
 * (issue 10, item 12): the proxy's socket closes (no CLOSE-WAIT until the
 * idle sweep), the upstream requests of its streams are cancelled, and a
 * graceful stop right after does not wait for drain_timeout_ms. Over
 * cleartext and TLS.
 */
import net from 'node:net';
import path from 'node:path';
import { H2Raw } from './helpers/h2-frames';
import { RUNTIMES, startProxy, waitForClose } from './helpers/server';

const FIXTURES = path.join(__dirname, 'fixtures', 'tls');
const TLS = { enabled: true, cert_file: path.join(FIXTURES, 'localhost.pem'), key_file: path.join(FIXTURES, 'localhost.key') };

/** An upstream that takes each request and never answers; resolves `arrived` per connection. */
async function startSlowUpstream(): Promise<{ server: net.Server; port: number; arrived: () => Promise<net.Socket>; close: () => Promise<void> }> {
  const waiting: Array<(s: net.Socket) => void> = [];
  const early: net.Socket[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', () => {
      const w = waiting.shift();
      if (w) w(socket);
      else early.push(socket);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    arrived: () => new Promise((resolve) => (early.length > 0 ? resolve(early.shift()!) : waiting.push(resolve))),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe.each(RUNTIMES)('HTTP/2 connections the client closes (%s)', (_name, noNative) => {
  test.each([
    ['cleartext, FIN', false, 'fin'],
    ['cleartext, RST', false, 'rst'],
    ['TLS, FIN', true, 'fin'],
  ] as Array<[string, boolean, 'fin' | 'rst']>)('%s: the connection and its streams end at once; a graceful stop is quick', async (_label, tls, how) => {
    const upstream = await startSlowUpstream();
    // The default drain_timeout_ms (30 s): a stop that waited on the connection would show.
    const proxy = await startProxy({ drain_timeout_ms: 30_000, tls: tls ? TLS : { enabled: false }, routes: [{ path: '/', upstream: `http://127.0.0.1:${upstream.port}` }] }, noNative);
    try {
      const c = await H2Raw.connect(proxy.address().port, { tls });
      c.request(1, '/slow');
      c.request(3, '/slow');
      const requests = [await upstream.arrived(), await upstream.arrived()];
      // The raw TCP socket under TLS too: its FIN or RST is what the proxy must notice.
      const raw = c.socket;
      const closed = waitForClose(raw, 3000);
      if (how === 'fin') raw.end();
      else raw.resetAndDestroy();
      // The proxy closes its side (a FIN-only client sees its socket close; no CLOSE-WAIT on the proxy).
      if (how === 'fin') await closed;
      // Both upstream requests are cancelled.
      await Promise.all(requests.map((s) => waitForClose(s, 3000)));
      const started = Date.now();
      await proxy.stop();
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });
});
