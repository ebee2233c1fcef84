#include "splice_tunnel_binding.h"

#include <string>

#include "addon_data.h"
#include "errors.h"
#include "splice_tunnel.h"

namespace zproxy {
namespace {

struct FinalizeToken {
  uint64_t id;
};

void OnTunnelTsfnFinalize(napi_env, void* data, void*) {
  auto* token = static_cast<FinalizeToken*>(data);
  TunnelReactor::Get().OnTsfnFinalized(token->id);
  delete token;
}

std::string OptionalBytes(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index || info[index].IsUndefined() || info[index].IsNull()) return std::string();
  if (!info[index].IsBuffer()) {
    throw Napi::TypeError::New(info.Env(), std::string("createTunnel(): ") + name + " must be a Buffer");
  }
  Napi::Buffer<char> buffer = info[index].As<Napi::Buffer<char>>();
  return std::string(buffer.Data(), buffer.Length());
}

struct TunnelStart {
  uint64_t id;
  napi_threadsafe_function tsfn;
};

// A fresh id and its unref'd TSFN (reporting to `callback` on this thread);
// registers this env with the reactor the first time.
TunnelStart StartTunnel(Napi::Env env, Napi::Value callback) {
  auto* data = env.GetInstanceData<AddonData>();
  TunnelReactor& reactor = TunnelReactor::Get();
  if (!data->tunnelEnv) {
    data->tunnelEnv = true;  // ~AddonData calls RemoveEnv
    reactor.AddEnv();
  }
  uint64_t id = reactor.NextId();
  auto* token = new FinalizeToken{id};
  napi_threadsafe_function tsfn = nullptr;
  napi_status status = napi_create_threadsafe_function(env, callback, nullptr, Napi::String::New(env, "zproxy.tunnel"), 0, 1,
                                                       token, OnTunnelTsfnFinalize, nullptr, ReportToJs, &tsfn);
  if (status != napi_ok) {
    delete token;
    NAPI_THROW_IF_FAILED(env, status, (TunnelStart{0, nullptr}));
  }
  napi_unref_threadsafe_function(env, tsfn);
  return TunnelStart{id, tsfn};
}

int FdArg(const Napi::CallbackInfo& info, size_t index) { return info[index].As<Napi::Number>().Int32Value(); }

void CheckFdPair(Napi::Env env, int a, int b, const char* fn) {
  if (a < 0 || b < 0 || a == b) throw Napi::RangeError::New(env, std::string(fn) + "(): two distinct open fds are needed");
}

uint32_t IdleMsArg(const Napi::CallbackInfo& info, size_t index, const char* fn) {
  double idle = info[index].As<Napi::Number>().DoubleValue();
  if (!(idle >= 0) || idle > 2147483647.0) {
    throw Napi::RangeError::New(info.Env(), std::string(fn) + "(): idleTimeoutMs must be in 0..2^31-1");
  }
  return static_cast<uint32_t>(idle);
}

// Starts a tunnel's TSFN and has `create(id, tsfn)` queue it with the
// reactor; if that throws, the TSFN is released and the errno error thrown
// to JS. Returns the id.
template <typename Create>
Napi::Value QueueTunnel(Napi::Env env, Napi::Value callback, Create create) {
  TunnelStart start = StartTunnel(env, callback);
  try {
    create(start.id, start.tsfn);
  } catch (const SystemError& e) {
    napi_release_threadsafe_function(start.tsfn, napi_tsfn_release);  // its finalizer finds no tunnel
    throw MakeErrnoError(env, e.err, e.syscall, e.detail);
  }
  return Napi::Number::New(env, static_cast<double>(start.id));
}

}  // namespace

Napi::Value CreateTunnel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsFunction()) {
    throw Napi::TypeError::New(env, "createTunnel(fdA, fdB, idleTimeoutMs, onClose, toB?, toA?): bad arguments");
  }
  int fdA = FdArg(info, 0);
  int fdB = FdArg(info, 1);
  CheckFdPair(env, fdA, fdB, "createTunnel");
  uint32_t idle = IdleMsArg(info, 2, "createTunnel");
  std::string toB = OptionalBytes(info, 4, "toB");
  std::string toA = OptionalBytes(info, 5, "toA");
  return QueueTunnel(env, info[3], [&](uint64_t id, napi_threadsafe_function tsfn) {
    TunnelReactor::Get().Create(id, fdA, fdB, idle, std::move(toB), std::move(toA), tsfn);
  });
}

Napi::Value SpliceBody(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber() ||
      !info[4].IsFunction()) {
    throw Napi::TypeError::New(env, "spliceBody(fdFrom, fdTo, bytes, idleTimeoutMs, onDone): bad arguments");
  }
  int fdFrom = FdArg(info, 0);
  int fdTo = FdArg(info, 1);
  CheckFdPair(env, fdFrom, fdTo, "spliceBody");
  double bytes = info[2].As<Napi::Number>().DoubleValue();
  if (!(bytes >= 1) || bytes > 9007199254740991.0 || bytes != static_cast<double>(static_cast<uint64_t>(bytes))) {
    throw Napi::RangeError::New(env, "spliceBody(): bytes must be a positive integer");
  }
  uint32_t idle = IdleMsArg(info, 3, "spliceBody");
  return QueueTunnel(env, info[4], [&](uint64_t id, napi_threadsafe_function tsfn) {
    TunnelReactor::Get().CreateTransfer(id, fdFrom, fdTo, static_cast<uint64_t>(bytes), idle, tsfn);
  });
}

Napi::Value CloseTunnel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "closeTunnel(id): id must be a number");
  double id = info[0].As<Napi::Number>().DoubleValue();
  if (!(id >= 1)) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, TunnelReactor::Get().Close(static_cast<uint64_t>(id)));
}

Napi::Value TunnelStatsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TunnelStats s = TunnelReactor::Get().Stats();
  Napi::Object result = Napi::Object::New(env);
  result.Set("active", Napi::Number::New(env, static_cast<double>(s.active)));
  result.Set("created", Napi::Number::New(env, static_cast<double>(s.created)));
  result.Set("closed", Napi::Number::New(env, static_cast<double>(s.closed)));
  result.Set("running", Napi::Boolean::New(env, s.running));
  return result;
}

}  // namespace zproxy
