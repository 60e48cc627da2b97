#pragma once
// Harness for TlsStream tests: loopback TCP pairs on the real reactor, an echoing/sending endpoint,
// and child processes (openssl s_server / s_client) killed by PID.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <ugate/reactor.h>

#include "auth/tls_stream.h"
#include "auth_test_util.h"
#include <ugate/tcp_stream.h>
#include "test_common/test_util.h"

namespace ugate::auth::test {

inline void setNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

/** tcpPair: a connected loopback TCP pair {client, server}, both non-blocking. */
inline std::pair<int, int> tcpPair() {
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::listen(l, 1);
  socklen_t len = sizeof(a);
  ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  int s = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  ::close(l);
  setNonBlocking(c);
  return {c, s};
}

/**
 * runUntil runs the reactor until pred holds or timeout passes (checked every 2 ms).
 * A reactor runs once: use a fresh one per call.
 */
inline bool runUntil(Reactor& r, const std::function<bool()>& pred,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(15000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool ok = false;
  TimerPtr t;
  t = r.createTimer([&] {
    if (pred()) {
      ok = true;
      r.exit();
    } else if (std::chrono::steady_clock::now() > deadline) {
      r.exit();
    } else {
      t->enable(std::chrono::milliseconds(2));
    }
  });
  t->enable(std::chrono::milliseconds(1));
  r.run();
  return ok;
}

/** Endpoint: one TLS side. Sends `toSend` (then half-closes if asked), collects what it reads. */
class Endpoint : public StreamCallbacks {
 public:
  bool echo{false};           // echo: write back what is read; half-close on EOF
  bool shutdownAfterSend{false};
  size_t closeAfterBytes{0};  // closeAfterBytes: close once this much was read and echoed
  std::string toSend;

  bool handshook{false};
  TlsHandshakeInfo info;
  std::string received;
  bool eof{false};
  int readErr{0};
  bool closed{false};

  void start(Reactor& r, int fd, TlsContextPtr ctx, TlsStreamOptions opts = {}) {
    opts.onHandshake = [this](const TlsHandshakeInfo& i) {
      handshook = true;
      info = i;
      if (!i.ok()) return;
      tls->setCallbacks(this);
      pump();
      drain();
    };
    tls = TlsStream::create(std::make_unique<TcpStream>(r, fd), std::move(ctx), std::move(opts));
    tls->start();
  }
  bool finished() const { return closed || eof || readErr != 0 || (handshook && !info.ok()); }

  void onStreamReadable(Stream&) override { drain(); }
  void onStreamWritable(Stream&) override { pump(); }

  void drain() {
    uint8_t buf[8192];
    while (tls && !closed) {
      IoResult r = tls->read(buf, sizeof(buf));
      if (r.wouldBlock()) return;
      if (!r.ok()) {
        readErr = r.err;
        return;
      }
      if (r.value == 0) {
        eof = true;
        if (echo) {
          echoShut_ = true;
          pump();
        }
        return;
      }
      received.append(reinterpret_cast<char*>(buf), static_cast<size_t>(r.value));
      if (echo) toSend.append(reinterpret_cast<char*>(buf), static_cast<size_t>(r.value));
      pump();
      if (closeAfterBytes > 0 && received.size() >= closeAfterBytes && sent_ == toSend.size()) {
        tls->close(false);
        closed = true;
        return;
      }
    }
  }

  void pump() {
    while (tls && !closed && sent_ < toSend.size()) {
      IoResult r = tls->write(reinterpret_cast<const uint8_t*>(toSend.data()) + sent_,
                              toSend.size() - sent_);
      if (!r.ok()) return;
      sent_ += static_cast<size_t>(r.value);
    }
    if (tls && !closed && sent_ == toSend.size() && !shut_ &&
        (shutdownAfterSend || echoShut_)) {
      shut_ = true;
      tls->shutdownWrite();
    }
  }

  TlsStreamPtr tls;

 private:
  size_t sent_{0};
  bool shut_{false};
  bool echoShut_{false};
};

/** Child: a process with stdin from a file and stdout+stderr to a log file; killed by PID. */
class Child {
 public:
  Child(std::vector<std::string> args, const std::string& stdinPath, const std::string& logPath)
      : log_(logPath) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int in = ::open(stdinPath.c_str(), O_RDONLY);
      int out = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(out, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (!reaped_ && pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  /** wait: the exit code, or -1 if it did not exit within timeoutMs (then it is killed). */
  int wait(int timeoutMs = 10000) {
    int st = 0;
    bool done = ugate::test::waitFor(
        [&] { return reaped_ || ::waitpid(pid_, &st, WNOHANG) == pid_; }, timeoutMs);
    if (!done) return -1;
    if (!reaped_) status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    reaped_ = true;
    return status_;
  }
  std::string output() const { return slurp(log_); }

 private:
  pid_t pid_{-1};
  std::string log_;
  bool reaped_{false};
  int status_{-1};
};

}  // namespace ugate::auth::test
