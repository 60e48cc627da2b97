// libFuzzer target for the `quic` listener's packet entry point: datagrams go straight into
// QuicEndpoint::datagram (src/quic/quic_endpoint.cc) as if read from its socket — version and CID
// decoding, the worker's CID table, Version Negotiation, stateless resets, tokens and Retry,
// ngtcp2_accept and a server QuicConn with the real crypto glue and a BoringSSL server context
// (self-signed P-256; quic_fuzz_server_context.h) — and runPending() lets the connections answer. The socket is a UDP
// socket on 127.0.0.1 whose replies go to a capture socket on 127.0.0.1, drained after each input.
// The listener comes from a parsed config (kind quic, Retry "never", or "always" when the first
// input byte is odd).
//
// Input: byte 0 picks the listener (bit 0: Retry always); then records (u16 big-endian length +
// bytes), each one datagram from the capture socket's address to the listener's. Seeds: the RFC 9001
// Appendix A client Initial (alone, twice, and with a short-header packet after it).
// Contract: no crash, no leak, no sanitizer report; malformed input is dropped and counted.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include <ugate/config.h>
#include <ugate/listener.h>
#include <ugate/listener_stats.h>
#include <ugate/module.h>
#include <ugate/pipe_pool.h>
#include <ugate/reactor.h>
#include <ugate/splicer.h>
#include <ugate/tls_provider.h>
#include <ugate/worker_context.h>

#include "auth/crypto.h"
#include "core/proxy_session.h"
#include "quic/quic_crypto.h"
#include "quic/quic_endpoint.h"
#include "quic/quic_module.h"
#include "quic_fuzz_server_context.h"
#include "../tests/tools/tool_tls.h"

namespace {

using namespace ugate;
using namespace ugate::quic;

using fuzz::serverContext;

class FuzzTls final : public TlsProvider {
 public:
  HandshakingStreamPtr server(const ListenerTlsConfig&, StreamPtr, Reactor&, Duration, Done) const override {
    return nullptr;
  }
  HandshakingStreamPtr client(const UpstreamTlsConfig&, std::string_view, std::string_view, StreamPtr, Reactor&,
                              Duration, Done) const override {
    return nullptr;
  }
  TlsSessionPtr serverSession(const ListenerTlsConfig&) const override { return std::make_unique<tools::ToolTls>(serverContext()); }
  TlsSessionPtr clientSession(const UpstreamTlsConfig&, std::string_view, std::string_view) const override {
    return nullptr;
  }
  const std::string& nodeId() const override { return id_; }

 private:
  std::string id_{"FUZZ"};
};

class NoRoutes final : public Router {
 public:
  RouteDecision route(const StreamMeta&) const override { return {}; }
};
class NoDns final : public Resolver {
 public:
  DnsQueryPtr resolve(const std::string&, uint16_t, DnsCallback cb) override {
    cb(makeError(Errc::DnsFailure, "fuzz"));
    return nullptr;
  }
};
class NoLog final : public AccessLogSink {
 public:
  void log(const StreamMeta&) override {}
};

/** The one worker: a reactor that is never run (the target drives the endpoint by hand). */
class FuzzWorker final : public WorkerContext {
 public:
  explicit FuzzWorker(ConfigPtr cfg)
      : cfg_(std::move(cfg)), reactor_(newReactor(realTimeSource(), 0)), pipes_(65536, 0),
        splice_{*reactor_, pipes_, scratch_, sizeof(scratch_)}, tls_(std::make_shared<FuzzTls>()) {}
  int index() const override { return 0; }
  Reactor& reactor() override { return *reactor_; }
  Resolver& resolver() override { return dns_; }
  const Router& router() const override { return routes_; }
  const Config& config() const override { return *cfg_; }
  const std::shared_ptr<const TlsProvider>& tls() const override { return tls_; }
  TunnelDialer* tunnels() const override { return nullptr; }
  ModuleWorker* moduleWorker(const Module&) const override { return nullptr; }
  SpliceContext& spliceContext() override { return splice_; }
  AccessLogSink& accessLog() override { return log_; }
  ListenerStats& stats(const std::string& listener) override { return stats_[listener]; }
  uint64_t nextStreamId() override { return ++ids_; }
  bool logBudget() override { return false; }
  void pauseAccepting(const std::string&) override {}
  void addFdWaiter(int) override {}
  void startSession(StreamPtr, StreamMeta, SessionStart) override {}
  void addSession(std::unique_ptr<ProxySession>) override {}
  void removeSession(ProxySession*) override {}

 private:
  ConfigPtr cfg_;
  ReactorPtr reactor_;
  PipePool pipes_;
  uint8_t scratch_[16384];
  SpliceContext splice_;
  std::shared_ptr<const TlsProvider> tls_;
  NoRoutes routes_;
  NoDns dns_;
  NoLog log_;
  std::map<std::string, ListenerStats> stats_;
  uint64_t ids_{0};
};

ConfigPtr listenerConfig(bool retry) {
  static const bool registered = [] {
    modules().add(std::make_unique<QuicModule>(), listenerKinds());
    return true;
  }();
  (void)registered;
  std::string json = std::string(R"({"node": {"dataDir": "/nonexistent"}, "listeners": [{"name": "q", "kind": "quic",
      "address": "127.0.0.1:4433", "tls": {"requireClientCert": false}, "quic": {"retry": ")") +
                     (retry ? "always" : "never") + R"("}}]})";
  auto r = parseConfig(json, "fuzz");
  if (!r) __builtin_trap();
  return *r;
}

/** A UDP socket bound to 127.0.0.1 on a port the kernel picks. */
int udpSocket(SocketAddress& bound) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) __builtin_trap();
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  bound = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&a), len);
  return fd;
}

struct Fixture {
  Fixture() {
    capture = udpSocket(peer);
    for (int retry = 0; retry < 2; ++retry) configs[retry] = listenerConfig(retry != 0);
  }
  int capture;
  SocketAddress peer;  // the capture's address: where the datagrams "come from" and replies go
  ConfigPtr configs[2];
  QuicShared shared;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fx = new Fixture();
  if (size < 1) return 0;
  const bool retry = (data[0] & 1) != 0;
  ConfigPtr cfg = fx->configs[retry ? 1 : 0];
  {
    FuzzWorker w(cfg);
    auto qw = std::make_unique<QuicWorker>(w, fx->shared);
    fx->shared.workers.assign(1, qw.get());
    SocketAddress local;
    int fd = udpSocket(local);
    const ListenerConfig& l = cfg->listeners.at(0);
    auto ep = std::make_unique<QuicEndpoint>(w, *qw, l, fd);  // owns fd
    PathAddrs path{local, fx->peer};
    size_t off = 1;
    while (off + 2 <= size) {
      size_t len = (static_cast<size_t>(data[off]) << 8) | data[off + 1];
      off += 2;
      if (len > size - off) len = size - off;
      ep->datagram(data + off, len, path, 0);
      ep->runPending();
      off += len;
    }
    // Free the connections that died (their deferred deletion reaches the endpoint), as the worker's
    // loop does before anything can destroy an endpoint: run() after exit() only runs what is left.
    w.reactor().exit();
    w.reactor().run();
    ep.reset();
    fx->shared.workers.assign(1, nullptr);
    qw.reset();
  }
  uint8_t buf[2048];
  size_t captured = 0;
  while (::recv(fx->capture, buf, sizeof(buf), 0) > 0) ++captured;
#ifdef QUIC_ENDPOINT_FUZZ_VERBOSE  // seeing what a seed reaches: build with -DQUIC_ENDPOINT_FUZZ_VERBOSE
  const QuicCounters& k = fx->shared.counters;
  fprintf(stderr, "captured %zu datagrams; packets out %llu, retry %llu, version negotiation %llu, resets %llu\n",
          captured, static_cast<unsigned long long>(k.packetsOut.load()),
          static_cast<unsigned long long>(k.retrySent.load()),
          static_cast<unsigned long long>(k.versionNegotiationSent.load()),
          static_cast<unsigned long long>(k.statelessResetsSent.load()));
#else
  (void)captured;
#endif
  return 0;
}
