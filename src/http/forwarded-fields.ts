/**
 * The X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host fields zproxy
 * sets on every forwarded request (SPEC §5), one way for every path: the
 * peer appended to what the client sent as X-Forwarded-For (never trusted
 * for -Proto and -Host, which are zproxy's own), the scheme the client used,
 * and the Host or :authority it asked for.
 *
 * A keep-alive HTTP/1 client sends the same Host and no X-Forwarded-For
 * request after request, so `ForwardedFields` makes those lines once per
 * connection and hands the same bytes to each forwarded head.
 */

/** The three fields as [name, value] (X-Forwarded-Host only when there is a host). */
export function forwardedFields(peer: string, proto: string, host: string | null, priorFor: string | null): Array<[string, string]> {
  const fields: Array<[string, string]> = [
    ['x-forwarded-for', priorFor ? `${priorFor}, ${peer}` : peer],
    ['x-forwarded-proto', proto],
  ];
  if (host !== null && host !== '') fields.push(['x-forwarded-host', host]);
  return fields;
}

/** The same as HTTP/1 field lines. */
export function forwardedLines(peer: string, proto: string, host: string | null, priorFor: string | null): string {
  let lines = '';
  for (const [name, value] of forwardedFields(peer, proto, host, priorFor)) lines += `${name}: ${value}\r\n`;
  return lines;
}

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
    if (priorFor) return Buffer.from(forwardedLines(this.peer, this.proto, host, priorFor), 'latin1');
    if (this.cached === null || host !== this.host) {
      this.host = host;
      this.cached = Buffer.from(forwardedLines(this.peer, this.proto, host, null), 'latin1');
    }
    return this.cached;
  }
}
