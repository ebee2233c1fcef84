'use strict';
/**
 * TLS for scenarios e and f: one self-signed ECDSA P-256 certificate made at
 * bench start (the same for every proxy), an HTTPS readiness probe, and what
 * makes scenario e measure full handshakes.
 *
 * Full handshakes: wrk keeps each connection's TLS session across reconnects
 * (SSL_clear keeps it), so against a server that issues session tickets
 * every "new connection" after the first is a resumption. Node's TLS server
 * (zproxy) issues tickets and has no switch for it in zproxy's config, so the
 * client is the place to turn resumption off: wrk runs with an OPENSSL_CONF
 * that sets `MaxProtocol = TLSv1.2` and `Options = -SessionTicket` (a TLS 1.3
 * client cannot refuse tickets; a TLS 1.2 client can). What is left is
 * session-ID resumption, which needs a server-side session cache: nginx's
 * default (`ssl_session_cache none`) and Node's (no internal cache) keep
 * none, and the bench turns HAProxy's off (`tune.ssl.cachesize 0`).
 * `checkResumption` verifies it per proxy with `openssl s_client` doing what
 * wrk does (TLS 1.2, no ticket, offering the previous session).
 */
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const proc = require('./proc');

/**
 * A self-signed certificate for 127.0.0.1 in `dir`: { certFile, keyFile,
 * pemFile (cert + key in one file, as HAProxy's `crt` wants) }.
 */
function makeCertificate(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const pemFile = path.join(dir, 'cert-and-key.pem');
  execFileSync(
    proc.which('openssl') || 'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '2',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  fs.writeFileSync(pemFile, fs.readFileSync(certFile, 'utf8') + fs.readFileSync(keyFile, 'utf8'));
  return { certFile, keyFile, pemFile };
}

/** Environment for wrk (an OpenSSL client) that makes it do full TLS 1.2 handshakes only. */
function fullHandshakeEnv(dir) {
  const file = path.join(dir, 'openssl-full-handshakes.cnf');
  fs.writeFileSync(
    file,
    `# written by scripts/bench.js: TLS 1.2 without session tickets, so wrk cannot resume
openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MaxProtocol = TLSv1.2
Options = -SessionTicket
`,
  );
  return { ...process.env, OPENSSL_CONF: file };
}

/**
 * Does the server at 127.0.0.1:port resume a TLS 1.2 session offered without
 * a ticket (what wrk does in scenario e)? Resolves true/false, or null when
 * openssl s_client could not tell.
 */
function checkResumption(port) {
  const openssl = proc.which('openssl');
  if (!openssl) return null;
  const sess = path.join(fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'zproxy-bench-sess-')), 'session.pem');
  const run = (extra) =>
    spawnSync(openssl, ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_2', '-no_ticket', ...extra], {
      input: '',
      encoding: 'utf8',
      timeout: 5000,
    });
  const outcome = (r) => {
    const line = /^(New|Reused), /m.exec(r.stdout || '');
    return line ? line[1] : null;
  };
  try {
    if (!outcome(run(['-sess_out', sess]))) return null; // no handshake at all
    if (!fs.existsSync(sess)) return false; // s_client saves only a resumable session (HAProxy without a cache sends no ID)
    const second = outcome(run(['-sess_in', sess]));
    return second ? second === 'Reused' : null;
  } finally {
    fs.rmSync(path.dirname(sess), { recursive: true, force: true });
  }
}

module.exports = { makeCertificate, fullHandshakeEnv, checkResumption };
