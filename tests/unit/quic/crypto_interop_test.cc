// The glue against an independent QUIC/TLS stack: ngtcp2's example programs on GnuTLS and
// ngtcp2's own GnuTLS crypto helper (gtlsclient, gtlsserver; installed by scripts/install-deps.sh),
// over a UDP socket on 127.0.0.1, in both roles:
//  - gtlsclient -> a server ngtcp2_conn on the BoringSSL glue (crypto_test_harness.h): each cipher
//    suite forced from the client side (GnuTLS can restrict TLS 1.3 suites, BoringSSL cannot), a
//    client-initiated key update, QUIC v2 chosen and negotiated, our Retry. The handshake
//    completing on our side means we decrypted the client's Finished; its HTTP/3 request arriving
//    on stream 0 means both 1-RTT directions work (it sends it only after its own handshake
//    completed);
//  - a client on the glue -> gtlsserver (asking for our client certificate): each suite forced by
//  the
//    server, our key update, gtlsserver's Retry, v2. Handshake confirmed = HANDSHAKE_DONE decrypted
//    from a 1-RTT packet; the key update completing = the server read our new key phase.
// Bounded: 10 s per run; the peer process is ended by PID; its files live in a private temp dir.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "crypto_test_harness.h"

namespace ugate::quic::test {
namespace {

constexpr const char* kGtlsClient = "/usr/bin/gtlsclient";
constexpr const char* kGtlsServer = "/usr/sbin/gtlsserver";

ngtcp2_tstamp monotonicNs() {
  return static_cast<ngtcp2_tstamp>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

enum class OurSide : uint8_t { Server, Client };

/**
 * InteropRun: a UDP socket on 127.0.0.1 and the glue's server (OurSide::Server, gtlsclient in
 * front) or client (OurSide::Client, gtlsserver behind).
 */
class InteropRun {
 public:
  InteropRun(OurSide side, Options o) : side_(side), h_(forSide(side, o)) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0);
    addr_ = loopback(0);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr_), sizeof(addr_)), 0);
    socklen_t len = sizeof(addr_);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr_), &len);
    h_.setNow(monotonicNs());
    h_.setServerAddress(addr_);
    char dir[] = "/tmp/ugate_quic_interop_XXXXXX";
    EXPECT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  ~InteropRun() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
    for (const char* f : {"/peer.log", "/key.pem", "/cert.pem"}) ::unlink((dir_ + f).c_str());
    ::rmdir(dir_.c_str());
  }

  Harness& harness() { return h_; }

  /** startGtlsClient runs gtlsclient against our server with extra options. */
  void startGtlsClient(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {kGtlsClient, "--no-quic-dump", "--no-http-dump",
                                     "--timeout=10s", "--handshake-timeout=10s"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string port = std::to_string(ntohs(addr_.sin_port));
    args.insert(args.end(), {"127.0.0.1", port, "https://127.0.0.1:" + port + "/"});
    spawn(args);
  }

  /**
   * startGtlsServer runs gtlsserver with our harness's server identity (it requests our client
   * certificate), waits until it holds its port, then starts our client towards it.
   */
  void startGtlsServer(const std::vector<std::string>& extra) {
    const Identity& id = h_.serverIdentity();
    writeFile(dir_ + "/key.pem", id.keyPem);
    writeFile(dir_ + "/cert.pem", id.certPem);
    peer_ = loopback(freeUdpPort());
    std::vector<std::string> args = {kGtlsServer, "--no-quic-dump", "--no-http-dump",
                                     "--timeout=10s", "--verify-client"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"127.0.0.1", std::to_string(ntohs(peer_.sin_port)), dir_ + "/key.pem",
                             dir_ + "/cert.pem"});
    spawn(args);
    // Its port taken means it is listening (bounded; our Initial is retransmitted anyway).
    for (int i = 0; i < 500 && portFree(peer_.sin_port); ++i) ::usleep(10000);
    h_.startClientTo(addr_, peer_);
  }

  /** runUntil pumps datagrams both ways until pred holds or 10 s pass (wall clock bound only). */
  template <class Pred>
  bool runUntil(Pred pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      pollfd p{fd_, POLLIN, 0};
      ::poll(&p, 1, 5);
      h_.setNow(monotonicNs());
      uint8_t buf[65536];
      for (;;) {
        sockaddr_in from{};
        socklen_t fl = sizeof(from);
        ssize_t n = ::recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl);
        if (n < 0) break;
        if (side_ == OurSide::Server) {
          peer_ = from;
          h_.receiveAtServer(Datagram(buf, buf + n), from);
        } else if (from.sin_port == peer_.sin_port) {
          h_.receiveAtClient(Datagram(buf, buf + n));
        }
      }
      std::deque<Datagram> out;
      if (side_ == OurSide::Server) {
        h_.flushServer(out);
      } else {
        h_.flushClient(out);
      }
      for (const auto& d : out) {
        ::sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&peer_), sizeof(peer_));
      }
    }
    return pred();
  }

  /** requestArrived: the client's first request stream (0) carried bytes to us. */
  bool requestArrived() {
    Peer& s = h_.server();
    return s.handshakeDone && s.in.count(0) != 0 && !s.in[0].empty();
  }

  /** log: the tail of the peer program's output (for failure messages). */
  std::string log() const {
    std::string out;
    if (FILE* f = ::fopen((dir_ + "/peer.log").c_str(), "r")) {
      char b[4096];
      size_t n;
      while ((n = ::fread(b, 1, sizeof(b), f)) > 0) out.append(b, n);
      ::fclose(f);
    }
    return out.size() > 3000 ? out.substr(out.size() - 3000) : out;
  }

 private:
  static Options forSide(OurSide side, Options o) {
    o.alpn = "h3";
    if (side == OurSide::Server) {
      o.externalClient = true;
      o.requireClientCert = false;  // gtlsclient presents no certificate
    } else {
      o.externalServer = true;
    }
    return o;
  }

  static sockaddr_in loopback(uint16_t portHostOrder) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(portHostOrder);
    return a;
  }

  static bool portFree(uint16_t portNetOrder) {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = loopback(ntohs(portNetOrder));
    bool ok = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(s);
    return ok;
  }

  static uint16_t freeUdpPort() {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = loopback(0);
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    return ntohs(a.sin_port);
  }

  static void writeFile(const std::string& path, const std::string& content) {
    int f = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(f, 0);
    ASSERT_EQ(::write(f, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ::close(f);
  }

  void spawn(std::vector<std::string> args) {
    std::string logPath = dir_ + "/peer.log";
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      int log = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      ::dup2(log, 1);
      ::dup2(log, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }

  OurSide side_;
  Harness h_;
  int fd_{-1};
  sockaddr_in addr_{};
  sockaddr_in peer_{};
  pid_t pid_{-1};
  std::string dir_;
};

bool haveGtlsClient() { return ::access(kGtlsClient, X_OK) == 0; }
bool haveGtlsServer() { return ::access(kGtlsServer, X_OK) == 0; }

uint16_t cipherOf(const Peer& p) {
  return static_cast<uint16_t>(SSL_CIPHER_get_id(SSL_get_current_cipher(p.ssl.get())) & 0xffff);
}

/** handshakeWith: gtlsclient with the given options completes a handshake and sends its request. */
void handshakeWith(InteropRun& run, const std::vector<std::string>& opts) {
  run.startGtlsClient(opts);
  bool ok = run.runUntil([&] { return run.requestArrived(); });
  ASSERT_TRUE(ok) << "server handshake " << run.harness().server().handshakeDone << " error "
                  << run.harness().server().error << "\ngtlsclient log:\n"
                  << run.log();
  EXPECT_EQ(run.harness().server().error, 0);
  // An HTTP/3 request stream starts with a HEADERS frame (type 0x01).
  EXPECT_EQ(run.harness().server().in[0][0], 0x01);
  const uint8_t* alpn = nullptr;
  unsigned alpnLen = 0;
  SSL_get0_alpn_selected(run.harness().server().ssl.get(), &alpn, &alpnLen);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(alpn), alpnLen), "h3");
}

/** kSuites: a GnuTLS priority string allowing one TLS 1.3 suite, and that suite's IANA id. */
constexpr std::pair<const char*, uint16_t> kSuites[] = {
    {"--ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM", 0x1301},
    {"--ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-256-GCM", 0x1302},
    {"--ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305", 0x1303}};

TEST(QuicCryptoInterop, GtlsClientWithEachCipherSuite) {
  if (!haveGtlsClient()) GTEST_SKIP() << "gtlsclient not installed (scripts/install-deps.sh)";
  for (const auto& [ciphers, id] : kSuites) {
    SCOPED_TRACE(ciphers);
    InteropRun run(OurSide::Server, Options{});
    handshakeWith(run, {ciphers});
    EXPECT_EQ(cipherOf(run.harness().server()), id);
  }
}

TEST(QuicCryptoInterop, GtlsClientInitiatesAKeyUpdate) {
  if (!haveGtlsClient()) GTEST_SKIP() << "gtlsclient not installed (scripts/install-deps.sh)";
  InteropRun run(OurSide::Server, Options{});
  handshakeWith(run, {"--key-update=50ms"});
  Peer& s = run.harness().server();
  // update_key runs once when the handshake is confirmed (the next keys, prepared ahead), and again
  // only after a key update was used: then the generation after it is derived. Keep the client
  // sending (ACKs of our PINGs) so the server sees the new key phase.
  ngtcp2_conn_set_keep_alive_timeout(s.conn, 10 * NGTCP2_MILLISECONDS);
  EXPECT_TRUE(run.runUntil([&] { return s.updateKeyCalls >= 2; }))
      << "update_key calls " << s.updateKeyCalls << "\n"
      << run.log();
  EXPECT_EQ(s.error, 0);
}

TEST(QuicCryptoInterop, GtlsClientSpeaksQuicV2) {
  if (!haveGtlsClient()) GTEST_SKIP() << "gtlsclient not installed (scripts/install-deps.sh)";
  InteropRun run(OurSide::Server, Options{.offerV2 = true});
  handshakeWith(run, {"--version=v2"});
  EXPECT_EQ(ngtcp2_conn_get_negotiated_version(run.harness().server().conn), NGTCP2_PROTO_VER_V2);
}

TEST(QuicCryptoInterop, GtlsClientNegotiatesFromV1ToV2) {
  if (!haveGtlsClient()) GTEST_SKIP() << "gtlsclient not installed (scripts/install-deps.sh)";
  InteropRun run(OurSide::Server, Options{.offerV2 = true});
  handshakeWith(run, {"--available-versions=v1,v2"});
  EXPECT_EQ(ngtcp2_conn_get_client_chosen_version(run.harness().server().conn),
            NGTCP2_PROTO_VER_V1);
  EXPECT_EQ(ngtcp2_conn_get_negotiated_version(run.harness().server().conn), NGTCP2_PROTO_VER_V2);
}

TEST(QuicCryptoInterop, GtlsClientFollowsOurRetry) {
  if (!haveGtlsClient()) GTEST_SKIP() << "gtlsclient not installed (scripts/install-deps.sh)";
  InteropRun run(OurSide::Server, Options{.retry = true});
  handshakeWith(run, {});
  EXPECT_EQ(run.harness().retriesSent(), 1);
  EXPECT_TRUE(run.harness().tokenVerified());
}

/** connectTo: our client completes and confirms a handshake with gtlsserver (mutual TLS). */
void connectTo(InteropRun& run, const std::vector<std::string>& opts) {
  run.startGtlsServer(opts);
  Peer& c = run.harness().client();
  bool ok = run.runUntil([&] { return c.handshakeConfirmed; });
  ASSERT_TRUE(ok) << "client handshake " << c.handshakeDone << " error " << c.error
                  << "\ngtlsserver log:\n"
                  << run.log();
  EXPECT_EQ(c.error, 0);
  EXPECT_TRUE(c.peerVerified) << "our client checked gtlsserver's certificate against its pin";
  const uint8_t* alpn = nullptr;
  unsigned alpnLen = 0;
  SSL_get0_alpn_selected(c.ssl.get(), &alpn, &alpnLen);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(alpn), alpnLen), "h3");
}

TEST(QuicCryptoInterop, OurClientToGtlsServerWithEachCipherSuite) {
  if (!haveGtlsServer()) GTEST_SKIP() << "gtlsserver not installed (scripts/install-deps.sh)";
  for (const auto& [ciphers, id] : kSuites) {
    SCOPED_TRACE(ciphers);
    InteropRun run(OurSide::Client, Options{});
    connectTo(run, {ciphers});
    EXPECT_EQ(cipherOf(run.harness().client()), id);
  }
}

TEST(QuicCryptoInterop, OurClientUpdatesKeysWithGtlsServer) {
  if (!haveGtlsServer()) GTEST_SKIP() << "gtlsserver not installed (scripts/install-deps.sh)";
  InteropRun run(OurSide::Client, Options{});
  connectTo(run, {});
  Peer& c = run.harness().client();
  ASSERT_TRUE(run.runUntil(
      [&] { return ngtcp2_conn_initiate_key_update(c.conn, run.harness().now()) == 0; }));
  // The update completes only when gtlsserver answers in the new key phase, after which our side
  // derives the following generation (update_key's second call).
  ngtcp2_conn_set_keep_alive_timeout(c.conn, 10 * NGTCP2_MILLISECONDS);
  EXPECT_TRUE(run.runUntil([&] { return c.updateKeyCalls >= 2; }))
      << "update_key calls " << c.updateKeyCalls << "\n"
      << run.log();
  EXPECT_EQ(c.error, 0);
}

TEST(QuicCryptoInterop, OurClientFollowsGtlsServerRetry) {
  if (!haveGtlsServer()) GTEST_SKIP() << "gtlsserver not installed (scripts/install-deps.sh)";
  InteropRun run(OurSide::Client, Options{});
  connectTo(run, {"--validate-addr"});
  EXPECT_TRUE(ngtcp2_conn_after_retry(run.harness().client().conn));
}

TEST(QuicCryptoInterop, OurClientNegotiatesV2WithGtlsServer) {
  if (!haveGtlsServer()) GTEST_SKIP() << "gtlsserver not installed (scripts/install-deps.sh)";
  InteropRun run(OurSide::Client, Options{.offerV2 = true});
  connectTo(run, {"--preferred-versions=v2,v1"});
  EXPECT_EQ(ngtcp2_conn_get_negotiated_version(run.harness().client().conn), NGTCP2_PROTO_VER_V2);
}

}  // namespace
}  // namespace ugate::quic::test
