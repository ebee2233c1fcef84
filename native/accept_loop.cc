#include "accept_loop.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <system_error>

namespace zproxy {
namespace {

constexpr int64_t kBackoffMs = 50;     // after EMFILE/ENFILE/ENOBUFS/ENOMEM
constexpr int64_t kHeldRetryMs = 10;   // every worker queue was full
constexpr int kMaxAcceptsPerWake = 128;
constexpr int kMaxEvents = 64;

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void CloseFd(int& fd) {
  if (fd >= 0) {
    close(fd);
    fd = -1;
  }
}

// Process-wide id -> loop map. Leaked on purpose: never destroyed at exit,
// so a thread still running during exit() never sees a dead mutex.
struct Registry {
  std::mutex mu;
  uint32_t nextId = 1;
  std::unordered_map<uint32_t, std::weak_ptr<AcceptLoop>> loops;
};

Registry& GetRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

void Unregister(uint32_t id) {
  if (id == 0) return;
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.loops.erase(id);
}

}  // namespace

// ---------------------------------------------------------------------------
// Creation

AcceptLoop::AcceptLoop(const AcceptLoopOptions& options) : options_(options) {
  slots_.resize(options_.workers);
}

std::shared_ptr<AcceptLoop> AcceptLoop::Create(const AcceptLoopOptions& options) {
  std::shared_ptr<AcceptLoop> loop(new AcceptLoop(options));
  loop->Bind();  // on throw the destructor closes what was opened
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  loop->id_ = r.nextId++;
  r.loops[loop->id_] = loop;
  return loop;
}

std::shared_ptr<AcceptLoop> AcceptLoop::Find(uint32_t id) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.loops.find(id);
  return it == r.loops.end() ? nullptr : it->second.lock();
}

void AcceptLoop::Bind() {
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  ListenSocket listener = OpenListenSocket(options_.host, options_.port, options_.backlog);
  listenFd_ = listener.fd;
  boundHost_ = listener.host;
  boundPort_ = listener.port;
  ipv6_ = listener.ipv6;

  wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd_ < 0) throw SystemError{errno, "eventfd", where};
  epollFd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epollFd_ < 0) throw SystemError{errno, "epoll_create1", where};
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wakeFd_;
  if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, wakeFd_, &ev) != 0) {
    throw SystemError{errno, "epoll_ctl", where};
  }
  ev.data.fd = listenFd_;
  if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, listenFd_, &ev) != 0) {
    throw SystemError{errno, "epoll_ctl", where};
  }
  listenerArmed_ = true;
}

AcceptLoop::~AcceptLoop() { Stop(); }

// ---------------------------------------------------------------------------
// Control (owning JS thread)

std::string AcceptLoop::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return "AcceptLoop.start(): the loop was stopped";
  if (started_) return "AcceptLoop.start(): the loop is already started";
  reserveFd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  try {
    thread_ = std::thread(&AcceptLoop::Run, this);
  } catch (const std::system_error& e) {
    CloseFd(reserveFd_);
    return std::string("AcceptLoop.start(): cannot start the thread: ") + e.what();
  }
  started_ = true;
  return std::string();
}

void AcceptLoop::Stop() {
  std::thread thread;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_.store(true);
    for (Slot& slot : slots_) {
      if (!slot.attached) continue;
      // Its finalizer runs later on the worker's thread.
      napi_release_threadsafe_function(slot.tsfn, napi_tsfn_release);
      slot.attached = false;
      slot.active = 0;
      slot.tsfn = nullptr;
    }
    attachedCount_ = 0;
    thread = std::move(thread_);
    WakeLocked();
  }
  if (thread.joinable()) {
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();  // cannot happen: the loop thread holds no strong reference
    } else {
      thread.join();
    }
  }
  // The thread is gone: everything it owned is ours now.
  for (const Peeking& p : peeking_) close(p.fd);
  peeking_.clear();
  peekIndex_.clear();
  for (const Held& h : held_) close(h.fd);
  held_.clear();
  CloseFd(listenFd_);
  CloseFd(epollFd_);
  CloseFd(reserveFd_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    CloseFd(wakeFd_);
    pending_ = 0;
  }
  Unregister(id_);
}

AcceptLoopStats AcceptLoop::Stats() {
  AcceptLoopStats stats;
  std::lock_guard<std::mutex> lock(mu_);
  stats.active.reserve(slots_.size());
  for (const Slot& slot : slots_) stats.active.push_back(slot.active);
  stats.pending = pending_;
  stats.pausedFull = pausedFull_;
  stats.accepted = accepted_.load();
  stats.closedEarly = closedEarly_.load();
  stats.resourceErrors = resourceErrors_.load();
  return stats;
}

// ---------------------------------------------------------------------------
// Worker side (any thread)

std::string AcceptLoop::Attach(uint32_t index, uint64_t generation, DeliveryTsfn tsfn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return "attachWorker(): the accept loop was stopped";
  if (index >= slots_.size()) {
    return "attachWorker(): worker index " + std::to_string(index) + " is out of range (workers: " +
           std::to_string(slots_.size()) + ")";
  }
  Slot& slot = slots_[index];
  if (slot.attached) {
    return "attachWorker(): worker index " + std::to_string(index) + " is already attached";
  }
  slot.attached = true;
  slot.generation = generation;
  slot.active = 0;
  slot.tsfn = tsfn;
  attachedCount_++;
  WakeLocked();
  return std::string();
}

void AcceptLoop::Release(uint32_t index, uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= slots_.size()) return;
  Slot& slot = slots_[index];
  if (!slot.attached || slot.generation != generation || slot.active == 0) return;
  slot.active--;
  if (wakeOnRelease_ && TotalLocked() < MaxConnections()) {
    wakeOnRelease_ = false;
    WakeLocked();
  }
}

void AcceptLoop::Detach(uint32_t index, uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= slots_.size()) return;
  Slot& slot = slots_[index];
  if (!slot.attached || slot.generation != generation) return;
  // Queued deliveries still reach DeliverToJs, which closes them.
  napi_release_threadsafe_function(slot.tsfn, napi_tsfn_release);
  ForgetLocked(slot);
}

void AcceptLoop::OnTsfnFinalized(uint32_t index, uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= slots_.size()) return;
  Slot& slot = slots_[index];
  if (!slot.attached || slot.generation != generation) return;
  ForgetLocked(slot);  // the TSFN is being deleted: never touch it again
}

bool AcceptLoop::OnDequeued(uint32_t index, uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  if (wakeOnDequeue_) {
    wakeOnDequeue_ = false;
    WakeLocked();
  }
  return index < slots_.size() && slots_[index].attached &&
         slots_[index].generation == generation;
}

void AcceptLoop::Drop(const Delivery& d) {
  closedEarly_.fetch_add(1);  // counted first: a peer may see the close at once
  close(d.fd);
  std::lock_guard<std::mutex> lock(mu_);
  if (d.index >= slots_.size()) return;
  Slot& slot = slots_[d.index];
  if (!slot.attached || slot.generation != d.generation || slot.active == 0) return;
  slot.active--;
  if (wakeOnRelease_ && TotalLocked() < MaxConnections()) {
    wakeOnRelease_ = false;
    WakeLocked();
  }
}

void AcceptLoop::ForgetLocked(Slot& slot) {
  // Connections the worker still held die with it (or, after detach(), are
  // no longer counted): its share of max_connections is dropped.
  slot.attached = false;
  slot.active = 0;
  slot.tsfn = nullptr;
  attachedCount_--;
  WakeLocked();
}

uint64_t AcceptLoop::TotalLocked() const {
  uint64_t total = pending_;
  for (const Slot& slot : slots_) total += slot.active;
  return total;
}

void AcceptLoop::WakeLocked() {
  if (wakeFd_ < 0) return;
  uint64_t one = 1;
  ssize_t n = write(wakeFd_, &one, sizeof one);
  (void)n;  // EAGAIN only when the counter is saturated: already awake
}

// ---------------------------------------------------------------------------
// Epoll thread

void AcceptLoop::Run() {
  epoll_event events[kMaxEvents];
  while (!stopping_.load()) {
    int64_t now = NowMs();
    UpdateListener(now);
    int n = epoll_wait(epollFd_, events, kMaxEvents, ComputeTimeout(now));
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // EBADF/EINVAL: only if the loop is broken beyond repair
    }
    bool listenerReady = false;
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == wakeFd_) {
        uint64_t value;
        while (read(wakeFd_, &value, sizeof value) == static_cast<ssize_t>(sizeof value)) {
        }
        backoffUntilMs_ = 0;  // a release or attach: worth trying again now
      } else if (fd == listenFd_) {
        listenerReady = true;
      } else {
        OnPeekReady(fd, events[i].events);
      }
    }
    if (stopping_.load()) break;
    ExpirePeeks(NowMs());
    RetryHeld();
    if (listenerReady && listenerArmed_) AcceptBatch();
  }
}

int AcceptLoop::ComputeTimeout(int64_t now) const {
  int64_t timeout = -1;
  auto consider = [&](int64_t deadline) {
    int64_t wait = deadline > now ? deadline - now : 0;
    if (timeout < 0 || wait < timeout) timeout = wait;
  };
  if (!peeking_.empty()) consider(peeking_.front().deadlineMs);
  if (backoffUntilMs_ != 0) consider(backoffUntilMs_);
  if (!held_.empty()) consider(now + kHeldRetryMs);
  return timeout > INT_MAX ? INT_MAX : static_cast<int>(timeout);
}

void AcceptLoop::UpdateListener(int64_t now) {
  if (backoffUntilMs_ != 0 && now >= backoffUntilMs_) backoffUntilMs_ = 0;
  bool want;
  {
    std::lock_guard<std::mutex> lock(mu_);
    bool full = TotalLocked() >= MaxConnections();
    if (full && !pausedForFull_) pausedFull_++;
    pausedForFull_ = full;
    want = !full && attachedCount_ > 0 && held_.empty() && backoffUntilMs_ == 0;
    // While paused, a release() (room again) or a dequeue (room in a worker
    // queue) must wake us; the flags are read under the same lock.
    wakeOnRelease_ = !want;
    wakeOnDequeue_ = !held_.empty();
  }
  if (want == listenerArmed_) return;
  // Removing the listener (rather than MOD to 0) also silences EPOLLHUP/ERR.
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listenFd_;
  if (epoll_ctl(epollFd_, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, listenFd_, &ev) == 0) {
    listenerArmed_ = want;
  }
}

void AcceptLoop::AcceptBatch() {
  const bool peek = options_.peekTimeoutMs > 0 && options_.peekBytes > 0;
  for (int i = 0; i < kMaxAcceptsPerWake && !stopping_.load(); i++) {
    if (!held_.empty()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (TotalLocked() >= MaxConnections() || attachedCount_ == 0) return;
    }
    int fd = accept4(listenFd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      switch (err) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
          return;
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
          continue;  // that client is gone; the next one may be fine
        default:
          OnAcceptError(err);
          return;
      }
    }
    accepted_.fetch_add(1);
    if (!peek) {
      Dispatch(Held{fd, false, std::string()}, false);
      continue;
    }
    // The first bytes often arrive with the handshake's last ACK: peek at once
    // and skip the epoll round trip when they are already there.
    std::string first;
    ssize_t n = PeekInto(fd, &first);
    if (n > 0) {
      Dispatch(Held{fd, true, std::move(first)}, false);
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      CloseEarly(fd, false);  // EOF or error before any byte
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      CloseEarly(fd, false);
      continue;
    }
    peeking_.push_back(Peeking{fd, NowMs() + options_.peekTimeoutMs});
    peekIndex_[fd] = std::prev(peeking_.end());
    std::lock_guard<std::mutex> lock(mu_);
    pending_++;
  }
}

void AcceptLoop::OnAcceptError(int err) {
  if (IsResourceError(err)) resourceErrors_.fetch_add(1);
  if ((err == EMFILE || err == ENFILE) && ShedOneClient(listenFd_, &reserveFd_)) {
    accepted_.fetch_add(1);
    closedEarly_.fetch_add(1);
  }
  // Level-triggered epoll would report the listener again at once: stop
  // listening to it for a while (or until a connection is released).
  backoffUntilMs_ = NowMs() + kBackoffMs;
}

// recv(MSG_PEEK) of up to peekBytes into *buffer, resized to what came;
// -1 with errno set when nothing could be read.
ssize_t AcceptLoop::PeekInto(int fd, std::string* buffer) const {
  buffer->assign(options_.peekBytes, '\0');
  ssize_t n = PeekFirstBytes(fd, &(*buffer)[0], buffer->size());
  if (n > 0) buffer->resize(static_cast<size_t>(n));
  return n;
}

void AcceptLoop::OnPeekReady(int fd, uint32_t events) {
  auto it = peekIndex_.find(fd);
  if (it == peekIndex_.end()) return;
  std::string buffer;
  ssize_t n = PeekInto(fd, &buffer);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
      (events & (EPOLLERR | EPOLLHUP)) == 0) {
    return;  // spurious wake-up: keep waiting for the first bytes
  }
  peeking_.erase(it->second);
  peekIndex_.erase(it);
  epoll_ctl(epollFd_, EPOLL_CTL_DEL, fd, nullptr);
  if (n <= 0) {
    CloseEarly(fd, true);  // EOF or error before any byte
    return;
  }
  Dispatch(Held{fd, true, std::move(buffer)}, true);
}

void AcceptLoop::ExpirePeeks(int64_t now) {
  while (!peeking_.empty() && peeking_.front().deadlineMs <= now) {
    int fd = peeking_.front().fd;
    peeking_.pop_front();
    peekIndex_.erase(fd);
    epoll_ctl(epollFd_, EPOLL_CTL_DEL, fd, nullptr);
    CloseEarly(fd, true);
  }
}

void AcceptLoop::CloseEarly(int fd, bool wasPending) {
  // Counted before close(): the peer may observe the close at once.
  if (wasPending) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_--;
  }
  closedEarly_.fetch_add(1);
  close(fd);
}

void AcceptLoop::Dispatch(Held held, bool fromPending) {
  if (!held_.empty()) {  // keep the order: older connections go first
    if (!fromPending) {
      std::lock_guard<std::mutex> lock(mu_);
      pending_++;
    }
    held_.push_back(std::move(held));
    return;
  }
  HandOffResult result;
  {
    std::lock_guard<std::mutex> lock(mu_);
    result = HandOffLocked(held);
    if (result == HandOffResult::kAllFull && !fromPending) pending_++;
    if (result != HandOffResult::kAllFull && fromPending) pending_--;
  }
  if (result == HandOffResult::kAllFull) {
    held_.push_back(std::move(held));
  } else if (result == HandOffResult::kNoWorker) {
    CloseEarly(held.fd, false);
  }
}

void AcceptLoop::RetryHeld() {
  while (!held_.empty()) {
    HandOffResult result;
    {
      std::lock_guard<std::mutex> lock(mu_);
      result = HandOffLocked(held_.front());
      if (result != HandOffResult::kAllFull) pending_--;
    }
    if (result == HandOffResult::kAllFull) return;
    if (result == HandOffResult::kNoWorker) CloseEarly(held_.front().fd, false);
    held_.pop_front();
  }
}

AcceptLoop::HandOffResult AcceptLoop::HandOffLocked(Held& held) {
  const uint32_t n = static_cast<uint32_t>(slots_.size());
  // Attached workers in round-robin order from the one after the last
  // choice, then (stable) by fewest active connections.
  uint32_t order[64];
  std::vector<uint32_t> big;
  uint32_t* candidates = order;
  if (n > 64) {
    big.resize(n);
    candidates = big.data();
  }
  uint32_t count = 0;
  for (uint32_t k = 0; k < n; k++) {
    uint32_t i = (roundRobin_ + k) % n;
    if (slots_[i].attached) candidates[count++] = i;
  }
  if (count == 0) return HandOffResult::kNoWorker;
  std::stable_sort(candidates, candidates + count,
                   [this](uint32_t a, uint32_t b) { return slots_[a].active < slots_[b].active; });

  auto* d = new Delivery{held.fd, 0, 0, held.hasPeek, std::move(held.peeked), weak_from_this()};
  for (uint32_t c = 0; c < count; c++) {
    uint32_t i = candidates[c];
    Slot& slot = slots_[i];
    d->index = i;
    d->generation = slot.generation;
    // napi_queue_full: try the next best; napi_closing: that worker is being
    // torn down and its finalizer will detach it.
    if (napi_call_threadsafe_function(slot.tsfn, d, napi_tsfn_nonblocking) == napi_ok) {
      slot.active++;
      roundRobin_ = (i + 1) % n;
      return HandOffResult::kDelivered;
    }
  }
  held.peeked = std::move(d->peeked);
  delete d;
  return HandOffResult::kAllFull;
}

// ---------------------------------------------------------------------------
// Worker thread: the TSFN's call_js

void DeliverToJs(napi_env env, napi_value callback, void*, void* raw) {
  // Raw napi calls and no C++ throws: this also runs while the worker's env
  // is shutting down, where throwing a JS exception is impossible.
  std::unique_ptr<Delivery> d(static_cast<Delivery*>(raw));
  std::shared_ptr<AcceptLoop> loop = d->loop.lock();
  bool current = loop && loop->OnDequeued(d->index, d->generation);
  auto drop = [&] {
    if (loop) {
      loop->Drop(*d);
    } else {
      close(d->fd);
    }
  };
  if (env == nullptr || callback == nullptr || !current) {
    drop();  // the worker is being torn down, detached, or the loop is gone
    return;
  }
  napi_value args[2];
  napi_value recv;
  bool ok = napi_create_int32(env, d->fd, &args[0]) == napi_ok &&
            napi_get_undefined(env, &recv) == napi_ok;
  if (ok && d->hasPeek) {
    void* copy = nullptr;
    ok = napi_create_buffer_copy(env, d->peeked.size(), d->peeked.data(), &copy, &args[1]) == napi_ok;
  } else if (ok) {
    args[1] = recv;
  }
  if (!ok) {
    drop();
    return;
  }
  // From the call on, the fd belongs to JS...
  napi_value result;
  if (napi_call_function(env, recv, callback, 2, args, &result) != napi_ok) {
    // ...unless JS could not run at all (env shutting down: no exception is
    // pending). A JS exception stays pending and becomes the worker's
    // uncaught exception; the fd then stays with JS.
    bool pending = true;
    if (napi_is_exception_pending(env, &pending) == napi_ok && !pending) drop();
  }
}

}  // namespace zproxy
