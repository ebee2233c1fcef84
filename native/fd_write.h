// A write(2) straight to a socket's fd, for the caller that knows nothing is
// queued on that socket in user space (so the bytes keep their order).
//
// Thread ownership: none kept; the calling JS thread owns the fd's use.
#pragma once

#include <napi.h>

namespace zproxy {

// JS: writeFd(fd: number, data: Buffer, start = 0, end = data.length):
// number. Sends data[start, end) (a message built inside a larger, reused
// buffer). Bytes written (possibly fewer than asked, 0 when the socket takes
// nothing now), or -errno (never throws for a failed write: the caller hands
// the bytes to its socket, which reports the error its own way); a range
// outside data throws RangeError. MSG_NOSIGNAL: a closed peer is EPIPE, not
// SIGPIPE.
Napi::Value WriteFd(const Napi::CallbackInfo& info);

}  // namespace zproxy
