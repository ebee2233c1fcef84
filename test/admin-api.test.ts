/**
 * The admin listener: /health, /ready (503 while draining), the token, and
 * nothing else.
 */
import { connect, exchange, readResponse, startProxy } from './helpers/server';

test('/health and /ready answer; /ready turns 503 while draining', async () => {
  const server = await startProxy(
    {
      admin: { host: '127.0.0.1', port: 0 },
      routes: [{ path: '/upload', respond: { status: 200, headers: {}, body: 'done' } }],
    },
    false,
  );
  const admin = server.adminAddress()!.port;
  expect(await exchange(admin, 'GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
  expect(await exchange(admin, 'GET /ready HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
  expect(await exchange(admin, 'GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 404 /);

  // A request in flight keeps the server draining long enough to look.
  const slow = await connect(server.address().port);
  slow.write('POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab');
  await new Promise((r) => setTimeout(r, 100));
  const stopped = server.stop();
  await new Promise((r) => setTimeout(r, 100));
  expect(server.state).toBe('draining');
  expect(await exchange(admin, 'GET /ready HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 503 [\s\S]*draining/);
  expect(await exchange(admin, 'GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
  const answer = readResponse(slow);
  slow.write('cd');
  expect((await answer).body).toBe('done');
  await stopped;
  expect(server.state).toBe('stopped');
});

test('with admin.token every admin request needs the bearer token', async () => {
  const server = await startProxy({ admin: { host: '127.0.0.1', port: 0, token: 's3cret' } }, false);
  try {
    const admin = server.adminAddress()!.port;
    expect(await exchange(admin, 'GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 401 /);
    expect(await exchange(admin, 'GET /health HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer wrong\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 401 /);
    expect(await exchange(admin, 'GET /health HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer s3cret\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
  } finally {
    await server.stop();
  }
});
