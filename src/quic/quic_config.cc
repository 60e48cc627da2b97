// The `quic` listener kind: its options (the only file of src/quic that sees JSON) and validation.
#include <algorithm>

#include <nlohmann/json.hpp>

#include <ugate/config.h>
#include <ugate/config_json.h>

#include "quic/quic_config.h"
#include "quic/quic_options.h"

namespace ugate::quic {

namespace {

using namespace cfgjson;

QuicTuning parseTuning(const nlohmann::json& j, const std::string& path) {
  QuicTuning t;
  checkKeys(j, path, {"idleTimeout", "handshakeTimeout", "maxStreams", "streamWindow", "connectionWindow",
                      "maxConnections", "retry", "retryAbove"});
  if (j.contains("idleTimeout")) t.idleTimeout = getDuration(j["idleTimeout"], path + ".idleTimeout");
  if (j.contains("handshakeTimeout")) {
    t.handshakeTimeout = getDuration(j["handshakeTimeout"], path + ".handshakeTimeout");
  }
  if (t.idleTimeout.count() <= 0) fail(path + ".idleTimeout", "must be positive");
  if (t.handshakeTimeout.count() <= 0) fail(path + ".handshakeTimeout", "must be positive");
  if (j.contains("maxStreams")) t.maxStreams = static_cast<uint64_t>(getInt(j["maxStreams"], path + ".maxStreams", 1, 1 << 20));
  if (j.contains("streamWindow")) {
    t.streamWindow = static_cast<uint64_t>(getInt(j["streamWindow"], path + ".streamWindow", 16 << 10, 1 << 30));
  }
  if (j.contains("connectionWindow")) {
    t.connectionWindow =
        static_cast<uint64_t>(getInt(j["connectionWindow"], path + ".connectionWindow", 16 << 10, 1 << 30));
  }
  if (t.connectionWindow < t.streamWindow) {
    fail(path + ".connectionWindow", "smaller than streamWindow: one stream could never fill its window");
  }
  if (j.contains("maxConnections")) {
    t.maxConnections = static_cast<uint32_t>(getInt(j["maxConnections"], path + ".maxConnections", 1, 1'000'000));
  }
  if (j.contains("retry")) {
    std::string r = getString(j["retry"], path + ".retry");
    if (r == "never") {
      t.retry = RetryPolicy::Never;
    } else if (r == "always") {
      t.retry = RetryPolicy::Always;
    } else if (r == "underLoad") {
      t.retry = RetryPolicy::UnderLoad;
    } else {
      fail(path + ".retry", "'" + r + "' is not one of never, always, underLoad");
    }
  }
  if (j.contains("retryAbove")) {
    t.retryAbove = static_cast<uint32_t>(getInt(j["retryAbove"], path + ".retryAbove", 0, 1'000'000));
  }
  return t;
}

Result<ListenerOptionsPtr> parseQuicOptions(const nlohmann::json& j, const std::string& path) {
  auto o = std::make_shared<QuicListenerOptions>();
  try {
    if (j.contains("quic")) o->tuning = parseTuning(j["quic"], path + ".quic");
    if (j.contains("push")) {
      o->push = getString(j["push"], path + ".push");
      if (o->push.empty()) fail(path + ".push", "names no listener (the name of a `push` listener)");
    }
  } catch (const ConfigError& e) {
    return makeError(Errc::InvalidArgument, e.msg);
  }
  return ListenerOptionsPtr(std::move(o));
}

// Keys every listener accepts that mean nothing for QUIC: refused rather than ignored.
Result<void> validateQuicListener(const ListenerConfig& l, const std::string& path) {
  auto refuse = [&](const char* key, const char* why) {
    return makeError(Errc::InvalidArgument, path + "." + key + ": does not apply to kind 'quic' (" + why + ")");
  };
  if (l.proxyProtocol != 0) return refuse("proxyProtocol", "set it on a route instead");
  if (l.acceptProxyProtocol) return refuse("acceptProxyProtocol", "a PROXY header cannot precede QUIC");
  if (l.sniffTimeout) return refuse("sniffTimeout", "QUIC has no sniffing phase");
  if (!l.tls) return makeError(Errc::InvalidArgument, path + ".tls: kind 'quic' always runs TLS 1.3");
  for (const auto& a : l.tls->alpn) {
    if (a != kAlpnH3 && a != kAlpnMesh && a != kAlpnMeshReverse) {
      return makeError(Errc::InvalidArgument, path + ".tls.alpn: '" + a + "' is not served over QUIC (known: " +
                                                  std::string(kAlpnH3) + ", " + std::string(kAlpnMesh) + ", " +
                                                  std::string(kAlpnMeshReverse) + ")");
    }
    if ((a == kAlpnMesh || a == kAlpnMeshReverse) && !l.tls->requireClientCert) {
      return makeError(Errc::InvalidArgument, path + ".tls.alpn: '" + a +
                                                  "' (the mesh over QUIC) needs requireClientCert: mesh peers are nodes");
    }
  }
  return {};
}

}  // namespace

void checkQuicPush(const Config& c, cfgjson::ConfigErrors& errs) {
  for (size_t i = 0; i < c.listeners.size(); ++i) {
    const ListenerConfig& l = c.listeners[i];
    auto o = std::dynamic_pointer_cast<const QuicListenerOptions>(l.options);
    if (l.kind != "quic" || !o || o->push.empty()) continue;
    const std::string path = "listeners[" + std::to_string(i) + "].push";
    const ListenerConfig* target = nullptr;
    for (const auto& other : c.listeners) {
      if (other.name == o->push) target = &other;
    }
    if (target == nullptr) {
      errs.add(path, "no listener is named '" + o->push + "' (the name of a `push` listener)");
    } else if (target->kind != "push") {
      errs.add(path, "listener '" + o->push + "' is of kind '" + target->kind + "', not 'push'");
    } else if (l.tls && std::find(l.tls->alpn.begin(), l.tls->alpn.end(), kAlpnH3) == l.tls->alpn.end()) {
      errs.add(path, "the listener does not offer ALPN h3 (tls.alpn): the push service is served over HTTP/3");
    }
  }
}

ListenerKindSpec quicKindSpec() {
  ListenerKindSpec k;
  k.name = "quic";
  k.streamKind = StreamKind::Quic;
  k.datagram = true;
  k.dialsRequested = true;  // CONNECT names its destination
  k.optionKeys = {"quic", "push"};
  auto tls = std::make_shared<ListenerTlsConfig>();
  tls->requireClientCert = true;
  tls->alpn = {std::string(kAlpnH3)};
  k.defaultTls = std::move(tls);
  k.parseOptions = parseQuicOptions;
  k.validate = validateQuicListener;
  return k;
}

}  // namespace ugate::quic
