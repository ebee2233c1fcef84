#include "errors.h"

#include <cerrno>
#include <cstring>

namespace zproxy {

std::string ErrnoName(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* name = strerrorname_np(err)) return name;
#else
  switch (err) {
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    case ESRCH: return "ESRCH";
    case EFAULT: return "EFAULT";
    case ENOSYS: return "ENOSYS";
    case EAGAIN: return "EAGAIN";
    default: break;
  }
#endif
  return "E" + std::to_string(err);
}

std::string ErrnoMessage(int err) {
  char buf[256];
  buf[0] = '\0';
  // GNU strerror_r returns a pointer that may or may not be buf; XSI returns int.
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  const char* msg = strerror_r(err, buf, sizeof buf);
  return msg ? std::string(msg) : std::string("unknown error");
#else
  if (strerror_r(err, buf, sizeof buf) != 0) return "unknown error";
  return buf;
#endif
}

Napi::Error MakeErrnoError(Napi::Env env, int err, const std::string& syscall,
                           const std::string& detail) {
  std::string code = ErrnoName(err);
  std::string message = syscall + " " + code + ": " + ErrnoMessage(err);
  if (!detail.empty()) message += " " + detail;
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

}  // namespace zproxy
