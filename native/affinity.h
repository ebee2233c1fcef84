// CPU affinity of the calling thread.
//
// Thread ownership: every function acts on pthread_self(), i.e. the JS thread
// that calls it: called from a worker_thread it pins that worker only.
// Nothing is kept between calls.
#pragma once

#include <napi.h>

namespace zproxy {

// JS: setThreadAffinity(cpus: number[]): void. Throws errno errors (EINVAL...).
Napi::Value SetThreadAffinity(const Napi::CallbackInfo& info);
// JS: getThreadAffinity(): number[] (ascending).
Napi::Value GetThreadAffinity(const Napi::CallbackInfo& info);
// JS: currentCpu(): number (sched_getcpu).
Napi::Value CurrentCpu(const Napi::CallbackInfo& info);

}  // namespace zproxy
