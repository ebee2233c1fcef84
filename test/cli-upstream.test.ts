/**
 * `zproxy start --upstream URL` (SPEC §1, §2): one catch-all route to a real
 * upstream, through the CLI as a child process.
 *
 * --upstream replaces only the routes: the admin listener comes from the
 * config (the embedded default has it on 127.0.0.1:9901, and there is no
 * command-line flag to turn it off), so these tests pass a config file with
 * `admin: null` to stay clear of port 9901 (test/cli.test.ts uses it).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CLI, exchange, listeningPort, startCli } from './helpers/server';
import { closeAll, header, startRecordingUpstream } from './helpers/upstreams';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'zproxy-cli-upstream-'));
});

afterAll(async () => {
  await closeAll();
  rmSync(dir, { recursive: true, force: true });
});

function tempConfig(config: unknown): string {
  const file = path.join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '5', ...args], (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout)));
  });
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 15_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

test('start --upstream URL --port 0 proxies every path to the upstream (curl), then stops on SIGTERM', async () => {
  const up = await startRecordingUpstream();
  const file = tempConfig({ host: '127.0.0.1', admin: null, routes: [{ path: '/', respond: { status: 200, headers: {}, body: 'replaced' } }] });
  const proxy = await startCli(['start', '--config', file, '--upstream', up.url, '--port', '0', '--threads', '2']);
  try {
    const port = listeningPort(proxy.output());
    const out = await curl(['-i', '-H', 'X-Request-Id: cli-1', '--data-binary', 'hello from curl', `http://127.0.0.1:${port}/any/path?q=1`]);
    expect(out).toMatch(/^HTTP\/1\.1 200 /);
    expect(out).toMatch(/\r\nx-request-id: cli-1\r\n/i);
    expect(up.requests).toHaveLength(1);
    const got = up.requests[0];
    expect([got.method, got.target, got.body.toString()]).toEqual(['POST', '/any/path?q=1', 'hello from curl']);
    expect(header(got, 'host')).toBe(`127.0.0.1:${port}`);
    expect(header(got, 'x-forwarded-for')).toBe('127.0.0.1');
    // The file's own routes are replaced: / goes upstream too.
    await curl([`http://127.0.0.1:${port}/`]);
    expect(up.requests.map((r) => r.target)).toEqual(['/any/path?q=1', '/']);
  } finally {
    proxy.child.kill('SIGTERM');
    expect(await proxy.exited).toBe(0);
  }
});

test('start --upstream with an upstream that is down: 502 JSON, the process keeps running', async () => {
  const up = await startRecordingUpstream();
  const url = up.url;
  await up.close();
  const file = tempConfig({ host: '127.0.0.1', admin: null });
  const proxy = await startCli(['start', '--config', file, '--upstream', url, '--port', '0', '--threads', '1']);
  try {
    const port = listeningPort(proxy.output());
    const out = await curl(['-i', `http://127.0.0.1:${port}/`]);
    expect(out).toMatch(/^HTTP\/1\.1 502 /);
    expect(JSON.parse(out.split('\r\n\r\n')[1])).toMatchObject({ status: 502 });
    expect(proxy.child.exitCode).toBeNull();
  } finally {
    proxy.child.kill('SIGTERM');
    expect(await proxy.exited).toBe(0);
  }
});

test('start --upstream with an invalid URL exits non-zero naming the route', async () => {
  const file = tempConfig({ host: '127.0.0.1', admin: null });
  const result = await run(['start', '--config', file, '--upstream', 'http://127.0.0.1:3000/with/path', '--port', '0']);
  expect(result.code).not.toBe(0);
  expect(result.stderr).toMatch(/routes\[0\]\.upstream/);
});

test('--upstream is in --help', async () => {
  const result = await run(['--help']);
  expect(result.stdout).toMatch(/--upstream URL/);
});

test('--upstream without a config file and --no-admin: the one-line use', async () => {
  const upstream = http.createServer((req, res) => res.end(`upstream saw ${req.url}`));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const proxy = await startCli(['start', '--upstream', `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, '--port', '0', '--no-admin']);
  try {
    expect(proxy.output()).not.toMatch(/admin http/);
    // The one-liner serves this machine only.
    expect(proxy.output()).toMatch(/listening on 127\.0\.0\.1:\d+/);
    const port = listeningPort(proxy.output());
    const answer = await exchange(port, 'GET /one/line HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(answer).toMatch(/\r\n\r\nupstream saw \/one\/line$/);
  } finally {
    proxy.child.kill('SIGTERM');
    await proxy.exited;
    await new Promise((r) => upstream.close(r));
  }
});
