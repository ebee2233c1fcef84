#include "fd_write.h"

#include <sys/socket.h>

#include <cerrno>

namespace zproxy {

Napi::Value WriteFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer() || (info.Length() > 2 && !info[2].IsNumber()) ||
      (info.Length() > 3 && !info[3].IsNumber())) {
    throw Napi::TypeError::New(env, "writeFd(fd, data[, start[, end]]): fd, start and end must be numbers and data a Buffer");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<char> data = info[1].As<Napi::Buffer<char>>();
  double size = static_cast<double>(data.Length());
  double start = info.Length() > 2 ? info[2].As<Napi::Number>().DoubleValue() : 0;
  double end = info.Length() > 3 ? info[3].As<Napi::Number>().DoubleValue() : size;
  if (!(start >= 0 && start <= end && end <= size)) throw Napi::RangeError::New(env, "writeFd: need 0 <= start <= end <= data.length");
  size_t from = static_cast<size_t>(start);
  size_t length = static_cast<size_t>(end) - from;
  if (fd < 0) return Napi::Number::New(env, -EBADF);
  ssize_t n;
  do {
    n = send(fd, data.Data() + from, length, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Napi::Number::New(env, errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno);
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace zproxy
