/**
 * TLS to `https://` targets (SPEC §7): `tls.connect` with the same `onread`
 * reuse of one buffer as plain connections (Node 20's tls.connect honours
 * `onread`: the TLS socket hands decrypted bytes to the callback in that
 * buffer, and `pause()` stops the reads the same way).
 *
 * - SNI: the target's host name (never an IP literal, RFC 6066 §3);
 *   verification checks the certificate against that name, or against the
 *   IP for an IP target.
 * - Verification is on unless the upstream says `tls_verify: false`; `ca_file`
 *   replaces the system CAs (read when the config is loaded in the worker).
 * - ALPN offers `http/1.1` only: these connections speak HTTP/1.1.
 * - A connection counts as connected once the handshake is done, so a failed
 *   verification is a connect failure (502, retried on another target).
 *
 * Pools are per peer identity: scheme, host, port and the TLS settings
 * (`poolKey`), so a route that skips verification never lends a connection
 * to one that verifies.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import tls from 'node:tls';
import type { UpstreamConfig } from '../config/types';
import type { Target } from './target';

export interface UpstreamTlsOptions {
  servername: string | undefined;
  rejectUnauthorized: boolean;
  /** PEM text of `ca_file`; undefined = the system CAs. */
  ca: string | undefined;
  caFile: string | undefined;
}

/** CA bundles by file, as last read successfully (a file that turns unreadable keeps its last content). */
const caBundles = new Map<string, string>();

function readCa(file: string): string {
  try {
    const pem = readFileSync(file, 'latin1');
    caBundles.set(file, pem);
    return pem;
  } catch (err) {
    const kept = caBundles.get(file);
    if (kept === undefined) throw err;
    return kept;
  }
}

/** The TLS settings for a target of `upstream`; undefined for plain targets. */
export function upstreamTlsOptions(target: Target, upstream: UpstreamConfig, cache: Map<string, string>): UpstreamTlsOptions | undefined {
  if (!target.secure) return undefined;
  let ca: string | undefined;
  if (upstream.ca_file) {
    ca = cache.get(upstream.ca_file);
    if (ca === undefined) cache.set(upstream.ca_file, (ca = readCa(upstream.ca_file)));
  }
  return {
    servername: isIP(target.host) === 0 ? target.host : undefined,
    rejectUnauthorized: upstream.tls_verify,
    ca,
    caFile: upstream.ca_file,
  };
}

/** Connections are shared only between targets with the same key. */
export function poolKey(target: Target, upstream: UpstreamConfig): string {
  if (!target.secure) return target.key;
  return `${target.key} verify=${upstream.tls_verify} ca=${upstream.ca_file ?? '-'}`;
}

/** Opens a TLS connection that reads into `onread`'s buffer; 'secureConnect' tells it is ready. */
export function connectTls(host: string, port: number, onread: { buffer: Buffer; callback: (n: number, buf: Buffer) => void }, options: UpstreamTlsOptions): tls.TLSSocket {
  return tls.connect({
    host,
    port,
    noDelay: true,
    servername: options.servername,
    rejectUnauthorized: options.rejectUnauthorized,
    ca: options.ca,
    ALPNProtocols: ['http/1.1'],
    onread,
  } as tls.ConnectionOptions);
}
