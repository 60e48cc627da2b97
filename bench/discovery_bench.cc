// CPU per discovery announcement received (issue 20's goal: <= 20 µs per verified announcement).
// Builds 1000 signed announcements (20 nodes x 50 sequences, each with an IPv4 and an IPv6 address,
// as ugated sends them) and feeds them through the receiver (rate limit, parse, ID/key check, ECDSA
// verify, replay window, neighbour table), timing process CPU per batch of 1000; plus the cost of
// encoding + signing one, and of refusing forged and truncated ones. Not a test (no assertion):
//   build/bench/discovery_bench [rounds]
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "local/announcement.h"
#include "local/neighbour_table.h"

namespace {

using namespace ugate;
using namespace ugate::local;

constexpr int kNodes = 20;
constexpr int kPerNode = 50;
constexpr int64_t kWall = 1'700'000'000'000;

double cpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  std::vector<auth::PrivateKey> keys;
  for (int i = 0; i < kNodes; ++i) {
    auto k = auth::PrivateKey::generate();
    if (!k) return 1;
    keys.push_back(*k);
  }
  IpAddr v4, v6;
  IpAddr::parse("10.202.0.1", v4);
  IpAddr::parse("fe80::1c2b:3aff:fe4d:5e6f", v6);
  // Every round gets fresh sequences, so each announcement is verified and accepted (none is a replay).
  std::vector<std::vector<auth::Bytes>> batches(static_cast<size_t>(rounds));
  std::vector<double> sign;
  uint64_t seq = 1;
  for (auto& batch : batches) {
    const double t0 = cpuSeconds();
    for (int s = 0; s < kPerNode; ++s, ++seq) {
      for (int n = 0; n < kNodes; ++n) {
        Announcement a;
        a.sequence = seq;
        a.timestampMs = kWall;
        a.tcpPort = 15008;
        a.name = "node-" + std::to_string(n);
        a.addresses = {v4, v6};
        auto b = encodeAnnouncement(a, keys[static_cast<size_t>(n)]);
        if (!b) return 1;
        batch.push_back(std::move(*b));
      }
    }
    sign.push_back((cpuSeconds() - t0) / (kNodes * kPerNode));
  }
  ReceiverParams p;
  p.ownId = "self";
  p.ratePerSecond = 1e9;  // the buckets are checked, never empty: the cost measured is the whole path
  p.rateBurst = 1e9;
  p.verifyPerSecond = 1e9;
  Receiver rx(p);
  std::vector<double> verify;
  MonotonicTime now{std::chrono::seconds(1)};
  for (const auto& batch : batches) {
    const double t0 = cpuSeconds();
    size_t ok = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      const std::string src = "10.202.0." + std::to_string(i % kNodes + 1);
      if (rx.receive(batch[i], src, "eth0", kWall, now).reject == Reject::None) ++ok;
    }
    verify.push_back((cpuSeconds() - t0) / static_cast<double>(batch.size()));
    if (ok != batch.size()) {
      std::fprintf(stderr, "only %zu of %zu accepted\n", ok, batch.size());
      return 1;
    }
    now += std::chrono::seconds(1);
  }
  // Refusals: a forged signature costs a verify; a truncated one is refused before any crypto.
  auth::Bytes forged = batches[0][0];
  forged.back() ^= 1;
  auth::Bytes truncated(forged.begin(), forged.begin() + 100);
  auto refuse = [&](const auth::Bytes& b) {
    const double t0 = cpuSeconds();
    for (int i = 0; i < 1000; ++i) (void)rx.receive(b, "10.202.0.99", "eth0", kWall, now);
    return (cpuSeconds() - t0) / 1000;
  };
  const double forgedCost = refuse(forged);
  const double truncCost = refuse(truncated);
  std::printf("announcement size: %zu bytes; %d rounds of %d (%d nodes x %d)\n", batches[0][0].size(), rounds,
              kNodes * kPerNode, kNodes, kPerNode);
  std::printf("received and verified: %.1f us CPU each (median), %.1f ms per 1000\n", median(verify) * 1e6,
              median(verify) * 1e6);
  std::printf("encode + sign:         %.1f us CPU each (median)\n", median(sign) * 1e6);
  std::printf("refused, bad signature: %.1f us; truncated: %.3f us\n", forgedCost * 1e6, truncCost * 1e6);
  return 0;
}
