// ref_forwarder: the least work a userland TCP proxy can do, as a yardstick for bench/bench.py.
//
//   ref_forwarder LISTEN_PORT TARGET_PORT [LISTEN_PORT TARGET_PORT ...]
//
// One thread, one epoll (edge-triggered), loopback only. Per connection: accept4, socket, connect,
// then recv/send through one static buffer for small messages and splice(2) through a pooled pipe
// once a read fills the buffer; EOF becomes shutdown(SHUT_WR), and when both directions ended the
// two sockets are closed. No routing, no metadata, no timeouts, no limits, no logs, no error
// reporting: whatever ugated spends beyond this is the price of being a gateway. It is not part of
// the product and never faces untrusted input (bench.py runs it on 127.0.0.1 only).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

constexpr size_t kBuf = 64 * 1024;
constexpr int kPipeBytes = 256 * 1024;
uint8_t gBuf[kBuf];
int gEpoll = -1;
std::vector<int> gPipes;  // free pipes: read end, write end pairs
struct Conn;
std::vector<Conn*> gDead;  // closed during this epoll batch; freed after it (a later event may name them)

struct Conn;
struct End {
  Conn* conn;
  int side;  // 0: client socket, 1: target socket
};
struct Dir {
  bool eof = false, done = false, splice = false;
  int pr = -1, pw = -1;  // pipe while splicing
  size_t inPipe = 0;
  size_t pendOff = 0, pendLen = 0;  // unsent bytes (copy mode) live in `pend`
  std::vector<uint8_t> pend;
};
struct Conn {
  int fd[2];
  End end[2];
  Dir dir[2];  // dir[0]: client -> target, dir[1]: target -> client
  bool connected = false;
  bool dead = false;
  bool finSeen[2] = {false, false};  // EPOLLRDHUP/HUP/ERR on fd[i]: its edge is spent, read to EOF
};

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

void releasePipe(Dir& d) {
  if (d.pr >= 0) {
    gPipes.push_back(d.pr);
    gPipes.push_back(d.pw);
    d.pr = d.pw = -1;
  }
}

void finish(Conn* c) {
  for (Dir& d : c->dir) {
    if (d.inPipe) {  // bytes left in a pipe: do not hand it to another connection
      close(d.pr);
      close(d.pw);
      d.pr = d.pw = -1;
    }
    releasePipe(d);
  }
  close(c->fd[0]);
  close(c->fd[1]);
  c->dead = true;
  gDead.push_back(c);
}

// pump moves what it can in direction i; false when the connection is gone.
bool pump(Conn* c, int i) {
  Dir& d = c->dir[i];
  const int src = c->fd[i], dst = c->fd[1 - i];
  while (!d.done) {
    if (d.inPipe) {
      ssize_t n = splice(d.pr, nullptr, dst, nullptr, d.inPipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n < 0) {
        if (errno == EAGAIN) return true;
        finish(c);
        return false;
      }
      d.inPipe -= static_cast<size_t>(n);
      continue;
    }
    if (d.pendLen) {
      ssize_t n = send(dst, d.pend.data() + d.pendOff, d.pendLen, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN) return true;
        finish(c);
        return false;
      }
      d.pendOff += static_cast<size_t>(n);
      d.pendLen -= static_cast<size_t>(n);
      continue;
    }
    if (d.eof) {
      d.done = true;
      if (!c->dir[1 - i].done) {
        shutdown(dst, SHUT_WR);
      } else {
        finish(c);  // both ended: close() sends the last FIN
        return false;
      }
      break;
    }
    if (d.splice) {
      if (d.pr < 0) {
        if (gPipes.empty()) {
          int p[2];
          if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
            d.splice = false;
            continue;
          }
          fcntl(p[1], F_SETPIPE_SZ, kPipeBytes);
          gPipes.push_back(p[0]);
          gPipes.push_back(p[1]);
        }
        d.pw = gPipes.back();
        gPipes.pop_back();
        d.pr = gPipes.back();
        gPipes.pop_back();
      }
      ssize_t n = splice(src, nullptr, d.pw, nullptr, kPipeBytes, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n == 0) {
        d.eof = true;
      } else if (n < 0) {
        if (errno != EAGAIN) {
          finish(c);
          return false;
        }
        releasePipe(d);
        return true;
      } else {
        d.inPipe = static_cast<size_t>(n);
      }
      continue;
    }
    ssize_t n = recv(src, gBuf, kBuf, 0);
    if (n == 0) {
      d.eof = true;
      continue;
    }
    if (n < 0) {
      if (errno == EAGAIN) return true;
      finish(c);
      return false;
    }
    if (static_cast<size_t>(n) == kBuf) d.splice = true;  // bulk: the rest goes through a pipe
    ssize_t w = send(dst, gBuf, static_cast<size_t>(n), MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) {
      finish(c);
      return false;
    }
    if (w < n) {
      size_t off = w < 0 ? 0 : static_cast<size_t>(w);
      d.pend.assign(gBuf + off, gBuf + n);
      d.pendOff = 0;
      d.pendLen = d.pend.size();
      return true;
    }
    // A short read drained the socket until the next edge, unless the peer's FIN was already
    // reported: that edge is spent, so read on to the EOF.
    if (static_cast<size_t>(n) < kBuf && !c->finSeen[i]) return true;
  }
  return true;
}

void onEvent(End* e, uint32_t ev) {
  Conn* c = e->conn;
  if (c->dead) return;
  if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->finSeen[e->side] = true;
  if (!c->connected) {
    if (e->side != 1) return;  // client bytes wait until the target is connected
    if (ev & (EPOLLERR | EPOLLHUP)) {
      finish(c);
      return;
    }
    c->connected = true;
    if (pump(c, 0)) pump(c, 1);
    return;
  }
  // Readable side e->side feeds dir[side]; writable side e->side drains dir[1 - side].
  if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
    if (!pump(c, e->side)) return;
  }
  if (ev & EPOLLOUT) pump(c, 1 - e->side);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc % 2 != 1) {
    fprintf(stderr, "usage: %s LISTEN_PORT TARGET_PORT [LISTEN_PORT TARGET_PORT ...]\n", argv[0]);
    return 2;
  }
  gEpoll = epoll_create1(EPOLL_CLOEXEC);
  std::vector<int> targets;  // indexed like the listeners: epoll data < 0 marks a listener
  for (int i = 1; i + 1 < argc; i += 2) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(l, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in a = loopback(atoi(argv[i]));
    if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(l, 4096) != 0) {
      perror("listen");
      return 1;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = (static_cast<uint64_t>(targets.size()) << 32) | static_cast<uint32_t>(l) | (1ull << 63);
    epoll_ctl(gEpoll, EPOLL_CTL_ADD, l, &ev);
    targets.push_back(atoi(argv[i + 1]));
  }
  epoll_event evs[256];
  for (;;) {
    for (Conn* c : gDead) delete c;
    gDead.clear();
    int n = epoll_wait(gEpoll, evs, 256, -1);
    for (int k = 0; k < n; ++k) {
      uint64_t data = evs[k].data.u64;
      if (!(data >> 63)) {
        onEvent(static_cast<End*>(evs[k].data.ptr), evs[k].events);
        continue;
      }
      int l = static_cast<int>(data & 0xffffffff);
      int target = targets[(data >> 32) & 0x7fffffff];
      for (;;) {
        int cfd = accept4(l, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) break;
        int tfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(tfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        sockaddr_in a = loopback(target);
        if (connect(tfd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 && errno != EINPROGRESS) {
          close(tfd);
          close(cfd);
          continue;
        }
        Conn* c = new Conn{{cfd, tfd}, {}, {}};
        for (int s = 0; s < 2; ++s) {
          c->end[s] = End{c, s};
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
          ev.data.ptr = &c->end[s];
          epoll_ctl(gEpoll, EPOLL_CTL_ADD, c->fd[s], &ev);
        }
      }
    }
  }
}
