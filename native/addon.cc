// The export table of the zproxy addon; the contract is
// src/native/addon-types.ts (RawAddon). Each primitive lives in its own file.
#include <napi.h>

#include "accept_loop_binding.h"
#include "addon_data.h"
#include "affinity.h"
#include "fd_write.h"
#include "node_buffer.h"
#include "numa.h"
#include "splice_tunnel_binding.h"
#include "worker_listener.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new zproxy::AddonData();
  env.SetInstanceData(data);  // deleted at this env's teardown

  exports.Set("numaTopology", Napi::Function::New(env, zproxy::NumaTopology, "numaTopology"));
  exports.Set("setThreadAffinity", Napi::Function::New(env, zproxy::SetThreadAffinity, "setThreadAffinity"));
  exports.Set("getThreadAffinity", Napi::Function::New(env, zproxy::GetThreadAffinity, "getThreadAffinity"));
  exports.Set("currentCpu", Napi::Function::New(env, zproxy::CurrentCpu, "currentCpu"));
  exports.Set("allocOnNode", Napi::Function::New(env, zproxy::AllocOnNode, "allocOnNode"));
  exports.Set("nodeBufferStats", Napi::Function::New(env, zproxy::NodeBufferStats, "nodeBufferStats"));
  exports.Set("AcceptLoop", zproxy::InitAcceptLoop(env, data));
  exports.Set("attachWorker", Napi::Function::New(env, zproxy::AttachWorker, "attachWorker"));
  exports.Set("WorkerListener", zproxy::InitWorkerListener(env));
  exports.Set("writeFd", Napi::Function::New(env, zproxy::WriteFd, "writeFd"));
  exports.Set("createTunnel", Napi::Function::New(env, zproxy::CreateTunnel, "createTunnel"));
  exports.Set("spliceBody", Napi::Function::New(env, zproxy::SpliceBody, "spliceBody"));
  exports.Set("closeTunnel", Napi::Function::New(env, zproxy::CloseTunnel, "closeTunnel"));
  exports.Set("tunnelStats", Napi::Function::New(env, zproxy::TunnelStatsJs, "tunnelStats"));
  return exports;
}

}  // namespace

NODE_API_MODULE(zproxy, Init)
