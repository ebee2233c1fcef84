/**
 * Test harness: starts zproxy in-process (both the addon and the fallback),
 * or as a child process through its CLI, and talks to it over loopback.
 */
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createProxy, type Server } from '../../dist/index';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'bin', 'zproxy.js');

/** Every runtime test runs against both implementations of the OS layer. */
export const RUNTIMES: Array<[string, boolean]> = [
  ['native addon', false],
  ['TypeScript fallback', true],
];

/**
 * The listener stage's three implementations, for the tests of accepting,
 * limits and timeouts: the addon's accept loop (several workers), the
 * addon's worker listener (one worker) and the fallback. [name, noNative, thread_count].
 */
export const LISTENERS: Array<[string, boolean, number]> = [
  ['native accept loop, 2 workers', false, 2],
  ['native worker listener, 1 worker', false, 1],
  ['TypeScript fallback, 2 workers', true, 2],
];

export const welcomeRoute = { path: '/', respond: { status: 200, headers: { 'content-type': 'text/plain' }, body: 'hello' } };

export async function startProxy(config: Record<string, unknown>, noNative: boolean): Promise<Server> {
  const server = createProxy({ host: '127.0.0.1', port: 0, admin: null, thread_count: 2, log_level: 'warn', routes: [welcomeRoute], ...config }, { noNative });
  await server.start();
  return server;
}

/** Opens a raw TCP connection. */
export function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends raw bytes and collects everything until the server closes (or `until` matches). */
export function exchange(port: number, payload: string | Buffer, options: { until?: (text: string) => boolean; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${options.timeoutMs ?? 5000} ms; got ${JSON.stringify(text)}`));
    }, options.timeoutMs ?? 5000);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if (options.until?.(text)) finish();
    });
    socket.on('close', finish);
    socket.on('error', () => undefined);
    socket.write(payload);
  });
}

/** Resolves when the peer closes the socket; rejects after `timeoutMs`. */
export function waitForClose(socket: net.Socket, timeoutMs: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve(0);
    const timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
    socket.resume();
  });
}

/** A complete response on a keep-alive connection: head + content-length body. */
export function readResponse(socket: net.Socket, timeoutMs = 5000): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    let data = '';
    const timer = setTimeout(() => done(new Error(`no response within ${timeoutMs} ms: ${JSON.stringify(data)}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      data += chunk.toString('latin1');
      const headEnd = data.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = data.slice(0, headEnd);
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (data.length < headEnd + 4 + length) return;
      done(undefined, { status: Number(head.split(' ')[1]), head, body: data.slice(headEnd + 4, headEnd + 4 + length) });
    };
    const onClose = () => done(new Error(`closed before a full response: ${JSON.stringify(data)}`));
    function done(err?: Error, value?: { status: number; head: string; body: string }) {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(value!);
    }
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

export function get(port: number, path = '/', extra = ''): Promise<string> {
  return exchange(port, `GET ${path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n${extra}\r\n`);
}

export interface ChildProxy {
  child: ChildProcess;
  /** stdout so far. */
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Runs the CLI and waits for its `listening` line. */
export function startCli(args: string[], env: Record<string, string> = {}, wrapper: string[] = []): Promise<ChildProxy> {
  const command = wrapper.length > 0 ? wrapper[0] : process.execPath;
  const commandArgs = wrapper.length > 0 ? [...wrapper.slice(1), process.execPath, CLI, ...args] : [CLI, ...args];
  const child = spawn(command, commandArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no listening line within 15 s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 15000);
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      if (/listening on/.test(stdout)) {
        clearTimeout(timer);
        resolve({ child, output: () => stdout + stderr, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before listening\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
}

/** The port from a `listening` log line. */
export function listeningPort(output: string): number {
  const match = /listening on [^ ]*:(\d+)/.exec(output);
  if (!match) throw new Error(`no listening line in ${output}`);
  return Number(match[1]);
}
