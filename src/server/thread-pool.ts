/**
 * The seed's ThreadPool: `thread_count` worker threads with start, submit
 * and stop. Messages to a worker carry an id; the worker answers with the
 * same id, so `submit` is a promise of that worker's reply.
 */
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import type { Logger } from '../util/log';

export interface WorkerMessage {
  type: string;
  [key: string]: unknown;
}

interface Pending {
  worker: number;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export class ThreadPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private nextWorker = 0;
  private exited = 0;
  private readonly gone = new Set<number>();
  private onAllExited: (() => void) | undefined;

  constructor(
    readonly threadCount: number,
    private readonly log: Logger,
    private readonly script = path.join(__dirname, 'worker.js'),
  ) {}

  /** Starts every worker with its own data and waits until each says it is ready. */
  async start(workerData: (index: number) => unknown): Promise<unknown[]> {
    const ready: Promise<unknown>[] = [];
    for (let index = 0; index < this.threadCount; index++) {
      const worker = new Worker(this.script, { workerData: workerData(index) });
      this.workers.push(worker);
      ready.push(this.track(worker, index));
    }
    return Promise.all(ready);
  }

  /** Sends a task to one worker (round-robin when `index` is omitted) and resolves with its reply. */
  submit(message: WorkerMessage, index?: number): Promise<unknown> {
    const workerIndex = index ?? this.nextWorker++ % this.workers.length;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.gone.has(workerIndex)) return reject(new Error(`worker ${workerIndex} has exited`));
      this.pending.set(id, { worker: workerIndex, resolve, reject });
      this.workers[workerIndex].postMessage({ ...message, id });
    });
  }

  /**
   * The same message to every worker still running (one that has exited is
   * logged already and has nothing to answer). With `exitedIsDone`, a worker
   * that exits before it answers counts as done (`undefined`): for drains,
   * where a dead worker has nothing left to finish.
   */
  broadcast(message: WorkerMessage, exitedIsDone = false): Promise<unknown[]> {
    const running = [...this.workers.keys()].filter((index) => !this.gone.has(index));
    return Promise.all(
      running.map((index) => {
        const reply = this.submit(message, index);
        return exitedIsDone ? reply.catch((err: Error) => (this.gone.has(index) ? undefined : Promise.reject(err))) : reply;
      }),
    );
  }

  /** Waits for every worker thread to exit; terminates the ones still running after `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.exited === this.workers.length) return;
    const allExited = new Promise<void>((resolve) => (this.onAllExited = resolve));
    const timer = setTimeout(() => {
      this.log.warn({ timeoutMs }, 'workers did not exit in time; terminating them');
      for (const worker of this.workers) void worker.terminate();
    }, timeoutMs);
    for (const [index, worker] of this.workers.entries()) if (!this.gone.has(index)) worker.postMessage({ type: 'exit' });
    await allExited;
    clearTimeout(timer);
  }

  private track(worker: Worker, index: number): Promise<unknown> {
    return new Promise((resolveReady, rejectReady) => {
      worker.on('message', (message: { id?: number; type: string; error?: string; value?: unknown }) => {
        if (message.type === 'ready') return resolveReady(message.value);
        const pending = message.id === undefined ? undefined : this.pending.get(message.id);
        if (!pending) return;
        this.pending.delete(message.id!);
        if (message.type === 'error') pending.reject(new Error(message.error));
        else pending.resolve(message.value);
      });
      worker.on('error', (err) => {
        this.log.error({ err, worker: index }, 'worker thread failed');
        rejectReady(err);
      });
      worker.on('exit', (code) => {
        if (code !== 0) this.log.warn({ worker: index, code }, 'worker thread exited');
        rejectReady(new Error(`worker ${index} exited with code ${code} before it was ready`));
        this.gone.add(index);
        for (const [id, pending] of this.pending) {
          if (pending.worker !== index) continue;
          this.pending.delete(id);
          pending.reject(new Error(`worker ${index} exited`));
        }
        if (++this.exited === this.workers.length) this.onAllExited?.();
      });
    });
  }
}
