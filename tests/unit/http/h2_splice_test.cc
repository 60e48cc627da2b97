// The mesh's data path in miniature: the server side of each CONNECT is joined by the core
// Splicer to a TCP connection to a real echo server, so H2 readiness, half-close and backpressure
// meet the splice engine: END_STREAM -> FIN -> echo's FIN -> END_STREAM, every byte verified.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include <ugate/pipe_pool.h>
#include <ugate/splicer.h>
#include <ugate/tcp_stream.h>
#include "http/h2_connection.h"
#include "test_common/test_util.h"
#include "unit/http/h2_test_util.h"

namespace ugate::http {
namespace {

using test::H2Pair;
using test::Pump;

// Tunnel: an accepted CONNECT spliced to an upstream TCP connection.
struct Tunnel : SplicerCallbacks {
  H2StreamPtr h2;
  std::unique_ptr<TcpStream> tcp;
  std::unique_ptr<Splicer> splicer;
  bool done{false};
  Errc error{Errc::Ok};
  void onSpliceDone() override {
    tcp->close(false);  // the owner closes both streams; the TCP side's last FIN may be left to it
    done = true;
  }
  void onSpliceError(Errc reason, bool) override { error = reason; }
};

TEST(H2SpliceTest, ConnectStreamsSplicedToTcpEchoEveryByteAndFinBothWays) {
  ugate::test::TcpServer echo;
  H2Options co;
  co.streamWriteCap = 64 * 1024;  // small caps and windows: backpressure on every hop
  H2Options so;
  so.streamWindow = 128 * 1024;
  H2Pair p(co, so);
  auto pipes = std::make_shared<PipePool>(64 * 1024, 4);
  auto scratch = std::make_shared<std::vector<uint8_t>>(16 * 1024);
  auto ctx = std::make_shared<SpliceContext>(
      SpliceContext{p.rt.reactor(), *pipes, scratch->data(), scratch->size(), SpliceContext::Mode::Auto});
  auto tunnels = std::make_shared<std::vector<std::unique_ptr<Tunnel>>>();
  // Destroyed on the reactor thread in this order: tunnels before the context they use.
  p.keep.push_back(tunnels);
  p.keep.push_back(ctx);
  p.keep.push_back(scratch);
  p.keep.push_back(pipes);
  const uint16_t port = echo.port();
  p.onReq = [&, port](H2StreamPtr& s) {
    int fd = ugate::test::connectTcp(port);  // blocking connect on loopback: fine in a test
    ASSERT_GE(fd, 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    auto t = std::make_unique<Tunnel>();
    t->tcp = std::make_unique<TcpStream>(p.rt.reactor(), fd);
    s->respond(200);
    t->h2 = std::move(s);
    t->splicer = std::make_unique<Splicer>(*ctx, *t->h2, *t->tcp, *t);
    t->splicer->start();
    tunnels->push_back(std::move(t));
  };
  constexpr int kStreams = 10;
  std::vector<std::string> patterns(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    patterns[i] = ugate::test::pattern((1u << 20) + static_cast<size_t>(i) * 1000, 77 + i);
  }
  std::vector<Pump*> clients = p.sendPatterns(patterns, "echo.internal:7");
  ASSERT_TRUE(p.waitAllEnded(clients, 60000));
  ASSERT_TRUE(p.rt.waitFor([&] {
    for (auto& t : *tunnels) {
      if (!t->done && t->error == Errc::Ok) return false;
    }
    return tunnels->size() == kStreams;
  }));
  p.rt.run([&] {
    for (int i = 0; i < kStreams; ++i) {
      EXPECT_EQ(clients[i]->readErr, 0) << i;
      EXPECT_FALSE(clients[i]->mismatch) << i;
      EXPECT_EQ(clients[i]->received, patterns[i].size()) << i;
    }
    for (auto& t : *tunnels) {
      EXPECT_TRUE(t->done);
      EXPECT_EQ(t->error, Errc::Ok);
      EXPECT_EQ(t->splicer->bytesAtoB(), t->splicer->bytesBtoA());
    }
    EXPECT_EQ(p.client->activeStreams(), 0u);
    EXPECT_EQ(p.server->activeStreams(), 0u);
  });
}

}  // namespace
}  // namespace ugate::http
