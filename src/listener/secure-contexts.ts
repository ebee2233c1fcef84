/**
 * The listener's certificates: read and checked once in the main thread
 * (`loadTlsMaterial`, at start and on SIGHUP), handed to every worker as PEM
 * text, and turned into SecureContexts per worker (`SniTable`), since a
 * SecureContext cannot cross threads.
 *
 * SNI rules (README "TLS"): an exact server name first, then a `*.suffix`
 * wildcard matching exactly one label (as browsers do: `*.example.com`
 * matches `a.example.com`, not `example.com` nor `a.b.example.com`), then the
 * default certificate (`tls.cert_file`/`key_file`, or else the first of
 * `tls.certificates`). When two certificates name the same server, the first
 * in the file wins.
 */
import { TlsSetupError } from '../errors';
import { readFileSync } from 'node:fs';
import tls, { type SecureContext } from 'node:tls';
import type { TlsConfig, ZproxyConfig } from '../config/types';

/** The oldest protocol version the listener speaks. */
export const MIN_TLS_VERSION = 'TLSv1.2';

export interface PemPair {
  cert: string;
  key: string;
}

/** Structured-cloneable: the main thread sends it to the workers. */
export interface TlsMaterial {
  default: PemPair;
  certificates: Array<PemPair & { server_names: string[] }>;
}

/** A certificate, key or CA file that cannot be used; the message is one line naming the file and the problem. */
export { TlsSetupError };

function readPem(file: string, path: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch (err) {
    throw new TlsSetupError(`${path}: cannot read ${file}: ${errnoMessage(err)}`);
  }
}

/** `ENOENT: no such file or directory` from Node's `ENOENT: no such file or directory, open '/x'`. */
function errnoMessage(err: unknown): string {
  const message = String((err as Error).message ?? err);
  const comma = message.lastIndexOf(', ');
  return (err as NodeJS.ErrnoException).code && comma > 0 ? message.slice(0, comma) : message;
}

/** Builds the context once to find mismatched or unparsable files now rather than at the first handshake. */
function checkPair(pair: PemPair, files: { cert: string; key: string }, path: string): void {
  // An empty or unrelated file builds a context without a certificate: say so now.
  if (!pair.cert.includes('-----BEGIN CERTIFICATE-----')) throw new TlsSetupError(`${path}.cert_file: no PEM certificate in ${files.cert}`);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pair.key)) throw new TlsSetupError(`${path}.key_file: no PEM private key in ${files.key}`);
  // Each file alone first, so the message names the one that is wrong.
  for (const [which, options] of [
    ['cert', { cert: pair.cert }],
    ['key', { key: pair.key }],
  ] as const) {
    try {
      tls.createSecureContext(options);
    } catch (err) {
      throw new TlsSetupError(`${path}.${which}_file: cannot use ${files[which]}: ${oneLine(err)}`);
    }
  }
  try {
    tls.createSecureContext({ cert: pair.cert, key: pair.key, minVersion: MIN_TLS_VERSION });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH' || /key values mismatch/.test(String(err))) {
      throw new TlsSetupError(`${path}: the key in ${files.key} does not match the certificate in ${files.cert}`);
    }
    throw new TlsSetupError(`${path}: cannot use ${files.cert} with ${files.key}: ${oneLine(err)}`);
  }
}

function oneLine(err: unknown): string {
  return String((err as Error).message ?? err).split('\n')[0];
}

/** Reads every certificate and key of `tls`; throws TlsSetupError on the first unusable file. */
export function loadTlsMaterial(config: TlsConfig): TlsMaterial {
  const certificates = config.certificates.map((entry, i) => {
    const path = `tls.certificates[${i}]`;
    const pair = { cert: readPem(entry.cert_file, `${path}.cert_file`), key: readPem(entry.key_file, `${path}.key_file`) };
    checkPair(pair, { cert: entry.cert_file, key: entry.key_file }, path);
    return { ...pair, server_names: [...entry.server_names] };
  });
  let fallback: PemPair;
  if (config.cert_file && config.key_file) {
    fallback = { cert: readPem(config.cert_file, 'tls.cert_file'), key: readPem(config.key_file, 'tls.key_file') };
    checkPair(fallback, { cert: config.cert_file, key: config.key_file }, 'tls');
  } else if (certificates.length > 0) {
    fallback = { cert: certificates[0].cert, key: certificates[0].key };
  } else {
    throw new TlsSetupError('tls: "enabled": true needs "cert_file" and "key_file", or "certificates"');
  }
  return { default: fallback, certificates };
}

/** Every upstream `ca_file` must be a readable PEM bundle (checked at start, before any worker runs). */
export function checkUpstreamCaFiles(config: ZproxyConfig): void {
  config.routes.forEach((route, i) => {
    const file = route.upstream?.ca_file;
    if (!file) return;
    const path = `routes[${i}].upstream.ca_file`;
    const ca = readPem(file, path);
    try {
      tls.createSecureContext({ ca });
    } catch (err) {
      throw new TlsSetupError(`${path}: cannot use ${file}: ${oneLine(err)}`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new TlsSetupError(`${path}: no PEM certificate in ${file}`);
  });
}

/** Lower-case, without a trailing dot. */
function normalise(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** One worker's SecureContexts by server name. Immutable: a reload builds a new table and swaps it in. */
export class SniTable {
  private readonly exact = new Map<string, SecureContext>();
  /** By the suffix after `*.` */
  private readonly wildcard = new Map<string, SecureContext>();

  constructor(readonly material: TlsMaterial) {
    for (const entry of material.certificates) {
      const context = tls.createSecureContext({ cert: entry.cert, key: entry.key, minVersion: MIN_TLS_VERSION });
      for (const raw of entry.server_names) {
        const name = normalise(raw);
        const table = name.startsWith('*.') ? this.wildcard : this.exact;
        const key = name.startsWith('*.') ? name.slice(2) : name;
        if (!table.has(key)) table.set(key, context);
      }
    }
  }

  /** The context for `servername`; undefined = the server's default context. */
  select(servername: string): SecureContext | undefined {
    const name = normalise(servername);
    const exact = this.exact.get(name);
    if (exact) return exact;
    const dot = name.indexOf('.');
    if (dot > 0) return this.wildcard.get(name.slice(dot + 1));
    return undefined;
  }
}
