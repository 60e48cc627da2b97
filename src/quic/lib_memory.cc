// Counting allocators for ngtcp2 and nghttp3 (lib_memory.h).
#include "quic/lib_memory.h"

#include <malloc.h>

#include <cstdlib>

namespace ugate::quic {

namespace {

std::atomic<int64_t>& counterOf(void* user) { return *static_cast<std::atomic<int64_t>*>(user); }

void account(void* user, void* p, int sign) {
  if (p != nullptr) counterOf(user).fetch_add(sign * static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
}

void* countMalloc(size_t n, void* user) {
  void* p = std::malloc(n);
  account(user, p, 1);
  return p;
}

void countFree(void* p, void* user) {
  account(user, p, -1);
  std::free(p);
}

void* countCalloc(size_t n, size_t size, void* user) {
  void* p = std::calloc(n, size);
  account(user, p, 1);
  return p;
}

void* countRealloc(void* p, size_t n, void* user) {
  const auto before = p != nullptr ? static_cast<int64_t>(malloc_usable_size(p)) : 0;
  void* q = std::realloc(p, n);
  if (q == nullptr) return nullptr;  // p is untouched
  counterOf(user).fetch_add(static_cast<int64_t>(malloc_usable_size(q)) - before, std::memory_order_relaxed);
  return q;
}

}  // namespace

LibBytes& libBytes() {
  static LibBytes b;
  return b;
}

const ngtcp2_mem* ngtcp2Mem() {
  static const ngtcp2_mem m{&libBytes().ngtcp2, countMalloc, countFree, countCalloc, countRealloc};
  return &m;
}

const nghttp3_mem* nghttp3Mem() {
  static const nghttp3_mem m{&libBytes().nghttp3, countMalloc, countFree, countCalloc, countRealloc};
  return &m;
}

}  // namespace ugate::quic
