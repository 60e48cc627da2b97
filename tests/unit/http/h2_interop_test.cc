// Interop with real HTTP/2 peers: nghttp (GET, POST with a body, a 4 MiB download, an unknown
// path) and h2load (thousands of requests over several connections) against an H2Connection
// server on 127.0.0.1 (h2c with prior knowledge). Skipped when nghttp2-client is not installed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <cstdio>
#include <string>
#include <vector>

#include <ugate/tcp_stream.h>
#include "http/h2_connection.h"
#include "test_common/test_util.h"
#include "unit/http/h2_test_util.h"

namespace ugate::http {
namespace {

const std::string kHello = "hello from ugate h2\n";

bool have(const char* tool) {
  std::string cmd = std::string("command -v ") + tool + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// run: a shell command's stdout (bounded by `timeout`).
std::string run(const std::string& cmd) {
  std::string out;
  FILE* f = popen(("timeout 60 " + cmd).c_str(), "r");
  if (f == nullptr) return out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  pclose(f);
  return out;
}

// Upload: reads a request body to EOF, then answers with its size and checksum.
struct Upload : StreamCallbacks {
  H2StreamPtr s;
  uint64_t bytes{0};
  uint64_t hash{1469598103934665603ULL};
  void onStreamReadable(Stream&) override {
    uint8_t buf[16384];
    for (;;) {
      IoResult r = s->read(buf, sizeof(buf));
      if (!r.ok() || r.value < 0) return;
      if (r.value == 0) {
        s->respond(200, {{"content-type", "text/plain"}},
                   "received " + std::to_string(bytes) + " fnv " + std::to_string(hash) + "\n");
        s->shutdownWrite();
        s->setCallbacks(nullptr);
        return;
      }
      hash = ugate::test::fnv1a64(buf, static_cast<size_t>(r.value), hash);
      bytes += static_cast<uint64_t>(r.value);
    }
  }
  void onStreamWritable(Stream&) override {}
};

// Server: a listening socket on the reactor; every accepted connection is an H2 server.
class Server : public IoWatcher, public H2ConnectionCallbacks {
 public:
  Server(Reactor& r, const std::string* big) : r_(r), big_(big) {
    lfd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(lfd_, 64), 0);
    getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    r_.addFd(lfd_, this, EPOLLIN);
  }
  ~Server() override {
    r_.removeFd(lfd_, this);
    ::close(lfd_);
    uploads_.clear();
    held_.clear();
    conns_.clear();
  }
  uint16_t port() const { return port_; }
  int accepted{0};
  int requests{0};
  int closedWithError{0};
  std::vector<std::string> seen;  // "METHOD path"

  void onIoEvent(uint32_t) override {
    for (;;) {
      int fd = accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      ++accepted;
      auto c = H2Connection::create(r_, std::make_unique<TcpStream>(r_, fd), H2Connection::Role::Server, {},
                                    *this);
      c->start();
      conns_.push_back(std::move(c));
    }
  }
  void onRequest(H2Connection&, H2StreamPtr s) override {
    ++requests;
    if (seen.size() < 16) seen.push_back(s->method() + " " + s->path());
    if (s->method() == "GET" && s->path() == "/hello") {
      s->respond(200, {{"content-type", "text/plain"}, {"x-served-by", "ugate"}}, kHello);
      s->shutdownWrite();
    } else if (s->method() == "GET" && s->path() == "/big") {
      s->respond(200, {{"content-length", std::to_string(big_->size())}}, *big_);
      s->shutdownWrite();
    } else if (s->method() == "POST" && s->path() == "/upload") {
      auto u = std::make_unique<Upload>();
      u->s = std::move(s);
      u->s->setCallbacks(u.get());
      if (u->s->readReady()) u->onStreamReadable(*u->s);
      uploads_.push_back(std::move(u));
      return;
    } else {
      s->respond(404, {}, "no such thing\n");
    }
    held_.push_back(std::move(s));  // finished streams (dropping them would do as well)
  }
  void onConnectionClosed(H2Connection&, Errc reason, const std::string&) override {
    if (reason != Errc::Ok && reason != Errc::Shutdown && reason != Errc::Reset) ++closedWithError;
  }

 private:
  Reactor& r_;
  const std::string* big_;
  int lfd_{-1};
  uint16_t port_{0};
  std::vector<H2ConnectionPtr> conns_;
  std::vector<H2StreamPtr> held_;
  std::vector<std::unique_ptr<Upload>> uploads_;
};

class H2InteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("nghttp") || !have("h2load")) GTEST_SKIP() << "nghttp/h2load (nghttp2-client) not installed";
    big_ = ugate::test::pattern(4 << 20, 99);
    rt_.run([&] { server_ = std::make_unique<Server>(rt_.reactor(), &big_); });
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override {
    rt_.run([&] { server_.reset(); });
  }
  test::ReactorThread rt_;
  std::unique_ptr<Server> server_;
  std::string big_;
  std::string url_;
};

TEST_F(H2InteropTest, NghttpGetSeesStatusHeadersAndBody) {
  std::string out = run("nghttp -v " + url_ + "/hello 2>&1");
  EXPECT_NE(out.find(":status: 200"), std::string::npos) << out;
  EXPECT_NE(out.find("x-served-by: ugate"), std::string::npos) << out;
  EXPECT_NE(out.find(kHello), std::string::npos) << out;
  EXPECT_NE(out.find("END_STREAM"), std::string::npos) << out;
  EXPECT_EQ(out.find("recv GOAWAY"), std::string::npos) << out;  // no error from our side
  EXPECT_EQ(out.find("recv RST_STREAM"), std::string::npos) << out;
  std::string body = run("nghttp " + url_ + "/hello");
  EXPECT_EQ(body, kHello);
  rt_.run([&] {
    ASSERT_GE(server_->seen.size(), 1u);
    EXPECT_EQ(server_->seen[0], "GET /hello");
  });
}

TEST_F(H2InteropTest, NghttpDownloadsFourMiBIntact) {
  std::string body = run("nghttp " + url_ + "/big");
  EXPECT_EQ(body.size(), big_.size());
  EXPECT_TRUE(body == big_) << "body differs";
}

TEST_F(H2InteropTest, NghttpUploadIsReadWhole) {
  ugate::test::TempDir dir;
  const std::string data = ugate::test::pattern(3 << 20, 5);
  std::string path = dir.write("upload.bin", data);
  std::string out = run("nghttp -d " + path + " " + url_ + "/upload");
  EXPECT_EQ(out, "received " + std::to_string(data.size()) + " fnv " +
                     std::to_string(ugate::test::fnv1a64(data.data(), data.size())) + "\n");
}

TEST_F(H2InteropTest, NghttpUnknownPathGets404) {
  std::string out = run("nghttp -v " + url_ + "/nope 2>&1");
  EXPECT_NE(out.find(":status: 404"), std::string::npos) << out;
  EXPECT_NE(out.find("no such thing"), std::string::npos) << out;
}

TEST_F(H2InteropTest, H2loadManyStreamsOverSeveralConnections) {
  std::string out = run("h2load -n 4000 -c 4 -m 50 " + url_ + "/hello 2>&1");
  // "requests: 4000 total, 4000 started, 4000 done, 4000 succeeded, 0 failed, ..." (std::regex trips
  // GCC 12's -Wmaybe-uninitialized under the sanitizers, so sscanf).
  auto pos = out.find("requests: ");
  ASSERT_NE(pos, std::string::npos) << out;
  long total = -1, started = -1, done = -1, succeeded = -1, failed = -1;
  ASSERT_EQ(std::sscanf(out.c_str() + pos, "requests: %ld total, %ld started, %ld done, %ld succeeded, %ld failed",
                        &total, &started, &done, &succeeded, &failed),
            5)
      << out;
  EXPECT_EQ(total, 4000);
  EXPECT_EQ(succeeded, 4000) << out;
  EXPECT_EQ(failed, 0) << out;
  rt_.run([&] {
    EXPECT_EQ(server_->accepted, 4);
    EXPECT_EQ(server_->requests, 4000);
    EXPECT_EQ(server_->closedWithError, 0);
  });
}

}  // namespace
}  // namespace ugate::http
