// The native acceptor: one epoll thread per listening socket that accepts,
// optionally peeks at the first bytes, and hands each fd to the least busy
// attached worker through that worker's ThreadSafeFunction.
//
// Lifetimes
// - An AcceptLoop is owned by shared_ptr: the JS AcceptLoop object holds the
//   strong reference; the registry, the worker attachments and every
//   Delivery hold weak_ptrs, so a worker's release() after the loop is gone
//   is a no-op. The destructor stops (joins) the thread.
// - An fd belongs to the loop from accept() until CallJs hands it to the JS
//   callback; from then on it belongs to JS (net.Socket closes it). An fd
//   whose worker detached before the callback ran is closed by CallJs.
// - A worker's TSFN belongs to its slot while `attached`; it is released
//   exactly once (detach/stop) or forgotten in its finalizer (worker teardown).
//
// Threads
// - The epoll thread owns listenFd_ readiness, the peeking list and the
//   pending hand-off list; it holds no JS values.
// - mu_ guards the worker slots, counters used for max_connections, and
//   every TSFN call: the acceptor calls a TSFN only while holding mu_ and
//   seeing the slot attached, and the TSFN finalizer clears `attached` under
//   mu_, so a finalized TSFN is never called.
// - Start/Stop/Stats/Address are called from the JS thread that owns the JS
//   object; Release/Detach/Attach from any worker thread.
#pragma once

#include <napi.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "listen_socket.h"

namespace zproxy {

struct AcceptLoopOptions {
  std::string host;
  int port = 0;
  int backlog = 511;
  uint64_t maxConnections = 0;
  uint32_t workers = 1;
  uint32_t peekTimeoutMs = 0;
  uint32_t peekBytes = 0;
  uint32_t queueSize = 64;
};

struct AcceptLoopStats {
  std::vector<uint64_t> active;
  uint64_t pending = 0;
  uint64_t accepted = 0;
  uint64_t closedEarly = 0;
  uint64_t resourceErrors = 0;
  uint64_t pausedFull = 0;
};

class AcceptLoop;

// One connection on its way to a worker. Heap-allocated by the acceptor,
// owned by the TSFN queue, deleted by CallJs.
struct Delivery {
  int fd;
  uint32_t index;
  uint64_t generation;
  bool hasPeek;
  std::string peeked;
  std::weak_ptr<AcceptLoop> loop;
};

// The TSFN's call_js: runs on the worker thread with `data` a Delivery*
// (env null when the worker is being torn down). The raw napi TSFN is used
// (not Napi::TypedThreadSafeFunction, whose template does not compile under
// GCC's -fsanitize=undefined).
void DeliverToJs(napi_env env, napi_value callback, void* context, void* data);
using DeliveryTsfn = napi_threadsafe_function;

class AcceptLoop : public std::enable_shared_from_this<AcceptLoop> {
 public:
  // Creates, binds and listens (synchronously). Throws SystemError.
  static std::shared_ptr<AcceptLoop> Create(const AcceptLoopOptions& options);
  // Looks up a live, not stopped loop by id (any thread).
  static std::shared_ptr<AcceptLoop> Find(uint32_t id);

  ~AcceptLoop();
  AcceptLoop(const AcceptLoop&) = delete;
  AcceptLoop& operator=(const AcceptLoop&) = delete;

  uint32_t id() const { return id_; }
  const std::string& host() const { return boundHost_; }
  bool ipv6() const { return ipv6_; }
  int port() const { return boundPort_; }
  uint32_t workers() const { return options_.workers; }
  uint32_t queueSize() const { return options_.queueSize; }

  // Returns an error message (empty on success).
  std::string Start();
  // Idempotent; joins the thread, closes every fd the loop still owns and
  // releases every attached worker's TSFN.
  void Stop();
  AcceptLoopStats Stats();

  // Worker side. NewGeneration() gives the token for one attachment.
  uint64_t NewGeneration() { return nextGeneration_.fetch_add(1) + 1; }
  // Returns an error message (empty on success); on error the caller still
  // owns (and must release) `tsfn`.
  std::string Attach(uint32_t index, uint64_t generation, DeliveryTsfn tsfn);
  void Release(uint32_t index, uint64_t generation);
  void Detach(uint32_t index, uint64_t generation);
  void OnTsfnFinalized(uint32_t index, uint64_t generation);

  // Called by DeliverToJs when a delivery left the TSFN queue: wakes the
  // acceptor if it waits for room, and tells whether the delivery is still
  // meant for a live attachment.
  bool OnDequeued(uint32_t index, uint64_t generation);
  // CallJs could not deliver: close the fd and drop its count.
  void Drop(const Delivery& d);

 private:
  struct Slot {
    bool attached = false;
    uint64_t generation = 0;
    uint64_t active = 0;
    DeliveryTsfn tsfn = nullptr;
  };
  struct Peeking {
    int fd;
    int64_t deadlineMs;
  };
  struct Held {
    int fd;
    bool hasPeek;
    std::string peeked;
  };
  enum class HandOffResult { kDelivered, kAllFull, kNoWorker };

  explicit AcceptLoop(const AcceptLoopOptions& options);
  void Bind();  // throws SystemError

  // Epoll thread.
  void Run();
  int ComputeTimeout(int64_t now) const;
  void AcceptBatch();
  void OnAcceptError(int err);
  void OnPeekReady(int fd, uint32_t events);
  ssize_t PeekInto(int fd, std::string* buffer) const;
  void ExpirePeeks(int64_t now);
  void Dispatch(Held held, bool fromPending);
  void RetryHeld();
  void UpdateListener(int64_t now);
  HandOffResult HandOffLocked(Held& held);
  void CloseEarly(int fd, bool wasPending);

  // 0 means no limit.
  uint64_t MaxConnections() const {
    return options_.maxConnections == 0 ? UINT64_MAX : options_.maxConnections;
  }

  // mu_ held.
  void ForgetLocked(Slot& slot);
  uint64_t TotalLocked() const;
  void WakeLocked();

  const AcceptLoopOptions options_;
  uint32_t id_ = 0;
  std::string boundHost_;
  bool ipv6_ = false;
  int boundPort_ = 0;

  int listenFd_ = -1;
  int wakeFd_ = -1;   // eventfd; written under mu_, closed under mu_
  int epollFd_ = -1;
  int reserveFd_ = -1;  // spare /dev/null fd for the EMFILE trick

  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> nextGeneration_{0};

  // Epoll thread only.
  std::list<Peeking> peeking_;  // ordered by deadline (all timeouts equal)
  std::unordered_map<int, std::list<Peeking>::iterator> peekIndex_;
  std::list<Held> held_;        // accepted, every worker queue full
  bool listenerArmed_ = true;
  int64_t backoffUntilMs_ = 0;

  // Guarded by mu_.
  std::mutex mu_;
  bool started_ = false;
  bool stopped_ = false;
  std::vector<Slot> slots_;
  uint32_t attachedCount_ = 0;
  uint32_t roundRobin_ = 0;
  uint64_t pending_ = 0;     // peeking_ + held_
  bool wakeOnRelease_ = false;
  bool wakeOnDequeue_ = false;
  bool pausedForFull_ = false;
  uint64_t pausedFull_ = 0;

  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> closedEarly_{0};
  std::atomic<uint64_t> resourceErrors_{0};
};

}  // namespace zproxy
