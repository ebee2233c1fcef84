// Turning errno values into JS errors.
//
// Thread ownership: ErrnoName/ErrnoMessage are pure and callable from any
// thread; ThrowErrno/MakeErrnoError need the calling JS thread's env.
#pragma once

#include <napi.h>

#include <string>

namespace zproxy {

// "EINVAL", "EADDRINUSE", ... ("E<number>" when unknown).
std::string ErrnoName(int err);

// strerror_r text, thread-safe.
std::string ErrnoMessage(int err);

// Error whose message is "<syscall> <CODE>: <strerror>[ <detail>]" and that
// carries `code`, `errno` (negative, as Node does) and `syscall`, like
// Node's own system errors.
Napi::Error MakeErrnoError(Napi::Env env, int err, const std::string& syscall,
                           const std::string& detail = std::string());

}  // namespace zproxy
