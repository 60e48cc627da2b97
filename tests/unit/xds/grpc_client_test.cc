// The gRPC client call layer (src/xds/grpc_client.h) against the server call layer over an
// HTTP/2 client/server pair on a socketpair: bidi echo, statuses from trailers (percent-decoded),
// Trailers-Only and non-200 responses, refusals, deadline, cancel and an oversized response.
#include "xds/grpc_client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <vector>

#include "test_common/test_util.h"
#include "unit/http/h2_test_util.h"
#include "unit/xds/grpc_js.h"
#include "xds/grpc_server.h"

namespace ugate::xds::grpc {
namespace {

using http::test::H2Pair;
using namespace std::chrono_literals;

// Echo (server side): "echo:" + each message; "fail:<code>:<text>" finishes with that status;
// half-close finishes OK. Hang answers nothing. Both record how their calls ended.
class Echo : public CallHandler {
 public:
  explicit Echo(std::vector<Status>& done, bool hang = false) : done_(done), hang_(hang) {}
  void onMessage(ServerCall& call, std::string m) override {
    if (hang_) return;
    if (m.rfind("fail:", 0) == 0) {
      const size_t colon = m.find(':', 5);
      call.finish({static_cast<Code>(std::stoi(m.substr(5, colon - 5))), m.substr(colon + 1)});
      return;
    }
    call.send("echo:" + m);
  }
  void onHalfClose(ServerCall& call) override {
    if (!hang_) call.finish({});
  }
  void onDone(ServerCall&, const Status& s) override { done_.push_back(s); }

 private:
  std::vector<Status>& done_;
  bool hang_;
};

// Recorder (client side): the messages and the final status of one call.
struct Recorder : ClientCallHandler {
  std::vector<std::string> messages;
  std::optional<Status> status;
  void onMessage(ClientCall&, std::string m) override { messages.push_back(std::move(m)); }
  void onDone(ClientCall&, const Status& s) override { status = s; }
};

class GrpcClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    p_.rt.run([&] {
      server_ = std::make_unique<Server>(p_.rt.reactor());
      server_->addMethod("/t.S/Echo",
                         [this](ServerCall&) { return std::make_unique<Echo>(serverDone_); });
      server_->addMethod("/t.S/Hang",
                         [this](ServerCall&) { return std::make_unique<Echo>(serverDone_, true); });
    });
    p_.onReq = [this](http::H2StreamPtr& s) { server_->handle(std::move(s)); };
  }
  void TearDown() override {
    p_.rt.run([&] {
      calls_.clear();
      server_.reset();
    });
  }

  /** call starts a call of `path` (reactor thread) whose events go to `rec`. */
  ClientCall* call(std::string_view path, Recorder& rec, ClientCallOptions o = {}) {
    ClientCall* raw = nullptr;
    p_.rt.run([&] {
      o.authority = "grpc.test";
      auto c = ClientCall::start(p_.rt.reactor(), *p_.client, path, o, rec);
      raw = c.get();
      if (c) calls_.push_back(std::move(c));
    });
    EXPECT_NE(raw, nullptr);
    return raw;
  }
  bool waitDone(Recorder& rec) {
    return p_.rt.waitFor([&] { return rec.status.has_value(); });
  }

  H2Pair p_;
  std::unique_ptr<Server> server_;
  std::vector<ClientCallPtr> calls_;
  std::vector<Status> serverDone_;  // reactor thread only
};

TEST_F(GrpcClientTest, BidiEcho) {
  Recorder rec;
  ClientCall* c = call("/t.S/Echo", rec);
  p_.rt.run([&] {
    EXPECT_TRUE(c->send("a"));
    EXPECT_TRUE(c->send(""));
    EXPECT_TRUE(c->send(std::string(100000, 'b')));
    c->closeSend();
    EXPECT_FALSE(c->send("late"));
  });
  ASSERT_TRUE(waitDone(rec));
  p_.rt.run([&] {
    EXPECT_EQ(rec.messages,
              (std::vector<std::string>{"echo:a", "echo:", "echo:" + std::string(100000, 'b')}));
    EXPECT_EQ(*rec.status, Status{});
    EXPECT_EQ(serverDone_, std::vector<Status>{Status{}});
    EXPECT_EQ(c->stream().header("content-type"), "application/grpc");
  });
}

TEST_F(GrpcClientTest, StatusFromTrailersIsPercentDecoded) {
  Recorder rec;
  ClientCall* c = call("/t.S/Echo", rec);
  p_.rt.run([&] { c->send("fail:9:not now: 100%\ncaf\xc3\xa9"); });
  ASSERT_TRUE(waitDone(rec));
  p_.rt.run([&] {
    EXPECT_EQ(*rec.status, (Status{Code::FailedPrecondition, "not now: 100%\ncaf\xc3\xa9"}));
  });
}

TEST_F(GrpcClientTest, RefusedCallAndTrailersOnlyAndHttpErrors) {
  Recorder unknown;
  call("/t.S/Nope", unknown);
  ASSERT_TRUE(waitDone(unknown));
  p_.rt.run([&] { EXPECT_EQ(unknown.status->code, Code::Unimplemented); });

  // A server that answers with grpc-status among its headers and no trailers (Trailers-Only).
  p_.onReq = [](http::H2StreamPtr& s) {
    if (s->path() == "/t.S/Only") {
      s->respond(
          200,
          {{"content-type", "application/grpc"}, {"grpc-status", "7"}, {"grpc-message", "no%21"}});
      s->shutdownWrite();
    } else {
      s->respond(503);
    }
  };
  Recorder only, unavailable;
  call("/t.S/Only", only);
  call("/t.S/Down", unavailable);
  ASSERT_TRUE(waitDone(only));
  ASSERT_TRUE(waitDone(unavailable));
  p_.rt.run([&] {
    EXPECT_EQ(*only.status, (Status{Code::PermissionDenied, "no!"}));
    EXPECT_EQ(*unavailable.status, (Status{Code::Unavailable, "HTTP status 503"}));
  });
}

TEST_F(GrpcClientTest, DeadlineAndCancel) {
  Recorder late, cancelled;
  ClientCallOptions o;
  o.timeout = 20ms;
  call("/t.S/Hang", late, o);
  ClientCall* c = call("/t.S/Hang", cancelled);
  p_.rt.run([&] { c->send("x"); });
  ASSERT_TRUE(waitDone(late));
  p_.rt.run([&] {
    EXPECT_EQ(late.status->code, Code::DeadlineExceeded);
    c->cancel();
    EXPECT_EQ(*cancelled.status, (Status{Code::Cancelled, "cancelled by the client"}));
    EXPECT_FALSE(c->send("y"));
  });
  // Both server calls ended: the deadline (its own timer or the client's reset) and the reset.
  ASSERT_TRUE(p_.rt.waitFor([&] { return serverDone_.size() == 2; }));
  p_.rt.run([&] {
    EXPECT_EQ(server_->activeCalls(), 0u);
    bool sawCancel = false;
    for (const Status& s : serverDone_) sawCancel |= s.code == Code::Cancelled;
    EXPECT_TRUE(sawCancel);
  });
}

TEST_F(GrpcClientTest, OversizedResponseEndsTheCall) {
  Recorder rec;
  ClientCallOptions o;
  o.maxRecvMessageBytes = 8;
  ClientCall* c = call("/t.S/Echo", rec, o);
  p_.rt.run([&] {
    c->send("hi");       // "echo:hi": 7 bytes, fine
    c->send("toolong");  // "echo:toolong": 12 bytes, over
  });
  ASSERT_TRUE(waitDone(rec));
  p_.rt.run([&] {
    EXPECT_EQ(rec.messages, std::vector<std::string>{"echo:hi"});
    EXPECT_EQ(rec.status->code, Code::ResourceExhausted);
  });
}

// @grpc/grpc-js (npm) as the server: our client must speak gRPC as a real implementation reads
// it, and read its messages and trailers. Skipped without node, npm or the network.
TEST(GrpcClientJsTest, CallsAGrpcJsServer) {
  std::string why;
  const std::string node = test::grpcJsCommand(why);
  if (node.empty()) GTEST_SKIP() << why;
  // The server runs until killed: the guard kills it however the test ends.
  struct Peer {
    FILE* out{nullptr};
    int pid{0};
    ~Peer() {
      if (pid > 0) kill(pid, SIGTERM);
      if (out != nullptr) pclose(out);
    }
  } peer;
  peer.out = popen((node + test::grpcJsScript("grpc_js_server.js") + " 2>&1").c_str(), "r");
  ASSERT_NE(peer.out, nullptr);
  char line[512] = {};
  unsigned port = 0;
  const bool listening = fgets(line, sizeof line, peer.out) != nullptr &&
                         sscanf(line, "listening %u %d", &port, &peer.pid) == 2;
  ASSERT_TRUE(listening) << line;
  const int fd = ugate::test::connectTcp(static_cast<uint16_t>(port));
  ASSERT_GE(fd, 0);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

  struct Callbacks : http::H2ConnectionCallbacks {
    void onRequest(http::H2Connection&, http::H2StreamPtr) override {}
    void onConnectionClosed(http::H2Connection&, Errc, const std::string&) override {}
  } callbacks;
  http::test::ReactorThread rt;
  http::H2ConnectionPtr conn;
  ClientCallPtr echo, failing;
  Recorder echoed, refused;
  rt.run([&] {
    conn = http::H2Connection::create(rt.reactor(), std::make_unique<TcpStream>(rt.reactor(), fd),
                                      http::H2Connection::Role::Client, {}, callbacks);
    conn->start();
    ClientCallOptions o;
    o.authority = "127.0.0.1:" + std::to_string(port);
    o.timeout = 20s;
    echo = ClientCall::start(rt.reactor(), *conn, "/test.Echo/Echo", o, echoed);
    failing = ClientCall::start(rt.reactor(), *conn, "/test.Echo/Echo", o, refused);
    ASSERT_TRUE(echo && failing);
    echo->send("hello");
    echo->send("");
    echo->send("world");
    echo->closeSend();
    failing->send("fail");
  });
  ASSERT_TRUE(rt.waitFor([&] { return echoed.status && refused.status; }));
  rt.run([&] {
    EXPECT_EQ(echoed.messages, (std::vector<std::string>{"js:hello", "js:", "js:world"}));
    EXPECT_EQ(echoed.status->code, Code::Ok);  // grpc-js sends grpc-message "OK" with it
    EXPECT_EQ(*refused.status, (Status{Code::FailedPrecondition, "js says no: 100%\ncaf\xc3\xa9"}));
    echo.reset();
    failing.reset();
    conn.reset();
  });
}

}  // namespace
}  // namespace ugate::xds::grpc
