// A write(2) straight to a socket's fd, for the caller that knows nothing is
// queued on that socket in user space (so the bytes keep their order).
//
// Thread ownership: none kept; the calling JS thread owns the fd's use.
#pragma once

#include <napi.h>

namespace zproxy {

// JS: writeFd(fd: number, data: Buffer, length?: number): number. Sends
// data[0, length): all of data without length, a longer length is clamped
// (so a reused buffer can carry a message shorter than itself). Bytes
// written (possibly fewer than asked, 0 when the socket takes nothing now),
// or -errno (never throws for a failed write: the caller hands the bytes to
// its socket, which reports the error its own way). MSG_NOSIGNAL: a closed
// peer is EPIPE, not SIGPIPE.
Napi::Value WriteFd(const Napi::CallbackInfo& info);

}  // namespace zproxy
