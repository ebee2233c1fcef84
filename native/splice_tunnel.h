// Splice tunnels: two connected sockets joined in the kernel. One native
// epoll thread, shared by every tunnel of the process, moves bytes A->B and
// B->A with splice(2) through a pipe per direction, so the bytes never enter
// user space.
//
// A transfer is a one-way, bounded tunnel: exactly N bytes A->B (the rest of
// a proxied response body), then it ends ("done") without touching either
// connection otherwise, so JS carries on with both sockets afterwards.
//
// Lifetimes
// - The reactor is a process-wide singleton, deliberately leaked (never
//   destroyed at exit). Its thread starts with the first tunnel, and is
//   stopped and joined when the last JS environment that created tunnels is
//   torn down (AddonData's destructor), or by an atexit hook on
//   process.exit() (where Node tears no environment down). A joinable
//   std::thread is never destroyed.
// - A tunnel owns dups of the caller's two fds and its own two pipes: 6 fds,
//   all closed when the tunnel closes. The caller's fds stay the caller's.
// - A tunnel's TSFN (one per tunnel, unref'd) is called once with the
//   TunnelReport and released by the epoll thread; if the creating
//   environment is torn down first, its finalizer forgets it (under mu_, the
//   lock the epoll thread holds while calling it) and the tunnel is closed
//   without a report.
//
// Threads
// - Create/Close/Stats/AddEnv/RemoveEnv: any JS thread. OnTsfnFinalized: the
//   creating JS thread.
// - The epoll thread owns every tunnel's fds and counters once it has taken
//   the tunnel from the pending list; JS threads only queue commands (create,
//   close) under mu_ and wake it through an eventfd.
#pragma once

#include <node_api.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "accept_loop.h"  // SystemError

namespace zproxy {

// What a tunnel's onClose receives (heap-allocated, owned by the TSFN queue,
// deleted by ReportToJs).
struct TunnelReport {
  uint64_t id = 0;
  uint64_t bytesAtoB = 0;
  uint64_t bytesBtoA = 0;
  const char* reason = "closed";  // "eof" | "error" | "idle" | "closed" | "done" (transfers)
  int err = 0;                    // errno for "error"
  // Transfers, for "error" and "idle": the destination ended it (a write
  // failed, or bytes waited for it to take them), not the source.
  bool onDestination = false;
};

struct TunnelStats {
  uint64_t active = 0;   // created and not yet closed
  uint64_t created = 0;
  uint64_t closed = 0;
  bool running = false;  // the epoll thread is up
};

// The TSFN's call_js, on the creating JS thread (env null at teardown).
void ReportToJs(napi_env env, napi_value callback, void* context, void* data);

class TunnelReactor {
 public:
  static TunnelReactor& Get();

  // A fresh id for the tunnel about to be created (the TSFN finalizer token needs it first).
  uint64_t NextId() { return nextId_.fetch_add(1) + 1; }

  // Dups fdA/fdB, makes the pipes and queues the tunnel for the epoll thread
  // (starting it if needed). `toB`/`toA` are written to B/A before any spliced
  // byte. Throws SystemError; on throw nothing was kept and `tsfn` is still
  // the caller's.
  void Create(uint64_t id, int fdA, int fdB, uint32_t idleTimeoutMs, std::string toB, std::string toA,
              napi_threadsafe_function tsfn);
  // A transfer: `bytes` (> 0) from fdFrom to fdTo, then "done"; an EOF of
  // fdFrom before that is "eof". Neither fd is read beyond `bytes`, written
  // in the other direction, or shut down. Throws like Create.
  void CreateTransfer(uint64_t id, int fdFrom, int fdTo, uint64_t bytes, uint32_t idleTimeoutMs,
                      napi_threadsafe_function tsfn);
  // Asks the epoll thread to close a live tunnel (reported as "closed").
  // False when the id is not live.
  bool Close(uint64_t id);
  void OnTsfnFinalized(uint64_t id);
  TunnelStats Stats();

  // Environments that created tunnels; the last RemoveEnv stops the thread.
  void AddEnv();
  void RemoveEnv();
  // process.exit(): stop and join without touching any TSFN.
  void StopForExit();

 private:
  struct Direction {
    int src = -1;
    int dst = -1;
    int pipeR = -1;
    int pipeW = -1;
    size_t pipeCapacity = 65536;
    size_t inPipe = 0;
    std::string prefix;  // bytes JS held, written to dst first
    size_t prefixOff = 0;
    bool srcEof = false;
    bool dstShut = false;
    uint64_t bytes = 0;
    uint64_t limit = 0;  // transfers: the bytes to move (0: until EOF)
    uint64_t taken = 0;  // bytes read from src so far
    bool dstFailed = false;  // the error was writing to dst
  };
  struct Tunnel {
    uint64_t id = 0;
    int fdA = -1;
    int fdB = -1;
    Direction ab;  // A -> B
    Direction ba;  // B -> A
    bool transfer = false;  // A->B only, ab.limit bytes
    uint32_t idleMs = 0;
    int64_t lastActive = 0;
    bool closed = false;
    bool queuedReady = false;
    napi_threadsafe_function tsfn = nullptr;  // guarded by mu_
  };
  enum class PumpResult { kIdle, kBudget, kError };

  TunnelReactor() = default;
  ~TunnelReactor() = delete;  // leaked on purpose

  // A tunnel owning dups of fdA/fdB and a pipe for A->B (and B->A when
  // `bothWays`; otherwise a transfer). Throws SystemError naming `caller`;
  // on throw nothing is kept.
  static std::unique_ptr<Tunnel> Open(uint64_t id, int fdA, int fdB, uint32_t idleTimeoutMs, bool bothWays,
                                      const char* caller);
  static void SetUpDirection(Direction& d, int src, int dst, const int* pipe);
  // Registers a tunnel whose fds are set up and hands it to the epoll thread.
  void Queue(std::unique_ptr<Tunnel> t, napi_threadsafe_function tsfn);
  void ServiceTransfer(Tunnel& t, int64_t now);

  // mu_ held.
  std::string StartLocked();
  void WakeLocked();

  void Stop();

  // Epoll thread.
  void Run();
  void TakeCommands(int64_t now);
  void Adopt(std::unique_ptr<Tunnel> t, int64_t now);
  void Service(Tunnel& t, int64_t now);
  PumpResult Pump(Direction& d, bool& moved, int& err);
  void Finish(Tunnel& t, const char* reason, int err, bool report);
  void ExpireIdle(int64_t now);
  int ComputeTimeout(int64_t now) const;

  static void CloseTunnelFds(Tunnel& t);

  std::atomic<uint64_t> nextId_{0};

  std::mutex mu_;
  std::condition_variable stopped_;  // a Stop() in progress has finished
  std::thread thread_;
  bool started_ = false;
  bool stopping_ = false;
  bool atexitRegistered_ = false;
  int envs_ = 0;
  int epollFd_ = -1;
  int wakeFd_ = -1;
  std::vector<std::unique_ptr<Tunnel>> pendingCreate_;
  std::vector<std::pair<uint64_t, bool>> pendingClose_;  // id, report
  std::unordered_map<uint64_t, Tunnel*> live_;          // created, not finished
  uint64_t created_ = 0;
  uint64_t closed_ = 0;

  // Epoll thread only.
  std::unordered_map<uint64_t, std::unique_ptr<Tunnel>> owned_;
  std::vector<uint64_t> ready_;  // hit the per-wake budget: serviced again next round
  using Deadline = std::pair<int64_t, uint64_t>;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<Deadline>> deadlines_;
};

}  // namespace zproxy
