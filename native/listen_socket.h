// A bound, listening TCP socket (IPv4 or IPv6, SO_REUSEADDR, TCP_NODELAY
// inherited by accepted sockets) and what accepting from it needs, shared by
// the accept loop and the worker listener. Pure POSIX: callable from any thread.
#pragma once

#include <sys/types.h>

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

// accept4() failed for lack of fds or memory: back off rather than retry at once.
bool IsResourceError(int err);

// After EMFILE/ENFILE: frees the reserve fd to take the oldest client out of
// the backlog and close it (instead of leaving it waiting for an fd that may
// never come), then takes a new reserve. Returns whether a client was shed.
bool ShedOneClient(int listenFd, int* reserveFd);

// recv(MSG_PEEK) of up to `size` bytes, retried on EINTR: the bytes stay
// queued for whoever reads the socket. -1 with errno set when none could be read.
ssize_t PeekFirstBytes(int fd, char* into, size_t size);

}  // namespace zproxy
