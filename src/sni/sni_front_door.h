#pragma once
// SniFrontDoor: the per-connection front door of the `sni` listener kind. It peeks the TLS
// ClientHello (reassembled across records and segments by ClientHelloParser), fills the stream's
// SNI/ALPN metadata and routes with nothing consumed, so the hello reaches the backend untouched
// and the session continues on the splice fast path. Sans-I/O, like every FrontDoor.
#include <ugate/front_door.h>

#include <memory>
#include <string>

#include "sni/client_hello_parser.h"
#include "sni/sni_config.h"

namespace ugate::sni {

class SniFrontDoor final : public FrontDoor {
 public:
  /**
   * @param opts the listener's options (shared with the config snapshot, immutable).
   * @param listenerPort the port the listener is bound to, used when the accepted socket's local
   *        address is unknown.
   */
  SniFrontDoor(std::shared_ptr<const SniOptions> opts, uint16_t listenerPort);

  // ugate::FrontDoor
  FrontDoorResult onClientBytes(std::span<const uint8_t> data, StreamMeta& meta) override;
  std::string onUpstreamResult(const StreamMeta&, Errc) override {
    return {};
  }  // TLS: nothing to say
  size_t maxSniffBytes() const override { return opts_->maxHelloBytes; }

  /** joinAlpn: the offered protocols as meta.alpn: printable names without ',' joined by ','. */
  static std::string joinAlpn(const std::vector<std::string>& protocols);

 private:
  std::shared_ptr<const SniOptions> opts_;
  uint16_t listenerPort_;
  ClientHelloParser parser_;
  size_t fed_{0};  // fed_: bytes of the client's prefix already given to parser_
};

}  // namespace ugate::sni
