#include "listen_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace zproxy {
namespace {

// Closes the half-made socket when a step throws.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

ListenSocket OpenListenSocket(const std::string& host, int port, int backlog) {
  const std::string where = host + ":" + std::to_string(port);
  sockaddr_storage storage;
  std::memset(&storage, 0, sizeof storage);
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  ListenSocket result;
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    length = sizeof *v4;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    length = sizeof *v6;
    result.ipv6 = true;
  } else {
    throw SystemError{EINVAL, "inet_pton", "(not a numeric IP address) " + where};
  }

  FdGuard guard{socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (guard.fd < 0) throw SystemError{errno, "socket", where};
  int one = 1;
  int zero = 0;
  if (setsockopt(guard.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    throw SystemError{errno, "setsockopt", where};
  }
  if (result.ipv6 && host == "::" &&
      setsockopt(guard.fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0) {
    throw SystemError{errno, "setsockopt", where};
  }
  // Accepted sockets inherit TCP_NODELAY from the listener on Linux.
  if (setsockopt(guard.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    throw SystemError{errno, "setsockopt", where};
  }
  if (bind(guard.fd, reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    throw SystemError{errno, "bind", where};
  }
  if (listen(guard.fd, backlog) != 0) throw SystemError{errno, "listen", where};

  sockaddr_storage bound;
  socklen_t boundLength = sizeof bound;
  if (getsockname(guard.fd, reinterpret_cast<sockaddr*>(&bound), &boundLength) != 0) {
    throw SystemError{errno, "getsockname", where};
  }
  char text[INET6_ADDRSTRLEN] = {0};
  if (bound.ss_family == AF_INET6) {
    auto* b6 = reinterpret_cast<sockaddr_in6*>(&bound);
    inet_ntop(AF_INET6, &b6->sin6_addr, text, sizeof text);
    result.port = ntohs(b6->sin6_port);
  } else {
    auto* b4 = reinterpret_cast<sockaddr_in*>(&bound);
    inet_ntop(AF_INET, &b4->sin_addr, text, sizeof text);
    result.port = ntohs(b4->sin_port);
  }
  result.host = text;
  result.fd = guard.fd;
  guard.fd = -1;
  return result;
}

bool IsResourceError(int err) { return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM; }

bool ShedOneClient(int listenFd, int* reserveFd) {
  if (*reserveFd < 0) return false;
  close(*reserveFd);
  int fd = accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) close(fd);
  *reserveFd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd >= 0;
}

ssize_t PeekFirstBytes(int fd, char* into, size_t size) {
  ssize_t n;
  do {
    n = recv(fd, into, size, MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  return n;
}

}  // namespace zproxy
