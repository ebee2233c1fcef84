/**
 * HTTP/2 connections to `h2c://` (prior knowledge) and `h2://` (TLS, ALPN
 * `h2`) targets, one multiplexed session per peer and worker, opened on
 * first use and replaced when it closes or receives GOAWAY.
 *
 * The peer identity is tls-connect.ts's `poolKey` (scheme, host, port and
 * the TLS settings), so a route that skips verification never shares a
 * session with one that verifies. The connect timeout covers the TLS
 * handshake. A server that does not select `h2` by ALPN fails the session
 * as soon as it is set up.
 *
 * A session that fails before it is connected (refused, timed out, TLS
 * handshake or ALPN failed) cancels the streams still waiting for it, which
 * never left: `connectFailureOf` tells those apart.
 */
import http2, { type ClientHttp2Session } from 'node:http2';
import type { UpstreamConfig } from '../config/types';
import type { Target } from './target';
import { connectTlsH2, loadedTlsOptions, poolKey, type TlsPeerCheck, type UpstreamTlsOptions } from './tls-connect';
import { timedOut } from '../errors';
import { installStreamTable } from '../protocol/http2/stream-table';

/**
 * Why a stream failed when its session never connected, undefined for any
 * other failure: Node cancels the streams still waiting for the connection
 * with ERR_HTTP2_STREAM_CANCEL, the session's error as the cause.
 */
export function connectFailureOf(err: Error): Error | undefined {
  if ((err as NodeJS.ErrnoException).code !== 'ERR_HTTP2_STREAM_CANCEL') return undefined;
  return err.cause instanceof Error ? err.cause : err;
}

/** A new HTTP/2 session to `target`: over TLS offering ALPN `h2` when `tls` is given, else cleartext with prior knowledge. */
export function connectHttp2(target: Target, tls: TlsPeerCheck | undefined): ClientHttp2Session {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  // No server push from upstreams: a proxy has nobody to give pushed streams to (nginx and Envoy refuse them too).
  const settings = { enablePush: false };
  const session = tls
    ? http2.connect(`https://${host}:${target.port}`, { settings, createConnection: () => connectTlsH2(target.host, target.port, tls) })
    : http2.connect(`http://${host}:${target.port}`, { settings });
  installStreamTable(session);
  if (!tls) return session;
  // Checked once the session is set up, ahead of the queued requests' own
  // 'connect' listeners, so none goes out. Not at 'secureConnect': destroying
  // the socket there, before the session is set up on it, aborts Node 20.
  session.once('connect', () => {
    if (session.alpnProtocol === 'h2') return;
    const selected = session.alpnProtocol ? `"${session.alpnProtocol}"` : 'no protocol';
    session.destroy(new Error(`ALPN: the upstream selected ${selected}, not "h2"`));
  });
  return session;
}

export class H2Sessions {
  private readonly sessions = new Map<string, ClientHttp2Session>();

  constructor(private connectTimeoutMs: number) {}

  /** A reload's `upstream_connect_timeout_ms`, for sessions opened from now on. */
  setConnectTimeout(ms: number): void {
    this.connectTimeoutMs = ms;
  }

  /** The live session to `target` of `upstream`, connecting if there is none. */
  get(target: Target, upstream: UpstreamConfig): ClientHttp2Session {
    const key = poolKey(target, upstream);
    const existing = this.sessions.get(key);
    if (existing && !existing.closed && !existing.destroyed) return existing;
    const session = this.connect(target, loadedTlsOptions(target, upstream));
    const forget = () => {
      if (this.sessions.get(key) === session) this.sessions.delete(key);
    };
    session.on('error', forget);
    session.on('close', forget);
    session.on('goaway', forget);
    session.unref();
    this.sessions.set(key, session);
    return session;
  }

  closeAll(): void {
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }

  private connect(target: Target, tls: UpstreamTlsOptions | undefined): ClientHttp2Session {
    const session = connectHttp2(target, tls);
    session.setTimeout(this.connectTimeoutMs, () => {
      if (session.connecting) session.destroy(timedOut('upstream connect timed out'));
    });
    session.once('connect', () => session.setTimeout(0));
    return session;
  }
}
