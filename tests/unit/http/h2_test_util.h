#pragma once
// Test harness for H2Connection: a reactor on its own thread (every H2 object lives and dies on
// it; the test thread drives it through run()/waitFor()), a Pump that writes and reads one stream
// with backpressure, and H2Pair: a client and a server H2Connection over a socketpair.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <ugate/reactor.h>

#include <ugate/tcp_stream.h>
#include "http/h2_connection.h"
#include "test_common/reactor_sync.h"

namespace ugate::http::test {

class ReactorThread {
 public:
  ReactorThread() : r_(newReactor(realTimeSource(), 0)) {
    thread_ = std::thread([this] { r_->run(); });
  }
  ~ReactorThread() {
    r_->exit();
    thread_.join();
  }
  Reactor& reactor() { return *r_; }

  /** run executes fn on the reactor thread and waits for it. */
  void run(const std::function<void()>& fn) { ugate::test::runOn(*r_, fn); }

  /** waitFor evaluates pred on the reactor thread every 2 ms until it holds or timeoutMs pass. */
  bool waitFor(const std::function<bool()>& pred, int timeoutMs = 20000) {
    return ugate::test::waitOn(*r_, pred, timeoutMs);
  }

 private:
  ReactorPtr r_;
  std::thread thread_;
};

/**
 * Pump: writes `out` to a stream (then shutdownWrite if shutdownWhenSent), reads everything,
 * checks it against `expect` as it arrives, and in echo mode writes back what it reads (reading
 * pauses while more than echoLimit bytes wait to be written: backpressure).
 */
struct Pump : StreamCallbacks {
  Stream* s{nullptr};
  std::string out;
  size_t sent{0};
  bool shutdownWhenSent{false};
  bool shut{false};
  bool reading{true};
  bool echo{false};
  size_t echoLimit{256 * 1024};
  bool keepIn{false};
  std::string in;
  const std::string* expect{nullptr};
  size_t received{0};
  bool mismatch{false};
  bool eof{false};
  int readErr{0};
  int writeErr{0};
  int readable{0};
  int writable{0};
  int eagains{0};

  void attach(Stream& st) {
    s = &st;
    st.setCallbacks(this);
    pump();
  }
  void detach() {
    if (s != nullptr) s->setCallbacks(nullptr);
    s = nullptr;
  }
  size_t pending() const { return out.size() - sent; }
  void send(const std::string& data) {
    out += data;
    pump();
  }

  void pump() {
    bool progress = true;
    while (s != nullptr && progress) {
      progress = false;
      while (sent < out.size() && writeErr == 0) {
        IoResult r = s->write(reinterpret_cast<const uint8_t*>(out.data()) + sent, out.size() - sent);
        if (r.wouldBlock()) {
          ++eagains;
          break;
        }
        if (!r.ok()) {
          writeErr = r.err;
          break;
        }
        sent += static_cast<size_t>(r.value);
      }
      if (echo && sent > (1u << 20)) {
        out.erase(0, sent);
        sent = 0;
      }
      if (sent == out.size() && shutdownWhenSent && !shut && writeErr == 0) {
        shut = true;
        s->shutdownWrite();
      }
      uint8_t buf[16 * 1024];
      while (reading && !eof && readErr == 0 && !(echo && pending() > echoLimit)) {
        IoResult r = s->read(buf, sizeof(buf));
        if (r.wouldBlock()) break;
        if (!r.ok()) {
          readErr = r.err;
          break;
        }
        if (r.value == 0) {
          eof = true;
          if (echo) shutdownWhenSent = true;
          progress = true;
          break;
        }
        const size_t n = static_cast<size_t>(r.value);
        if (expect != nullptr &&
            (received + n > expect->size() || memcmp(expect->data() + received, buf, n) != 0)) {
          mismatch = true;
        }
        received += n;
        if (keepIn) in.append(reinterpret_cast<char*>(buf), n);
        if (echo) {
          out.append(reinterpret_cast<char*>(buf), n);
          progress = true;
          break;  // write it back before reading more
        }
      }
    }
  }

  // ugate::StreamCallbacks
  void onStreamReadable(Stream&) override {
    ++readable;
    pump();
  }
  void onStreamWritable(Stream&) override {
    ++writable;
    pump();
  }
};

/** socketPair: a connected non-blocking AF_UNIX stream pair. */
inline void socketPair(int fds[2]) {
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
}

struct Closed {
  bool happened{false};
  Errc reason{Errc::Ok};
  std::string detail;
};

/**
 * H2Pair: a client and a server H2Connection joined by a socketpair, started on the reactor.
 * Requests land in `requests` unless onReq takes them. The pair owns every stream and Pump a test
 * makes through it, and destroys them on the reactor thread (never on the test thread).
 */
class H2Pair : public H2ConnectionCallbacks {
 public:
  explicit H2Pair(H2Options clientOpts = {}, H2Options serverOpts = {}) {
    serverOpts.stats = &serverStats;
    clientOpts.stats = &clientStats;
    int fds[2];
    socketPair(fds);
    rt.run([&] {
      client = H2Connection::create(rt.reactor(), std::make_unique<TcpStream>(rt.reactor(), fds[0]),
                                    H2Connection::Role::Client, clientOpts, *this);
      server = H2Connection::create(rt.reactor(), std::make_unique<TcpStream>(rt.reactor(), fds[1]),
                                    H2Connection::Role::Server, serverOpts, *this);
      server->start();
      client->start();
    });
  }
  ~H2Pair() override {
    rt.run([&] {
      keep.clear();
      for (auto& pu : pumps) pu->detach();
      onReq = nullptr;
      requests.clear();
      streams.clear();
      client.reset();
      server.reset();
      pumps.clear();
    });
  }

  /** own keeps s alive until the pair ends (reactor thread); returns it. */
  H2Stream* own(H2StreamPtr s) {
    H2Stream* raw = s.get();
    if (s) streams.push_back(std::move(s));
    return raw;
  }
  /** drop destroys a stream the pair owns (reactor thread). */
  void drop(H2Stream* s) {
    for (auto* v : {&streams, &requests}) {
      for (auto it = v->begin(); it != v->end(); ++it) {
        if (it->get() == s) {
          v->erase(it);
          return;
        }
      }
    }
  }
  /** newPump: a Pump owned by the pair (detached before the streams die). */
  Pump& newPump() {
    pumps.push_back(std::make_unique<Pump>());
    return *pumps.back();
  }

  /** tunnel: a CONNECT the server answers 200 (its end is requests.back()), once answered. */
  H2Stream* tunnel(const std::string& authority) {
    if (!onReq) onReq = [](H2StreamPtr& s) { s->respond(200); };
    statuses.push_back(0);
    int* status = &statuses.back();
    H2Stream* c = connect(authority, {}, status);
    EXPECT_TRUE(rt.waitFor([&] { return *status != 0; }));
    EXPECT_EQ(*status, 200);
    return c;
  }

  /**
   * sendPatterns opens one CONNECT per pattern; each sends its pattern, ends its side and checks
   * what comes back against it (an echo). Returns the pumps (owned by the pair).
   */
  std::vector<Pump*> sendPatterns(const std::vector<std::string>& patterns, const std::string& authority) {
    std::vector<Pump*> out(patterns.size());
    for (auto& pu : out) pu = &newPump();
    rt.run([&] {
      for (size_t i = 0; i < patterns.size(); ++i) {
        H2Stream* s = own(client->connect(authority, {}, nullptr));
        ASSERT_NE(s, nullptr) << i;
        out[i]->out = patterns[i];
        out[i]->expect = &patterns[i];
        out[i]->shutdownWhenSent = true;
        out[i]->attach(*s);
      }
    });
    return out;
  }
  /** waitAllEnded: every pump saw EOF or an error. */
  bool waitAllEnded(const std::vector<Pump*>& ps, int timeoutMs) {
    return rt.waitFor(
        [&] {
          for (Pump* pu : ps) {
            if (!pu->eof && pu->readErr == 0 && pu->writeErr == 0) return false;
          }
          return true;
        },
        timeoutMs);
  }

  /** connect opens a CONNECT stream on the reactor thread, recording the response status. */
  H2Stream* connect(const std::string& authority, const Headers& extra = {}, int* status = nullptr) {
    H2Stream* s = nullptr;
    rt.run([&] {
      s = own(client->connect(authority, extra, [status](H2Stream& st) {
        if (status != nullptr) *status = st.status() == 0 ? -1 : st.status();
      }));
    });
    return s;
  }

  // ugate::http::H2ConnectionCallbacks
  void onRequest(H2Connection&, H2StreamPtr s) override {
    ++requestsSeen;
    if (onReq) {
      onReq(s);
      if (s == nullptr) return;
    }
    requests.push_back(std::move(s));
  }
  void onConnectionClosed(H2Connection& c, Errc reason, const std::string& detail) override {
    Closed& cl = &c == client.get() ? clientClosed : serverClosed;
    cl.happened = true;
    cl.reason = reason;
    cl.detail = detail;
  }

  ReactorThread rt;
  H2Stats clientStats;
  H2Stats serverStats;
  std::vector<std::unique_ptr<Pump>> pumps;
  H2ConnectionPtr client;
  H2ConnectionPtr server;
  std::vector<H2StreamPtr> streams;   // client streams the test opened
  std::vector<H2StreamPtr> requests;  // server streams
  std::deque<int> statuses;
  std::vector<std::shared_ptr<void>> keep;  // test objects destroyed first, on the reactor thread
  int requestsSeen{0};
  std::function<void(H2StreamPtr&)> onReq;
  Closed clientClosed;
  Closed serverClosed;
};

}  // namespace ugate::http::test
