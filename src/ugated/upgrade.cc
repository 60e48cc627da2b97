// Upgrades that drop nothing: the old process starts the new binary and hands it, over a Unix
// socket pair (core/handover.h), its listening sockets and every established spliced TCP
// connection; it drains what cannot move (TLS, HTTP/2, QUIC state) and exits. docs/OPERATIONS.md
// "Upgrades" tells the operator's story; this file is both sides.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <algorithm>
#include <future>
#include <set>
#include <tuple>

#include <spdlog/spdlog.h>

#include "core/sd_notify.h"
#include "ugated/daemon.h"

extern char** environ;

namespace ugate {

namespace {

// How long either side waits for the other's next message: the new binary's startup (credentials,
// config) comes before its hello.
constexpr int kStepTimeoutMs = 30'000;
constexpr auto kWorkerTimeout = std::chrono::seconds(30);
constexpr int kChildFd = 3;  // the channel's number in the new process (UGATE_UPGRADE_FD)

// onThread runs fn on reactor r and waits for its result (from a thread that is not r's).
template <class T>
std::optional<T> onThread(Reactor& r, std::function<T()> fn) {
  auto p = std::make_shared<std::promise<T>>();
  auto f = p->get_future();
  r.post([p, fn = std::move(fn)] { p->set_value(fn()); });
  if (f.wait_for(kWorkerTimeout) != std::future_status::ready) return std::nullopt;
  return f.get();
}

// exitText: how a child ended, for the operator ("exited with status 2", "killed by signal 9").
std::string exitText(int pid) {
  for (int i = 0; i < 50; ++i) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(st)) return "exited with status " + std::to_string(WEXITSTATUS(st));
      if (WIFSIGNALED(st)) return std::string("was killed by signal ") + strsignal(WTERMSIG(st));
      return "ended";
    }
    if (r < 0) return "ended";
    usleep(20'000);
  }
  return "closed the upgrade channel";
}

// spawn starts exe with argv and the channel as fd kChildFd; returns its pid or an error.
Result<int> spawn(const std::string& exe, const std::vector<std::string>& args, int childEnd) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  // dup2 onto kChildFd clears close-on-exec; when the end already is kChildFd, dup2 would keep it.
  int src = childEnd;
  if (src == kChildFd) src = fcntl(childEnd, F_DUPFD_CLOEXEC, 10);
  posix_spawn_file_actions_adddup2(&fa, src, kChildFd);
  // The new process starts with the signals it expects (we block ours for the signalfd).
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> envStore;
  for (char** e = environ; *e; ++e) {
    if (strncmp(*e, "UGATE_UPGRADE_FD=", 17) != 0) envStore.emplace_back(*e);
  }
  envStore.push_back("UGATE_UPGRADE_FD=" + std::to_string(kChildFd));
  std::vector<char*> envp;
  for (auto& e : envStore) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, exe.c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (src != childEnd) ::close(src);
  if (rc != 0) return makeError(errcFromErrno(rc), "cannot start " + exe + ": " + strerror(rc));
  return static_cast<int>(pid);
}

}  // namespace

void Daemon::startUpgrade(UpgradeReply reply) {
  if (reply) upgradeReplies_.push_back(std::move(reply));
  if (upgrading_) {
    spdlog::info("upgrade: already in progress");
    return;
  }
  auto refuse = [this](int status, const std::string& why) {
    spdlog::error("upgrade refused: {}", why);
    ++upgradesFailed_;
    for (auto& r : std::exchange(upgradeReplies_, {})) r(status, "upgrade refused: " + why + "\n");
  };
  if (draining_) {
    refuse(409, "the daemon is draining");
    return;
  }
  if (opts_.exe.empty()) {
    refuse(500, "this process does not know the path of its binary");
    return;
  }
  if (upgradeThread_.joinable()) upgradeThread_.join();  // an earlier attempt that failed
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    refuse(500, std::string("socketpair: ") + strerror(errno));
    return;
  }
  std::vector<std::string> args = opts_.argv;
  if (args.empty()) args.push_back(opts_.exe);
  auto pid = spawn(opts_.exe, args, sv[1]);
  ::close(sv[1]);
  if (!pid) {
    ::close(sv[0]);
    refuse(500, pid.error().detail);
    return;
  }
  upgrading_ = true;
  spdlog::info("upgrade: started {} as pid {}; handing over listeners and connections", opts_.exe, *pid);
  upgradeThread_ = std::thread([this, fd = sv[0], pid = *pid, cfg = cfg_] { runUpgrade(fd, pid, cfg); });
}

void Daemon::runUpgrade(int channelFd, int childPid, ConfigPtr cfg) {
  pthread_setname_np(pthread_self(), "ugate-upgrade");
  handover::Channel ch(channelFd);
  auto finish = [&](bool ok, std::string text) {
    reactor_->post([this, ok, childPid, text = std::move(text)] { finishUpgrade(ok, childPid, text); });
  };
  // Before the hello nothing has moved: any failure leaves this process serving as it was.
  auto failEarly = [&](const std::string& why) {
    std::string what = why;
    if (why.find("closed the channel") != std::string::npos) what = "the new process " + exitText(childPid);
    else if (kill(childPid, SIGKILL) == 0) exitText(childPid);  // ours, by its pid: reaped
    finish(false, what + " before taking over; still serving");
  };
  std::vector<int> fds;
  auto msg = ch.recv(fds, kStepTimeoutMs);
  for (int fd : fds) ::close(fd);
  if (!msg) return failEarly(msg.error().detail);
  auto hello = handover::decodeHello(*msg);
  if (!hello) return failEarly(hello.error().detail);
  if (hello->version != handover::kVersion) {
    return failEarly("the new binary speaks handover version " + std::to_string(hello->version) + ", this one " +
                     std::to_string(handover::kVersion));
  }
  std::set<std::string, std::less<>> names(hello->listeners.begin(), hello->listeners.end());

  // 1. The listening sockets: duplicates, so both processes accept until the new one is ready.
  size_t sent = 0;
  for (auto& w : workers_) {
    Worker* wp = w.get();
    auto socks = onThread<std::vector<ListenSocket>>(wp->reactor(), [wp] { return wp->listenSockets(); });
    if (!socks) return failEarly("worker " + std::to_string(wp->index()) + " did not answer");
    bool failed = false;
    for (const auto& s : *socks) {
      const ListenerConfig* l = cfg->findListener(s.name);
      if (!failed && l) {
        handover::ListenerSocket m{s.name, l->address.str(), s.datagram, static_cast<uint16_t>(wp->index())};
        if (auto r = ch.send(handover::encode(m), {s.fd}); !r) failed = true;
        else ++sent;
      }
      ::close(s.fd);
    }
    if (failed) return failEarly("the new process closed the channel");
  }
  if (auto r = ch.send(handover::encodeBare(handover::Type::ListenersEnd)); !r) return failEarly(r.error().detail);
  fds.clear();
  msg = ch.recv(fds, kStepTimeoutMs);
  for (int fd : fds) ::close(fd);
  if (!msg) return failEarly(msg.error().detail);
  if (auto t = handover::peekType(*msg); !t || *t != handover::Type::Listening) {
    return failEarly("the new process sent " + (t ? std::string(handover::typeName(*t)) : t.error().detail) +
                     " instead of listening");
  }

  // 2. The new process accepts: stop here, and move every connection that can move.
  size_t moved = 0, failedSends = 0;
  for (auto& w : workers_) {
    Worker* wp = w.get();
    // By value: after a timeout this thread moves on while the worker may still run it.
    auto sessions = onThread<std::vector<HandedSession>>(wp->reactor(), [wp, names] {
      wp->drain(/*socketsMove=*/true);  // stop accepting; modules stop taking new work
      return wp->handOver(names);
    });
    if (!sessions) {
      spdlog::error("upgrade: worker {} did not answer; its connections drain here", wp->index());
      continue;
    }
    for (auto& s : *sessions) {
      if (auto r = ch.send(handover::encode(s.rec), s.fds); r) {
        ++moved;
      } else {
        ++failedSends;
        if (failedSends == 1) spdlog::error("upgrade: stream {}: {}; closing it", s.rec.id, r.error().detail);
      }
      for (int fd : s.fds) ::close(fd);
    }
  }
  // 3. The admin endpoint and the readiness port, once this process answered its last request.
  struct EndpointFd {
    handover::Endpoint e;
    int fd;
  };
  auto endpoints = onThread<std::vector<EndpointFd>>(*reactor_, [this, cfg] {
    std::vector<EndpointFd> out;
    for (auto [server, admin] : {std::pair{admin_.get(), true}, std::pair{health_.get(), false}}) {
      if (!server || server->listenFd() < 0) continue;
      int d = fcntl(server->listenFd(), F_DUPFD_CLOEXEC, 3);
      if (d < 0) continue;
      out.push_back({handover::Endpoint{admin, (admin ? cfg->admin.address : cfg->health.address).str()}, d});
      server->close();
    }
    return out;
  });
  if (endpoints) {
    for (auto& e : *endpoints) {
      (void)ch.send(handover::encode(e.e), {e.fd});
      ::close(e.fd);
    }
  }
  std::string text;
  bool ok = false;
  if (auto r = ch.send(handover::encodeBare(handover::Type::Done)); r) {
    fds.clear();
    msg = ch.recv(fds, kStepTimeoutMs);
    for (int fd : fds) ::close(fd);
    auto ack = msg ? handover::decodeDoneAck(*msg) : Result<handover::DoneAck>(msg.error());
    if (ack) {
      ok = true;
      text = "upgraded: pid " + std::to_string(childPid) + " serves " + std::to_string(sent) + " listening sockets and " +
             std::to_string(ack->adopted) + " connections handed over" +
             (ack->refused ? " (" + std::to_string(ack->refused) + " refused there)" : "") +
             (failedSends ? "; " + std::to_string(failedSends) + " could not be sent" : "") +
             "; this process drains the rest";
    } else {
      text = "the new process did not confirm: " + ack.error().detail;
    }
  } else {
    text = "the new process went away during the handover: " + r.error().detail;
  }
  reactor_->post([this, moved] { sessionsHandedOver_ += moved; });
  finish(ok, text);
}

void Daemon::finishUpgrade(bool ok, int childPid, std::string text) {
  if (ok) {
    ++upgradesOk_;
    handedOff_ = true;
    spdlog::info("upgrade: {}", text);
    sdNotify("MAINPID=" + std::to_string(childPid) + "\nSTATUS=upgraded");
  } else {
    ++upgradesFailed_;
    spdlog::error("upgrade failed: {}", text);
  }
  upgrading_ = false;
  for (auto& r : std::exchange(upgradeReplies_, {})) r(ok ? 200 : 500, text + "\n");
  // Past the listeners' handover this process no longer accepts: it drains, whatever the outcome.
  if (ok || text.find("still serving") == std::string::npos) {
    if (!draining_) startDrain();
  }
}

ConfigPtr Daemon::inheritedConfig() const {
  auto c = std::make_shared<Config>();
  for (const auto& l : cfg_->listeners) {
    auto it = inherited_.find(l.name);
    if (it != inherited_.end() && !it->second.empty() && it->second.front().address == l.address) c->listeners.push_back(l);
  }
  return c;
}

Result<void> Daemon::receiveListeners() {
  upgradeChannel_ = std::make_unique<handover::Channel>(opts_.upgradeFd);
  opts_.upgradeFd = -1;
  handover::Hello hello;
  hello.pid = getpid();
  for (const auto& l : cfg_->listeners) hello.listeners.push_back(l.name);
  if (auto r = upgradeChannel_->send(handover::encode(hello)); !r) return r;
  size_t count = 0;
  for (;;) {
    std::vector<int> fds;
    auto msg = upgradeChannel_->recv(fds, kStepTimeoutMs);
    if (!msg) return makeError(msg.error().code, msg.error().detail);
    auto type = handover::peekType(*msg);
    if (type && *type == handover::Type::ListenersEnd) break;
    auto l = handover::decodeListener(*msg);
    if (!l || fds.size() != 1) {
      for (int fd : fds) ::close(fd);
      return makeError(Errc::ProtocolError, l ? "handover listener: expected one descriptor" : l.error().detail);
    }
    const ListenerConfig* mine = cfg_->findListener(l->name);
    auto addr = SocketAddress::parse(l->address);
    if (!mine || !addr || !(*addr == mine->address) || (mine->spec && mine->spec->datagram) != l->datagram) {
      // Gone from the new config, or moved: the old process's socket closes with it.
      ::close(fds[0]);
      continue;
    }
    inherited_[l->name].push_back(InheritedSocket{*addr, l->datagram, l->worker, fds[0]});
    ++count;
  }
  for (auto& [name, v] : inherited_) {
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.worker < b.worker; });
  }
  spdlog::info("upgrade: took {} listening sockets of {} listeners from the old process", count, inherited_.size());
  return {};
}

Result<void> Daemon::receiveSessions() {
  // The workers accept once their config is applied: wait for each, then tell the old process.
  for (auto& w : workers_) {
    Worker* wp = w.get();
    if (!onThread<bool>(wp->reactor(), [] { return true; })) {
      return makeError(Errc::ConnectTimeout, "worker " + std::to_string(wp->index()) + " did not start");
    }
  }
  if (auto r = upgradeChannel_->send(handover::encodeBare(handover::Type::Listening)); !r) return r;
  handover::DoneAck ack;
  size_t next = 0;
  for (;;) {
    std::vector<int> fds;
    auto msg = upgradeChannel_->recv(fds, kStepTimeoutMs);
    if (!msg) return makeError(msg.error().code, msg.error().detail + " (after " + std::to_string(ack.adopted) +
                                                     " connections)");
    auto type = handover::peekType(*msg);
    if (type && *type == handover::Type::Done) {
      for (int fd : fds) ::close(fd);
      break;
    }
    if (type && *type == handover::Type::Endpoint) {
      auto e = handover::decodeEndpoint(*msg);
      if (e && fds.size() == 1) {
        inheritedEndpoints_.emplace_back(*e, fds[0]);
      } else {
        for (int fd : fds) ::close(fd);
      }
      continue;
    }
    auto rec = handover::decodeSession(*msg);
    if (!rec || rec->fdCount() != fds.size()) {
      for (int fd : fds) ::close(fd);
      ++ack.refused;
      spdlog::warn("upgrade: a connection could not be taken over: {}",
                   rec ? "descriptors missing" : rec.error().detail);
      continue;
    }
    Worker* w = workers_[next++ % workers_.size()].get();
    auto h = std::make_shared<HandedSession>(HandedSession{std::move(*rec), std::move(fds)});
    w->reactor().post([w, h] { w->adopt(std::move(*h)); });
    ++ack.adopted;
  }
  sessionsAdopted_ = ack.adopted;
  auto r = upgradeChannel_->send(handover::encode(ack));
  upgradeChannel_.reset();
  spdlog::info("upgrade: took over {} connections ({} refused)", ack.adopted, ack.refused);
  return r;
}

void Daemon::takeOverEndpoints() {
  if (upgradeChannel_) {
    if (auto r = receiveSessions(); !r) spdlog::error("upgrade: {}; serving what came over", r.error().detail);
    upgradeChannel_.reset();
  }
  for (auto [server, on, addr, admin] : {std::tuple{&admin_, cfg_->admin.enabled, cfg_->admin.address, true},
                                         std::tuple{&health_, cfg_->health.enabled, cfg_->health.address, false}}) {
    int fd = -1;
    for (auto& [e, f] : inheritedEndpoints_) {
      if (e.admin != admin || f < 0) continue;
      auto a = SocketAddress::parse(e.address);
      if (on && fd < 0 && a && *a == addr) fd = f;
      else ::close(f);
      f = -1;
    }
    if (!on) continue;
    if (fd >= 0) {
      if (admin) *server = std::make_unique<http::AdminServer>(*reactor_, static_cast<http::AdminHandler&>(*this));
      else *server = std::make_unique<http::AdminServer>(*reactor_, *healthHandler_, "health");
      (*server)->adopt(fd);
      spdlog::info("{} on http://{} (taken over from the old process)", admin ? "admin" : "readiness probe",
                   (*server)->boundAddress().str());
      continue;
    }
    auto r = bindEndpoint(admin, addr);
    if (!r) {
      spdlog::error("upgrade: {}; running without it", r.error().detail);
      continue;
    }
    *server = std::move(*r);
  }
  inheritedEndpoints_.clear();
}

}  // namespace ugate
