/**
 * TLS through the command line: a clear one-line startup error (exit 1) for
 * an unreadable file or a key that does not match its certificate, and
 * certificate rotation on SIGHUP — new handshakes get the new certificate,
 * an established keep-alive connection keeps working, and an unusable file
 * on reload keeps the running certificates.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { CLI, listeningPort, readResponse, startCli } from './helpers/server';
import { sleep } from './helpers/upstreams';

const FIXTURES = path.join(__dirname, 'fixtures', 'tls');
const file = (name: string): string => path.join(FIXTURES, name);
const CA = readFileSync(file('ca.pem'));

function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'zproxy-tls-'));
}

function writeConfig(dir: string, config: Record<string, unknown>): string {
  const target = path.join(dir, 'zproxy.json');
  writeFileSync(target, JSON.stringify({ host: '127.0.0.1', port: 0, admin: null, thread_count: 2, ...config }));
  return target;
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 15000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as NodeJS.ErrnoException & { code: number }).code as number) : 0, stdout, stderr });
    });
  });
}

test('a missing certificate file stops the start with one line naming it', async () => {
  const dir = tempDir();
  const config = writeConfig(dir, {
    tls: { enabled: true, certificates: [{ server_names: ['a.test'], cert_file: 'missing.pem', key_file: file('a.test.key') }] },
  });
  const { code, stderr } = await run(['start', '--config', config]);
  expect(code).toBe(1);
  const missing = path.join(dir, 'missing.pem');
  expect(stderr).toBe(`zproxy: tls.certificates[0].cert_file: cannot read ${missing}: ENOENT: no such file or directory\n`);
});

test('a key that does not match its certificate stops the start with one line naming both files', async () => {
  const config = writeConfig(tempDir(), {
    tls: {
      enabled: true,
      certificates: [
        { server_names: ['a.test'], cert_file: file('a.test.pem'), key_file: file('a.test.key') },
        { server_names: ['*.wild.test'], cert_file: file('wild.test.pem'), key_file: file('localhost.key') },
      ],
    },
  });
  const { code, stderr } = await run(['start', '--config', config]);
  expect(code).toBe(1);
  expect(stderr).toBe(`zproxy: tls.certificates[1]: the key in ${file('localhost.key')} does not match the certificate in ${file('wild.test.pem')}\n`);
});

test('an unreadable upstream ca_file stops the start too', async () => {
  const dir = tempDir();
  const config = writeConfig(dir, { routes: [{ path: '/', upstream: { targets: [{ url: 'https://localhost:1' }], ca_file: 'nope.pem' } }] });
  const { code, stderr } = await run(['start', '--config', config]);
  expect(code).toBe(1);
  expect(stderr).toBe(`zproxy: routes[0].upstream.ca_file: cannot read ${path.join(dir, 'nope.pem')}: ENOENT: no such file or directory\n`);
});

/** A TLS connection to the proxy and the served certificate's subject. */
function open(port: number): Promise<{ socket: tls.TLSSocket; subject: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'a.test', ca: CA }, () => {
      resolve({ socket, subject: { ...socket.getPeerCertificate().subject } as Record<string, string> });
    });
    socket.once('error', reject);
  });
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('SIGHUP reloads the certificates: new handshakes get the new one, an established connection keeps working', async () => {
  const dir = tempDir();
  copyFileSync(file('a.test.pem'), path.join(dir, 'a.pem'));
  copyFileSync(file('a.test.key'), path.join(dir, 'a.key'));
  const config = writeConfig(dir, {
    log_level: 'info',
    tls: { enabled: true, cert_file: file('default.pem'), key_file: file('default.key'), certificates: [{ server_names: ['a.test'], cert_file: 'a.pem', key_file: 'a.key' }] },
    routes: [{ path: '/', respond: { status: 200, headers: { 'content-type': 'text/plain' }, body: 'hi' } }],
  });
  const proxy = await startCli(['start', '--config', config]);
  try {
    const port = listeningPort(proxy.output());
    const before = await open(port);
    expect(before.subject).toEqual({ CN: 'a.test' });
    before.socket.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
    expect((await readResponse(before.socket)).body).toBe('hi');

    copyFileSync(file('a.test-v2.pem'), path.join(dir, 'a.pem'));
    copyFileSync(file('a.test-v2.key'), path.join(dir, 'a.key'));
    proxy.child.kill('SIGHUP');
    await waitFor(() => /config reloaded/.test(proxy.output()), 'the reload');
    const after = await open(port);
    expect(after.subject).toEqual({ O: 'zproxy v2', CN: 'a.test' });
    after.socket.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
    expect((await readResponse(after.socket)).status).toBe(200);
    after.socket.destroy();

    // The connection made before the reload is untouched.
    before.socket.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
    expect((await readResponse(before.socket)).body).toBe('hi');

    // An unusable file on reload: logged, the running certificates stay.
    writeFileSync(path.join(dir, 'a.pem'), 'not a certificate\n');
    proxy.child.kill('SIGHUP');
    await waitFor(() => /TLS certificates not reloaded/.test(proxy.output()), 'the rejected certificate');
    expect(proxy.output()).toMatch(/tls\.certificates\[0\]\.cert_file: no PEM certificate in [^"]*a\.pem/);
    const still = await open(port);
    expect(still.subject).toEqual({ O: 'zproxy v2', CN: 'a.test' });
    still.socket.destroy();
    before.socket.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
    expect((await readResponse(before.socket)).status).toBe(200);
    before.socket.destroy();
  } finally {
    proxy.child.kill('SIGTERM');
    await proxy.exited;
  }
}, 30_000);
