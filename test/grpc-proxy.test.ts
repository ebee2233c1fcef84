/**
 * gRPC through zproxy end to end, with @grpc/grpc-js on both sides: the
 * client speaks HTTP/2 cleartext to the proxy, the proxy forwards to an
 * `h2c://` upstream. Unary, server streaming, client streaming,
 * bidirectional, an error status (trailers-only), metadata both ways, and a
 * multi-megabyte message intact both ways.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { RUNTIMES } from './helpers/server';
import { checkBidi, checkErrorStatus, checkUnary, startGrpcThroughProxy, type GrpcThroughProxy, type Message } from './helpers/grpc-echo';
import type { Server } from '../dist/index';

const curl = (args: string[]) => promisify(execFile)('curl', args, { timeout: 10_000 });

describe.each(RUNTIMES)('gRPC through the proxy (%s)', (_name, noNative) => {
  let setup: GrpcThroughProxy;
  let proxy: Server;
  let client: any;

  beforeAll(async () => {
    setup = await startGrpcThroughProxy(grpc.ServerCredentials.createInsecure(), (port) => `h2c://127.0.0.1:${port}`, noNative);
    ({ proxy, client } = setup);
  });
  afterAll(() => setup?.stop());

  test('unary with metadata, and a 5 MB message intact both ways', () => checkUnary(client));

  test('an HTTP/1.1 request on the h2c:// route is answered 505 by zproxy (the gRPC server never sees it)', async () => {
    const { stdout } = await curl(['-sS', '-i', '--http1.1', `http://127.0.0.1:${proxy.address().port}/echo.Echo/Unary`]);
    expect(stdout).toMatch(/^HTTP\/1\.1 505 /);
    expect(stdout).toContain('"error":"HTTP version not supported: this route\'s upstream speaks HTTP/2 only"');
  });

  test('server streaming', async () => {
    const got: Message[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.ServerStream({ text: 'n', count: 50 });
      call.on('data', (m: Message) => got.push(m));
      call.on('end', resolve);
      call.on('error', reject);
    });
    expect(got.map((m) => m.text)).toEqual(Array.from({ length: 50 }, (_, i) => `n-${i}`));
  });

  test('client streaming', async () => {
    const reply: Message = await new Promise((resolve, reject) => {
      const call = client.ClientStream((err: Error | null, res: Message) => (err ? reject(err) : resolve(res)));
      for (let i = 0; i < 20; i++) call.write({ text: `m${i}` });
      call.end();
    });
    expect(reply.count).toBe(20);
    expect(reply.text).toBe(Array.from({ length: 20 }, (_, i) => `m${i}`).join(','));
  });

  test('bidirectional streaming, with large messages', () => checkBidi(client));

  test('an error status and its metadata reach the client (trailers-only response)', () => checkErrorStatus(client));
});
