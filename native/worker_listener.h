// A listening socket served from the calling thread's own event loop, for a
// server with a single worker: there is nobody to balance between, so the
// accept loop's thread would only add a wake-up and a hand-off per
// connection. The worker's libuv loop polls the socket; when it is readable
// the worker accepts (up to a batch), peeks at the first bytes if they are
// already there, and calls `onConnection(fd, peeked | undefined)` at once.
//
// Thread ownership: everything — the socket, the poll and timer handles,
// every fd until onConnection returns — belongs to the thread that created
// the object; all methods run on it. close() (or the env's teardown) stops
// polling and closes the socket; it is idempotent.
//
// Limits, as the accept loop: at `maxConnections` polling stops until a
// release(); on EMFILE/ENFILE the oldest waiting client is taken out with a
// reserve fd and polling pauses for a back-off, so it never spins.
#pragma once

#include <napi.h>

namespace zproxy {

// JS: new WorkerListener({host, port, backlog, maxConnections, peekBytes}, onConnection).
Napi::Function InitWorkerListener(Napi::Env env);

}  // namespace zproxy
