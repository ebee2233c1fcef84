#include "worker_listener.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <list>
#include <string>
#include <vector>

#include "accept_loop_binding.h"
#include "errors.h"
#include "listen_socket.h"

namespace zproxy {
namespace {

constexpr int kMaxAcceptsPerWake = 64;
constexpr uint64_t kBackoffMs = 50;  // after EMFILE/ENFILE/ENOBUFS/ENOMEM
constexpr uint32_t kMaxPeekBytes = 256;

double NumberOption(const Napi::Object& options, const char* name) {
  Napi::Value value = options.Get(name);
  if (!value.IsNumber()) {
    throw Napi::TypeError::New(options.Env(), std::string("WorkerListener: options.") + name + " must be a number");
  }
  return value.As<Napi::Number>().DoubleValue();
}

// The handles free themselves once libuv is done with them.
void FreePoll(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }
void FreeTimer(uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); }

class WorkerListener;

// An accepted connection whose first bytes have not arrived yet.
struct Waiting {
  WorkerListener* listener;
  int fd;
  uint64_t deadlineMs;
  uv_poll_t* poll;
};

class WorkerListener : public Napi::ObjectWrap<WorkerListener> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "WorkerListener",
                       {
                           InstanceMethod<&WorkerListener::Address>("address"),
                           InstanceMethod<&WorkerListener::Stats>("stats"),
                           InstanceMethod<&WorkerListener::Release>("release"),
                           InstanceMethod<&WorkerListener::Close>("close"),
                       });
  }

  explicit WorkerListener(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<WorkerListener>(info), context_(info.Env(), "zproxy.WorkerListener") {
    Napi::Env env = info.Env();
    if (!info.IsConstructCall() || info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(env, "new WorkerListener(options, onConnection): bad arguments");
    }
    Napi::Object o = info[0].As<Napi::Object>();
    Napi::Value host = o.Get("host");
    if (!host.IsString()) throw Napi::TypeError::New(env, "WorkerListener: options.host must be a string");
    const int port = static_cast<int>(NumberOption(o, "port"));
    if (port < 0 || port > 65535) throw Napi::RangeError::New(env, "WorkerListener: options.port must be in 0..65535");
    const int backlog = static_cast<int>(NumberOption(o, "backlog"));
    firstByteTimeoutMs_ = static_cast<uint64_t>(NumberOption(o, "firstByteTimeoutMs"));
    maxConnections_ = static_cast<uint64_t>(NumberOption(o, "maxConnections"));
    peekBytes_ = std::min<uint32_t>(static_cast<uint32_t>(NumberOption(o, "peekBytes")), kMaxPeekBytes);
    onConnection_ = Napi::Persistent(info[1].As<Napi::Function>());

    try {
      socket_ = OpenListenSocket(host.As<Napi::String>().Utf8Value(), port, backlog);
    } catch (const SystemError& e) {
      Napi::Error error = MakeErrnoError(env, e.err, e.syscall, e.detail);
      error.Set("address", host);
      error.Set("port", Napi::Number::New(env, port));
      throw error;
    }
    reserveFd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      CloseFds();
      throw Napi::Error::New(env, "WorkerListener: no event loop");
    }
    loop_ = loop;
    poll_ = new uv_poll_t;
    timer_ = new uv_timer_t;
    expiryTimer_ = new uv_timer_t;
    uv_poll_init_socket(loop, poll_, socket_.fd);
    uv_timer_init(loop, timer_);
    uv_timer_init(loop, expiryTimer_);
    poll_->data = this;
    timer_->data = this;
    expiryTimer_->data = this;
    // Polling keeps the object alive (and the loop running) until close().
    Ref();
    napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
    StartPolling();
  }

  // Only reached after Shutdown() (polling holds a reference), but never leave handles behind.
  ~WorkerListener() override { CloseHandles(); }

 private:
  Napi::Value Address(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    result.Set("address", Napi::String::New(env, socket_.host));
    result.Set("family", Napi::String::New(env, socket_.ipv6 ? "IPv6" : "IPv4"));
    result.Set("port", Napi::Number::New(env, socket_.port));
    return result;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    AcceptLoopStats s;
    s.active = {active_};  // one worker: this one; nothing waits between accept and hand-off
    s.accepted = accepted_;
    s.closedEarly = closedEarly_;
    s.resourceErrors = resourceErrors_;
    s.pausedFull = pausedFull_;
    return ListenerStatsToJs(info.Env(), s);
  }

  // A connection handed to JS has ended: room for another.
  void Release(const Napi::CallbackInfo&) {
    if (active_ > 0) active_--;
    if (!closed_ && !polling_ && !backingOff_ && !Full()) StartPolling();
  }

  void Close(const Napi::CallbackInfo&) { Shutdown(); }

  bool Full() const { return maxConnections_ != 0 && active_ >= maxConnections_; }

  void StartPolling() {
    polling_ = uv_poll_start(poll_, UV_READABLE, OnPoll) == 0;
  }

  void StopPolling() {
    if (polling_) uv_poll_stop(poll_);
    polling_ = false;
  }

  static void OnPoll(uv_poll_t* handle, int status, int) {
    auto* self = static_cast<WorkerListener*>(handle->data);
    if (status == 0) self->AcceptBatch();
  }

  static void OnBackoffDone(uv_timer_t* handle) {
    auto* self = static_cast<WorkerListener*>(handle->data);
    self->backingOff_ = false;
    if (!self->closed_ && !self->Full()) self->StartPolling();
  }

  void AcceptBatch() {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    for (int i = 0; i < kMaxAcceptsPerWake && !closed_; i++) {
      if (Full()) {
        StopPolling();
        pausedFull_++;
        return;
      }
      int fd = accept4(socket_.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (IsResourceError(errno)) return BackOff(errno);
        continue;  // that client is gone (ECONNABORTED, EPROTO, ...); the next one may be fine
      }
      accepted_++;
      active_++;
      char peeked[kMaxPeekBytes];
      ssize_t n = PeekFirstBytes(fd, peeked, peekBytes_);
      if (n > 0) {
        Deliver(env, fd, Napi::Buffer<char>::Copy(env, peeked, static_cast<size_t>(n)));
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        WaitForFirstBytes(fd);
      } else {
        CloseEarly(fd);  // EOF or error before any byte
      }
    }
  }

  void CloseEarly(int fd) {
    close(fd);
    active_--;
    closedEarly_++;
  }

  // The accept loop's rule: a connection reaches JS with its first bytes,
  // so HTTP/1 reads straight into the worker's buffer and TLS starts unread.
  // Clients that send nothing within firstByteTimeoutMs are closed here.
  void WaitForFirstBytes(int fd) {
    auto* poll = new uv_poll_t;
    if (uv_poll_init_socket(loop_, poll, fd) != 0) {
      delete poll;
      return CloseEarly(fd);
    }
    waiting_.push_back(Waiting{this, fd, uv_now(loop_) + firstByteTimeoutMs_, poll});
    poll->data = &waiting_.back();
    uv_poll_start(poll, UV_READABLE | UV_DISCONNECT, OnFirstBytes);
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(expiryTimer_))) {
      uv_timer_start(expiryTimer_, OnExpiryCheck, ExpiryIntervalMs(), ExpiryIntervalMs());
    }
  }

  uint64_t ExpiryIntervalMs() const { return std::max<uint64_t>(10, std::min<uint64_t>(1000, firstByteTimeoutMs_ / 4)); }

  static void OnFirstBytes(uv_poll_t* handle, int, int) {
    auto* waiting = static_cast<Waiting*>(handle->data);
    waiting->listener->FirstBytesReady(waiting);
  }

  void FirstBytesReady(Waiting* waiting) {
    char peeked[kMaxPeekBytes];
    ssize_t n = PeekFirstBytes(waiting->fd, peeked, peekBytes_);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // spurious: keep waiting
    int fd = waiting->fd;
    StopWaiting(waiting);  // the poll leaves the loop before JS makes its own handle on the fd
    if (n <= 0) return CloseEarly(fd);
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Deliver(env, fd, Napi::Buffer<char>::Copy(env, peeked, static_cast<size_t>(n)));
  }

  // uv_close() takes the fd out of the loop's epoll set at once; the fd stays open.
  void StopWaiting(Waiting* waiting) {
    uv_close(reinterpret_cast<uv_handle_t*>(waiting->poll), FreePoll);
    waiting_.remove_if([waiting](const Waiting& w) { return &w == waiting; });
    if (waiting_.empty()) uv_timer_stop(expiryTimer_);
  }

  static void OnExpiryCheck(uv_timer_t* handle) {
    auto* self = static_cast<WorkerListener*>(handle->data);
    const uint64_t now = uv_now(self->loop_);
    std::vector<Waiting*> expired;
    for (Waiting& w : self->waiting_) {
      if (w.deadlineMs <= now) expired.push_back(&w);
    }
    for (Waiting* w : expired) {
      int fd = w->fd;
      self->StopWaiting(w);
      self->CloseEarly(fd);
    }
    if (!self->closed_ && !self->polling_ && !self->backingOff_ && !self->Full()) self->StartPolling();
  }

  // From the call on the fd belongs to JS. A JS exception becomes the
  // worker's uncaught exception, as for any callback from the loop.
  void Deliver(Napi::Env env, int fd, Napi::Value peeked) {
    try {
      onConnection_.MakeCallback(Value(), {Napi::Number::New(env, fd), peeked}, context_);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  void BackOff(int err) {
    resourceErrors_++;
    if ((err == EMFILE || err == ENFILE) && ShedOneClient(socket_.fd, &reserveFd_)) {
      accepted_++;
      closedEarly_++;
    }
    StopPolling();
    backingOff_ = true;
    uv_timer_start(timer_, OnBackoffDone, kBackoffMs, 0);
  }

  static void OnEnvCleanup(void* arg) { static_cast<WorkerListener*>(arg)->Shutdown(); }

  // Idempotent. uv_close() on the poll takes the fd out of the loop's epoll
  // set at once, so the socket can be closed right after.
  void Shutdown() {
    if (closed_) return;
    CloseHandles();
    napi_remove_env_cleanup_hook(Env(), OnEnvCleanup, this);
    Unref();
  }

  void CloseHandles() {
    if (closed_) return;
    closed_ = true;
    polling_ = false;
    if (poll_ != nullptr) uv_close(reinterpret_cast<uv_handle_t*>(poll_), FreePoll);
    if (timer_ != nullptr) uv_close(reinterpret_cast<uv_handle_t*>(timer_), FreeTimer);
    if (expiryTimer_ != nullptr) uv_close(reinterpret_cast<uv_handle_t*>(expiryTimer_), FreeTimer);
    poll_ = nullptr;
    timer_ = nullptr;
    expiryTimer_ = nullptr;
    for (Waiting& w : waiting_) {
      uv_close(reinterpret_cast<uv_handle_t*>(w.poll), FreePoll);
      close(w.fd);
    }
    waiting_.clear();
    CloseFds();
  }

  void CloseFds() {
    if (socket_.fd >= 0) close(socket_.fd);
    socket_.fd = -1;
    if (reserveFd_ >= 0) close(reserveFd_);
    reserveFd_ = -1;
  }

  ListenSocket socket_;
  int reserveFd_ = -1;
  uv_loop_t* loop_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  uv_timer_t* timer_ = nullptr;        // back-off after resource errors
  uv_timer_t* expiryTimer_ = nullptr;  // closes waiting connections past their deadline
  std::list<Waiting> waiting_;
  uint64_t firstByteTimeoutMs_ = 0;
  bool polling_ = false;
  bool backingOff_ = false;
  bool closed_ = false;
  uint64_t maxConnections_ = 0;
  uint32_t peekBytes_ = 0;
  uint64_t active_ = 0;
  uint64_t accepted_ = 0;
  uint64_t closedEarly_ = 0;
  uint64_t resourceErrors_ = 0;
  uint64_t pausedFull_ = 0;
  Napi::FunctionReference onConnection_;
  Napi::AsyncContext context_;
};

}  // namespace

Napi::Function InitWorkerListener(Napi::Env env) { return WorkerListener::Define(env); }

}  // namespace zproxy
