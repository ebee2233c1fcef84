#include "numa.h"

#include <dlfcn.h>

#include <memory>
#include <mutex>

namespace zproxy {
namespace {

template <typename Fn>
bool Resolve(void* handle, const char* name, Fn* out, const char* version = nullptr) {
  void* sym = nullptr;
#ifdef __GLIBC__
  // numa_node_to_cpus has an old libnuma_1.1 ABI; ask for the current one.
  if (version != nullptr) sym = dlvsym(handle, name, version);
#else
  (void)version;
#endif
  if (sym == nullptr) sym = dlsym(handle, name);
  *out = reinterpret_cast<Fn>(sym);
  return sym != nullptr;
}

NumaApi Load() {
  NumaApi api;
  void* handle = dlopen("libnuma.so.1", RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) handle = dlopen("libnuma.so", RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return api;

  bool ok = Resolve(handle, "numa_available", &api.available) &&
            Resolve(handle, "numa_max_node", &api.max_node) &&
            Resolve(handle, "numa_node_size64", &api.node_size64) &&
            Resolve(handle, "numa_node_to_cpus", &api.node_to_cpus, "libnuma_1.2") &&
            Resolve(handle, "numa_allocate_cpumask", &api.allocate_cpumask) &&
            Resolve(handle, "numa_bitmask_free", &api.bitmask_free) &&
            Resolve(handle, "numa_bitmask_isbitset", &api.bitmask_isbitset) &&
            Resolve(handle, "numa_alloc_onnode", &api.alloc_onnode) &&
            Resolve(handle, "numa_free", &api.free);
  if (!ok) return NumaApi();  // keep the handle: unloading libnuma is never safe
  api.nodes_ptr = reinterpret_cast<NumaBitmask**>(dlsym(handle, "numa_nodes_ptr"));
  api.usable = api.available() >= 0;
  return api;
}

}  // namespace

const NumaApi& Numa() {
  static std::once_flag once;
  static NumaApi api;  // trivially destructible: safe at exit
  std::call_once(once, [] { api = Load(); });
  return api;
}

Napi::Value NumaTopology(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const NumaApi& numa = Numa();
  if (!numa.usable) return env.Null();

  Napi::Array nodes = Napi::Array::New(env);
  std::unique_ptr<NumaBitmask, void (*)(NumaBitmask*)> mask(numa.allocate_cpumask(),
                                                             numa.bitmask_free);
  if (!mask) return env.Null();
  NumaBitmask* cpus = mask.get();
  int maxNode = numa.max_node();
  uint32_t count = 0;
  for (int node = 0; node <= maxNode; node++) {
    NumaBitmask* present = numa.nodes_ptr != nullptr ? *numa.nodes_ptr : nullptr;
    if (present != nullptr && !numa.bitmask_isbitset(present, static_cast<unsigned>(node))) continue;
    long long size = numa.node_size64(node, nullptr);
    if (size < 0) continue;  // no such node

    Napi::Array cpuList = Napi::Array::New(env);
    if (numa.node_to_cpus(node, cpus) == 0) {
      uint32_t n = 0;
      for (unsigned long cpu = 0; cpu < cpus->size; cpu++) {
        if (numa.bitmask_isbitset(cpus, static_cast<unsigned>(cpu))) {
          cpuList.Set(n++, Napi::Number::New(env, static_cast<double>(cpu)));
        }
      }
    }
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("id", Napi::Number::New(env, node));
    entry.Set("cpus", cpuList);
    entry.Set("memoryBytes", Napi::Number::New(env, static_cast<double>(size)));
    nodes.Set(count++, entry);
  }
  return nodes;
}

}  // namespace zproxy
