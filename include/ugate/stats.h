#pragma once
// Single-writer counters: the owning worker adds with plain loads and stores (no lock prefix), the
// admin thread reads with relaxed atomics.
#include <atomic>
#include <cstdint>

namespace ugate {

class Counter {
 public:
  void add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void inc() { add(1); }
  void dec() { add(-1); }
  void add(int64_t n) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

}  // namespace ugate
