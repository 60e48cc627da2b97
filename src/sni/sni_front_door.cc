#include "sni/sni_front_door.h"


namespace ugate::sni {

SniFrontDoor::SniFrontDoor(std::shared_ptr<const SniOptions> opts, uint16_t listenerPort)
    : opts_(std::move(opts)), listenerPort_(listenerPort), parser_(opts_->maxHelloBytes) {}

std::string SniFrontDoor::joinAlpn(const std::vector<std::string>& protocols) {
  std::string out;
  for (const auto& p : protocols) {
    bool printable = true;
    for (char c : p) {
      if (c <= 0x20 || c >= 0x7f || c == ',') {
        printable = false;
        break;
      }
    }
    if (!printable) continue;  // GREASE-like or binary names cannot be logged or matched sensibly
    if (!out.empty()) out += ',';
    out += p;
  }
  return out;
}

FrontDoorResult SniFrontDoor::onClientBytes(std::span<const uint8_t> data, StreamMeta& meta) {
  // The session hands us the whole prefix read so far; the parser only wants what is new.
  if (data.size() > fed_) {
    parser_.feed(data.subspan(fed_));
    fed_ = data.size();
  }
  switch (parser_.status()) {
    case HelloStatus::NeedMore:
      return FrontDoorResult::needMore();
    case HelloStatus::Done: {
      const ClientHelloInfo& h = parser_.info();
      meta.sni = h.sni;
      meta.alpn = joinAlpn(h.alpn);
      if (!h.sni.empty()) meta.host = h.sni;
      meta.port = meta.local.valid() && meta.local.port() != 0 ? meta.local.port() : listenerPort_;
      return FrontDoorResult::route(0);  // the hello goes upstream untouched
    }
    case HelloStatus::NotTls:
      if (opts_->fallback) {
        meta.host = opts_->fallback->host;
        meta.port = opts_->fallback->port;
        meta.route = "fallback";  // the access log's name for this choice
        return FrontDoorResult::routeTo(0, *opts_->fallback);
      }
      return FrontDoorResult::close(
          Errc::ProtocolError, "not TLS (" + std::string(helloErrorName(parser_.error())) + ")");
    case HelloStatus::Error:
      if (parser_.error() == HelloError::TooLarge) {
        return FrontDoorResult::close(
            Errc::TooLarge,
            "ClientHello larger than " + std::to_string(opts_->maxHelloBytes) + " bytes");
      }
      return FrontDoorResult::close(
          Errc::ProtocolError,
          "malformed ClientHello (" + std::string(helloErrorName(parser_.error())) + ")");
  }
  return FrontDoorResult::close(Errc::ProtocolError, "unreachable");
}

}  // namespace ugate::sni
