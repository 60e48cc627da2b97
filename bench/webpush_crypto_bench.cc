// RFC 8291 Web Push encryption rate on one core (not a test; asserts nothing but correctness of
// one round trip). Each encryption is what an application server does per message: a fresh P-256
// ephemeral key, ECDH with the subscription's p256dh, the HKDF steps, a random salt and one
// AES-128-GCM record. The rate is per CPU second of this thread, so a busy shared machine lowers
// the wall-clock figure but not this one. Run: build/bench/webpush_crypto_bench [seconds] [bytes]
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "webpush/message_crypto.h"

namespace {

double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

template <class F>
void measure(const char* what, double seconds, size_t bytes, F&& op) {
  const double start = threadCpuSeconds();
  size_t ops = 0;
  double elapsed = 0;
  while (elapsed < seconds) {
    for (int i = 0; i < 64; ++i) op();
    ops += 64;
    elapsed = threadCpuSeconds() - start;
  }
  std::printf("%-8s payload=%zu B  %zu ops in %.2f CPU s  %.0f ops/s per core\n", what, bytes, ops,
              elapsed, static_cast<double>(ops) / elapsed);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ugate::webpush;
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  const size_t bytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 3072;
  auto sub = generateSubscriptionKeys();
  if (!sub) {
    std::fprintf(stderr, "keygen: %s\n", sub.error().detail.c_str());
    return 1;
  }
  std::vector<uint8_t> payload(bytes, 'm');
  auto body = encryptPushMessage(payload, sub->key.publicKey(), sub->auth);
  if (!body) {
    std::fprintf(stderr, "encrypt: %s\n", body.error().detail.c_str());
    return 1;
  }
  auto plain = decryptPushMessage(*body, sub->key, sub->auth);
  if (!plain || *plain != payload) {
    std::fprintf(stderr, "round trip failed\n");
    return 1;
  }
  measure("encrypt", seconds, bytes, [&] {
    auto b = encryptPushMessage(payload, sub->key.publicKey(), sub->auth);
    if (!b) std::abort();
  });
  measure("decrypt", seconds, bytes, [&] {
    auto p = decryptPushMessage(*body, sub->key, sub->auth);
    if (!p) std::abort();
  });
  return 0;
}
