// The gRPC server call layer (src/xds/grpc_server.h) against a real peer: nghttp (nghttp2's
// client, h2c with prior knowledge) sends gRPC requests to an H2Connection on a loopback socket
// (port 0) whose requests go to a grpc::Server. Checked in nghttp's verbose output: the echoed
// messages, the status trailers (grpc-status, percent-encoded grpc-message), HTTP 405/415, and
// the refusals (unknown method, te, compression, oversized message, malformed grpc-timeout); a
// deadline from grpc-timeout ends a call that never finishes (the test asserts no timing).
#include "xds/grpc_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <ugate/tcp_stream.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <vector>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "unit/http/h2_test_util.h"
#include "unit/xds/grpc_js.h"
#include "xds/messages.h"

namespace ugate::xds::grpc {
namespace {

namespace discovery = envoy::service::discovery::v3;

constexpr std::string_view kEcho = "/test.Echo/Echo";
constexpr std::string_view kHang = "/test.Hang/Hang";

// Echo: answers each message with "echo:" + it; finishes OK on half-close, or with the status a
// message "fail:<code>:<text>" names.
class Echo : public CallHandler {
 public:
  explicit Echo(std::vector<Status>& done) : done_(done) {}
  void onMessage(ServerCall& call, std::string m) override {
    if (m.rfind("fail:", 0) == 0) {
      const size_t colon = m.find(':', 5);
      call.finish({static_cast<Code>(std::stoi(m.substr(5, colon - 5))), m.substr(colon + 1)});
      return;
    }
    call.send("echo:" + m);
  }
  void onHalfClose(ServerCall& call) override { call.finish({}); }
  void onDone(ServerCall&, const Status& s) override { done_.push_back(s); }

 private:
  std::vector<Status>& done_;
};

// Hang: never answers nor finishes; only the deadline ends its calls.
class Hang : public Echo {
 public:
  using Echo::Echo;
  void onMessage(ServerCall&, std::string) override {}
  void onHalfClose(ServerCall&) override {}
};

// Ads: a DiscoveryResponse of the requested type for each DiscoveryRequest.
class Ads : public CallHandler {
 public:
  void onMessage(ServerCall& call, std::string m) override {
    discovery::DiscoveryRequest req;
    if (!parseMessage(m, req)) {
      call.finish({Code::InvalidArgument, "not a DiscoveryRequest"});
      return;
    }
    discovery::DiscoveryResponse resp;
    resp.set_version_info("1");
    resp.set_type_url(req.type_url());
    resp.set_nonce("n-" + req.node().id());
    call.send(serializeDeterministic(resp));
  }
  void onHalfClose(ServerCall& call) override { call.finish({}); }
};

std::string framed(std::string_view m) { return encodeMessage(m); }

class GrpcServerTest : public ::testing::Test, public http::H2ConnectionCallbacks {
 protected:
  void SetUp() override {
    if (access("/usr/bin/nghttp", X_OK) != 0)
      GTEST_SKIP() << "nghttp (nghttp2-client) is not installed";
    listenFd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listenFd_, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listenFd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(listen(listenFd_, 8), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(getsockname(listenFd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
    rt_.run([&] {
      ServerOptions o;
      o.maxRecvMessageBytes = 64;
      server_ = std::make_unique<Server>(rt_.reactor(), o);
      server_->addMethod(std::string(kEcho),
                         [this](ServerCall&) { return std::make_unique<Echo>(done_); });
      server_->addMethod(std::string(kHang),
                         [this](ServerCall&) { return std::make_unique<Hang>(done_); });
      server_->addMethod(std::string(kStreamAdsPath),
                         [](ServerCall&) { return std::make_unique<Ads>(); });
    });
  }
  void TearDown() override {
    rt_.run([&] {
      server_.reset();
      conns_.clear();
    });
    if (listenFd_ >= 0) close(listenFd_);
  }

  // http::H2ConnectionCallbacks
  void onRequest(http::H2Connection&, http::H2StreamPtr s) override {
    server_->handle(std::move(s));
  }
  void onConnectionClosed(http::H2Connection&, Errc, const std::string&) override {}

  /**
   * nghttp runs one request (POST with `body` when it is not empty, else GET) with `headers`,
   * serves its connection, and returns nghttp's verbose output (frames, headers and the body).
   */
  std::string nghttp(std::string_view path, const std::vector<std::string>& headers,
                     const std::string& body) {
    std::string cmd = "nghttp -v -t 20";
    const std::string bodyFile = ::testing::TempDir() + "grpc_body_" + std::to_string(port_);
    if (!body.empty()) {
      std::ofstream(bodyFile, std::ios::binary) << body;
      cmd += " -d " + bodyFile;
    }
    for (const auto& h : headers) cmd += " -H '" + h + "'";
    cmd += " http://127.0.0.1:" + std::to_string(port_) + std::string(path);
    std::string out = runPeer(cmd);
    unlink(bodyFile.c_str());
    return out;
  }

  /**
   * runPeer starts the shell command `cmd` (a client of port_), serves the one connection it
   * makes, and returns its output (stdout and stderr) once it exits.
   */
  std::string runPeer(const std::string& cmd) {
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (p == nullptr) return "popen failed";
    pollfd pfd{listenFd_, POLLIN, 0};
    if (poll(&pfd, 1, 20000) == 1) {
      const int fd = accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      rt_.run([&] {
        auto c = http::H2Connection::create(rt_.reactor(),
                                            std::make_unique<TcpStream>(rt_.reactor(), fd),
                                            http::H2Connection::Role::Server, {}, *this);
        c->start();
        conns_.push_back(std::move(c));
      });
    }
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
  }

  /** grpcRequest: a well-formed gRPC POST of `body` plus `extra` headers. */
  std::string grpcRequest(std::string_view path, const std::string& body,
                          std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"content-type: application/grpc", "te: trailers"});
    return nghttp(path, extra, body.empty() ? framed("") : body);
  }

  std::vector<Status> doneStatuses() {
    std::vector<Status> copy;
    rt_.run([&] { copy = done_; });
    return copy;
  }

  http::test::ReactorThread rt_;
  std::unique_ptr<Server> server_;
  std::vector<http::H2ConnectionPtr> conns_;
  std::vector<Status> done_;  // reactor thread only
  int listenFd_{-1};
  uint16_t port_{0};
};

bool has(const std::string& out, std::string_view what) {
  return out.find(what) != std::string::npos;
}

TEST_F(GrpcServerTest, BidiEchoEndsWithOkTrailers) {
  const std::string out = grpcRequest(kEcho, framed("hello") + framed("") + framed("world"));
  EXPECT_TRUE(has(out, ":status: 200")) << out;
  EXPECT_TRUE(has(out, "content-type: application/grpc")) << out;
  EXPECT_TRUE(has(out, framed("echo:hello") + framed("echo:") + framed("echo:world"))) << out;
  EXPECT_TRUE(has(out, "grpc-status: 0")) << out;
  EXPECT_FALSE(has(out, "grpc-message")) << out;
  EXPECT_EQ(doneStatuses(), std::vector<Status>{Status{}});
  rt_.run([&] { EXPECT_EQ(server_->activeCalls(), 0u); });
}

TEST_F(GrpcServerTest, StatusMessageIsPercentEncoded) {
  const std::string out =
      grpcRequest(kEcho, framed("one") + framed("fail:3:bad: 100%\ncaf\xc3\xa9"));
  EXPECT_TRUE(has(out, framed("echo:one"))) << out;
  EXPECT_TRUE(has(out, "grpc-status: 3")) << out;
  EXPECT_TRUE(has(out, "grpc-message: bad: 100%25%0Acaf%C3%A9")) << out;
  EXPECT_EQ(doneStatuses(),
            (std::vector<Status>{{Code::InvalidArgument, "bad: 100%\ncaf\xc3\xa9"}}));
}

TEST_F(GrpcServerTest, HttpErrorsForNonGrpcRequests) {
  EXPECT_TRUE(has(nghttp(kEcho, {}, ""), ":status: 405"));
  const std::string out = nghttp(kEcho, {"content-type: application/json", "te: trailers"}, "{}");
  EXPECT_TRUE(has(out, ":status: 415")) << out;
  EXPECT_FALSE(has(out, "grpc-status")) << out;
}

TEST_F(GrpcServerTest, RefusedCallsGetTheirStatus) {
  std::string out = grpcRequest("/test.Nope/Nope", framed("x"));
  EXPECT_TRUE(has(out, ":status: 200") && has(out, "grpc-status: 12")) << out;
  EXPECT_TRUE(has(out, "grpc-message: unknown method /test.Nope/Nope")) << out;

  out = nghttp(kEcho, {"content-type: application/grpc"}, framed("x"));
  EXPECT_TRUE(has(out, "grpc-status: 13")) << out;  // no te: trailers

  out = grpcRequest(kEcho, framed("x"), {"grpc-encoding: gzip"});
  EXPECT_TRUE(has(out, "grpc-status: 12") && has(out, "grpc-accept-encoding: identity")) << out;

  out = grpcRequest(kEcho, framed("x"), {"grpc-timeout: 5 S"});
  EXPECT_TRUE(has(out, "grpc-status: 13") && has(out, "malformed grpc-timeout")) << out;
  EXPECT_TRUE(doneStatuses().empty());  // none of them became a call
}

TEST_F(GrpcServerTest, BadMessagesEndTheCall) {
  std::string out = grpcRequest(kEcho, framed("ok") + std::string("\1\0\0\0\1z", 6));
  EXPECT_TRUE(has(out, framed("echo:ok")) && has(out, "grpc-status: 12")) << out;

  out = grpcRequest(kEcho, framed(std::string(65, 'a')));  // the limit is 64
  EXPECT_TRUE(has(out, "grpc-status: 8")) << out;

  out = grpcRequest(kEcho, std::string("\0\0\0\0\7abc", 8));  // ends inside the message
  EXPECT_TRUE(has(out, "grpc-status: 13")) << out;
  const auto done = doneStatuses();
  ASSERT_EQ(done.size(), 3u);
  EXPECT_EQ(done[0].code, Code::Unimplemented);
  EXPECT_EQ(done[1].code, Code::ResourceExhausted);
  EXPECT_EQ(done[2].code, Code::Internal);
}

TEST_F(GrpcServerTest, DeadlineFromGrpcTimeout) {
  const std::string out = grpcRequest(kHang, framed("x"), {"grpc-timeout: 30m"});
  EXPECT_TRUE(has(out, "grpc-status: 4")) << out;
  EXPECT_TRUE(has(out, "grpc-message: deadline exceeded")) << out;
  EXPECT_EQ(doneStatuses(), (std::vector<Status>{{Code::DeadlineExceeded, "deadline exceeded"}}));
}

TEST_F(GrpcServerTest, AdsDiscoveryRequestGetsAResponse) {
  discovery::DiscoveryRequest req;
  req.mutable_node()->set_id("n1");
  req.set_type_url(std::string(kClusterType));
  const std::string out = grpcRequest(kStreamAdsPath, framed(serializeDeterministic(req)));
  discovery::DiscoveryResponse want;
  want.set_version_info("1");
  want.set_type_url(std::string(kClusterType));
  want.set_nonce("n-n1");
  EXPECT_TRUE(has(out, framed(serializeDeterministic(want)))) << out;
  EXPECT_TRUE(has(out, "grpc-status: 0")) << out;
}

// @grpc/grpc-js (npm) as the client: it must read our messages and trailers as a real gRPC
// implementation does. npm installs it once into the build tree; without node, npm or the
// network the test is skipped.
TEST_F(GrpcServerTest, GrpcJsClient) {
  std::string why;
  const std::string node = test::grpcJsCommand(why);
  if (node.empty()) GTEST_SKIP() << why;
  const std::string out =
      runPeer(node + test::grpcJsScript("grpc_js_peer.js") + " " + std::to_string(port_));
  EXPECT_TRUE(has(
      out, R"({"name":"echo","got":["echo:hello","echo:","echo:world"],"code":0,"details":""})"))
      << out;
  EXPECT_TRUE(has(out,
                  "{\"name\":\"fail\",\"got\":[\"echo:one\"],\"code\":3,\"details\":\"bad: "
                  "100%\\ncaf\xc3\xa9\"}"))
      << out;
  EXPECT_TRUE(has(
      out, R"({"name":"unknown","got":[],"code":12,"details":"unknown method /test.Nope/Nope"})"))
      << out;
  EXPECT_TRUE(has(out, R"("name":"big","got":[],"code":8,)")) << out;
}

}  // namespace
}  // namespace ugate::xds::grpc
