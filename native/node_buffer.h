// Node-local memory exposed as external Buffers.
//
// Lifetime: the memory of a Buffer returned by allocOnNode belongs to that
// Buffer; it is freed (numa_free or free) by the Buffer's finalizer on the
// JS thread that created it, after GC, never earlier. The size is reported
// to V8 as external memory while the Buffer lives.
// Thread ownership: the counters are process-wide atomics, safe from every
// thread; each Buffer stays on the thread that allocated it.
#pragma once

#include <napi.h>

namespace zproxy {

// JS: allocOnNode(size: number, node: number): Buffer.
Napi::Value AllocOnNode(const Napi::CallbackInfo& info);
// JS: nodeBufferStats(): { allocated, freed, liveBytes, numa }.
Napi::Value NodeBufferStats(const Napi::CallbackInfo& info);

}  // namespace zproxy
