/**
 * TLS to `https://` and `h2://` targets (SPEC §7). HTTP/1.1 connections use
 * `tls.connect` with the same `onread` reuse of one buffer as plain
 * connections (Node 20's tls.connect honours `onread`: the TLS socket hands
 * decrypted bytes to the callback in that buffer, and `pause()` stops the
 * reads the same way); HTTP/2 sessions get a plain TLS socket.
 *
 * - SNI: the target's host name (never an IP literal, RFC 6066 §3);
 *   verification checks the certificate against that name, or against the
 *   IP for an IP target.
 * - Verification is on unless the upstream says `tls_verify: false`; `ca_file`
 *   replaces the system CAs (read when the config is loaded in the worker).
 * - ALPN offers one protocol: `http/1.1` for HTTP/1.1 connections, `h2` for
 *   HTTP/2 sessions (h2-sessions.ts fails those the server does not select
 *   `h2` for).
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

/** How the peer's certificate is checked. */
export interface TlsPeerCheck {
  servername: string | undefined;
  rejectUnauthorized: boolean;
  /** Trusted CAs (PEM); undefined = the system CAs. */
  ca: string | Buffer | undefined;
}

export interface UpstreamTlsOptions extends TlsPeerCheck {
  /** PEM text of `ca_file`. */
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
    servername: serverName(target.host),
    rejectUnauthorized: upstream.tls_verify,
    ca,
    caFile: upstream.ca_file,
  };
}

/**
 * The TLS settings for a target of `upstream`, with `ca_file` as the last
 * config load read it (read now only if no load did), for connections opened
 * outside the pools: HTTP/2 sessions.
 */
export function loadedTlsOptions(target: Target, upstream: UpstreamConfig): UpstreamTlsOptions | undefined {
  return upstreamTlsOptions(target, upstream, caBundles);
}

/** The SNI name for `host`: none for an IP literal (RFC 6066 §3). */
export function serverName(host: string): string | undefined {
  return isIP(host) === 0 ? host : undefined;
}

/** Connections are shared only between targets with the same key. */
export function poolKey(target: Target, upstream: UpstreamConfig): string {
  if (!target.secure) return target.key;
  return `${target.key} verify=${upstream.tls_verify} ca=${upstream.ca_file ?? '-'}`;
}

/** Opens a TLS connection that reads into `onread`'s buffer; 'secureConnect' tells it is ready. */
export function connectTls(host: string, port: number, onread: { buffer: Buffer; callback: (n: number, buf: Buffer) => void }, options: UpstreamTlsOptions): tls.TLSSocket {
  return tls.connect({ ...connectOptions(host, port, options, 'http/1.1'), onread } as tls.ConnectionOptions);
}

/** Opens a TLS connection offering ALPN `h2`, for an HTTP/2 session ('secureConnect' tells it is ready). */
export function connectTlsH2(host: string, port: number, check: TlsPeerCheck): tls.TLSSocket {
  return tls.connect(connectOptions(host, port, check, 'h2'));
}

/** `noDelay` (and `onread`) are honoured by tls.connect, though not in its typings. */
function connectOptions(host: string, port: number, check: TlsPeerCheck, alpn: string): tls.ConnectionOptions {
  return {
    host,
    port,
    noDelay: true,
    servername: check.servername,
    rejectUnauthorized: check.rejectUnauthorized,
    ca: check.ca,
    ALPNProtocols: [alpn],
  } as tls.ConnectionOptions;
}
