#include "core/dns_resolver.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <ugate/reactor.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ugate {
namespace {

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeAaaa = 28;

// FakeDnsServer: a UDP DNS server on 127.0.0.1:<ephemeral> run by its own thread. It answers A and
// AAAA questions for the names it knows, NXDOMAIN for the others, and counts every question.
class FakeDnsServer {
 public:
  struct Records {
    std::vector<std::string> v4;
    std::vector<std::string> v6;
    uint32_t ttl{60};
    // truncate: UDP answers carry TC and no records, so the client must retry over TCP.
    bool truncate{false};
  };

  FakeDnsServer() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = 0;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0) {
      ADD_FAILURE() << "fake dns: bind failed";
      return;
    }
    socklen_t len = sizeof(sin);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &len);
    port_ = ntohs(sin.sin_port);
    // TCP on the same port, for truncated answers. Optional: tests needing it check tcpOk().
    tcpFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(tcpFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(tcpFd_, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0 ||
        ::listen(tcpFd_, 16) != 0) {
      ::close(tcpFd_);
      tcpFd_ = -1;
    }
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeDnsServer() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
    if (fd_ >= 0) {
      ::close(fd_);
    }
    if (tcpFd_ >= 0) {
      ::close(tcpFd_);
    }
    for (auto& c : conns_) {
      ::close(c.fd);
    }
  }

  bool tcpOk() const { return tcpFd_ >= 0; }
  int tcpQueries() {
    std::lock_guard<std::mutex> lk(mu_);
    return tcpTotal_;
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void add(const std::string& name, Records r) {
    std::lock_guard<std::mutex> lk(mu_);
    names_[name] = std::move(r);
  }
  /** setSilent makes the server read questions but never answer. */
  void setSilent(bool s) { silent_ = s; }
  int count(const std::string& name, uint16_t qtype) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = counts_.find({name, qtype});
    return it == counts_.end() ? 0 : it->second;
  }
  int total() {
    std::lock_guard<std::mutex> lk(mu_);
    return total_;
  }

 private:
  struct Conn {
    int fd;
    std::vector<uint8_t> in;
  };

  void loop() {
    while (!stop_) {
      std::vector<pollfd> fds{{fd_, POLLIN, 0}, {tcpFd_, POLLIN, 0}};
      for (auto& c : conns_) {
        fds.push_back({c.fd, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 10) <= 0) {
        continue;
      }
      if (fds[0].revents != 0) {
        serveUdp();
      }
      if (fds[1].revents != 0) {
        int c = ::accept4(tcpFd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          conns_.push_back({c, {}});
        }
      }
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents != 0) {
          serveTcp(conns_[i - 2]);
        }
      }
      std::erase_if(conns_, [](const Conn& c) { return c.fd < 0; });
    }
  }

  void serveUdp() {
    uint8_t buf[1500];
    sockaddr_storage from{};
    socklen_t fromLen = sizeof(from);
    ssize_t n = ::recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fromLen);
    if (n <= 0) {
      return;
    }
    auto reply = handle(buf, static_cast<size_t>(n), /*tcp=*/false);
    if (reply) {
      ::sendto(fd_, reply->data(), reply->size(), 0, reinterpret_cast<sockaddr*>(&from), fromLen);
    }
  }

  // serveTcp answers length-prefixed questions; all replies of one read go out in a single write,
  // so the client sees several messages (and their length prefixes) behind one readiness edge.
  void serveTcp(Conn& c) {
    uint8_t buf[4096];
    ssize_t n = ::read(c.fd, buf, sizeof(buf));
    if (n <= 0) {
      ::close(c.fd);
      c.fd = -1;
      return;
    }
    c.in.insert(c.in.end(), buf, buf + n);
    std::vector<uint8_t> out;
    while (c.in.size() >= 2) {
      size_t len = static_cast<size_t>(c.in[0] << 8 | c.in[1]);
      if (c.in.size() < 2 + len) {
        break;
      }
      auto reply = handle(c.in.data() + 2, len, /*tcp=*/true);
      c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(2 + len));
      if (reply) {
        put16(out, static_cast<uint16_t>(reply->size()));
        out.insert(out.end(), reply->begin(), reply->end());
      }
    }
    if (!out.empty()) {
      [[maybe_unused]] ssize_t w = ::write(c.fd, out.data(), out.size());
    }
  }

  static void put16(std::vector<uint8_t>& out, uint16_t v) {
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
  }

  std::optional<std::vector<uint8_t>> handle(const uint8_t* q, size_t n, bool tcp) {
    if (n < 12) {
      return std::nullopt;
    }
    size_t pos = 12;
    std::string name;
    while (pos < n && q[pos] != 0) {
      size_t len = q[pos];
      if ((len & 0xC0) != 0 || pos + 1 + len > n) {
        return std::nullopt;
      }
      if (!name.empty()) {
        name += '.';
      }
      name.append(reinterpret_cast<const char*>(q) + pos + 1, len);
      pos += 1 + len;
    }
    if (pos + 5 > n) {
      return std::nullopt;
    }
    for (auto& c : name) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    const uint16_t qtype = static_cast<uint16_t>(q[pos + 1] << 8 | q[pos + 2]);
    const size_t questionEnd = pos + 5;

    std::vector<std::vector<uint8_t>> rdatas;
    uint32_t ttl = 0;
    bool known = false;
    bool truncated = false;
    {
      std::lock_guard<std::mutex> lk(mu_);
      ++counts_[{name, qtype}];
      ++total_;
      tcpTotal_ += tcp ? 1 : 0;
      auto it = names_.find(name);
      if (it != names_.end()) {
        known = true;
        ttl = it->second.ttl;
        truncated = it->second.truncate && !tcp;
        const auto& ips = qtype == kTypeA ? it->second.v4 : it->second.v6;
        if ((qtype == kTypeA || qtype == kTypeAaaa) && !truncated) {
          for (const auto& ip : ips) {
            std::vector<uint8_t> rd(qtype == kTypeA ? 4 : 16);
            ::inet_pton(qtype == kTypeA ? AF_INET : AF_INET6, ip.c_str(), rd.data());
            rdatas.push_back(std::move(rd));
          }
        }
      }
    }
    if (silent_) {
      return std::nullopt;
    }
    std::vector<uint8_t> out(q, q + questionEnd);
    const uint16_t reqFlags = static_cast<uint16_t>(q[2] << 8 | q[3]);
    const uint16_t rcode = known ? 0 : 3;  // NOERROR / NXDOMAIN
    const uint16_t flags =
        0x8000 | (reqFlags & 0x7900) | 0x0400 | (truncated ? 0x0200 : 0) | 0x0080 | rcode;
    out[2] = static_cast<uint8_t>(flags >> 8);
    out[3] = static_cast<uint8_t>(flags);
    out[4] = 0, out[5] = 1;                                    // QDCOUNT
    out[6] = 0, out[7] = static_cast<uint8_t>(rdatas.size());  // ANCOUNT
    out[8] = out[9] = out[10] = out[11] = 0;                   // NSCOUNT, ARCOUNT
    for (const auto& rd : rdatas) {
      put16(out, 0xC00C);  // pointer to the question name
      put16(out, qtype);
      put16(out, 1);  // IN
      put16(out, static_cast<uint16_t>(ttl >> 16));
      put16(out, static_cast<uint16_t>(ttl));
      put16(out, static_cast<uint16_t>(rd.size()));
      out.insert(out.end(), rd.begin(), rd.end());
    }
    return out;
  }

  int fd_{-1};
  int tcpFd_{-1};
  std::vector<Conn> conns_;  // touched by the server thread only
  int tcpTotal_{0};
  uint16_t port_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> silent_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, Records> names_;
  std::map<std::pair<std::string, uint16_t>, int> counts_;
  int total_{0};
};

// Lookup records what one resolve() produced.
struct Lookup {
  bool called{false};
  bool completedInline{false};
  std::optional<Result<std::vector<SocketAddress>>> result;
  std::chrono::steady_clock::time_point at;

  bool ok() const { return result && result->has_value(); }
  std::vector<std::string> addrs() const {
    std::vector<std::string> out;
    if (ok()) {
      for (const auto& a : result->value()) {
        out.push_back(a.str());
      }
    }
    return out;
  }
  const Error& error() const { return result->error(); }
};

class DnsResolverTest : public ::testing::Test {
 protected:
  using Next = std::function<void()>;
  using Step = std::function<void(Next)>;

  void SetUp() override {
    reactor_ = newReactor(realTimeSource(), 0);
    server_ = std::make_unique<FakeDnsServer>();
    server_->add("svc.test", {{"10.0.0.1", "10.0.0.2"}, {"fd00::1"}, 60});
    server_->add("v4only.test", {{"10.0.0.3"}, {}, 60});
    server_->add("a.test", {{"10.0.1.1"}, {}, 60});
    server_->add("b.test", {{"10.0.1.2"}, {}, 60});
    server_->add("c.test", {{"10.0.1.3"}, {}, 60});
  }
  void TearDown() override {
    resolver_.reset();
    queries_.clear();
    timers_.clear();
  }

  ResolverOptions options() {
    ResolverOptions o;
    o.servers = {server_->address()};
    o.queryTimeout = 1000ms;
    o.tries = 1;
    return o;
  }
  void makeResolver(const ResolverOptions& o) { resolver_ = newResolver(*reactor_, o); }

  // resolveStep resolves name and proceeds once the callback ran (inline or later).
  Step resolveStep(std::string name, uint16_t port, Lookup& l) {
    return [this, name = std::move(name), port, &l](Next next) {
      auto q = resolver_->resolve(name, port, [this, &l, next](auto r) {
        l.called = true;
        l.at = std::chrono::steady_clock::now();
        l.result.emplace(std::move(r));
        reactor_->defer(next);
      });
      l.completedInline = q == nullptr && l.called;
      if (q) {
        queries_.push_back(std::move(q));
      }
    };
  }
  Step sleepStep(Duration d) {
    return [this, d](Next next) {
      reactor_->updateNow();
      timers_.push_back(reactor_->createTimer(next));
      timers_.back()->enable(d);
    };
  }
  Step doStep(std::function<void()> fn) {
    return [fn = std::move(fn)](Next next) {
      fn();
      next();
    };
  }

  // runSteps runs steps in order inside a single reactor_->run(), bounded by limit.
  void runSteps(std::vector<Step> steps, Duration limit = 3000ms) {
    steps_ = std::move(steps);
    reactor_->updateNow();
    auto deadline = reactor_->createTimer([this] {
      timedOut_ = true;
      reactor_->exit();
    });
    deadline->enable(limit);
    reactor_->defer([this] { runStep(0); });
    reactor_->run();
    EXPECT_FALSE(timedOut_) << "test deadline hit";
  }
  void runStep(size_t i) {
    if (i >= steps_.size()) {
      reactor_->exit();
      return;
    }
    steps_[i]([this, i] { runStep(i + 1); });
  }

  ReactorPtr reactor_;
  std::unique_ptr<FakeDnsServer> server_;
  std::vector<TimerPtr> timers_;
  // queries_ is declared before resolver_, so queries are destroyed after the resolver.
  std::vector<DnsQueryPtr> queries_;
  ResolverPtr resolver_;
  std::vector<Step> steps_;
  bool timedOut_{false};
};

TEST_F(DnsResolverTest, LiteralIpsCompleteInline) {
  makeResolver(options());
  std::vector<std::pair<std::string, std::string>> cases = {{"10.1.2.3", "10.1.2.3:80"},
                                                            {"::1", "[::1]:80"},
                                                            {"[::1]", "[::1]:80"},
                                                            {"[2001:db8::5]", "[2001:db8::5]:80"}};
  for (const auto& [in, want] : cases) {
    std::optional<Result<std::vector<SocketAddress>>> got;
    auto q = resolver_->resolve(in, 80, [&](auto r) { got.emplace(std::move(r)); });
    EXPECT_EQ(q, nullptr) << in;
    ASSERT_TRUE(got && got->has_value()) << in;
    ASSERT_EQ(got->value().size(), 1u);
    EXPECT_EQ(got->value()[0].str(), want);
  }
  std::optional<Result<std::vector<SocketAddress>>> bad;
  auto q = resolver_->resolve("[not-an-ip]", 80, [&](auto r) { bad.emplace(std::move(r)); });
  EXPECT_EQ(q, nullptr);
  ASSERT_TRUE(bad && !bad->has_value());
  EXPECT_EQ(server_->total(), 0);
}

TEST_F(DnsResolverTest, ResolvesNameIpv4FirstWithPort) {
  makeResolver(options());
  Lookup l, again;
  runSteps({resolveStep("svc.test", 443, l), resolveStep("SVC.Test", 8443, again)});
  ASSERT_TRUE(l.ok()) << l.error().detail;
  EXPECT_FALSE(l.completedInline);
  EXPECT_EQ(l.addrs(), (std::vector<std::string>{"10.0.0.1:443", "10.0.0.2:443", "[fd00::1]:443"}));
  // Names are case-insensitive: the second lookup is a cache hit with its own port.
  EXPECT_TRUE(again.completedInline);
  EXPECT_EQ(again.addrs(),
            (std::vector<std::string>{"10.0.0.1:8443", "10.0.0.2:8443", "[fd00::1]:8443"}));
  EXPECT_EQ(server_->count("svc.test", kTypeA), 1);
  EXPECT_EQ(server_->count("svc.test", kTypeAaaa), 1);
}

TEST_F(DnsResolverTest, CachesUntilMinTtlThenRequeries) {
  server_->add("zero.test", {{"10.0.2.1"}, {}, 0});  // TTL 0 is raised to minCacheTtl
  auto o = options();
  o.minCacheTtl = 100ms;
  makeResolver(o);
  Lookup first, cached, later;
  int afterCached = -1;
  runSteps({resolveStep("zero.test", 80, first), resolveStep("zero.test", 80, cached),
            doStep([&] { afterCached = server_->count("zero.test", kTypeA); }), sleepStep(150ms),
            resolveStep("zero.test", 80, later)});
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first.completedInline);
  EXPECT_TRUE(cached.completedInline);
  EXPECT_EQ(cached.addrs(), std::vector<std::string>{"10.0.2.1:80"});
  EXPECT_EQ(afterCached, 1);
  EXPECT_FALSE(later.completedInline);
  EXPECT_TRUE(later.ok());
  EXPECT_EQ(server_->count("zero.test", kTypeA), 2);
}

TEST_F(DnsResolverTest, ClampsAnswerTtlToMax) {
  server_->add("long.test", {{"10.0.3.2"}, {}, 3600});
  auto o = options();
  o.minCacheTtl = 50ms;
  o.maxCacheTtl = 100ms;
  makeResolver(o);
  Lookup first, later;
  runSteps(
      {resolveStep("long.test", 80, first), sleepStep(150ms), resolveStep("long.test", 80, later)});
  ASSERT_TRUE(first.ok() && later.ok());
  EXPECT_FALSE(later.completedInline);  // 3600 s clamped to 100 ms
  EXPECT_EQ(server_->count("long.test", kTypeA), 2);
}

TEST_F(DnsResolverTest, HonoursAnswerTtlAboveMin) {
  server_->add("one.test", {{"10.0.3.1"}, {}, 1});  // 1 s: above minCacheTtl, below max
  auto o = options();
  o.minCacheTtl = 50ms;
  makeResolver(o);
  Lookup first, later;
  runSteps(
      {resolveStep("one.test", 80, first), sleepStep(150ms), resolveStep("one.test", 80, later)});
  ASSERT_TRUE(first.ok() && later.ok());
  EXPECT_FALSE(first.completedInline);
  EXPECT_TRUE(later.completedInline);  // still within the answer's 1 s TTL
  EXPECT_EQ(server_->count("one.test", kTypeA), 1);
}

TEST_F(DnsResolverTest, NxdomainFailsAndIsNegativelyCached) {
  auto o = options();
  o.negativeTtl = 100ms;
  makeResolver(o);
  Lookup first, cached, later;
  int afterFirst = -1, afterCached = -1;
  runSteps({resolveStep("missing.test", 80, first), doStep([&] { afterFirst = server_->total(); }),
            resolveStep("missing.test", 80, cached),
            doStep([&] { afterCached = server_->total(); }), sleepStep(150ms),
            resolveStep("missing.test", 80, later)});
  ASSERT_TRUE(first.called && !first.ok());
  EXPECT_EQ(first.error().code, Errc::DnsFailure);
  EXPECT_EQ(first.error().detail.rfind("missing.test: ", 0), 0u) << first.error().detail;
  EXPECT_TRUE(cached.completedInline);
  ASSERT_TRUE(cached.called && !cached.ok());
  EXPECT_EQ(cached.error().code, Errc::DnsFailure);
  EXPECT_GT(afterFirst, 0);
  EXPECT_EQ(afterCached, afterFirst);
  EXPECT_FALSE(later.completedInline);
  EXPECT_FALSE(later.ok());
  EXPECT_GT(server_->total(), afterCached);
}

TEST_F(DnsResolverTest, UnansweredQueryFailsAfterTimeout) {
  server_->setSilent(true);
  auto o = options();
  o.queryTimeout = 300ms;
  o.tries = 1;
  makeResolver(o);
  Lookup l;
  auto start = std::chrono::steady_clock::now();
  runSteps({resolveStep("svc.test", 80, l)});
  ASSERT_TRUE(l.called);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, Errc::DnsFailure);
  EXPECT_NE(l.error().detail.find("svc.test: "), std::string::npos);
  EXPECT_NE(l.error().detail.find("imeout"), std::string::npos) << l.error().detail;
  auto took = std::chrono::duration_cast<Duration>(l.at - start);
  EXPECT_GE(took, 280ms);
  EXPECT_LT(took, 1500ms);
  EXPECT_GE(server_->count("svc.test", kTypeA), 1);
}

TEST_F(DnsResolverTest, DestroyingQueryCancelsOnlyItsCallback) {
  makeResolver(options());
  Lookup kept, cancelledLookup, afterwards;
  bool cancelledCalled = false;
  runSteps({[&](Next next) {
              auto q = resolver_->resolve("svc.test", 80, [&](auto) { cancelledCalled = true; });
              ASSERT_NE(q, nullptr);
              q.reset();  // cancel before the answer arrives
              next();
            },
            resolveStep("svc.test", 81, kept), sleepStep(100ms),
            resolveStep("svc.test", 82, afterwards)});
  EXPECT_FALSE(cancelledCalled);
  EXPECT_TRUE(kept.ok());
  EXPECT_EQ(kept.addrs()[0], "10.0.0.1:81");
  EXPECT_TRUE(afterwards.completedInline);
  EXPECT_EQ(server_->count("svc.test", kTypeA), 1);
}

TEST_F(DnsResolverTest, CancelledLookupStillFillsCache) {
  makeResolver(options());
  bool called = false;
  Lookup afterwards;
  runSteps({[&](Next next) {
              resolver_->resolve("v4only.test", 80, [&](auto) { called = true; }).reset();
              next();
            },
            sleepStep(100ms), resolveStep("v4only.test", 80, afterwards)});
  EXPECT_FALSE(called);
  EXPECT_TRUE(afterwards.completedInline);
  EXPECT_EQ(afterwards.addrs(), std::vector<std::string>{"10.0.0.3:80"});
  EXPECT_EQ(server_->count("v4only.test", kTypeA), 1);
}

TEST_F(DnsResolverTest, ConcurrentLookupsShareOneQuery) {
  makeResolver(options());
  Lookup l1, l2;
  int done = 0;
  runSteps({[&](Next next) {
    auto cb = [&, next](Lookup& l) {
      return [&, next](Result<std::vector<SocketAddress>> r) {
        l.called = true;
        l.result.emplace(std::move(r));
        if (++done == 2) {
          next();
        }
      };
    };
    queries_.push_back(resolver_->resolve("svc.test", 1000, cb(l1)));
    queries_.push_back(resolver_->resolve("svc.test", 2000, cb(l2)));
    EXPECT_NE(queries_[0], nullptr);
    EXPECT_NE(queries_[1], nullptr);
  }});
  ASSERT_TRUE(l1.ok() && l2.ok());
  EXPECT_EQ(l1.addrs()[0], "10.0.0.1:1000");
  EXPECT_EQ(l2.addrs()[0], "10.0.0.1:2000");
  EXPECT_EQ(server_->count("svc.test", kTypeA), 1);
  EXPECT_EQ(server_->count("svc.test", kTypeAaaa), 1);
}

TEST_F(DnsResolverTest, LocalhostFromHostsFileOverride) {
  char path[] = "/tmp/ugate-dns-hosts-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  {
    std::ofstream f(path);
    f << "# test hosts\n127.0.0.1 localhost\n::1 localhost ip6-localhost  # loopback\n"
         "10.9.9.9 other.example\n";
  }
  auto o = options();
  o.hostsFile = path;
  makeResolver(o);
  std::optional<Result<std::vector<SocketAddress>>> got;
  auto q = resolver_->resolve("LocalHost", 8080, [&](auto r) { got.emplace(std::move(r)); });
  EXPECT_EQ(q, nullptr);
  ASSERT_TRUE(got && got->has_value());
  std::vector<std::string> addrs;
  for (const auto& a : got->value()) {
    addrs.push_back(a.str());
  }
  EXPECT_EQ(addrs, (std::vector<std::string>{"127.0.0.1:8080", "[::1]:8080"}));
  EXPECT_EQ(server_->total(), 0);

  // A name missing from the file goes to DNS.
  Lookup viaDns;
  runSteps({resolveStep("v4only.test", 80, viaDns)});
  EXPECT_EQ(viaDns.addrs(), std::vector<std::string>{"10.0.0.3:80"});
  ::unlink(path);
}

TEST_F(DnsResolverTest, LocalhostFromSystemHosts) {
  std::ifstream hosts("/etc/hosts");
  std::string line;
  bool has = false;
  while (std::getline(hosts, line)) {
    has = has || (line.rfind("127.0.0.1", 0) == 0 && line.find("localhost") != std::string::npos);
  }
  if (!has) {
    GTEST_SKIP() << "/etc/hosts has no 127.0.0.1 localhost line";
  }
  makeResolver(options());
  Lookup l;
  runSteps({resolveStep("localhost", 80, l)});
  ASSERT_TRUE(l.ok()) << l.error().detail;
  auto addrs = l.addrs();
  EXPECT_NE(std::find(addrs.begin(), addrs.end(), "127.0.0.1:80"), addrs.end());
  EXPECT_EQ(server_->count("localhost", kTypeA), 0);
}

TEST_F(DnsResolverTest, DestroyingResolverDropsPendingCallbacks) {
  server_->setSilent(true);
  auto o = options();
  o.queryTimeout = 100ms;
  makeResolver(o);
  bool called = false;
  runSteps({[&](Next next) {
              queries_.push_back(resolver_->resolve("svc.test", 80, [&](auto) { called = true; }));
              next();
            },
            sleepStep(20ms), doStep([&] { resolver_.reset(); }), sleepStep(150ms)});
  EXPECT_FALSE(called);
  queries_.clear();  // queries outliving their resolver are inert
}

TEST_F(DnsResolverTest, CallbackMayDestroyItsQueryAndResolveAgain) {
  makeResolver(options());
  Lookup second;
  bool firstCalled = false;
  runSteps({[&](Next next) {
    queries_.push_back(resolver_->resolve("a.test", 80, [&, next](auto r) {
      firstCalled = true;
      EXPECT_TRUE(r.has_value());
      queries_.clear();  // destroys the query whose callback is running
      resolveStep("b.test", 80, second)(next);
    }));
  }});
  EXPECT_TRUE(firstCalled);
  EXPECT_EQ(second.addrs(), std::vector<std::string>{"10.0.1.2:80"});
}

TEST_F(DnsResolverTest, CallbackMayDestroyResolver) {
  makeResolver(options());
  int calls = 0;
  runSteps({[&](Next next) {
              for (int i = 0; i < 3; ++i) {
                queries_.push_back(resolver_->resolve("svc.test", 80, [&](auto) {
                  ++calls;
                  resolver_.reset();
                }));
              }
              next();
            },
            sleepStep(100ms)});
  EXPECT_EQ(calls, 1);
}

TEST_F(DnsResolverTest, EvictsOldestWhenFull) {
  auto o = options();
  o.maxCacheEntries = 2;
  makeResolver(o);
  Lookup a, b, c, aAgain, cAgain;
  runSteps({resolveStep("a.test", 80, a), resolveStep("b.test", 80, b),
            resolveStep("c.test", 80, c), resolveStep("c.test", 80, cAgain),
            resolveStep("a.test", 80, aAgain)});
  EXPECT_TRUE(cAgain.completedInline);
  EXPECT_FALSE(aAgain.completedInline);  // the oldest entry was dropped
  EXPECT_EQ(server_->count("a.test", kTypeA), 2);
}

TEST_F(DnsResolverTest, ManyConcurrentAnswersAreAllDrained) {
  // Many datagrams arrive behind few edge-triggered events: none may wait for a retry timeout.
  constexpr int kNames = 40;
  for (int i = 0; i < kNames; ++i) {
    server_->add("n" + std::to_string(i) + ".test", {{"10.1.0." + std::to_string(i)}, {}, 60});
  }
  auto o = options();
  o.queryTimeout = 2000ms;
  makeResolver(o);
  int ok = 0, done = 0;
  auto start = std::chrono::steady_clock::now();
  runSteps({[&](Next next) {
    for (int i = 0; i < kNames; ++i) {
      queries_.push_back(
          resolver_->resolve("n" + std::to_string(i) + ".test", 80, [&, next](auto r) {
            ok += r.has_value() ? 1 : 0;
            if (++done == kNames) {
              next();
            }
          }));
    }
  }});
  EXPECT_EQ(ok, kNames);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1000ms);
}

TEST_F(DnsResolverTest, TruncatedAnswerRetriedOverTcp) {
  if (!server_->tcpOk()) {
    GTEST_SKIP() << "could not bind TCP on the fake server's port";
  }
  server_->add("big.test", {{"10.2.0.1", "10.2.0.2"}, {"fd00::2"}, 60, /*truncate=*/true});
  auto o = options();
  o.queryTimeout = 2000ms;  // a stalled TCP read would show up as a ~2 s delay or a timeout
  makeResolver(o);
  Lookup l;
  auto start = std::chrono::steady_clock::now();
  runSteps({resolveStep("big.test", 53, l)});
  ASSERT_TRUE(l.ok()) << l.error().detail;
  EXPECT_EQ(l.addrs(), (std::vector<std::string>{"10.2.0.1:53", "10.2.0.2:53", "[fd00::2]:53"}));
  EXPECT_GE(server_->tcpQueries(), 2);
  EXPECT_LT(l.at - start, 1000ms);
}

TEST_F(DnsResolverTest, NoUsableServersFails) {
  auto o = options();
  o.servers = {"not an address"};
  makeResolver(o);
  Lookup l;
  runSteps({resolveStep("svc.test", 80, l)});
  ASSERT_TRUE(l.called);
  EXPECT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, Errc::DnsFailure);
}

}  // namespace
}  // namespace ugate
