#include "fd_write.h"

#include <sys/socket.h>

#include <cerrno>

namespace zproxy {

Napi::Value WriteFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer()) {
    throw Napi::TypeError::New(env, "writeFd(fd, data): fd must be a number and data a Buffer");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<char> data = info[1].As<Napi::Buffer<char>>();
  if (fd < 0) return Napi::Number::New(env, -EBADF);
  ssize_t n;
  do {
    n = send(fd, data.Data(), data.Length(), MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Napi::Number::New(env, errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno);
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace zproxy
