#include "node_buffer.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include "errors.h"
#include "numa.h"

namespace zproxy {
namespace {

std::atomic<uint64_t> g_allocated{0};
std::atomic<uint64_t> g_freed{0};
std::atomic<uint64_t> g_liveBytes{0};

// Travels with the Buffer to its finalizer.
struct Allocation {
  size_t size;
  bool numa;  // true: numa_free, false: free
};

void FreeAllocation(Napi::Env env, uint8_t* data, Allocation* alloc) {
  if (alloc->numa) {
    Numa().free(data, alloc->size);
  } else {
    std::free(data);
  }
  g_freed.fetch_add(1, std::memory_order_relaxed);
  g_liveBytes.fetch_sub(alloc->size, std::memory_order_relaxed);
  Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(alloc->size));
  delete alloc;
}

}  // namespace

Napi::Value AllocOnNode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "allocOnNode(size, node): size and node must be numbers");
  }
  double sizeArg = info[0].As<Napi::Number>().DoubleValue();
  int node = info[1].As<Napi::Number>().Int32Value();
  if (!(sizeArg >= 0 && sizeArg <= 9007199254740991.0)) {
    throw Napi::RangeError::New(env, "allocOnNode: size must be a non-negative integer");
  }
  size_t size = static_cast<size_t>(sizeArg);
  if (size == 0) return Napi::Buffer<uint8_t>::New(env, 0);

  const NumaApi& numa = Numa();
  void* data = nullptr;
  if (numa.usable) {
    if (node < 0 || node > numa.max_node()) {
      throw Napi::RangeError::New(env, "allocOnNode: NUMA node " + std::to_string(node) +
                                           " does not exist");
    }
    data = numa.alloc_onnode(size, node);
    if (data == nullptr) throw MakeErrnoError(env, ENOMEM, "numa_alloc_onnode");
  } else {
    long page = sysconf(_SC_PAGESIZE);
    int rc = posix_memalign(&data, page > 0 ? static_cast<size_t>(page) : 4096, size);
    if (rc != 0) throw MakeErrnoError(env, rc, "posix_memalign");
  }

  auto* alloc = new Allocation{size, numa.usable};
  Napi::Buffer<uint8_t> buffer;
  try {
    buffer = Napi::Buffer<uint8_t>::New(env, static_cast<uint8_t*>(data), size, FreeAllocation, alloc);
  } catch (...) {
    if (alloc->numa) numa.free(data, size); else std::free(data);
    delete alloc;
    throw;
  }
  g_allocated.fetch_add(1, std::memory_order_relaxed);
  g_liveBytes.fetch_add(size, std::memory_order_relaxed);
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(size));
  return buffer;
}

Napi::Value NodeBufferStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("allocated", Napi::Number::New(env, static_cast<double>(g_allocated.load())));
  stats.Set("freed", Napi::Number::New(env, static_cast<double>(g_freed.load())));
  stats.Set("liveBytes", Napi::Number::New(env, static_cast<double>(g_liveBytes.load())));
  stats.Set("numa", Napi::Boolean::New(env, Numa().usable));
  return stats;
}

}  // namespace zproxy
