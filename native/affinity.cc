#include "affinity.h"

#include <pthread.h>
#include <sched.h>

#include <cerrno>

#include "errors.h"

namespace zproxy {

Napi::Value SetThreadAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    throw Napi::TypeError::New(env, "setThreadAffinity(cpus): cpus must be an array of CPU numbers");
  }
  Napi::Array cpus = info[0].As<Napi::Array>();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t i = 0; i < cpus.Length(); i++) {
    Napi::Value v = cpus.Get(i);
    double cpu = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(cpu >= 0 && cpu < CPU_SETSIZE) || cpu != static_cast<double>(static_cast<int>(cpu))) {
      throw MakeErrnoError(env, EINVAL, "pthread_setaffinity_np",
                           "(CPU " + v.ToString().Utf8Value() + " is not in 0.." +
                               std::to_string(CPU_SETSIZE - 1) + ")");
    }
    CPU_SET(static_cast<int>(cpu), &set);
  }
  int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  if (rc != 0) throw MakeErrnoError(env, rc, "pthread_setaffinity_np");
  return env.Undefined();
}

Napi::Value GetThreadAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  cpu_set_t set;
  CPU_ZERO(&set);
  int rc = pthread_getaffinity_np(pthread_self(), sizeof set, &set);
  if (rc != 0) throw MakeErrnoError(env, rc, "pthread_getaffinity_np");
  Napi::Array result = Napi::Array::New(env);
  uint32_t n = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &set)) result.Set(n++, Napi::Number::New(env, cpu));
  }
  return result;
}

Napi::Value CurrentCpu(const Napi::CallbackInfo& info) {
  int cpu = sched_getcpu();
  if (cpu < 0) throw MakeErrnoError(info.Env(), errno, "sched_getcpu");
  return Napi::Number::New(info.Env(), cpu);
}

}  // namespace zproxy
