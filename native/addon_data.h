// Per-environment instance data (one per JS thread that loads the addon:
// the main thread and each worker_thread get their own).
//
// Lifetime: created by Init, owned by the env (napi_set_instance_data) and
// deleted when that env is torn down; the destructor stops every accept loop
// created in this env, so a joinable std::thread never outlives it, and
// stops the shared tunnel thread when no other env uses it.
// Thread ownership: only the env's own JS thread touches it.
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "accept_loop.h"
#include "splice_tunnel.h"

namespace zproxy {

struct AddonData {
  Napi::FunctionReference workerAttachment;  // constructor of RawWorkerAttachment
  std::vector<std::weak_ptr<AcceptLoop>> loops;  // created in this env
  bool tunnelEnv = false;  // this env created splice tunnels (counted by the reactor)

  ~AddonData() {
    for (auto& weak : loops) {
      if (auto loop = weak.lock()) loop->Stop();
    }
    // The last env with tunnels stops and joins the tunnel thread.
    if (tunnelEnv) TunnelReactor::Get().RemoveEnv();
  }
};

}  // namespace zproxy
