/**
 * The helper process of `fd-duplicate.ts`: it gets the listening socket as
 * fd 4, sends it back over the IPC channel (the kernel installs a new fd in
 * the parent) and exits when the parent disconnects.
 */
import net from 'node:net';

const INHERITED_FD = 4;

const server = net.createServer();
server.listen({ fd: INHERITED_FD }, () => {
  const handle = (server as unknown as { _handle: object })._handle;
  process.send!('listening-socket', handle as net.Server, () => server.close());
});
