// The glue against an independent QUIC/TLS stack: gtlsclient (ngtcp2's example client on GnuTLS
// and ngtcp2's own GnuTLS crypto helper, installed by scripts/install-deps.sh) connects over a UDP
// socket on 127.0.0.1 to a server ngtcp2_conn built on the BoringSSL glue (crypto_test_harness.h).
// Each cipher suite is forced from the client side (GnuTLS can restrict TLS 1.3 suites, BoringSSL
// cannot), then a client-initiated key update, then QUIC v2 chosen by the client. The handshake
// completing on the server means it decrypted the client's Finished; the client's HTTP/3 request
// arriving on stream 0 means both 1-RTT directions work (the client only sends it after its own
// handshake completed). Bounded: 10 s per run; gtlsclient is ended by PID.
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

ngtcp2_tstamp monotonicNs() {
  return static_cast<ngtcp2_tstamp>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

/** InteropRun: a UDP socket on 127.0.0.1, the glue's server behind it, gtlsclient in front. */
class InteropRun {
 public:
  explicit InteropRun(Options o) : h_(withExternalClient(o)) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0);
    addr_.sin_family = AF_INET;
    addr_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr_), sizeof(addr_)), 0);
    socklen_t len = sizeof(addr_);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr_), &len);
    h_.setNow(monotonicNs());
    h_.setServerAddress(addr_);
  }
  ~InteropRun() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }

  Harness& harness() { return h_; }

  /** start runs gtlsclient against our port with extra options; its output goes to log(). */
  void start(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {kGtlsClient, "--no-quic-dump", "--no-http-dump",
                                     "--timeout=10s", "--handshake-timeout=10s"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string port = std::to_string(ntohs(addr_.sin_port));
    args.insert(args.end(), {"127.0.0.1", port, "https://127.0.0.1:" + port + "/"});
    logPath_ = "/tmp/ugate_quic_interop_" + std::to_string(::getpid()) + ".log";
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      int log = ::open(logPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      ::dup2(log, 1);
      ::dup2(log, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(kGtlsClient, argv.data());
      ::_exit(127);
    }
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
        client_ = from;
        h_.receiveAtServer(Datagram(buf, buf + n), from);
      }
      std::deque<Datagram> out;
      h_.flushServer(out);
      for (const auto& d : out) {
        ::sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&client_),
                 sizeof(client_));
      }
    }
    return pred();
  }

  /** requestArrived: the client's first request stream (0) carried bytes to us. */
  bool requestArrived() {
    Peer& s = h_.server();
    return s.handshakeDone && s.in.count(0) != 0 && !s.in[0].empty();
  }

  std::string log() const {
    std::string out;
    if (FILE* f = ::fopen(logPath_.c_str(), "r")) {
      char b[4096];
      size_t n;
      while ((n = ::fread(b, 1, sizeof(b), f)) > 0) out.append(b, n);
      ::fclose(f);
    }
    ::unlink(logPath_.c_str());
    return out.size() > 3000 ? out.substr(out.size() - 3000) : out;
  }

 private:
  static Options withExternalClient(Options o) {
    o.externalClient = true;
    o.requireClientCert = false;  // gtlsclient presents no certificate
    o.alpn = "h3";
    return o;
  }

  Harness h_;
  int fd_{-1};
  sockaddr_in addr_{};
  sockaddr_in client_{};
  pid_t pid_{-1};
  std::string logPath_;
};

bool haveGtlsClient() { return ::access(kGtlsClient, X_OK) == 0; }

uint16_t serverCipher(Harness& h) {
  return static_cast<uint16_t>(SSL_CIPHER_get_id(SSL_get_current_cipher(h.server().ssl.get())) &
                               0xffff);
}

/** handshakeWith: gtlsclient with the given options completes a handshake and sends its request. */
void handshakeWith(InteropRun& run, const std::vector<std::string>& opts) {
  run.start(opts);
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

constexpr const char* kTls13Only = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:";

TEST(QuicCryptoInterop, GtlsClientWithEachCipherSuite) {
  if (!haveGtlsClient()) GTEST_SKIP() << "gtlsclient not installed (scripts/install-deps.sh)";
  const std::pair<const char*, uint16_t> suites[] = {
      {"+AES-128-GCM", 0x1301}, {"+AES-256-GCM", 0x1302}, {"+CHACHA20-POLY1305", 0x1303}};
  for (const auto& [gnutls, id] : suites) {
    SCOPED_TRACE(gnutls);
    InteropRun run(Options{});
    handshakeWith(run, {std::string("--ciphers=") + kTls13Only + gnutls});
    EXPECT_EQ(serverCipher(run.harness()), id);
  }
}

TEST(QuicCryptoInterop, GtlsClientInitiatesAKeyUpdate) {
  if (!haveGtlsClient()) GTEST_SKIP() << "gtlsclient not installed (scripts/install-deps.sh)";
  InteropRun run(Options{});
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
  InteropRun run(Options{.offerV2 = true});
  handshakeWith(run, {"--version=v2"});
  EXPECT_EQ(ngtcp2_conn_get_negotiated_version(run.harness().server().conn), NGTCP2_PROTO_VER_V2);
}

TEST(QuicCryptoInterop, GtlsClientNegotiatesFromV1ToV2) {
  if (!haveGtlsClient()) GTEST_SKIP() << "gtlsclient not installed (scripts/install-deps.sh)";
  InteropRun run(Options{.offerV2 = true});
  handshakeWith(run, {"--available-versions=v1,v2"});
  EXPECT_EQ(ngtcp2_conn_get_client_chosen_version(run.harness().server().conn),
            NGTCP2_PROTO_VER_V1);
  EXPECT_EQ(ngtcp2_conn_get_negotiated_version(run.harness().server().conn), NGTCP2_PROTO_VER_V2);
}

TEST(QuicCryptoInterop, GtlsClientFollowsOurRetry) {
  if (!haveGtlsClient()) GTEST_SKIP() << "gtlsclient not installed (scripts/install-deps.sh)";
  InteropRun run(Options{.retry = true});
  handshakeWith(run, {});
  EXPECT_EQ(run.harness().retriesSent(), 1);
  EXPECT_TRUE(run.harness().tokenVerified());
}

}  // namespace
}  // namespace ugate::quic::test
