/**
 * The command line as a user runs it: --help, --version, validate, and
 * `start` with the embedded default config answering on 8000 and 9901.
 */
import { execFile } from 'node:child_process';
import { writeFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLI, ROOT, startCli, exchange } from './helpers/server';

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 15000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as NodeJS.ErrnoException & { code: number }).code as number) : 0, stdout, stderr });
    });
  });
}

function tempConfig(config: unknown): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'zproxy-cli-')), 'zproxy.json');
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  return file;
}

test('--help prints the usage', async () => {
  const { code, stdout } = await run(['--help']);
  expect(code).toBe(0);
  expect(stdout).toMatch(/zproxy start \[--config FILE\]/);
  expect(stdout).toMatch(/zproxy validate FILE/);
});

test('--version prints the package version', async () => {
  const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const { code, stdout } = await run(['--version']);
  expect(code).toBe(0);
  expect(stdout.trim()).toBe(version);
});

test('an unknown command or option is a usage error, with the option it most likely meant', async () => {
  expect((await run(['frobnicate'])).code).toBe(2);
  const { code, stderr } = await run(['start', '--prot', '80']);
  expect(code).toBe(2);
  expect(stderr).toMatch(/unknown option --prot \(did you mean --port\?\)/);
  expect(stderr).toMatch(/zproxy --help/);
  expect((await run(['start', '--frobnicate', '1'])).stderr).toMatch(/unknown option --frobnicate\n/);
});

test('--help after a command prints the usage; validate never reads a file named --help', async () => {
  for (const args of [['start', '--help'], ['start', '--port', '1', '-h'], ['validate', '--help']]) {
    const { code, stdout, stderr } = await run(args);
    expect(code).toBe(0);
    expect(stdout).toMatch(/zproxy start \[--config FILE\]/);
    expect(stderr).toBe('');
  }
  const { code, stderr } = await run(['validate', '--strict', 'x.json']);
  expect(code).toBe(2);
  expect(stderr).toMatch(/unknown option --strict/);
});

test('--upstream without a scheme is blamed on --upstream, with the likely fix', async () => {
  const { code, stderr } = await run(['start', '--upstream', '127.0.0.1:3000']);
  expect(code).toBe(2);
  expect(stderr).toMatch(/--upstream expects a URL like http:\/\/127\.0\.0\.1:3000, got "127\.0\.0\.1:3000" \(did you mean http:\/\/127\.0\.0\.1:3000\?\)/);
  expect(stderr).not.toMatch(/routes\[0\]/);
});

test('validate: a valid file exits 0', async () => {
  const { code, stdout } = await run(['validate', path.join(ROOT, 'config', 'zproxy.json')]);
  expect(code).toBe(0);
  expect(stdout).toMatch(/valid/);
});

test('validate: one line per problem, each naming its JSON path', async () => {
  const file = tempConfig({ port: 'eighty', routes: [{ path: '/a', upstream: 'ftp://x' }], admni: null });
  const { code, stderr } = await run(['validate', file]);
  expect(code).toBe(1);
  // Each line names the file first, as a compiler's do.
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(3);
  expect(lines.every((l) => l.startsWith(`${file}: `))).toBe(true);
  const problems = lines.map((l) => l.slice(file.length + 2));
  expect(problems.some((l) => l.startsWith('port: '))).toBe(true);
  expect(problems.some((l) => l.startsWith('routes[0].upstream'))).toBe(true);
  expect(problems.some((l) => l.startsWith('admni: ') && l.includes('"admin"'))).toBe(true);
});

test('start refuses an invalid config with the same messages', async () => {
  const { code, stderr } = await run(['start', '--config', tempConfig({ port: -1 })]);
  expect(code).toBe(1);
  expect(stderr).toMatch(/^port: /m);
});

test('start with the embedded default answers on 8000 and on the admin port 9901', async () => {
  const proxy = await startCli(['start'], { ZPROXY_LOG_LEVEL: 'info' });
  try {
    expect(proxy.output()).toMatch(/listening on 0\.0\.0\.0:8000 with \d+ threads, NUMA/);
    const welcome = await exchange(8000, 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    expect(welcome).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(JSON.parse(welcome.split('\r\n\r\n')[1])).toMatchObject({ name: 'zproxy' });
    const health = await exchange(9901, 'GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    expect(health).toMatch(/^HTTP\/1\.1 200 OK/);
    const ready = await exchange(9901, 'GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    expect(ready).toMatch(/^HTTP\/1\.1 200 OK/);
  } finally {
    proxy.child.kill('SIGINT');
    expect(await proxy.exited).toBe(0);
  }
});

test('--port and --threads override the file', async () => {
  const file = tempConfig({ host: '127.0.0.1', port: 1, admin: null, routes: [{ path: '/', respond: { status: 200, headers: {}, body: 'x' } }] });
  const proxy = await startCli(['start', '--config', file, '--port', '0', '--threads', '1']);
  try {
    expect(proxy.output()).toMatch(/listening on 127\.0\.0\.1:\d+ with 1 threads/);
  } finally {
    proxy.child.kill('SIGTERM');
    expect(await proxy.exited).toBe(0);
  }
});

test('an addon that fails to load: the fallback runs, and the startup line says why', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zproxy-noaddon-'));
  // Preloaded into the CLI: node-gyp-build (the loader's only way to the .node file) throws, as it does when no build matches.
  const hook = path.join(dir, 'no-addon.js');
  writeFileSync(
    hook,
    "const Module = require('node:module'); const load = Module._load;" +
      "Module._load = function (request, ...rest) { if (request === 'node-gyp-build') throw new Error('No native build was found (simulated)'); return load.call(this, request, ...rest); };",
  );
  const file = tempConfig({ host: '127.0.0.1', port: 0, admin: null, thread_count: 2, routes: [{ path: '/', respond: { status: 200, headers: {}, body: 'x' } }] });
  const proxy = await startCli(['start', '--config', file], { NODE_OPTIONS: `--require ${hook}`, ZPROXY_LOG_LEVEL: 'info' });
  try {
    expect(proxy.output()).toMatch(
      /"msg":"accept loop and OS primitives: TypeScript fallback \(the addon failed to load \(No native build was found \(simulated\)\); rebuild it with `npm rebuild zproxy`/,
    );
    expect(proxy.output()).toMatch(/"listener":"shared"/);
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(proxy.output())![1]);
    expect(await exchange(port, 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nx$/);
  } finally {
    proxy.child.kill('SIGTERM');
    expect(await proxy.exited).toBe(0);
  }
});

test('thread_count "auto" is the number of CPUs this process may run on, and workers are placed on those CPUs only', async () => {
  const file = tempConfig({ host: '127.0.0.1', port: 0, admin: null, routes: [{ path: '/', respond: { status: 200, headers: {}, body: 'x' } }] });
  const proxy = await startCli(['start', '--config', file], { ZPROXY_LOG_LEVEL: 'info' }, ['taskset', '-c', '0']);
  try {
    expect(proxy.output()).toMatch(/listening on 127\.0\.0\.1:\d+ with 1 threads, NUMA libnuma: worker 0 -> node 0 -> cpus 0"/);
  } finally {
    proxy.child.kill('SIGTERM');
    expect(await proxy.exited).toBe(0);
  }
});
