#pragma once
// Connection IDs this server issues. Each names the worker that owns the connection, so a packet
// that SO_REUSEPORT hashed to another worker (NAT rebinding, migration) is handed to the owner; and
// none is linkable to another (RFC 9000 §5.1): the 16 bytes are one AES-128 block, encrypted with a
// key made at process start, over {check (2 bytes), worker (2), random (12)}.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace ugate::quic {

class CidCodec {
 public:
  static constexpr size_t kLen = 16;
  using Key = std::array<uint8_t, 16>;

  /** CidCodec with a random key (one per process: every worker shares it). */
  CidCodec();
  explicit CidCodec(const Key& key);
  ~CidCodec();
  CidCodec(const CidCodec&) = delete;
  CidCodec& operator=(const CidCodec&) = delete;

  /** make writes a fresh CID of worker `worker`. */
  void make(uint16_t worker, std::span<uint8_t, kLen> out) const;
  /** workerOf: the worker of a CID this codec made; nullopt for any other (a client's choice). */
  std::optional<uint16_t> workerOf(std::span<const uint8_t> cid) const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace ugate::quic
