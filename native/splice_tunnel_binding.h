// JS face of the splice tunnels (native/splice_tunnel.h):
//   createTunnel(fdA, fdB, idleTimeoutMs, onClose, toB?, toA?): id
//   spliceBody(fdFrom, fdTo, bytes, idleTimeoutMs, onDone): id (a transfer)
//   closeTunnel(id): boolean
//   tunnelStats(): { active, created, closed, running }
//
// Lifetime: fdA and fdB stay the caller's (the tunnel works on dups of
// them); `toB`/`toA` are copied. onClose is called once, on the calling
// thread, unless that thread's environment is torn down first (the tunnel is
// then closed silently). The tunnel's TSFN is unref'd: an open tunnel never
// keeps a thread alive.
#pragma once

#include <napi.h>

namespace zproxy {

Napi::Value CreateTunnel(const Napi::CallbackInfo& info);
Napi::Value SpliceBody(const Napi::CallbackInfo& info);
Napi::Value CloseTunnel(const Napi::CallbackInfo& info);
Napi::Value TunnelStatsJs(const Napi::CallbackInfo& info);

}  // namespace zproxy
