/**
 * The gRPC Echo service (fixtures/grpc/echo.proto) served by @grpc/grpc-js,
 * for the tests that proxy gRPC: unary (with metadata), server and client
 * streaming, bidirectional, and a failing call (trailers-only response).
 */
import path from 'node:path';
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { randomBytes } from 'node:crypto';
import { startProxy } from './server';
import type { Server } from '../../dist/index';

export interface Message {
  text?: string;
  data?: Buffer;
  count?: number;
}

const definition = protoLoader.loadSync(path.join(__dirname, '..', 'fixtures', 'grpc', 'echo.proto'), { keepCase: true, defaults: true });
export const Echo = (grpc.loadPackageDefinition(definition) as any).zproxy.test.Echo;
export const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
export const LIMITS = { 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 };

/** An Echo server on a free loopback port. */
export function startEchoServer(credentials: grpc.ServerCredentials): Promise<{ server: grpc.Server; port: number }> {
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
    server.bindAsync('127.0.0.1:0', credentials, (err, port) => (err ? reject(err) : resolve({ server, port })));
  });
}

export interface GrpcThroughProxy {
  proxy: Server;
  /** An Echo client aimed at the proxy (cleartext HTTP/2). */
  client: any;
  stop(): Promise<void>;
}

/** An Echo server behind zproxy's catch-all route (`upstream(port)`: its upstream config) and a client for it. */
export async function startGrpcThroughProxy(
  credentials: grpc.ServerCredentials,
  upstream: (port: number) => unknown,
  noNative: boolean,
): Promise<GrpcThroughProxy> {
  const echo = await startEchoServer(credentials);
  const proxy = await startProxy({ routes: [{ path: '/', upstream: upstream(echo.port) }] }, noNative);
  const client = new Echo(`127.0.0.1:${proxy.address().port}`, grpc.credentials.createInsecure(), LIMITS);
  return {
    proxy,
    client,
    async stop() {
      client.close();
      await proxy.stop();
      echo.server.forceShutdown();
    },
  };
}

// The checks every gRPC-through-the-proxy suite makes, with an Echo client aimed at the proxy.

/** Unary with metadata, and a 5 MB message intact both ways. */
export async function checkUnary(client: any): Promise<void> {
  const data = randomBytes(5 << 20);
  const metadata = new grpc.Metadata();
  metadata.set('x-client', 'jest');
  const reply: Message = await new Promise((resolve, reject) => client.Unary({ text: 'hi', data }, metadata, (err: Error | null, res: Message) => (err ? reject(err) : resolve(res))));
  expect(reply.text).toBe('hi|jest');
  expect(reply.count).toBe(data.length);
  expect(reply.data!.toString()).toBe(sha(data));
}

/** Bidirectional streaming with large messages, in order and intact. */
export async function checkBidi(client: any): Promise<void> {
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
  expect(got.map((m) => m.text)).toEqual(sent.map((m) => m.text.toUpperCase()));
  expect(got.map((m) => sha(m.data!))).toEqual(sent.map((m) => sha(m.data)));
}

/** An error status and its metadata reach the client (a trailers-only response). */
export async function checkErrorStatus(client: any): Promise<void> {
  const err: grpc.ServiceError = await new Promise((resolve) => client.Fail({ text: 'x' }, (e: grpc.ServiceError) => resolve(e)));
  expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
  expect(err.details).toBe('no such luck');
  expect(err.metadata.get('x-reason')).toEqual(['asked-for-it']);
}
