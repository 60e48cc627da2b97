#pragma once
// Allocators for ngtcp2 and nghttp3 that count the bytes each library holds (process-wide gauges on
// /stats, ugate_quic_library_bytes): where an idle connection's memory goes is then visible.
#include <atomic>
#include <cstdint>

#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>

namespace ugate::quic {

/** LibBytes: bytes currently allocated by each library (malloc_usable_size of every block). */
struct LibBytes {
  std::atomic<int64_t> ngtcp2{0};
  std::atomic<int64_t> nghttp3{0};
};
LibBytes& libBytes();

/** ngtcp2Mem / nghttp3Mem: the counting allocators (static, valid for the process). */
const ngtcp2_mem* ngtcp2Mem();
const nghttp3_mem* nghttp3Mem();

}  // namespace ugate::quic
