#pragma once
// The `quic` listener kind's options (the listener's "quic" object; docs/CONFIG.md, kind quic).
#include <cstdint>
#include <string>

#include <ugate/listener.h>
#include <ugate/time.h>

namespace ugate::quic {

/** RetryPolicy: when a server answers an Initial without a token with a Retry (address validation). */
enum class RetryPolicy : uint8_t { Never, Always, UnderLoad };

struct QuicTuning {
  Duration idleTimeout{30'000};       // max_idle_timeout we announce; the smaller of both sides wins
  Duration handshakeTimeout{10'000};  // a connection not through its handshake by then is dropped
  uint64_t maxStreams{100};           // bidirectional streams the peer may have open at once
  uint64_t streamWindow{1u << 20};    // initial per-stream receive window (grows up to 16×, auto-tuned)
  uint64_t connectionWindow{4u << 20};  // initial connection receive window (grows up to 16×)
  uint32_t maxConnections{10'000};    // per worker; more Initials are refused (CONNECTION_REFUSED)
  RetryPolicy retry{RetryPolicy::UnderLoad};
  uint32_t retryAbove{200};           // UnderLoad: handshakes in progress on a worker above this → Retry
};

struct QuicListenerOptions final : ListenerOptions {
  QuicTuning tuning;
  /** push: the push listener whose service HTTP/3 requests to its paths reach (empty: none). */
  std::string push;
};

}  // namespace ugate::quic
