// ugate_quic_bad_stream: one bad stream, then a good one, on ONE QUIC connection to a `quic` listener,
// built on ugated's own QUIC client side (src/quic), for quic_bad_stream_test.sh:
//
//   ugate_quic_bad_stream --connect IP:PORT --alpn ugate --target HOST:PORT --cert CERT --key KEY
//   ugate_quic_bad_stream --connect IP:PORT --alpn h3 [--cert CERT --key KEY]
//
// --alpn ugate (the mesh over QUIC): a stream whose header is garbage (version byte 0x7f), then a
//   well-formed stream to --target (an echo service) carrying "ping\n" once it is answered.
// --alpn h3: a GET without :scheme and :path (malformed, RFC 9114 §4.3.1), then GET /healthz.
// Prints "bad: reset 0x<code>" (or "bad: <what happened>") and "good: status <n> body <bytes>" to
// stdout. Exit status: 0 = the connection stayed up through both; 1 = it did not, or a usage error.
// The server certificate is not verified (the tests' nodes are self-signed).
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <ugate/mux.h>
#include <ugate/reactor.h>
#include <ugate/socket_address.h>
#include <ugate/stream.h>
#include <ugate/tls_provider.h>

#include "quic/client_socket.h"
#include "quic/h3_app.h"
#include "tool_tls.h"
#include "quic/mux_app.h"

namespace {

using namespace ugate;
using namespace ugate::quic;

[[noreturn]] void die(const std::string& why) {
  fprintf(stderr, "quic_bad_stream: %s\n", why.c_str());
  exit(1);
}

using tools::ToolTls;

/** Probe: reads one stream to its end (or error) and remembers what came. */
class Probe final : public StreamCallbacks {
 public:
  Probe(std::unique_ptr<Stream> s, std::function<void()> done) : s_(std::move(s)), done_(std::move(done)) {
    s_->setCallbacks(this);
  }
  void onStreamReadable(Stream&) override {
    uint8_t buf[4096];
    for (;;) {
      IoResult r = s_->read(buf, sizeof(buf));
      if (r.wouldBlock()) return;
      if (!r.ok() || r.value == 0) {
        err = r.ok() ? 0 : r.err;
        if (auto* q = dynamic_cast<QuicStream*>(s_.get()); q != nullptr && q->state() != nullptr) {
          resetCode = q->state()->resetCode;
        }
        ended = true;
        if (done_) done_();
        return;
      }
      body.append(reinterpret_cast<char*>(buf), static_cast<size_t>(r.value));
    }
  }
  void onStreamWritable(Stream&) override { send(); }
  Stream& stream() { return *s_; }
  /** send: writes `out` (as the stream takes it), then ends our side. */
  void send() {
    while (!out.empty()) {
      IoResult w = s_->write(reinterpret_cast<const uint8_t*>(out.data()), out.size());
      if (!w.ok() || w.value <= 0) return;  // EAGAIN: onStreamWritable calls again
      out.erase(0, static_cast<size_t>(w.value));
    }
    if (!finSent) {
      finSent = true;
      s_->shutdownWrite();
    }
  }

  std::string out;
  bool finSent{false};

  std::string body;
  int err{0};
  uint64_t resetCode{0};
  bool ended{false};
  int status{-1};

 private:
  std::unique_ptr<Stream> s_;
  std::function<void()> done_;
};

struct NullMuxCallbacks final : MuxConnectionCallbacks {
  std::function<void()> ready;
  void onMuxReady(MuxConnection&) override {
    if (ready) ready();
  }
  void onMuxStream(MuxConnection&, MuxInbound) override {}
  void onMuxClosed(MuxConnection&, Errc, const std::string&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  std::string connect, alpn, target, cert, key;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) die("missing value after " + a);
    std::string v = argv[++i];
    if (a == "--connect") connect = v;
    else if (a == "--alpn") alpn = v;
    else if (a == "--target") target = v;
    else if (a == "--cert") cert = v;
    else if (a == "--key") key = v;
    else die("unknown argument '" + a + "'");
  }
  auto server = SocketAddress::parse(connect);
  if (!server || (alpn != "ugate" && alpn != "h3") || (alpn == "ugate" && target.empty())) {
    die("usage: --connect IP:PORT --alpn ugate|h3 [--target HOST:PORT] [--cert CERT --key KEY]");
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  std::string wire(1, static_cast<char>(alpn.size()));
  wire += alpn;
  SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const uint8_t*>(wire.data()), static_cast<unsigned>(wire.size()));
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  if (!cert.empty() && (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1 ||
                        SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)) {
    die("cannot load --cert/--key");
  }

  ReactorPtr r = newReactor(realTimeSource(), 0);
  QuicCounters counters;
  auto sockOr = ClientSocket::open(*r, counters, *server);
  if (!sockOr) die(sockOr.error().detail);
  std::unique_ptr<ClientSocket> sock = std::move(*sockOr);
  ClientParams p;
  p.tls = std::make_unique<ToolTls>(ctx);
  p.alpn = alpn;
  p.name = "quic_bad_stream";
  p.tuning.idleTimeout = Duration(10000);

  std::unique_ptr<Probe> bad, good;
  bool connDied = false;
  auto finishIfDone = [&] {
    if (bad && good && bad->ended && good->ended) r->exit();
  };
  auto report = [&] {
    if (bad) {
      if (bad->err == ECONNRESET && bad->resetCode != 0) printf("bad: reset 0x%llx\n", static_cast<unsigned long long>(bad->resetCode));
      else printf("bad: ended (err %d, status %d, %zu bytes)\n", bad->err, bad->status, bad->body.size());
    }
    if (good) printf("good: status %d body %s", good->status, good->body.empty() ? "(none)\n" : good->body.c_str());
  };

  // Garbage on a raw stream: a length of 16, then version 0x7f (the parser knows only 0x01).
  auto openGarbage = [&](QuicConn& c) {
    int64_t id = -1;
    if (ngtcp2_conn_open_bidi_stream(c.conn(), &id, nullptr) != 0) die("cannot open a stream");
    auto face = std::make_unique<QuicStream>(&c, &c.stream(id));
    static const char kGarbage[] = "\x10\x7fgarbage-garbage";
    face->write(reinterpret_cast<const uint8_t*>(kGarbage), sizeof(kGarbage) - 1);
    bad = std::make_unique<Probe>(std::move(face), finishIfDone);
  };

  std::unique_ptr<QuicMux> mux;
  NullMuxCallbacks muxCb;
  if (alpn == "ugate") {
    mux = std::make_unique<QuicMux>(counters, "quic_bad_stream");
    mux->setCallbacks(&muxCb);
    QuicMux* m = mux.get();
    p.makeApp = [m](QuicConn& c) { return std::make_unique<MuxApp>(c, m); };
  } else {
    p.makeApp = [&](QuicConn& c) {
      auto h3 = std::make_unique<H3Client>(c);
      H3Client* h = h3.get();
      h->onReady = [&, h] {
        const H3Headers badHead = {{":method", "GET"}, {":authority", "localhost"}};  // no :scheme, :path
        const H3Headers goodHead = {{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"},
                                    {":path", "/healthz"}};
        auto b = h->request(badHead, false, [&](int st, const H3Headers&) { bad->status = st; });
        auto g = h->request(goodHead, false, [&](int st, const H3Headers&) { good->status = st; });
        if (!b || !g) die("cannot open the request streams");
        bad = std::make_unique<Probe>(std::move(b), finishIfDone);
        good = std::make_unique<Probe>(std::move(g), finishIfDone);
      };
      return h3;
    };
  }
  auto c = sock->connect(std::move(p));
  if (!c) die(c.error().detail);
  QuicConn* conn = *c;
  if (mux) {
    // The mesh's streams: the garbage one first, then a good one, once the handshake is done.
    muxCb.ready = [&] {
      openGarbage(*conn);
      StreamPtr s = mux->open(target, {}, [&](int st, const MuxFields&) {
        good->status = st;
        // The payload goes once the stream is answered (see quic_bad_stream_test.sh).
        r->defer([&] {
          good->send();
          good->onStreamReadable(good->stream());
        });
      });
      if (!s) die("cannot open the mesh stream");
      good = std::make_unique<Probe>(std::move(s), finishIfDone);
      good->out = "ping\n";
    };
    mux->attach(*conn, std::move(sock));
  } else {
    conn->onClosed = [&](std::string_view) {
      connDied = true;
      r->exit();
    };
  }
  TimerPtr deadline = r->createTimer([&] {
    fprintf(stderr, "quic_bad_stream: timed out\n");

    r->exit();
  });
  deadline->enable(Duration(15000));
  r->run();
  report();
  const bool up = mux ? !mux->closed() : !connDied;
  printf("connection: %s\n", up ? "up" : "closed");
  fflush(stdout);
  bad.reset();
  good.reset();
  mux.reset();
  sock.reset();
  SSL_CTX_free(ctx);
  return up ? 0 : 1;
}
