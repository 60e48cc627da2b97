// ugate_h3connect: an HTTP/3 CONNECT client (RFC 9114 §4.4) for the QUIC tests, built on ugated's
// own QUIC client side (src/quic: ClientSocket, QuicConn, H3Client): no Debian tool sends CONNECT
// over HTTP/3.
//
//   ugate_h3connect --connect IP:PORT --authority TARGET:PORT [--cert CERT --key KEY]
//                   [-H 'name: value']... [--timeout SECONDS]
//
// QUIC v1 to IP:PORT, TLS 1.3 with ALPN h3 (the server certificate is not verified: the tests run
// against their own self-signed nodes; a client certificate is sent when given), then CONNECT to
// TARGET:PORT with the -H headers. The response status and headers go to stderr (":status 200",
// "name: value"). On a 2xx answer stdin is piped into the tunnel (FIN once stdin ends) and the
// tunnel to stdout, until the server ends it.
//
//   ugate_h3connect --connect IP:PORT --authority HOST[:PORT] --request METHOD PATH [--body]
//                   [-H 'name: value']... [--cert CERT --key KEY] [--timeout SECONDS]
//
// --request sends an ordinary request instead (:scheme https): with --body, stdin is its body
// (DATA frames, ended with stdin; no content-length unless given with -H); the response body goes
// to stdout as it arrives (an SSE stream is streamed), whatever its status. --cancel-after BYTES
// resets the request stream (H3_REQUEST_CANCELLED, both directions) once BYTES of the response body
// arrived, prints "h3connect: cancelled" to stderr and keeps the connection open until the
// server ends it or --timeout (then exit 0).
// Exit status: 0 = 2xx and the tunnel (response) ended cleanly; 2 = non-2xx answer; 3 = stream
// reset; 1 = connection, TLS or usage error; 124 = --timeout (default 20 s) elapsed.
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <ugate/reactor.h>
#include <ugate/socket_address.h>
#include <ugate/stream.h>
#include <ugate/time.h>
#include <ugate/tls_provider.h>

#include "quic/client_socket.h"
#include "quic/h3_app.h"
#include "tool_tls.h"

namespace {

using namespace ugate;
using namespace ugate::quic;

[[noreturn]] void die(const std::string& why) {
  fprintf(stderr, "h3connect: %s\n", why.c_str());
  exit(1);
}

struct Options {
  std::string connect, authority, cert, key;
  std::string method, path;  // --request
  bool body{false};
  long cancelAfter{-1};  // --cancel-after
  H3Headers headers;
  unsigned timeout{20};
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--connect") {
      o.connect = next();
    } else if (a == "--authority") {
      o.authority = next();
    } else if (a == "--request") {
      o.method = next();
      o.path = next();
    } else if (a == "--body") {
      o.body = true;
    } else if (a == "--cancel-after") {
      o.cancelAfter = std::stol(next());
    } else if (a == "--cert") {
      o.cert = next();
    } else if (a == "--key") {
      o.key = next();
    } else if (a == "-H") {
      std::string h = next();
      auto c = h.find(':');
      if (c == std::string::npos || c == 0) die("bad header '" + h + "'");
      std::string v = h.substr(c + 1);
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      o.headers.emplace_back(h.substr(0, c), v);
    } else if (a == "--timeout") {
      o.timeout = static_cast<unsigned>(std::stoul(next()));
    } else {
      die("unknown argument '" + a + "'");
    }
  }
  if (o.connect.empty() || o.authority.empty()) die("--connect and --authority are required");
  if (o.cert.empty() != o.key.empty()) die("--cert and --key go together");
  return o;
}

using tools::ToolTls;

/** Pipe: stdin → tunnel, tunnel → stdout, on the reactor. */
class Pipe final : public StreamCallbacks, public IoWatcher {
 public:
  Pipe(Reactor& r, std::unique_ptr<QuicStream> s, bool sendStdin = true) : r_(r), s_(std::move(s)) {
    s_->setCallbacks(this);
    if (!sendStdin) {
      stdinDone_ = true;  // a request without a body: it ended with its head
      return;
    }
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    if (!r_.addFd(0, this, EPOLLIN)) stdinIsFile_ = true;  // a regular file cannot be polled
    if (stdinIsFile_) r_.defer([this] { pump(); });
  }
  ~Pipe() override {
    if (!stdinIsFile_ && !stdinDone_) r_.removeFd(0, this);
  }
  int result{-1};  // exit status once the tunnel ended
  /** cancelAfter: once this many bytes arrived, onCancel runs and the stream is read no more. */
  long cancelAfter{-1};
  std::function<void(int64_t id)> onCancel;

  void onIoEvent(uint32_t) override { pump(); }
  void onStreamReadable(Stream&) override { drain(); }
  void onStreamWritable(Stream&) override { pump(); }

 private:
  void pump() {
    while (!stdinDone_) {
      if (pendingLen_ == 0) {
        ssize_t n = ::read(0, pending_, sizeof(pending_));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
          stdinDone_ = true;
          if (!stdinIsFile_) r_.removeFd(0, this);
          s_->shutdownWrite();
          return;
        }
        pendingLen_ = static_cast<size_t>(n);
        pendingOff_ = 0;
      }
      IoResult w = s_->write(pending_ + pendingOff_, pendingLen_ - pendingOff_);
      if (w.wouldBlock()) return;  // onStreamWritable resumes
      if (!w.ok()) {
        finish(3);
        return;
      }
      pendingOff_ += static_cast<size_t>(w.value);
      if (pendingOff_ == pendingLen_) pendingLen_ = 0;
    }
  }
  void drain() {
    uint8_t buf[16384];
    for (;;) {
      IoResult r = s_->read(buf, sizeof(buf));
      if (r.wouldBlock()) return;
      if (!r.ok()) {
        finish(r.err == ECONNREFUSED ? 2 : 3);
        return;
      }
      if (r.value == 0) {
        finish(0);
        return;
      }
      received_ += r.value;
      size_t off = 0;
      while (off < static_cast<size_t>(r.value)) {
        ssize_t n = ::write(1, buf + off, static_cast<size_t>(r.value) - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          finish(1);
          return;
        }
        off += static_cast<size_t>(n);
      }
      if (cancelAfter >= 0 && received_ >= cancelAfter && onCancel) {
        const int64_t id = s_->state() != nullptr ? s_->state()->id : -1;
        s_->setCallbacks(nullptr);
        auto cancel = std::move(onCancel);
        onCancel = nullptr;
        cancel(id);
        return;
      }
    }
  }
  void finish(int rc) {
    if (result < 0) result = rc;
    r_.exit();
  }

  Reactor& r_;
  std::unique_ptr<QuicStream> s_;
  uint8_t pending_[16384];
  size_t pendingLen_{0}, pendingOff_{0};
  bool stdinDone_{false};
  bool stdinIsFile_{false};
  long received_{0};
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  auto server = SocketAddress::parse(o.connect);
  if (!server) die("--connect wants IP:PORT, got '" + o.connect + "'");

  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  static const uint8_t kAlpn[] = {2, 'h', '3'};
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof(kAlpn));
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  if (!o.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, o.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      die("cannot load --cert/--key");
    }
  }

  ReactorPtr r = newReactor(realTimeSource(), 0);
  QuicCounters counters;
  auto sock = ClientSocket::open(*r, counters, *server);
  if (!sock) die(sock.error().detail);
  ClientParams p;
  p.tls = std::make_unique<ToolTls>(ctx);
  p.alpn = "h3";
  p.name = "h3connect";
  int rc = -1;
  int answer = 0;  // --request: 2 after a non-2xx status
  bool cancelled = false;  // --cancel-after: the stream was reset; the connection stays
  std::unique_ptr<Pipe> pipe;
  // The application needs its connection: QuicConn builds the client app through this factory.
  p.makeApp = [&](QuicConn& c) {
    auto h3 = std::make_unique<H3Client>(c);
    H3Client* h = h3.get();
    h->onReady = [&, h] {
      auto onResponse = [&](int status, const H3Headers& hs) {
        fprintf(stderr, ":status %d\n", status);
        for (const auto& [n, v] : hs) fprintf(stderr, "%s: %s\n", n.c_str(), v.c_str());
        if (status == 0) {
          rc = 3;
          r->exit();
        } else if (status < 200 || status > 299) {
          if (o.method.empty()) {
            rc = 2;
            r->exit();
          } else {
            answer = 2;  // the body still goes to stdout
          }
        }
      };
      std::unique_ptr<QuicStream> face;
      if (o.method.empty()) {
        face = h->connectTunnel(o.authority, o.headers, onResponse);
      } else {
        H3Headers head{{":method", o.method}, {":scheme", "https"}, {":authority", o.authority}, {":path", o.path}};
        head.insert(head.end(), o.headers.begin(), o.headers.end());
        face = h->request(head, o.body, onResponse);
      }
      if (!face) {
        fprintf(stderr, "h3connect: cannot open a stream\n");
        rc = 1;
        r->exit();
        return;
      }
      pipe = std::make_unique<Pipe>(*r, std::move(face), o.method.empty() || o.body);
      pipe->cancelAfter = o.cancelAfter;
      pipe->onCancel = [&c, &cancelled](int64_t id) {
        ngtcp2_conn_shutdown_stream(c.conn(), 0, id, 0x10c);  // H3_REQUEST_CANCELLED
        c.wake();
        cancelled = true;
        fprintf(stderr, "h3connect: cancelled\n");
      };
    };
    return h3;
  };
  auto c = (*sock)->connect(std::move(p));
  if (!c) die(c.error().detail);
  (*c)->onClosed = [&](std::string_view why) {
    if (rc < 0 && (!pipe || pipe->result < 0)) {
      fprintf(stderr, "h3connect: connection ended: %.*s\n", static_cast<int>(why.size()), why.data());
      rc = 1;
    }
    r->exit();
  };
  TimerPtr watchdog = r->createTimer([&] {
    fprintf(stderr, "h3connect: timed out after %u s\n", o.timeout);
    rc = cancelled ? 0 : 124;
    r->exit();
  });
  watchdog->enable(Duration(o.timeout * 1000));
  r->run();
  if (rc < 0 && pipe) rc = pipe->result == 0 ? answer : pipe->result;
  if (rc < 0) rc = 1;
  fflush(stdout);
  _exit(rc);  // the connection and reactor need no orderly teardown in a tool
}
