#include "splice_tunnel.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "errors.h"

namespace zproxy {
namespace {

constexpr int kMaxEvents = 128;
// Splice rounds per direction per wake before other tunnels get their turn.
constexpr int kRoundsPerWake = 16;
constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
constexpr uint32_t kSocketEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void CloseFd(int& fd) {
  if (fd >= 0) {
    close(fd);
    fd = -1;
  }
}

// epoll data: the tunnel id; the eventfd is id 0 (ids start at 1).
constexpr uint64_t kWakeId = 0;

}  // namespace

TunnelReactor& TunnelReactor::Get() {
  static TunnelReactor* reactor = new TunnelReactor();  // leaked: threads may run during exit()
  return *reactor;
}

// ---------------------------------------------------------------------------
// JS threads

namespace {

// A non-blocking, close-on-exec dup of the caller's fd (the caller keeps its own).
int DupNonBlocking(int fd) {
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return -1;
  int flags = fcntl(dup, F_GETFL);
  if (flags < 0 || fcntl(dup, F_SETFL, flags | O_NONBLOCK) != 0) {
    int err = errno;
    close(dup);
    errno = err;
    return -1;
  }
  return dup;
}

}  // namespace

std::unique_ptr<TunnelReactor::Tunnel> TunnelReactor::Open(uint64_t id, int fdA, int fdB, uint32_t idleTimeoutMs,
                                                           bool bothWays, const char* caller) {
  auto t = std::make_unique<Tunnel>();
  t->id = id;
  t->idleMs = idleTimeoutMs;
  t->transfer = !bothWays;
  int pipeAB[2] = {-1, -1};
  int pipeBA[2] = {-1, -1};
  auto fail = [&](const char* syscall) {
    int err = errno;
    CloseFd(t->fdA);
    CloseFd(t->fdB);
    CloseFd(pipeAB[0]);
    CloseFd(pipeAB[1]);
    CloseFd(pipeBA[0]);
    CloseFd(pipeBA[1]);
    throw SystemError{err, syscall, caller};
  };
  if ((t->fdA = DupNonBlocking(fdA)) < 0) fail("dup");
  if ((t->fdB = DupNonBlocking(fdB)) < 0) fail("dup");
  if (pipe2(pipeAB, O_NONBLOCK | O_CLOEXEC) != 0) fail("pipe2");
  if (bothWays && pipe2(pipeBA, O_NONBLOCK | O_CLOEXEC) != 0) fail("pipe2");
  SetUpDirection(t->ab, t->fdA, t->fdB, pipeAB);
  if (bothWays) SetUpDirection(t->ba, t->fdB, t->fdA, pipeBA);
  return t;
}

void TunnelReactor::Create(uint64_t id, int fdA, int fdB, uint32_t idleTimeoutMs, std::string toB,
                           std::string toA, napi_threadsafe_function tsfn) {
  std::unique_ptr<Tunnel> t = Open(id, fdA, fdB, idleTimeoutMs, true, "(createTunnel)");
  t->ab.prefix = std::move(toB);
  t->ba.prefix = std::move(toA);
  Queue(std::move(t), tsfn);
}

void TunnelReactor::CreateTransfer(uint64_t id, int fdFrom, int fdTo, uint64_t bytes, uint32_t idleTimeoutMs,
                                   napi_threadsafe_function tsfn) {
  std::unique_ptr<Tunnel> t = Open(id, fdFrom, fdTo, idleTimeoutMs, false, "(spliceBody)");
  t->ab.limit = bytes;
  Queue(std::move(t), tsfn);
}

void TunnelReactor::SetUpDirection(Direction& d, int src, int dst, const int* pipe) {
  d.src = src;
  d.dst = dst;
  d.pipeR = pipe[0];
  d.pipeW = pipe[1];
  int capacity = fcntl(pipe[1], F_GETPIPE_SZ);
  if (capacity > 0) d.pipeCapacity = static_cast<size_t>(capacity);
}

void TunnelReactor::Queue(std::unique_ptr<Tunnel> t, napi_threadsafe_function tsfn) {
  std::unique_lock<std::mutex> lock(mu_);
  // The last env may be stopping the thread right now: start a fresh one after it.
  stopped_.wait(lock, [this] { return !stopping_; });
  std::string error = StartLocked();
  if (!error.empty()) {
    CloseTunnelFds(*t);
    throw SystemError{EAGAIN, "pthread_create", error};
  }
  t->tsfn = tsfn;
  live_[t->id] = t.get();
  created_++;
  pendingCreate_.push_back(std::move(t));
  WakeLocked();
}

bool TunnelReactor::Close(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (live_.find(id) == live_.end()) return false;
  pendingClose_.emplace_back(id, true);
  WakeLocked();
  return true;
}

void TunnelReactor::OnTsfnFinalized(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(id);
  if (it == live_.end()) return;  // reported and released already
  // The creating environment is going away: nobody is left to tell.
  it->second->tsfn = nullptr;
  pendingClose_.emplace_back(id, false);
  WakeLocked();
}

TunnelStats TunnelReactor::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  TunnelStats s;
  s.active = live_.size();
  s.created = created_;
  s.closed = closed_;
  s.running = started_;
  return s;
}

void TunnelReactor::AddEnv() {
  std::lock_guard<std::mutex> lock(mu_);
  envs_++;
}

void TunnelReactor::RemoveEnv() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (envs_ > 0) envs_--;
    if (envs_ > 0) return;
  }
  Stop();
}

void TunnelReactor::StopForExit() { Stop(); }

std::string TunnelReactor::StartLocked() {
  if (started_) return std::string();
  wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epollFd_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeId;
  if (wakeFd_ < 0 || epollFd_ < 0 || epoll_ctl(epollFd_, EPOLL_CTL_ADD, wakeFd_, &ev) != 0) {
    std::string error = "cannot create the tunnel epoll: " + ErrnoMessage(errno);
    CloseFd(wakeFd_);
    CloseFd(epollFd_);
    return error;
  }
  try {
    thread_ = std::thread(&TunnelReactor::Run, this);
  } catch (const std::system_error& e) {
    CloseFd(wakeFd_);
    CloseFd(epollFd_);
    return std::string("cannot start the tunnel thread: ") + e.what();
  }
  started_ = true;
  stopping_ = false;
  if (!atexitRegistered_) {
    atexitRegistered_ = true;
    std::atexit([] { TunnelReactor::Get().StopForExit(); });
  }
  return std::string();
}

void TunnelReactor::WakeLocked() {
  if (wakeFd_ < 0) return;
  uint64_t one = 1;
  ssize_t ignored = write(wakeFd_, &one, sizeof one);
  (void)ignored;
}

void TunnelReactor::Stop() {
  std::thread thread;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
    thread = std::move(thread_);
    WakeLocked();
  }
  if (thread.joinable()) {
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();  // cannot happen: the epoll thread never stops itself
    } else {
      thread.join();
    }
  }
  // The thread is gone: every tunnel is ours. Nobody is told (the
  // environments are being torn down, or the process exits); their TSFNs are
  // finalized by their environments.
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& entry : owned_) CloseTunnelFds(*entry.second);
  for (auto& t : pendingCreate_) CloseTunnelFds(*t);
  closed_ += live_.size();
  owned_.clear();
  pendingCreate_.clear();
  pendingClose_.clear();
  live_.clear();
  ready_.clear();
  while (!deadlines_.empty()) deadlines_.pop();
  CloseFd(epollFd_);
  CloseFd(wakeFd_);
  started_ = false;
  stopping_ = false;
  stopped_.notify_all();
}

void TunnelReactor::CloseTunnelFds(Tunnel& t) {
  CloseFd(t.fdA);
  CloseFd(t.fdB);
  CloseFd(t.ab.pipeR);
  CloseFd(t.ab.pipeW);
  CloseFd(t.ba.pipeR);
  CloseFd(t.ba.pipeW);
}

// ---------------------------------------------------------------------------
// Epoll thread

void TunnelReactor::Run() {
  epoll_event events[kMaxEvents];
  for (;;) {
    int64_t now = NowMs();
    int n = epoll_wait(epollFd_, events, kMaxEvents, ComputeTimeout(now));
    if (n < 0 && errno != EINTR) n = 0;  // cannot happen with valid fds; never spin on it alone
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    now = NowMs();
    std::vector<uint64_t> again;
    again.swap(ready_);
    for (uint64_t id : again) {
      auto it = owned_.find(id);
      if (it == owned_.end()) continue;
      it->second->queuedReady = false;
      Service(*it->second, now);
    }
    for (int i = 0; i < n; i++) {
      uint64_t id = events[i].data.u64;
      if (id == kWakeId) {
        uint64_t value;
        ssize_t ignored = read(wakeFd_, &value, sizeof value);
        (void)ignored;
        continue;
      }
      auto it = owned_.find(id);
      if (it != owned_.end()) Service(*it->second, now);
    }
    TakeCommands(now);
    ExpireIdle(now);
    // Reap: finished tunnels leave only after the batch (events may still name them).
    for (auto it = owned_.begin(); it != owned_.end();) {
      it = it->second->closed ? owned_.erase(it) : std::next(it);
    }
  }
}

int TunnelReactor::ComputeTimeout(int64_t now) const {
  if (!ready_.empty()) return 0;
  if (deadlines_.empty()) return -1;
  int64_t wait = deadlines_.top().first - now;
  if (wait <= 0) return 0;
  return wait > 60000 ? 60000 : static_cast<int>(wait) + 1;
}

void TunnelReactor::TakeCommands(int64_t now) {
  std::vector<std::unique_ptr<Tunnel>> creates;
  std::vector<std::pair<uint64_t, bool>> closes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    creates.swap(pendingCreate_);
    closes.swap(pendingClose_);
  }
  for (auto& t : creates) Adopt(std::move(t), now);
  for (const auto& close : closes) {
    auto it = owned_.find(close.first);
    if (it != owned_.end() && !it->second->closed) Finish(*it->second, "closed", 0, close.second);
  }
}

void TunnelReactor::Adopt(std::unique_ptr<Tunnel> owned, int64_t now) {
  Tunnel& t = *owned;
  owned_[t.id] = std::move(owned);
  t.lastActive = now;
  if (t.idleMs > 0) deadlines_.emplace(now + t.idleMs, t.id);
  // A transfer reads only A and writes only B: B's own reads stay with JS.
  epoll_event evA{};
  evA.events = t.transfer ? EPOLLIN | EPOLLRDHUP | EPOLLET : kSocketEvents;
  evA.data.u64 = t.id;
  epoll_event evB{};
  evB.events = t.transfer ? EPOLLOUT | EPOLLET : kSocketEvents;
  evB.data.u64 = t.id;
  if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, t.fdA, &evA) != 0 || epoll_ctl(epollFd_, EPOLL_CTL_ADD, t.fdB, &evB) != 0) {
    return Finish(t, "error", errno, true);
  }
  Service(t, now);  // the prefixes, and whatever is already waiting
}

void TunnelReactor::Service(Tunnel& t, int64_t now) {
  if (t.closed) return;
  if (t.transfer) return ServiceTransfer(t, now);
  bool moved = false;
  int err = 0;
  PumpResult ab = Pump(t.ab, moved, err);
  if (ab == PumpResult::kError) return Finish(t, "error", err, true);
  PumpResult ba = Pump(t.ba, moved, err);
  if (ba == PumpResult::kError) return Finish(t, "error", err, true);
  if (moved) t.lastActive = now;
  if (t.ab.dstShut && t.ba.dstShut) return Finish(t, "eof", 0, true);
  if ((ab == PumpResult::kBudget || ba == PumpResult::kBudget) && !t.queuedReady) {
    t.queuedReady = true;
    ready_.push_back(t.id);
  }
}

void TunnelReactor::ServiceTransfer(Tunnel& t, int64_t now) {
  bool moved = false;
  int err = 0;
  PumpResult ab = Pump(t.ab, moved, err);
  if (ab == PumpResult::kError) return Finish(t, "error", err, true);
  if (moved) t.lastActive = now;
  if (t.ab.bytes == t.ab.limit) return Finish(t, "done", 0, true);
  if (t.ab.srcEof && t.ab.inPipe == 0) return Finish(t, "eof", 0, true);  // the source ended short
  if (ab == PumpResult::kBudget && !t.queuedReady) {
    t.queuedReady = true;
    ready_.push_back(t.id);
  }
}

// Moves what it can in one direction. Edge-triggered: it goes on until the
// source has nothing (EAGAIN/EOF) or the destination is full (EAGAIN; the
// next EPOLLOUT resumes, and the source is not read meanwhile beyond one pipe).
TunnelReactor::PumpResult TunnelReactor::Pump(Direction& d, bool& moved, int& err) {
  for (int round = 0; round < kRoundsPerWake; round++) {
    bool progress = false;
    while (d.prefixOff < d.prefix.size()) {
      ssize_t n = send(d.dst, d.prefix.data() + d.prefixOff, d.prefix.size() - d.prefixOff, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        d.prefixOff += static_cast<size_t>(n);
        d.bytes += static_cast<uint64_t>(n);
        moved = true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return PumpResult::kIdle;
      err = n < 0 ? errno : EIO;
      d.dstFailed = true;
      return PumpResult::kError;
    }
    if (!d.prefix.empty()) {
      std::string().swap(d.prefix);
      d.prefixOff = 0;
    }
    size_t want = d.pipeCapacity - d.inPipe;
    // A transfer never reads past its end: the next bytes belong to whoever reads A next.
    if (d.limit != 0 && d.limit - d.taken < want) want = static_cast<size_t>(d.limit - d.taken);
    if (!d.srcEof && want > 0) {
      ssize_t n = splice(d.src, nullptr, d.pipeW, nullptr, want, kSpliceFlags);
      if (n > 0) {
        d.inPipe += static_cast<size_t>(n);
        d.taken += static_cast<uint64_t>(n);
        progress = true;
      } else if (n == 0) {
        d.srcEof = true;
        progress = true;
      } else if (errno == EINTR) {
        progress = true;
      } else if (errno != EAGAIN) {
        err = errno;
        return PumpResult::kError;
      }
    }
    if (d.inPipe > 0) {
      ssize_t n = splice(d.pipeR, nullptr, d.dst, nullptr, d.inPipe, kSpliceFlags);
      if (n > 0) {
        d.inPipe -= static_cast<size_t>(n);
        d.bytes += static_cast<uint64_t>(n);
        moved = true;
        progress = true;
      } else if (n < 0 && errno == EAGAIN) {
        return PumpResult::kIdle;  // destination full: wait for EPOLLOUT
      } else if (n < 0 && errno != EINTR) {
        err = errno;
        d.dstFailed = true;
        return PumpResult::kError;
      }
    }
    if (d.srcEof && d.inPipe == 0 && !d.dstShut && d.limit == 0) {
      // Half-close: the peer of dst sees EOF; the other direction goes on.
      if (shutdown(d.dst, SHUT_WR) != 0 && errno != ENOTCONN) {
        err = errno;
        return PumpResult::kError;
      }
      d.dstShut = true;
    }
    if (!progress) return PumpResult::kIdle;
  }
  return PumpResult::kBudget;
}

void TunnelReactor::Finish(Tunnel& t, const char* reason, int err, bool report) {
  if (t.closed) return;
  t.closed = true;
  epoll_ctl(epollFd_, EPOLL_CTL_DEL, t.fdA, nullptr);
  epoll_ctl(epollFd_, EPOLL_CTL_DEL, t.fdB, nullptr);
  CloseTunnelFds(t);  // the last references: the peers see FIN (or RST with unread bytes)
  std::lock_guard<std::mutex> lock(mu_);
  live_.erase(t.id);
  closed_++;
  napi_threadsafe_function tsfn = t.tsfn;
  t.tsfn = nullptr;
  if (tsfn == nullptr) return;
  if (report) {
    auto* r = new TunnelReport();
    r->id = t.id;
    r->bytesAtoB = t.ab.bytes;
    r->bytesBtoA = t.ba.bytes;
    r->reason = reason;
    r->err = err;
    // An idle transfer with bytes in its pipe was waiting for the destination to read.
    r->onDestination = t.transfer && (t.ab.dstFailed || (std::strcmp(reason, "idle") == 0 && t.ab.inPipe > 0));
    if (napi_call_threadsafe_function(tsfn, r, napi_tsfn_nonblocking) != napi_ok) delete r;
  }
  // Its finalizer runs later on the creating thread and finds the id gone.
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
}

void TunnelReactor::ExpireIdle(int64_t now) {
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    uint64_t id = deadlines_.top().second;
    deadlines_.pop();
    auto it = owned_.find(id);
    if (it == owned_.end() || it->second->closed) continue;
    Tunnel& t = *it->second;
    int64_t due = t.lastActive + t.idleMs;
    if (due <= now) {
      Finish(t, "idle", 0, true);
    } else {
      deadlines_.emplace(due, id);  // it moved bytes since: look again then
    }
  }
}

// ---------------------------------------------------------------------------

void ReportToJs(napi_env env, napi_value callback, void*, void* data) {
  std::unique_ptr<TunnelReport> r(static_cast<TunnelReport*>(data));
  if (env == nullptr || callback == nullptr) return;
  napi_value result;
  napi_value value;
  napi_value recv;
  if (napi_create_object(env, &result) != napi_ok || napi_get_undefined(env, &recv) != napi_ok) return;
  napi_create_double(env, static_cast<double>(r->bytesAtoB), &value);
  napi_set_named_property(env, result, "bytesAtoB", value);
  napi_create_double(env, static_cast<double>(r->bytesBtoA), &value);
  napi_set_named_property(env, result, "bytesBtoA", value);
  napi_create_string_utf8(env, r->reason, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, result, "reason", value);
  if (r->err != 0) {
    std::string code = ErrnoName(r->err);
    napi_create_string_utf8(env, code.c_str(), code.size(), &value);
    napi_set_named_property(env, result, "error", value);
  }
  if (r->onDestination) {
    napi_create_string_utf8(env, "destination", NAPI_AUTO_LENGTH, &value);
    napi_set_named_property(env, result, "side", value);
  }
  napi_value ignored;
  // A throwing callback leaves its exception pending: it becomes the thread's uncaught exception.
  napi_call_function(env, recv, callback, 1, &result, &ignored);
}

}  // namespace zproxy
