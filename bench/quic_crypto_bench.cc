// Micro-benchmark of the QUIC crypto glue per packet (src/quic): AEAD seal and open through the
// ngtcp2 callbacks (encryptCb/decryptCb, the calls ngtcp2 makes for every packet), header
// protection masks (hpMaskCb), Initial key derivation (once per connection) and a Retry token
// round trip (per Retry under load). Not a test; run by hand:
//   ninja -C build quic_crypto_bench && build/bench/micro/quic_crypto_bench
#include <benchmark/benchmark.h>

#include <arpa/inet.h>

#include <vector>

#include "quic/quic_crypto.h"

namespace {

using namespace ugate::quic;

/** Packet: one direction's contexts for a suite, with a fixed secret. */
struct Packet {
  ngtcp2_crypto_ctx ctx{};
  ngtcp2_crypto_aead_ctx aead{};
  ngtcp2_crypto_cipher_ctx hp{};
  Bytes iv;
  explicit Packet(CipherSuite s) : ctx(cryptoContext(s)) {
    Bytes secret(hashLength(s), 0x5a);
    auto k = derivePacketKeys(NGTCP2_PROTO_VER_V1, s, secret);
    if (!k || !initPacketContexts(&aead, &hp, s, *k)) std::abort();
    iv = k->iv;
  }
  ~Packet() {
    deleteCryptoAeadCtxCb(nullptr, &aead, nullptr);
    deleteCryptoCipherCtxCb(nullptr, &hp, nullptr);
  }
};

CipherSuite suiteArg(int64_t i) {
  switch (i) {
    case 1:
      return CipherSuite::Aes256GcmSha384;
    case 2:
      return CipherSuite::ChaCha20Poly1305Sha256;
    default:
      return CipherSuite::Aes128GcmSha256;
  }
}

const char* suiteName(int64_t i) {
  return i == 1 ? "AES-256-GCM" : i == 2 ? "ChaCha20-Poly1305" : "AES-128-GCM";
}

void BM_Seal(benchmark::State& state) {
  Packet p(suiteArg(state.range(0)));
  size_t len = static_cast<size_t>(state.range(1));
  std::vector<uint8_t> plain(len, 0xab);
  std::vector<uint8_t> out(len + 16);
  uint8_t header[24] = {0x40};
  uint64_t pn = 0;
  for (auto _ : state) {
    Bytes nonce = p.iv;
    nonce[11] ^= static_cast<uint8_t>(++pn);
    int rv = encryptCb(out.data(), &p.ctx.aead, &p.aead, plain.data(), len, nonce.data(), 12,
                       header, sizeof(header));
    benchmark::DoNotOptimize(rv);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * len));
  state.SetLabel(suiteName(state.range(0)));
}

void BM_Open(benchmark::State& state) {
  Packet p(suiteArg(state.range(0)));
  size_t len = static_cast<size_t>(state.range(1));
  std::vector<uint8_t> plain(len, 0xab);
  std::vector<uint8_t> sealed(len + 16);
  std::vector<uint8_t> out(len + 16);
  uint8_t header[24] = {0x40};
  if (encryptCb(sealed.data(), &p.ctx.aead, &p.aead, plain.data(), len, p.iv.data(), 12, header,
                sizeof(header)) != 0) {
    std::abort();
  }
  for (auto _ : state) {
    int rv = decryptCb(out.data(), &p.ctx.aead, &p.aead, sealed.data(), sealed.size(), p.iv.data(),
                       12, header, sizeof(header));
    if (rv != 0) std::abort();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * len));
  state.SetLabel(suiteName(state.range(0)));
}

void BM_HpMask(benchmark::State& state) {
  Packet p(suiteArg(state.range(0)));
  uint8_t sample[NGTCP2_HP_SAMPLELEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  uint8_t mask[NGTCP2_HP_SAMPLELEN];
  for (auto _ : state) {
    hpMaskCb(mask, &p.ctx.hp, &p.hp, sample);
    sample[0] = mask[0];  // a dependency chain, as one packet after another
  }
  state.SetLabel(suiteName(state.range(0)));
}

void BM_InitialKeys(benchmark::State& state) {
  const uint8_t dcid[18] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
  for (auto _ : state) {
    auto s = deriveInitialSecrets(NGTCP2_PROTO_VER_V1, dcid);
    auto c = derivePacketKeys(NGTCP2_PROTO_VER_V1, CipherSuite::Aes128GcmSha256, s->client);
    auto sv = derivePacketKeys(NGTCP2_PROTO_VER_V1, CipherSuite::Aes128GcmSha256, s->server);
    benchmark::DoNotOptimize(c);
    benchmark::DoNotOptimize(sv);
  }
}

void BM_RetryTokenRoundTrip(benchmark::State& state) {
  const uint8_t secret[32] = {9};
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(4433);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ngtcp2_cid scid{};
  scid.datalen = 18;
  ngtcp2_cid odcid{};
  odcid.datalen = 8;
  std::array<uint8_t, kMaxRetryTokenLen> token{};
  ngtcp2_tstamp ts = 1000 * NGTCP2_SECONDS;
  for (auto _ : state) {
    auto n = generateRetryToken(token, secret, NGTCP2_PROTO_VER_V1,
                                reinterpret_cast<sockaddr*>(&a), sizeof(a), scid, odcid, ts);
    ngtcp2_cid got;
    auto ok = verifyRetryToken(&got, std::span<const uint8_t>(token.data(), *n), secret,
                               NGTCP2_PROTO_VER_V1, reinterpret_cast<sockaddr*>(&a), sizeof(a),
                               scid, 10 * NGTCP2_SECONDS, ts);
    if (!ok) std::abort();
  }
}

}  // namespace

BENCHMARK(BM_Seal)->ArgsProduct({{0, 1, 2}, {64, 1200, 1452}});
BENCHMARK(BM_Open)->ArgsProduct({{0, 2}, {1200, 1452}});
BENCHMARK(BM_HpMask)->Arg(0)->Arg(1)->Arg(2);
BENCHMARK(BM_InitialKeys);
BENCHMARK(BM_RetryTokenRoundTrip);
BENCHMARK_MAIN();
