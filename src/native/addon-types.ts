/**
 * The boundary between TypeScript and the C++ addon (`native/`).
 *
 * Validate in TypeScript, trust in C++: every argument below is already a
 * normalised scalar, array or Buffer when it crosses. Lifetimes are written
 * next to each function. The pure TypeScript fallback (`fallback.ts`)
 * implements the same shapes where the operating system allows it.
 */

/** A NUMA node as libnuma reports it. */
export interface RawNumaNode {
  id: number;
  cpus: number[];
  /** Total memory of the node in bytes (0 when unknown). */
  memoryBytes: number;
}

export interface AcceptLoopOptions {
  /** Numeric IPv4 or IPv6 address (no hostnames: resolved in TS). */
  host: string;
  /** 0 picks a free port; read it back with `address()`. */
  port: number;
  backlog: number;
  /** Accepted connections held at once across all workers; accepting pauses at this count. */
  maxConnections: number;
  /** How many workers will attach (indexes 0..workers-1). */
  workers: number;
  /**
   * Peek at the first bytes before the hand-off. A connection that sends
   * nothing for this long is closed by the acceptor. 0 disables peeking.
   */
  peekTimeoutMs: number;
  /** At most this many bytes are peeked (24 covers the HTTP/2 preface). */
  peekBytes: number;
  /** Per-worker hand-off queue bound. */
  queueSize: number;
}

export interface AcceptLoopStats {
  /** Connections handed to each worker and not yet released. */
  active: number[];
  /** Accepted, not yet handed off (peeking or queued). */
  pending: number;
  accepted: number;
  /** Closed by the acceptor: peek timeout, EOF before any byte, or no worker attached. */
  closedEarly: number;
  /** accept() failures from EMFILE/ENFILE/ENOBUFS/ENOMEM. */
  resourceErrors: number;
  /** Times accepting was paused because max_connections was reached. */
  pausedFull: number;
}

/**
 * Called on the worker's own thread for each connection handed to it.
 * `fd` belongs to JS from this call on: wrap it in a net.Socket (which closes
 * it) and call `release()` once the connection has ended.
 * `peeked` holds the first bytes already waiting on the socket (not consumed),
 * or is undefined when peeking is off.
 */
export type ConnectionCallback = (fd: number, peeked: Buffer | undefined) => void;

export interface RawAcceptLoop {
  /** Process-wide id that workers pass to `attachWorker`. */
  readonly id: number;
  /** Starts the epoll thread. Throws if already started or stopped. */
  start(): void;
  /**
   * Closes the listener, joins the thread, closes every fd accepted but not
   * handed off, forgets all workers. Idempotent.
   */
  stop(): void;
  address(): { address: string; family: 'IPv4' | 'IPv6'; port: number };
  stats(): AcceptLoopStats;
}

export interface WorkerListenerOptions {
  host: string;
  port: number;
  backlog: number;
  /** 0 = no limit. */
  maxConnections: number;
  peekBytes: number;
  /** A connection whose first bytes do not come within this is closed before JS sees it. */
  firstByteTimeoutMs: number;
}

/**
 * A listening socket served from the creating thread's own event loop (one
 * worker: no accept thread, no hand-off). `onConnection` gets each accepted
 * fd with its first bytes peeked, as the accept loop delivers them.
 */
export interface RawWorkerListener {
  address(): { address: string; family: 'IPv4' | 'IPv6'; port: number };
  stats(): AcceptLoopStats;
  /** One delivered connection has ended. */
  release(): void;
  /** Stops accepting and closes the socket. Idempotent; also done at the thread's teardown. */
  close(): void;
}

export interface RawWorkerAttachment {
  /** One handed-off connection has ended (thread-safe, cheap). */
  release(): void;
  /**
   * Stops deliveries to this worker; connections still queued for it are
   * closed by the acceptor. Also happens automatically when the worker's
   * environment is torn down. Idempotent.
   */
  detach(): void;
}

/** How a splice tunnel ended, reported once to its `onClose`. */
export interface TunnelResult {
  /** Bytes delivered to B (queued `toB` bytes included), and to A. */
  bytesAtoB: number;
  bytesBtoA: number;
  /**
   * `eof`: both sides ended (each FIN passed on as a half-close);
   * `error`: a read or write failed (`error` holds the errno name, e.g. ECONNRESET);
   * `idle`: no byte moved either way for idleTimeoutMs; `closed`: closeTunnel();
   * `done`: a transfer (spliceBody) moved all its bytes (`eof` for a transfer: the source ended short).
   */
  reason: 'eof' | 'error' | 'idle' | 'closed' | 'done';
  error?: string;
  /**
   * Transfers, for `error` and `idle`: `destination` when fdTo ended it (a
   * write failed: its reader went away; or bytes waited idleTimeoutMs for it
   * to take them), not fdFrom.
   */
  side?: 'destination';
}

export type TunnelCloseCallback = (result: TunnelResult) => void;

export interface RawAddon {
  /**
   * libnuma's view of the machine, loaded with dlopen at run time.
   * null when libnuma is missing or numa_available() < 0.
   */
  numaTopology(): RawNumaNode[] | null;

  /** Pins the calling thread to `cpus`. Throws with errno's message on failure. */
  setThreadAffinity(cpus: number[]): void;
  /** The CPUs the calling thread may run on. */
  getThreadAffinity(): number[];
  /** sched_getcpu() of the calling thread. */
  currentCpu(): number;

  /**
   * A Buffer of `size` bytes on NUMA node `node` (numa_alloc_onnode), or
   * plain page-aligned memory when libnuma is unavailable. Its memory is freed
   * by the Buffer's finalizer after GC, never earlier; do not transfer it to
   * another thread (postMessage copies it).
   */
  allocOnNode(size: number, node: number): Buffer;
  /** Counters of node-local buffers: allocated, freed (by finalizers), live bytes. */
  nodeBufferStats(): { allocated: number; freed: number; liveBytes: number; numa: boolean };

  /** Binds and listens synchronously (throws Error with `code` like EADDRINUSE). Main thread. */
  AcceptLoop: new (options: AcceptLoopOptions) => RawAcceptLoop;
  /**
   * Called on a worker thread: from now on connections of loop `loopId` for
   * worker `index` are delivered to `onConnection` on this thread. The
   * underlying thread-safe function is unref'd, so it never keeps the worker alive.
   */
  attachWorker(loopId: number, index: number, onConnection: ConnectionCallback): RawWorkerAttachment;
  /** Binds and listens on the calling (worker) thread; throws like AcceptLoop. Absent in builds older than it. */
  WorkerListener?: new (options: WorkerListenerOptions, onConnection: ConnectionCallback) => RawWorkerListener;

  /**
   * Joins two connected stream sockets in the kernel: a process-wide native
   * epoll thread (started with the first tunnel) moves bytes A->B and B->A
   * with splice(2) through a pipe per direction. An EOF on one side becomes
   * shutdown(SHUT_WR) on the other (half-close); both EOFs, an error, the idle
   * timeout (0 = none) or closeTunnel() close everything. Returns the tunnel id.
   *
   * Lifetimes: `fdA`/`fdB` stay the caller's: the tunnel works on dups of
   * them (6 fds per tunnel: 2 dups, 2 pipes), so the caller destroys its
   * sockets right after this call without the peers seeing anything. Call it
   * before Node reads anything more from either socket, and with nothing left
   * in their write queues. `toB`/`toA` (copied) are bytes the caller had
   * already read: they are written to B/A before any spliced byte.
   * `onClose` runs once on the calling thread (its thread-safe function is
   * unref'd: an open tunnel never keeps a thread alive); if that thread's
   * environment is torn down first, its tunnels are closed without a report.
   * Throws an Error with `code` (EBADF, EMFILE...) and then keeps nothing.
   */
  createTunnel(fdA: number, fdB: number, idleTimeoutMs: number, onClose: TunnelCloseCallback, toB?: Buffer, toA?: Buffer): number;
  /**
   * A transfer: exactly `bytes` from fdFrom to fdTo through a pipe on the
   * tunnel thread (the rest of a proxied response body), reported once to
   * `onDone` (`done`, or `eof`/`error`/`idle`/`closed` with the bytes moved).
   * fdFrom is never read past `bytes`, fdTo never read, neither shut down:
   * the caller keeps both connections, and must neither read fdFrom nor
   * write fdTo until the report. Same fd and TSFN lifetimes as createTunnel
   * (2 dups and 1 pipe). Returns the id, for closeTunnel().
   */
  spliceBody(fdFrom: number, fdTo: number, bytes: number, idleTimeoutMs: number, onDone: TunnelCloseCallback): number;
  /**
   * One send(2) of `data[start, end)` on `fd` (non-blocking, MSG_NOSIGNAL):
   * the bytes taken (0 when the socket takes nothing now), or -errno. Never
   * throws for a failed send (RangeError for a range outside data). Only for
   * a socket with nothing queued in user space.
   */
  writeFd(fd: number, data: Buffer, start?: number, end?: number): number;
  /** Closes a live tunnel (reported as `closed`); false when it already ended. Any thread. */
  closeTunnel(id: number): boolean;
  /** Process-wide counters; `running`: the tunnel thread is up. */
  tunnelStats(): { active: number; created: number; closed: number; running: boolean };
}
