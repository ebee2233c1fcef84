/**
 * The admin listener: /health, /ready (503 while draining), the token, and
 * nothing else.
 */
import crypto from 'node:crypto';
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

test('the admin token is compared in constant time: SHA-256 digests through timingSafeEqual, whatever was sent', async () => {
  const server = await startProxy({ admin: { host: '127.0.0.1', port: 0, token: 's3cret' } }, false);
  // The admin server runs in this (the main) thread: the spy sees its comparisons.
  const compare = jest.spyOn(crypto, 'timingSafeEqual');
  try {
    const admin = server.adminAddress()!.port;
    const status = async (authorization: string | null) => {
      const line = authorization === null ? '' : `Authorization: ${authorization}\r\n`;
      return Number((await exchange(admin, `GET /health HTTP/1.1\r\nHost: a\r\n${line}Connection: close\r\n\r\n`)).split(' ')[1]);
    };
    const cases: Array<[string | null, number]> = [
      ['Bearer s3cret', 200],
      // The auth scheme is case-insensitive (RFC 9110 §11.1).
      ['bearer s3cret', 200],
      [null, 401],
      ['Bearer ', 401],
      ['Bearer s3cre', 401],
      ['Bearer s3cretX', 401],
      ['Bearer S3CRET', 401],
      ['Basic s3cret', 401],
      ['s3cret', 401],
      [`Bearer ${'x'.repeat(5000)}`, 401],
    ];
    for (const [authorization, expected] of cases) {
      compare.mockClear();
      expect([authorization, await status(authorization)]).toEqual([authorization, expected]);
      // One comparison per request, of two 32-byte digests: the time says nothing about the token's length or content.
      expect(compare).toHaveBeenCalledTimes(1);
      const [a, b] = compare.mock.calls[0] as [Buffer, Buffer];
      expect([a.length, b.length]).toEqual([32, 32]);
    }
  } finally {
    compare.mockRestore();
    await server.stop();
  }
});
