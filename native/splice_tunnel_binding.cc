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

}  // namespace

Napi::Value CreateTunnel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsFunction()) {
    throw Napi::TypeError::New(env, "createTunnel(fdA, fdB, idleTimeoutMs, onClose, toB?, toA?): bad arguments");
  }
  int fdA = info[0].As<Napi::Number>().Int32Value();
  int fdB = info[1].As<Napi::Number>().Int32Value();
  double idle = info[2].As<Napi::Number>().DoubleValue();
  if (fdA < 0 || fdB < 0 || fdA == fdB) throw Napi::RangeError::New(env, "createTunnel(): two distinct open fds are needed");
  if (!(idle >= 0) || idle > 2147483647.0) throw Napi::RangeError::New(env, "createTunnel(): idleTimeoutMs must be in 0..2^31-1");
  std::string toB = OptionalBytes(info, 4, "toB");
  std::string toA = OptionalBytes(info, 5, "toA");

  TunnelStart start = StartTunnel(env, info[3]);
  try {
    TunnelReactor::Get().Create(start.id, fdA, fdB, static_cast<uint32_t>(idle), std::move(toB), std::move(toA), start.tsfn);
  } catch (const SystemError& e) {
    napi_release_threadsafe_function(start.tsfn, napi_tsfn_release);  // its finalizer finds no tunnel
    throw MakeErrnoError(env, e.err, e.syscall, e.detail);
  }
  return Napi::Number::New(env, static_cast<double>(start.id));
}

Napi::Value SpliceBody(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber() ||
      !info[4].IsFunction()) {
    throw Napi::TypeError::New(env, "spliceBody(fdFrom, fdTo, bytes, idleTimeoutMs, onDone): bad arguments");
  }
  int fdFrom = info[0].As<Napi::Number>().Int32Value();
  int fdTo = info[1].As<Napi::Number>().Int32Value();
  double bytes = info[2].As<Napi::Number>().DoubleValue();
  double idle = info[3].As<Napi::Number>().DoubleValue();
  if (fdFrom < 0 || fdTo < 0 || fdFrom == fdTo) throw Napi::RangeError::New(env, "spliceBody(): two distinct open fds are needed");
  if (!(bytes >= 1) || bytes > 9007199254740991.0 || bytes != static_cast<double>(static_cast<uint64_t>(bytes))) {
    throw Napi::RangeError::New(env, "spliceBody(): bytes must be a positive integer");
  }
  if (!(idle >= 0) || idle > 2147483647.0) throw Napi::RangeError::New(env, "spliceBody(): idleTimeoutMs must be in 0..2^31-1");
  TunnelStart start = StartTunnel(env, info[4]);
  try {
    TunnelReactor::Get().CreateTransfer(start.id, fdFrom, fdTo, static_cast<uint64_t>(bytes), static_cast<uint32_t>(idle),
                                        start.tsfn);
  } catch (const SystemError& e) {
    napi_release_threadsafe_function(start.tsfn, napi_tsfn_release);  // its finalizer finds no tunnel
    throw MakeErrnoError(env, e.err, e.syscall, e.detail);
  }
  return Napi::Number::New(env, static_cast<double>(start.id));
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
