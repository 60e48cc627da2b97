#pragma once
// Single-writer counters: the owning worker adds with plain loads and stores (no lock prefix), the
// admin thread reads with relaxed atomics.
#include <array>
#include <atomic>
#include <cstddef>
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

/**
 * kLatencyBoundsUs: the upper bounds (microseconds, inclusive) of every latency histogram's buckets,
 * 0.5 ms to 10 min; a last bucket (+Inf) takes the rest. Fixed, so that workers, listeners and
 * routes add up bucket by bucket.
 */
inline constexpr std::array<uint64_t, 16> kLatencyBoundsUs = {
    500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000,
    5'000'000, 10'000'000, 60'000'000, 600'000'000};
inline constexpr size_t kLatencyBuckets = kLatencyBoundsUs.size() + 1;

/**
 * LatencyHistogram: single-writer like Counter. observe() costs a scan of 16 bounds and two relaxed
 * stores (a bucket, the sum); the count is the buckets' total, computed when read.
 */
class LatencyHistogram {
 public:
  void observe(uint64_t us) {
    size_t i = 0;
    while (i < kLatencyBoundsUs.size() && us > kLatencyBoundsUs[i]) ++i;
    buckets_[i].add();
    sumUs_.add(us);
  }
  /** bucket: observations in bucket i alone (not cumulative); i < kLatencyBuckets. */
  uint64_t bucket(size_t i) const { return buckets_[i].value(); }
  uint64_t sumUs() const { return sumUs_.value(); }

 private:
  std::array<Counter, kLatencyBuckets> buckets_;
  Counter sumUs_;
};

/** HistogramValues: a plain copy of LatencyHistograms, summed across workers, listeners or routes. */
struct HistogramValues {
  std::array<uint64_t, kLatencyBuckets> buckets{};  // per bucket, not cumulative
  uint64_t sumUs{0};
  void add(const LatencyHistogram& h) {
    for (size_t i = 0; i < kLatencyBuckets; ++i) buckets[i] += h.bucket(i);
    sumUs += h.sumUs();
  }
  void add(const HistogramValues& h) {
    for (size_t i = 0; i < kLatencyBuckets; ++i) buckets[i] += h.buckets[i];
    sumUs += h.sumUs;
  }
};

}  // namespace ugate
