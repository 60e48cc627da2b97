#pragma once
// benchEndpoints: a JSON array of n endpoint addresses "10.a.b.c:8080" numbered from base, for the
// xDS benchmarks' static clusters (bench/xds_bench.cc, bench/xds_client_bench.cc).
#include <string>

inline std::string benchEndpoints(int n, int base) {
  std::string out = "[";
  for (int i = 0; i < n; ++i) {
    const int v = base + i;
    out += (i ? ",\"10." : "\"10.") + std::to_string((v >> 16) & 255) + "." + std::to_string((v >> 8) & 255) + "." +
           std::to_string(v & 255) + ":8080\"";
  }
  return out + "]";
}
