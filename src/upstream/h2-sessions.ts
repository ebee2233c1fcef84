/**
 * HTTP/2 connections to `h2c://` targets, one multiplexed session per peer
 * and worker, opened on first use and replaced when it closes or receives
 * GOAWAY.
 */
import http2, { type ClientHttp2Session } from 'node:http2';
import type { Target } from './target';

export class H2Sessions {
  private readonly sessions = new Map<string, ClientHttp2Session>();

  constructor(private readonly connectTimeoutMs: number) {}

  /** The live session to `target`, connecting if there is none. */
  get(target: Target): ClientHttp2Session {
    const existing = this.sessions.get(target.key);
    if (existing && !existing.closed && !existing.destroyed) return existing;
    const host = target.host.includes(':') ? `[${target.host}]` : target.host;
    const session = http2.connect(`http://${host}:${target.port}`);
    session.setTimeout(this.connectTimeoutMs, () => {
      if (!session.connecting) return;
      session.destroy(Object.assign(new Error('upstream connect timed out'), { code: 'ETIMEDOUT' }));
    });
    session.once('connect', () => session.setTimeout(0));
    const forget = () => {
      if (this.sessions.get(target.key) === session) this.sessions.delete(target.key);
    };
    session.on('error', forget);
    session.on('close', forget);
    session.on('goaway', forget);
    session.unref();
    this.sessions.set(target.key, session);
    return session;
  }

  closeAll(): void {
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }
}
