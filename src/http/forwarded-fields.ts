/**
 * The X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host lines of the
 * requests one client connection forwards (SPEC §5). A keep-alive client
 * sends the same Host and no X-Forwarded-For request after request, so the
 * lines are made once per connection and copied into each forwarded head.
 */
export class ForwardedFields {
  /** The Host the cached lines were made for; undefined before the first request. */
  private host: string | null | undefined = undefined;
  private cached: Buffer | null = null;

  constructor(
    /** The socket peer, as X-Forwarded-For shows it (client-ip.ts peerAddress). */
    readonly peer: string,
    /** `http` or `https`: the scheme the client used. */
    private readonly proto: string,
  ) {}

  /** The lines for a request with this Host and this X-Forwarded-For (joined; null when absent; an empty one counts as absent). */
  lines(host: string | null, priorFor: string | null): Buffer {
    if (priorFor) return Buffer.from(this.text(host, `${priorFor}, ${this.peer}`), 'latin1');
    if (this.cached === null || host !== this.host) {
      this.host = host;
      this.cached = Buffer.from(this.text(host, this.peer), 'latin1');
    }
    return this.cached;
  }

  private text(host: string | null, forwardedFor: string): string {
    const lines = `x-forwarded-for: ${forwardedFor}\r\nx-forwarded-proto: ${this.proto}\r\n`;
    return host === null ? lines : `${lines}x-forwarded-host: ${host}\r\n`;
  }
}
