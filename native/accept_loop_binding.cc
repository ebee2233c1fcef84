#include "accept_loop_binding.h"

#include <utility>

#include "accept_loop.h"
#include "errors.h"

namespace zproxy {
namespace {

Napi::Error StateError(Napi::Env env, const std::string& message, const char* code) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

double NumberOption(const Napi::Object& options, const char* name) {
  Napi::Value value = options.Get(name);
  if (!value.IsNumber()) {
    throw Napi::TypeError::New(options.Env(), std::string("AcceptLoop: options.") + name +
                                                  " must be a number");
  }
  return value.As<Napi::Number>().DoubleValue();
}

class AcceptLoopWrap : public Napi::ObjectWrap<AcceptLoopWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AcceptLoop",
                       {
                           InstanceAccessor<&AcceptLoopWrap::GetId>("id", napi_enumerable),
                           InstanceMethod<&AcceptLoopWrap::Start>("start"),
                           InstanceMethod<&AcceptLoopWrap::Stop>("stop"),
                           InstanceMethod<&AcceptLoopWrap::Address>("address"),
                           InstanceMethod<&AcceptLoopWrap::Stats>("stats"),
                       });
  }

  explicit AcceptLoopWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AcceptLoopWrap>(info) {
    Napi::Env env = info.Env();
    if (!info.IsConstructCall() || info.Length() < 1 || !info[0].IsObject()) {
      throw Napi::TypeError::New(env, "new AcceptLoop(options): options must be an object");
    }
    Napi::Object o = info[0].As<Napi::Object>();
    Napi::Value host = o.Get("host");
    if (!host.IsString()) throw Napi::TypeError::New(env, "AcceptLoop: options.host must be a string");
    AcceptLoopOptions options;
    options.host = host.As<Napi::String>().Utf8Value();
    options.port = static_cast<int>(NumberOption(o, "port"));
    options.backlog = static_cast<int>(NumberOption(o, "backlog"));
    options.maxConnections = static_cast<uint64_t>(NumberOption(o, "maxConnections"));
    options.workers = static_cast<uint32_t>(NumberOption(o, "workers"));
    options.peekTimeoutMs = static_cast<uint32_t>(NumberOption(o, "peekTimeoutMs"));
    options.peekBytes = static_cast<uint32_t>(NumberOption(o, "peekBytes"));
    options.queueSize = static_cast<uint32_t>(NumberOption(o, "queueSize"));
    if (options.port < 0 || options.port > 65535) {
      throw Napi::RangeError::New(env, "AcceptLoop: options.port must be in 0..65535");
    }
    if (options.workers < 1) throw Napi::RangeError::New(env, "AcceptLoop: options.workers must be >= 1");
    if (options.queueSize < 1) options.queueSize = 1;

    try {
      loop_ = AcceptLoop::Create(options);
    } catch (const SystemError& e) {
      Napi::Error error = MakeErrnoError(env, e.err, e.syscall, e.detail);
      error.Set("address", Napi::String::New(env, options.host));
      error.Set("port", Napi::Number::New(env, options.port));
      throw error;
    }
    auto* data = env.GetInstanceData<AddonData>();
    auto& loops = data->loops;
    loops.erase(std::remove_if(loops.begin(), loops.end(),
                               [](const std::weak_ptr<AcceptLoop>& w) { return w.expired(); }),
                loops.end());
    loops.push_back(loop_);
  }

  // GC or env teardown: never leave a joinable thread behind.
  ~AcceptLoopWrap() override {
    if (loop_) loop_->Stop();
  }

 private:
  Napi::Value GetId(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), loop_->id());
  }

  void Start(const Napi::CallbackInfo& info) {
    std::string error = loop_->Start();
    if (!error.empty()) throw StateError(info.Env(), error, "ERR_ACCEPT_LOOP_STATE");
  }

  void Stop(const Napi::CallbackInfo&) { loop_->Stop(); }

  Napi::Value Address(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    result.Set("address", Napi::String::New(env, loop_->host()));
    result.Set("family", Napi::String::New(env, loop_->ipv6() ? "IPv6" : "IPv4"));
    result.Set("port", Napi::Number::New(env, loop_->port()));
    return result;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) { return ListenerStatsToJs(info.Env(), loop_->Stats()); }

  std::shared_ptr<AcceptLoop> loop_;
};

class WorkerAttachmentWrap : public Napi::ObjectWrap<WorkerAttachmentWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "WorkerAttachment",
                       {
                           InstanceMethod<&WorkerAttachmentWrap::Release>("release"),
                           InstanceMethod<&WorkerAttachmentWrap::Detach>("detach"),
                       });
  }

  explicit WorkerAttachmentWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<WorkerAttachmentWrap>(info) {}

  void Bind(std::weak_ptr<AcceptLoop> loop, uint32_t index, uint64_t generation) {
    loop_ = std::move(loop);
    index_ = index;
    generation_ = generation;
  }

 private:
  void Release(const Napi::CallbackInfo&) {
    if (auto loop = loop_.lock()) loop->Release(index_, generation_);
  }

  void Detach(const Napi::CallbackInfo&) {
    if (auto loop = loop_.lock()) loop->Detach(index_, generation_);
  }

  std::weak_ptr<AcceptLoop> loop_;
  uint32_t index_ = 0;
  uint64_t generation_ = 0;
};

// Finalizer data of one attachment's TSFN; deleted by its finalizer.
struct AttachToken {
  std::weak_ptr<AcceptLoop> loop;
  uint32_t index;
  uint64_t generation;
};

// Runs on the worker's thread when its TSFN is finalized (after release, or
// when the worker's environment is torn down).
void OnTsfnFinalize(napi_env, void* data, void*) {
  auto* token = static_cast<AttachToken*>(data);
  if (auto loop = token->loop.lock()) loop->OnTsfnFinalized(token->index, token->generation);
  delete token;
}

}  // namespace

Napi::Object ListenerStatsToJs(Napi::Env env, const AcceptLoopStats& s) {
  Napi::Array active = Napi::Array::New(env, s.active.size());
  for (uint32_t i = 0; i < s.active.size(); i++) {
    active.Set(i, Napi::Number::New(env, static_cast<double>(s.active[i])));
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("active", active);
  result.Set("pending", Napi::Number::New(env, static_cast<double>(s.pending)));
  result.Set("accepted", Napi::Number::New(env, static_cast<double>(s.accepted)));
  result.Set("closedEarly", Napi::Number::New(env, static_cast<double>(s.closedEarly)));
  result.Set("resourceErrors", Napi::Number::New(env, static_cast<double>(s.resourceErrors)));
  result.Set("pausedFull", Napi::Number::New(env, static_cast<double>(s.pausedFull)));
  return result;
}

Napi::Function InitAcceptLoop(Napi::Env env, AddonData* data) {
  data->workerAttachment = Napi::Persistent(WorkerAttachmentWrap::Define(env));
  return AcceptLoopWrap::Define(env);
}

Napi::Value AttachWorker(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsFunction()) {
    throw Napi::TypeError::New(env, "attachWorker(loopId, index, onConnection): bad arguments");
  }
  uint32_t loopId = info[0].As<Napi::Number>().Uint32Value();
  uint32_t index = info[1].As<Napi::Number>().Uint32Value();
  std::shared_ptr<AcceptLoop> loop = AcceptLoop::Find(loopId);
  if (!loop) {
    throw StateError(env, "attachWorker(): no running accept loop with id " + std::to_string(loopId),
                     "ERR_ACCEPT_LOOP_NOT_FOUND");
  }
  uint64_t generation = loop->NewGeneration();
  auto* token = new AttachToken{loop, index, generation};
  DeliveryTsfn tsfn = nullptr;
  napi_status status = napi_create_threadsafe_function(
      env, info[2], nullptr, Napi::String::New(env, "zproxy.acceptLoop"), loop->queueSize(),
      1, token, OnTsfnFinalize, nullptr, DeliverToJs, &tsfn);
  if (status != napi_ok) {
    delete token;
    NAPI_THROW_IF_FAILED(env, status, env.Undefined());
  }
  napi_unref_threadsafe_function(env, tsfn);  // never keeps the worker alive
  std::string error = loop->Attach(index, generation, tsfn);
  if (!error.empty()) {
    napi_release_threadsafe_function(tsfn, napi_tsfn_release);  // finalizer finds no match
    throw StateError(env, error, "ERR_ACCEPT_LOOP_ATTACH");
  }
  Napi::Object attachment = env.GetInstanceData<AddonData>()->workerAttachment.New({});
  WorkerAttachmentWrap::Unwrap(attachment)->Bind(loop, index, generation);
  return attachment;
}

}  // namespace zproxy
