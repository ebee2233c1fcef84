// JS face of the accept loop: the AcceptLoop class (main thread) and
// attachWorker() with its RawWorkerAttachment (worker threads).
//
// Lifetime: a JS AcceptLoop holds the only strong reference to its native
// loop; when it is garbage-collected or its env is torn down, the loop is
// stopped and joined. Keep it referenced while serving. A
// RawWorkerAttachment holds weak references only: release()/detach() after
// stop() are no-ops, and dropping the attachment object does not detach.
// Thread ownership: each JS object is used on the thread that created it.
#pragma once

#include <napi.h>

#include "accept_loop.h"
#include "addon_data.h"

namespace zproxy {

// Defines the AcceptLoop and WorkerAttachment classes; returns the AcceptLoop
// constructor to export.
Napi::Function InitAcceptLoop(Napi::Env env, AddonData* data);

// The listener counters as JS sees them (AcceptLoopStats in
// src/native/addon-types.ts); the worker listener reports the same shape.
Napi::Object ListenerStatsToJs(Napi::Env env, const AcceptLoopStats& s);

// JS: attachWorker(loopId, index, onConnection): RawWorkerAttachment.
Napi::Value AttachWorker(const Napi::CallbackInfo& info);

}  // namespace zproxy
