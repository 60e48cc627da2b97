// libFuzzer target for the gRPC server call layer (src/xds/grpc_server.h) on the HTTP/2 server:
// arbitrary bytes are the client's half of a connection (the seeds are real nghttp gRPC requests),
// fed through an in-memory transport on a simulated reactor whose requests go to a grpc::Server
// serving an echo method and the ADS method (DiscoveryRequest in, DiscoveryResponse out).
//
// Byte 0 (control): bits 0-3 the read split size (1 + n*97 bytes), bit 4 the transport takes
// writes only in small bites (backpressure), bit 6 the input ends with EOF, bit 7 the Server is
// destroyed before the connection (else after).
// Invariants: nothing crashes or leaks (ASan); once the connection is dead (the keepalive PING
// is never answered) every call has ended, each with exactly one onDone.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "http/h2_connection.h"
#include "sim_h2.h"
#include "xds/grpc_server.h"
#include "xds/messages.h"

namespace {

using namespace ugate;
using namespace ugate::xds;
using namespace ugate::xds::grpc;
using namespace ugate::fuzz;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Counts: calls started and ended (onDone), over every handler.
struct Counts {
  int started{0};
  int ended{0};
};

// Echo: "echo:" + each message; a message "fail" finishes INVALID_ARGUMENT; half-close finishes OK.
class Echo : public CallHandler {
 public:
  explicit Echo(Counts& c) : c_(c) { ++c_.started; }
  void onMessage(ServerCall& call, std::string m) override {
    if (m == "fail") {
      call.finish({Code::InvalidArgument, "asked to fail: 100%"});
      return;
    }
    call.send("echo:" + m);
  }
  void onHalfClose(ServerCall& call) override { call.finish({}); }
  void onDone(ServerCall& call, const Status&) override {
    check(!ended_);
    ended_ = true;
    ++c_.ended;
    check(!call.send("late"));
  }

 private:
  Counts& c_;
  bool ended_{false};
};

// Ads: a DiscoveryResponse for each DiscoveryRequest that parses; INVALID_ARGUMENT otherwise.
class Ads : public Echo {
 public:
  using Echo::Echo;
  void onMessage(ServerCall& call, std::string m) override {
    envoy::service::discovery::v3::DiscoveryRequest req;
    if (!parseMessage(m, req)) {
      call.finish({Code::InvalidArgument, "not a DiscoveryRequest"});
      return;
    }
    envoy::service::discovery::v3::DiscoveryResponse resp;
    resp.set_type_url(req.type_url());
    resp.set_version_info(req.version_info());
    resp.set_nonce(req.response_nonce() + "+1");
    call.send(serializeDeterministic(resp));
  }
};

struct App : http::H2ConnectionCallbacks {
  Server* server{nullptr};
  bool closed{false};
  void onRequest(http::H2Connection&, http::H2StreamPtr s) override {
    if (server != nullptr) server->handle(std::move(s));
  }
  void onConnectionClosed(http::H2Connection& c, Errc, const std::string&) override {
    check(c.closed());
    closed = true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // refused calls and dead connections: not per input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t ctl = data[0];
  const bool smallWrites = ctl & 16;
  const bool eofAtEnd = ctl & 64;
  const bool serverFirst = ctl & 128;
  SimReactor r;
  Counts counts;
  ServerOptions so;
  so.maxRecvMessageBytes = 4096;
  auto server = std::make_unique<Server>(r, so);
  server->addMethod("/test.Echo/Echo",
                    [&counts](ServerCall&) { return std::make_unique<Echo>(counts); });
  server->addMethod(std::string(kStreamAdsPath),
                    [&counts](ServerCall&) { return std::make_unique<Ads>(counts); });
  App app;
  app.server = server.get();
  http::H2Options o;
  o.pingInterval = Duration{1000};
  o.pingTimeout = Duration{500};
  o.streamWindow = 65535;
  o.streamWriteCap = 16384;
  o.maxConcurrentStreams = 32;
  o.maxHeaderListBytes = 4096;
  auto t = std::make_unique<MemTransport>(smallWrites);
  MemTransport* tp = t.get();
  http::H2ConnectionPtr c =
      http::H2Connection::create(r, std::move(t), http::H2Connection::Role::Server, o, app);
  c->start();
  feedInput(r, *tp, data, size, readStep(ctl), eofAtEnd, smallWrites, [&] { return c->closed(); });
  // The keepalive runs its course (nobody answers the PING): the connection dies, and with it
  // every call still open.
  for (int i = 0; i < 6; ++i) {
    if (smallWrites) tp->writable();
    r.turn(Duration{400});
  }
  check(c->closed() && app.closed);
  check(server->activeCalls() == 0);
  check(counts.started == counts.ended);
  if (serverFirst) {
    server.reset();
    app.server = nullptr;
    c.reset();
  } else {
    c.reset();
    server.reset();
  }
  r.turn(Duration{1});
  return 0;
}
