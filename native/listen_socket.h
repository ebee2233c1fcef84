// A bound, listening TCP socket (IPv4 or IPv6, SO_REUSEADDR, TCP_NODELAY
// inherited by accepted sockets), shared by the accept loop and the worker
// listener. Pure POSIX: callable from any thread.
#pragma once

#include <string>

namespace zproxy {

// A failed system call while creating or starting a listener or a loop.
struct SystemError {
  int err;
  std::string syscall;
  std::string detail;
};

struct ListenSocket {
  int fd = -1;
  std::string host;  // the bound address, numeric
  int port = 0;      // the bound port (the kernel's pick for port 0)
  bool ipv6 = false;
};

// Non-blocking and close-on-exec. Throws SystemError (closing what it opened).
ListenSocket OpenListenSocket(const std::string& host, int port, int backlog);

}  // namespace zproxy
