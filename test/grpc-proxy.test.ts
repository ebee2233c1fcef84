/**
 * gRPC through zproxy end to end, with @grpc/grpc-js on both sides: the
 * client speaks HTTP/2 cleartext to the proxy, the proxy forwards to an
 * `h2c://` upstream. Unary, server streaming, client streaming,
 * bidirectional, an error status (trailers-only), metadata both ways, and a
 * multi-megabyte message intact both ways.
 */
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { RUNTIMES, startProxy } from './helpers/server';
import type { Server } from '../dist/index';

interface Message {
  text?: string;
  data?: Buffer;
  count?: number;
}

const definition = protoLoader.loadSync(path.join(__dirname, 'fixtures', 'grpc', 'echo.proto'), { keepCase: true, defaults: true });
const Echo = (grpc.loadPackageDefinition(definition) as any).zproxy.test.Echo;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const LIMITS = { 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 };

function startUpstream(): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server(LIMITS);
  server.addService(Echo.service, {
    Unary(call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) {
      call.sendMetadata(new grpc.Metadata());
      const md = call.metadata.get('x-client')[0];
      done(null, { text: `${call.request.text}|${md ?? ''}`, data: Buffer.from(sha(call.request.data ?? Buffer.alloc(0))), count: (call.request.data ?? Buffer.alloc(0)).length });
    },
    ServerStream(call: grpc.ServerWritableStream<Message, Message>) {
      for (let i = 0; i < (call.request.count ?? 0); i++) call.write({ text: `${call.request.text}-${i}`, count: i });
      call.end();
    },
    ClientStream(call: grpc.ServerReadableStream<Message, Message>, done: grpc.sendUnaryData<Message>) {
      const texts: string[] = [];
      call.on('data', (m: Message) => texts.push(m.text ?? ''));
      call.on('end', () => done(null, { text: texts.join(','), count: texts.length }));
    },
    Bidi(call: grpc.ServerDuplexStream<Message, Message>) {
      call.on('data', (m: Message) => call.write({ text: (m.text ?? '').toUpperCase(), data: m.data }));
      call.on('end', () => call.end());
    },
    Fail(_call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) {
      const metadata = new grpc.Metadata();
      metadata.set('x-reason', 'asked-for-it');
      done({ code: grpc.status.FAILED_PRECONDITION, details: 'no such luck', metadata });
    },
  });
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve({ server, port })));
  });
}

describe.each(RUNTIMES)('gRPC through the proxy (%s)', (_name, noNative) => {
  let upstream: { server: grpc.Server; port: number };
  let proxy: Server;
  let client: any;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({ routes: [{ path: '/', upstream: `h2c://127.0.0.1:${upstream.port}` }] }, noNative);
    client = new Echo(`127.0.0.1:${proxy.address().port}`, grpc.credentials.createInsecure(), LIMITS);
  });
  afterAll(async () => {
    client?.close();
    await proxy?.stop();
    upstream?.server.forceShutdown();
  });

  test('unary with metadata, and a 5 MB message intact both ways', async () => {
    const data = randomBytes(5 << 20);
    const metadata = new grpc.Metadata();
    metadata.set('x-client', 'jest');
    const reply: Message = await new Promise((resolve, reject) => client.Unary({ text: 'hi', data }, metadata, (err: Error | null, res: Message) => (err ? reject(err) : resolve(res))));
    expect(reply.text).toBe('hi|jest');
    expect(reply.count).toBe(data.length);
    expect(reply.data!.toString()).toBe(sha(data));
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

  test('bidirectional streaming, with large messages', async () => {
    const sent = Array.from({ length: 10 }, (_, i) => ({ text: `b${i}`, data: randomBytes(200_000) }));
    const got: Message[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.Bidi();
      call.on('data', (m: Message) => got.push(m));
      call.on('end', resolve);
      call.on('error', reject);
      for (const m of sent) call.write(m);
      call.end();
    });
    expect(got.map((m) => m.text)).toEqual(sent.map((m) => m.text!.toUpperCase()));
    expect(got.map((m) => sha(m.data!))).toEqual(sent.map((m) => sha(m.data)));
  });

  test('an error status and its metadata reach the client (trailers-only response)', async () => {
    const err: grpc.ServiceError = await new Promise((resolve) => client.Fail({ text: 'x' }, (e: grpc.ServiceError) => resolve(e)));
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err.details).toBe('no such luck');
    expect(err.metadata.get('x-reason')).toEqual(['asked-for-it']);
  });
});
