// libnuma, loaded with dlopen at run time (the addon never links it).
//
// Lifetime: the library is opened once per process, on first use, and never
// closed; the resolved function table lives until exit.
// Thread ownership: Numa() is thread-safe (std::call_once) and the table is
// read-only afterwards, so any thread may call through it.
#pragma once

#include <napi.h>

#include <cstddef>

namespace zproxy {

// Mirrors libnuma's `struct bitmask` (stable ABI since libnuma 2.0).
struct NumaBitmask {
  unsigned long size;  // in bits
  unsigned long* maskp;
};

struct NumaApi {
  bool usable = false;  // library found, symbols resolved, numa_available() >= 0
  int (*available)() = nullptr;
  int (*max_node)() = nullptr;
  long long (*node_size64)(int node, long long* freep) = nullptr;
  int (*node_to_cpus)(int node, NumaBitmask* mask) = nullptr;
  NumaBitmask* (*allocate_cpumask)() = nullptr;
  void (*bitmask_free)(NumaBitmask*) = nullptr;
  int (*bitmask_isbitset)(const NumaBitmask*, unsigned int) = nullptr;
  void* (*alloc_onnode)(size_t size, int node) = nullptr;
  void (*free)(void* start, size_t size) = nullptr;
  NumaBitmask** nodes_ptr = nullptr;  // libnuma's numa_nodes_ptr (may be null)
};

// The process-wide table; `usable` is false when libnuma is missing.
const NumaApi& Numa();

// JS: numaTopology(): RawNumaNode[] | null. Any thread with an env.
Napi::Value NumaTopology(const Napi::CallbackInfo& info);

}  // namespace zproxy
