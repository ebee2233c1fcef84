/**
 * dup(2) for a listening socket, in pure Node.
 *
 * Node 20 offers no dup, and two handles on one fd number close it twice: the
 * second close can hit whatever socket another thread opened under the
 * reused number in between. So a short-lived helper process inherits the fd
 * and sends it back over IPC; SCM_RIGHTS gives this thread a new fd number
 * for the same socket, owned by the returned handle alone.
 */
import { fork } from 'node:child_process';
import path from 'node:path';

const HELPER_TIMEOUT_MS = 10_000;

/** Resolves to a TCP handle (for `server.listen(handle)`) on a new fd for the socket `fd`. */
export function duplicateListeningSocket(fd: number): Promise<object> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'fd-duplicate-child.js'), [], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc', fd],
      execArgv: [],
    });
    let settled = false;
    const timer = setTimeout(() => fail(new Error('fd duplication helper timed out')), HELPER_TIMEOUT_MS);
    function fail(err: Error): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill();
      reject(err);
    }
    child.once('message', (_message, handle) => {
      if (!handle) return fail(new Error('fd duplication helper sent no socket'));
      settled = true;
      clearTimeout(timer);
      child.disconnect();
      resolve(handle);
    });
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`fd duplication helper exited with ${code} before sending the socket`)));
  });
}
