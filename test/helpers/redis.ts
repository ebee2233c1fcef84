/**
 * A real redis-server for the tests, on a free loopback port: no
 * persistence, started and stopped by PID only. `stop()` kills it (the port
 * stays this server's: `start()` brings it back on the same one, empty, as
 * a restarted Redis would be), `pause()`/`resume()` freeze it (SIGSTOP /
 * SIGCONT: a Redis that accepts but never answers), `close()` ends it for
 * good. With `tls`, it speaks TLS only (`rediss://`). redis-server needs an
 * explicit port: one is picked by binding port 0 first.
 */
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

export interface RedisOptions {
  /** `requirepass`: the URL then carries it. */
  password?: string;
  /** TLS only (`rediss://`), with this certificate and key (PEM files); clients are not asked for one. */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

export class RedisServer {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    private readonly options: RedisOptions,
  ) {}

  static async start(options: RedisOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), options);
    await server.start();
    return server;
  }

  /** Started and not stopped since (paused counts as running). */
  get running(): boolean {
    return this.child !== null;
  }

  get url(): string {
    return `${this.options.tls ? 'rediss' : 'redis'}://${this.options.password === undefined ? '' : `:${encodeURIComponent(this.options.password)}@`}127.0.0.1:${this.port}`;
  }

  /** Starts redis-server (again) and waits until it answers PING. */
  async start(): Promise<void> {
    if (this.child !== null) throw new Error('redis-server is running already');
    const { tls: certificate } = this.options;
    const ports = certificate ? ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', certificate.certFile, '--tls-key-file', certificate.keyFile, '--tls-ca-cert-file', certificate.caFile, '--tls-auth-clients', 'no'] : ['--port', String(this.port)];
    const args = [...ports, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'];
    if (this.options.password !== undefined) args.push('--requirepass', this.options.password);
    const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 10_000;
    while (!(await this.ping())) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await this.stop();
        throw new Error(`redis-server did not start on port ${this.port}: ${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Kills it (SIGKILL: no goodbye to its clients, as a crash) and waits until it is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await this.exited;
  }

  /** Freezes it: connections stay open, nothing is answered. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  async close(): Promise<void> {
    this.resume();
    await this.stop();
  }

  /** One command over a fresh connection (inline protocol), for the tests' own checks: the reply's first line. */
  command(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const certificate = this.options.tls;
      const socket = certificate ? tls.connect({ host: '127.0.0.1', port: this.port, ca: readFileSync(certificate.caFile) }) : net.connect({ host: '127.0.0.1', port: this.port });
      let reply = '';
      const auth = this.options.password === undefined ? '' : `AUTH ${this.options.password}\r\n`;
      socket.setTimeout(5_000, () => socket.destroy(new Error(`no reply to ${line}`)));
      socket.on('error', reject);
      socket.on('data', (chunk) => {
        reply += chunk.toString('latin1');
        const lines = reply.split('\r\n');
        const wanted = auth === '' ? 1 : 2;
        if (lines.length > wanted) {
          socket.destroy();
          resolve(lines[wanted - 1]);
        }
      });
      socket.write(`${auth}${line}\r\n`);
    });
  }

  private async ping(): Promise<boolean> {
    try {
      return (await this.command('PING')) === '+PONG';
    } catch {
      return false;
    }
  }
}

/** A loopback port that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
