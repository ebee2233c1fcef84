#include "fd_write.h"

#include <sys/socket.h>

#include <cerrno>

namespace zproxy {

Napi::Value WriteFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer() || (info.Length() > 2 && !info[2].IsNumber())) {
    throw Napi::TypeError::New(env, "writeFd(fd, data[, length]): fd and length must be numbers and data a Buffer");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<char> data = info[1].As<Napi::Buffer<char>>();
  size_t length = data.Length();
  if (info.Length() > 2) {
    double asked = info[2].As<Napi::Number>().DoubleValue();
    if (!(asked >= 0)) throw Napi::RangeError::New(env, "writeFd: length must not be negative");
    if (asked < static_cast<double>(length)) length = static_cast<size_t>(asked);
  }
  if (fd < 0) return Napi::Number::New(env, -EBADF);
  ssize_t n;
  do {
    n = send(fd, data.Data(), length, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Napi::Number::New(env, errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno);
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace zproxy
