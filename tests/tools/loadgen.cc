// ugate_loadgen: the client and the echo backend of the soak and fault tests. One process each, one
// epoll loop, non-blocking sockets: 15 000 connections cost 15 000 fds and a few MB, not threads.
//
//   ugate_loadgen echo [--listen 127.0.0.1:0]
//       Prints "listening PORT", echoes every byte of every connection, and after the client's FIN
//       and the last byte written closes the connection. SIGTERM/SIGINT: prints "echo: ..." and
//       exits.
//
//   ugate_loadgen client --connect HOST:PORT[,HOST:PORT...] --connections N [--bytes B]
//                        [--concurrency C] [--hold] [--timeout SECONDS] [--seed S]
//       (--timeout bounds each phase; default 100 s)
//       Connection i (targets used round-robin) sends B + (i % 1009) bytes of its own pseudo-random
//       pattern and verifies that every byte comes back in order. Phase 1: the first half is sent
//       and echoed back on every connection (at most C connects in flight); then
//       "held ok=N failed=F" is printed and, with --hold, the client waits for SIGUSR1 with every
//       connection still open. Phase 2: the second half is sent, then FIN, and the
//       echo is read to EOF. A connection that closes or sends anything unexpected while held
//       fails. Last line: "done ok=N failed=F sent=BYTES verified=BYTES"; exit status 0 only when
//       every connection verified every byte.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace {

// ---- addresses and options ---------------------------------------------------------------------

bool parseAddr(const std::string& s, sockaddr_storage& ss, socklen_t& len) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = s.substr(0, colon);
  int port = atoi(s.c_str() + colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  ss = {};
  if (host.find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*a);
    return inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) == 1;
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(static_cast<uint16_t>(port));
  len = sizeof(*a);
  return inet_pton(AF_INET, host.c_str(), &a->sin_addr) == 1;
}

struct Options {
  std::map<std::string, std::string> v;
  bool has(const std::string& k) const { return v.count(k) != 0; }
  std::string str(const std::string& k, std::string def = {}) const {
    return has(k) ? v.at(k) : def;
  }
  uint64_t num(const std::string& k, uint64_t def) const {
    return has(k) ? strtoull(v.at(k).c_str(), nullptr, 10) : def;
  }
};

[[noreturn]] void usage(const char* why) {
  fprintf(stderr, "ugate_loadgen: %s\n(see the header of tests/tools/loadgen.cc)\n", why);
  exit(2);
}

Options parseOptions(int argc, char** argv) {
  Options o;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) usage(("unexpected argument " + a).c_str());
    if (a == "--hold") {
      o.v[a] = "1";
    } else if (i + 1 < argc) {
      o.v[a] = argv[++i];
    } else {
      usage((a + " needs a value").c_str());
    }
  }
  return o;
}

int signalFd() {
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGTERM);
  sigaddset(&m, SIGINT);
  sigaddset(&m, SIGUSR1);
  sigprocmask(SIG_BLOCK, &m, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
}

void ctl(int ep, int op, int fd, uint32_t events, uint64_t data) {
  epoll_event e{};
  e.events = events;
  e.data.u64 = data;
  epoll_ctl(ep, op, fd, &e);
}

// ---- echo --------------------------------------------------------------------------------------

struct EchoConn {
  int fd{-1};
  std::string pending;  // bytes read but not yet written back (the peer is slow)
};

int runEcho(const Options& o) {
  sockaddr_storage ss;
  socklen_t len;
  if (!parseAddr(o.str("--listen", "127.0.0.1:0"), ss, len)) usage("bad --listen");
  int ls = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(ls, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(ls, 4096) != 0) {
    perror("echo: bind/listen");
    return 1;
  }
  getsockname(ls, reinterpret_cast<sockaddr*>(&ss), &len);
  uint16_t port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                                 : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  int sfd = signalFd();
  int ep = epoll_create1(EPOLL_CLOEXEC);
  constexpr uint64_t kListen = UINT64_MAX, kSignal = UINT64_MAX - 1;
  ctl(ep, EPOLL_CTL_ADD, ls, EPOLLIN, kListen);
  ctl(ep, EPOLL_CTL_ADD, sfd, EPOLLIN, kSignal);
  printf("listening %u\n", port);
  fflush(stdout);

  std::vector<EchoConn> conns;  // indexed by fd
  uint64_t accepted = 0, bytes = 0, resets = 0, open = 0, acceptErrors = 0;
  std::vector<uint8_t> buf(1 << 16);
  auto finish = [&](EchoConn& c, bool reset) {
    resets += reset;
    close(c.fd);
    c = EchoConn{};
    --open;
  };
  std::vector<epoll_event> evs(1024);
  for (;;) {
    int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), -1);
    for (int i = 0; i < n; ++i) {
      uint64_t id = evs[i].data.u64;
      if (id == kSignal) {
        signalfd_siginfo si;
        if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR1) continue;
        printf("echo: accepted=%llu bytes=%llu resets=%llu open=%llu accept_errors=%llu\n",
               static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(bytes),
               static_cast<unsigned long long>(resets), static_cast<unsigned long long>(open),
               static_cast<unsigned long long>(acceptErrors));
        return 0;
      }
      if (id == kListen) {
        for (;;) {
          int fd = accept4(ls, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) ++acceptErrors;
            break;
          }
          if (conns.size() <= static_cast<size_t>(fd)) conns.resize(fd + 1024);
          conns[fd] = EchoConn{fd, {}};
          ++accepted;
          ++open;
          ctl(ep, EPOLL_CTL_ADD, fd, EPOLLIN, static_cast<uint64_t>(fd));
        }
        continue;
      }
      EchoConn& c = conns[id];
      if (c.fd < 0) continue;
      if (!c.pending.empty()) {  // EPOLLOUT: flush what the peer could not take
        ssize_t w = send(c.fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) {
          finish(c, true);
          continue;
        }
        if (w > 0) c.pending.erase(0, static_cast<size_t>(w));
        if (!c.pending.empty()) continue;
        ctl(ep, EPOLL_CTL_MOD, c.fd, EPOLLIN, id);
        continue;
      }
      ssize_t r = recv(c.fd, buf.data(), buf.size(), 0);
      if (r < 0) {
        if (errno != EAGAIN && errno != EINTR) finish(c, true);
        continue;
      }
      if (r == 0) {
        finish(c, false);  // everything read was written back already
        continue;
      }
      bytes += static_cast<uint64_t>(r);
      ssize_t w = send(c.fd, buf.data(), static_cast<size_t>(r), MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN) {
        finish(c, true);
        continue;
      }
      if (w < r) {
        c.pending.assign(reinterpret_cast<char*>(buf.data()) + std::max<ssize_t>(w, 0),
                         static_cast<size_t>(r - std::max<ssize_t>(w, 0)));
        ctl(ep, EPOLL_CTL_MOD, c.fd, EPOLLOUT, id);  // stop reading until the peer catches up
      }
    }
  }
}

// ---- client ------------------------------------------------------------------------------------

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// fillPattern writes bytes [off, off+n) of connection conn's stream.
void fillPattern(uint64_t seed, uint32_t conn, uint64_t off, uint8_t* out, size_t n) {
  const uint64_t base = seed ^ (static_cast<uint64_t>(conn) << 40);
  for (size_t i = 0; i < n;) {
    uint64_t pos = off + i;
    uint64_t word = splitmix(base + (pos >> 3));
    for (unsigned b = pos & 7; b < 8 && i < n; ++b, ++i)
      out[i] = static_cast<uint8_t>(word >> (8 * b));
  }
}

enum class St : uint8_t { Idle, Connecting, Phase1, Held, Phase2, Done, Failed };

struct ClientConn {
  int fd{-1};
  St st{St::Idle};
  bool shut{false};  // our FIN was sent
  uint64_t total{0}, half{0}, sent{0}, recvd{0};
};

int runClient(const Options& o) {
  std::vector<std::pair<sockaddr_storage, socklen_t>> targets;
  {
    std::string list = o.str("--connect");
    if (list.empty()) usage("--connect is required");
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      std::string one =
          list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      sockaddr_storage ss;
      socklen_t len;
      if (!parseAddr(one, ss, len)) usage(("bad address " + one).c_str());
      targets.emplace_back(ss, len);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  const uint32_t n = static_cast<uint32_t>(o.num("--connections", 100));
  const uint64_t bytes = o.num("--bytes", 2048);
  const uint32_t concurrency =
      static_cast<uint32_t>(std::max<uint64_t>(1, o.num("--concurrency", 256)));
  const uint64_t seed = o.num("--seed", 1);
  const auto timeout = std::chrono::seconds(o.num("--timeout", 100));
  auto deadline = std::chrono::steady_clock::now() + timeout;  // per phase
  const bool hold = o.has("--hold");

  std::vector<ClientConn> conns(n);
  for (uint32_t i = 0; i < n; ++i) {
    conns[i].total = bytes + i % 1009;
    conns[i].half = conns[i].total / 2;
  }
  int sfd = signalFd();
  int ep = epoll_create1(EPOLL_CLOEXEC);
  constexpr uint64_t kSignal = UINT64_MAX;
  ctl(ep, EPOLL_CTL_ADD, sfd, EPOLLIN, kSignal);

  std::map<std::string, uint64_t> reasons;
  std::vector<std::string> examples;
  uint32_t nextToOpen = 0, connecting = 0, settled1 = 0, ok = 0, failed = 0;
  uint64_t sentTotal = 0, verified = 0;
  bool phase2 = false, heldPrinted = false, go = false;
  std::vector<uint8_t> buf(1 << 16), expect(1 << 16);

  constexpr uint32_t kIn = EPOLLIN, kOut = EPOLLOUT;
  auto interest = [&](ClientConn& c) -> uint32_t {
    switch (c.st) {
      case St::Connecting:
        return kOut;
      case St::Phase1:
        return kIn | (c.sent < c.half ? kOut : 0u);
      case St::Held:
        return kIn | EPOLLRDHUP;  // anything now is a failure
      case St::Phase2:
        return kIn | (c.sent < c.total || !c.shut ? kOut : 0u);
      default:
        return 0;
    }
  };
  auto fail = [&](uint32_t i, const std::string& why) {
    ClientConn& c = conns[i];
    if (c.st == St::Connecting) --connecting;
    if (c.st == St::Connecting || c.st == St::Phase1) ++settled1;
    ++reasons[why];
    if (examples.size() < 8) {
      examples.push_back("conn " + std::to_string(i) + ": " + why + " (sent " +
                         std::to_string(c.sent) + ", verified " + std::to_string(c.recvd) + " of " +
                         std::to_string(c.total) + ")");
    }
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
    c.st = St::Failed;
    ++failed;
  };
  auto openMore = [&] {
    while (connecting < concurrency && nextToOpen < n) {
      uint32_t i = nextToOpen++;
      ClientConn& c = conns[i];
      const auto& t = targets[i % targets.size()];
      c.fd = socket(t.first.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      c.st = St::Connecting;
      ++connecting;
      if (c.fd < 0) {
        fail(i, std::string("socket: ") + strerror(errno));
        continue;
      }
      int one = 1;
      setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      if (connect(c.fd, reinterpret_cast<const sockaddr*>(&t.first), t.second) != 0 &&
          errno != EINPROGRESS) {
        fail(i, std::string("connect: ") + strerror(errno));
        continue;
      }
      ctl(ep, EPOLL_CTL_ADD, c.fd, interest(c), i);
    }
  };
  auto update = [&](uint32_t i) {
    ClientConn& c = conns[i];
    if (c.fd >= 0) ctl(ep, EPOLL_CTL_MOD, c.fd, interest(c), i);
  };
  // writeSome sends pattern bytes up to `limit`; false when the connection failed.
  auto writeSome = [&](uint32_t i, uint64_t limit) {
    ClientConn& c = conns[i];
    while (c.sent < limit) {
      size_t chunk = static_cast<size_t>(std::min<uint64_t>(buf.size(), limit - c.sent));
      fillPattern(seed, i, c.sent, buf.data(), chunk);
      ssize_t w = send(c.fd, buf.data(), chunk, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN) return true;
        fail(i, std::string("send: ") + strerror(errno));
        return false;
      }
      c.sent += static_cast<uint64_t>(w);
      sentTotal += static_cast<uint64_t>(w);
    }
    return true;
  };
  // readSome verifies echoed bytes; false when the connection failed or finished.
  auto readSome = [&](uint32_t i) {
    ClientConn& c = conns[i];
    for (;;) {
      ssize_t r = recv(c.fd, buf.data(), buf.size(), 0);
      if (r < 0) {
        if (errno == EAGAIN) return true;
        fail(i, std::string("recv: ") + strerror(errno));
        return false;
      }
      if (r == 0) {
        if (c.st == St::Phase2 && c.shut && c.recvd == c.total) {
          close(c.fd);
          c.fd = -1;
          c.st = St::Done;
          ++ok;
          return false;
        }
        fail(i, c.st == St::Held ? "closed while held" : "early EOF");
        return false;
      }
      if (c.st == St::Held) {
        fail(i, "unexpected bytes while held");
        return false;
      }
      if (c.recvd + static_cast<uint64_t>(r) > c.sent) {
        fail(i, "more bytes than sent");
        return false;
      }
      fillPattern(seed, i, c.recvd, expect.data(), static_cast<size_t>(r));
      if (memcmp(expect.data(), buf.data(), static_cast<size_t>(r)) != 0) {
        fail(i, "byte mismatch");
        return false;
      }
      c.recvd += static_cast<uint64_t>(r);
      verified += static_cast<uint64_t>(r);
    }
  };
  auto startPhase2 = [&] {
    phase2 = true;
    deadline = std::chrono::steady_clock::now() + timeout;
    for (uint32_t i = 0; i < n; ++i) {
      if (conns[i].st != St::Held) continue;
      conns[i].st = St::Phase2;
      update(i);
    }
  };

  auto report = [&] {
    for (const auto& ex : examples) fprintf(stderr, "  %s\n", ex.c_str());
    if (!reasons.empty()) {
      std::string s;
      for (const auto& [r, cnt] : reasons) s += " " + std::to_string(cnt) + "x[" + r + "]";
      fprintf(stderr, "failures:%s\n", s.c_str());
    }
  };

  openMore();
  std::vector<epoll_event> evs(1024);
  for (;;) {
    if (!heldPrinted && settled1 == n) {
      heldPrinted = true;
      printf("held ok=%u failed=%u\n", n - failed, failed);
      fflush(stdout);
      if (!hold || go) startPhase2();
    }
    if (phase2 && ok + failed == n) break;
    auto now = std::chrono::steady_clock::now();
    if (!(hold && heldPrinted && !phase2) && now >= deadline) {
      for (uint32_t i = 0; i < n; ++i) {
        if (conns[i].st != St::Done && conns[i].st != St::Failed) fail(i, "timeout");
      }
      if (!heldPrinted) printf("held ok=%u failed=%u\n", n - failed, failed);
      break;
    }
    int ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
    int k = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()),
                       hold && heldPrinted && !phase2 ? -1 : std::max(ms, 1));
    for (int e = 0; e < k; ++e) {
      uint64_t id = evs[e].data.u64;
      if (id == kSignal) {
        signalfd_siginfo si;
        if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR1) {
          go =
              true;  // a SIGUSR1 that arrives before "held" starts phase 2 as soon as it is reached
          if (heldPrinted && !phase2) startPhase2();
          continue;
        }
        report();
        printf("done ok=%u failed=%u sent=%llu verified=%llu (interrupted)\n", ok, failed,
               static_cast<unsigned long long>(sentTotal),
               static_cast<unsigned long long>(verified));
        return 1;
      }
      uint32_t i = static_cast<uint32_t>(id);
      ClientConn& c = conns[i];
      if (c.fd < 0) continue;
      if (c.st == St::Connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          fail(i, std::string("connect: ") + strerror(err));
          openMore();
          continue;
        }
        --connecting;
        c.st = St::Phase1;
        openMore();
      }
      if (c.st == St::Held) {
        readSome(i);
        continue;
      }
      if (!readSome(i) || c.fd < 0) continue;
      if (c.st == St::Phase1) {
        if (!writeSome(i, c.half)) continue;
        if (c.recvd == c.half) {
          c.st = St::Held;
          ++settled1;
        }
      } else if (c.st == St::Phase2) {
        if (!writeSome(i, c.total)) continue;
        if (c.sent == c.total && !c.shut) {
          shutdown(c.fd, SHUT_WR);
          c.shut = true;
        }
      }
      update(i);
    }
  }
  report();
  printf("done ok=%u failed=%u sent=%llu verified=%llu\n", ok, failed,
         static_cast<unsigned long long>(sentTotal), static_cast<unsigned long long>(verified));
  return failed == 0 && ok == n ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage("expected 'echo' or 'client'");
  std::string_view mode = argv[1];
  Options o = parseOptions(argc, argv);
  if (mode == "echo") return runEcho(o);
  if (mode == "client") return runClient(o);
  usage("expected 'echo' or 'client'");
}
