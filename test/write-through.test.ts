/**
 * writeThrough (src/util/socket-fd.ts): one send(2) on the socket's fd when
 * nothing is queued on it in user space, the stream otherwise. In a file of
 * its own: the process must run the native platform (other test files start
 * fallback proxies in-process, which switch it off).
 */
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { writeThrough, writeThroughReused } from '../dist/util/socket-fd';
import { platform } from '../dist/native/platform';
import { sleep, waitAtMost } from './helpers/upstreams';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

test('this process runs the native platform (else the test below would prove nothing)', () => {
  expect(platform().kind).toBe('native');
});

describe('writeThrough: one send(2) when nothing is queued, the stream otherwise', () => {
  test('a write larger than the socket buffers: the kernel takes what it can, the stream the rest, and the order holds', async () => {
    const received: Buffer[] = [];
    let peer: net.Socket | null = null;
    const server = net.createServer((s) => {
      peer = s;
      s.pause(); // takes nothing until the writes are queued
      s.on('data', (c: Buffer) => received.push(c));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1' });
    await new Promise((resolve) => socket.once('connect', resolve));
    try {
      const first = randomBytes(16 * 1024 * 1024);
      const second = Buffer.from('second');
      writeThrough(socket, first);
      // The kernel could not take 16 MiB at once: the rest waits in the stream ...
      expect(socket.writableLength).toBeGreaterThan(0);
      expect(socket.writableLength).toBeLessThan(first.length);
      // ... so the next write queues behind it instead of jumping ahead.
      writeThrough(socket, second);
      await waitAtMost(new Promise((resolve) => setTimeout(resolve, 50)), 100);
      peer!.resume();
      const expected = Buffer.concat([first, second]);
      for (let i = 0; i < 200 && Buffer.concat(received).length < expected.length; i++) await sleep(10);
      expect(sha256(Buffer.concat(received))).toBe(sha256(expected));
    } finally {
      socket.destroy();
      (peer as net.Socket | null)?.destroy();
      server.close();
    }
  }, 15_000);
});

describe('writeThroughReused: a message built in a buffer that is reused at once', () => {
  test('only data[start, end) leaves, and what the kernel did not take was copied: overwriting the buffer after the call changes nothing', async () => {
    const received: Buffer[] = [];
    let peer: net.Socket | null = null;
    const server = net.createServer((s) => {
      peer = s;
      s.pause();
      s.on('data', (c: Buffer) => received.push(c));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1' });
    await new Promise((resolve) => socket.once('connect', resolve));
    try {
      const scratch = randomBytes(16 * 1024 * 1024 + 100);
      const length = 16 * 1024 * 1024;
      const expected = Buffer.from(scratch.subarray(50, 50 + length));
      writeThroughReused(socket, scratch, 50, 50 + length);
      expect(socket.writableLength).toBeGreaterThan(0); // the kernel took part of it: the rest is queued ...
      scratch.fill(0x21); // ... from a copy, so reusing the buffer now must not show on the wire
      const small = Buffer.from('tail-and-more');
      writeThroughReused(socket, small, 0, 4); // queued behind, also copied
      small.fill(0x3f);
      peer!.resume();
      const total = length + 4;
      for (let i = 0; i < 300 && Buffer.concat(received).length < total; i++) await sleep(10);
      const got = Buffer.concat(received);
      expect(got.length).toBe(total);
      expect(sha256(got)).toBe(sha256(Buffer.concat([expected, Buffer.from('tail')])));
    } finally {
      socket.destroy();
      (peer as net.Socket | null)?.destroy();
      server.close();
    }
  }, 15_000);
});
