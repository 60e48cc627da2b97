// MuxTransports (ugate/mux.h): transports by name, and the acceptor that takes accepted connections.
#include <ugate/mux.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "test_common/fake_worker_context.h"

namespace ugate {
namespace {

class NamedTransport final : public MuxTransport {
 public:
  NamedTransport(std::string name, int t) : name_(std::move(name)), tag(t) {}
  std::string_view name() const override { return name_; }
  Result<MuxConnectionPtr> dial(WorkerContext&, const MuxDialParams&, MuxConnectionCallbacks&) override {
    return makeError(Errc::NotSupported, "test");
  }
  std::string name_;
  int tag;
};

class InertConnection final : public MuxConnection {
 public:
  explicit InertConnection(bool* destroyed) : destroyed_(destroyed) {}
  ~InertConnection() override { *destroyed_ = true; }
  std::string_view transport() const override { return "test"; }
  void setCallbacks(MuxConnectionCallbacks*) override {}
  StreamPtr open(const std::string&, const MuxFields&, Answer) override { return nullptr; }
  bool canOpen() const override { return false; }
  size_t activeStreams() const override { return 0; }
  bool ready() const override { return true; }
  bool closed() const override { return false; }
  const PeerIdentity* peer() const override { return nullptr; }
  const std::string& alpn() const override { return alpn_; }
  SocketAddress peerAddress() const override { return {}; }
  SocketAddress localAddress() const override { return {}; }
  void goAway() override {}
  void close() override {}

 private:
  bool* destroyed_;
  std::string alpn_{"test"};
};

TEST(MuxTransports, FindsByNameAndALaterRegistrationReplaces) {
  MuxTransports r;
  EXPECT_EQ(r.find("quic"), nullptr);
  r.add(std::make_shared<NamedTransport>("quic", 1));
  r.add(std::make_shared<NamedTransport>("other", 2));
  ASSERT_NE(r.find("quic"), nullptr);
  EXPECT_EQ(static_cast<NamedTransport*>(r.find("quic"))->tag, 1);
  r.add(std::make_shared<NamedTransport>("quic", 3));
  EXPECT_EQ(static_cast<NamedTransport*>(r.find("quic"))->tag, 3);
  EXPECT_EQ(static_cast<NamedTransport*>(r.find("other"))->tag, 2);
  EXPECT_EQ(r.find("h2"), nullptr);
}

TEST(MuxTransports, AcceptWithoutAcceptorLeavesTheConnectionToTheCaller) {
  MuxTransports r;
  test::FakeWorkerContext w;
  bool destroyed = false;
  MuxConnectionPtr c = std::make_unique<InertConnection>(&destroyed);
  EXPECT_FALSE(r.accept(w, "q", c));
  EXPECT_NE(c, nullptr);  // the transport closes it itself
  EXPECT_FALSE(destroyed);
}

TEST(MuxTransports, TheAcceptorTakesTheConnectionWithItsListenerAndWorker) {
  MuxTransports r;
  test::FakeWorkerContext w;
  std::string gotListener;
  WorkerContext* gotWorker = nullptr;
  MuxConnectionPtr kept;
  r.setAcceptor([&](WorkerContext& wc, const std::string& listener, MuxConnectionPtr c) {
    gotWorker = &wc;
    gotListener = listener;
    kept = std::move(c);
  });
  bool destroyed = false;
  MuxConnectionPtr c = std::make_unique<InertConnection>(&destroyed);
  EXPECT_TRUE(r.accept(w, "qmesh", c));
  EXPECT_EQ(c, nullptr);
  EXPECT_NE(kept, nullptr);
  EXPECT_EQ(gotListener, "qmesh");
  EXPECT_EQ(gotWorker, &w);
  r.setAcceptor(nullptr);  // withdrawn: back to the caller
  MuxConnectionPtr d = std::make_unique<InertConnection>(&destroyed);
  EXPECT_FALSE(r.accept(w, "qmesh", d));
  EXPECT_NE(d, nullptr);
}

TEST(MuxField, FirstValueOrEmpty) {
  MuxFields f{{"x-ugate-hops", "A"}, {"x-ugate-error", "not_exposed"}, {"x-ugate-hops", "B"}};
  EXPECT_EQ(muxField(f, "x-ugate-hops"), "A");
  EXPECT_EQ(muxField(f, "x-ugate-error"), "not_exposed");
  EXPECT_EQ(muxField(f, "traceparent"), "");
}

}  // namespace
}  // namespace ugate
