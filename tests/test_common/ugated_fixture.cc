#include "test_common/ugated_fixture.h"

#include <dirent.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace ugate::test {

std::string UgatedFixture::config(const std::string& listeners, const std::string& extra,
                                  int workers) const {
  return R"({"workers": )" + std::to_string(workers) + R"(, "admin": {"address": "127.0.0.1:)" +
         std::to_string(admin) +
         R"("}, "log": {"level": "info", "accessLog": "-"}, "listeners": [)" + listeners + "]" +
         extra + "}";
}

std::string UgatedFixture::listener(const std::string& name, const std::string& kind, uint16_t port,
                                    const std::string& to, const std::string& more) {
  std::string l = R"({"name": ")" + name + R"(", "kind": ")" + kind +
                  R"(", "address": "127.0.0.1:)" + std::to_string(port) + "\"";
  if (!to.empty()) l += R"(, "to": ")" + to + "\"";
  return l + more + "}";
}

bool UgatedFixture::start(const std::string& cfg, std::vector<std::string> wrapper) {
  rewrite(cfg);
  proc = std::make_unique<DaemonProcess>(std::vector<std::string>{"--config", path_},
                                         std::move(wrapper));
  return proc->waitReady(admin);
}

void UgatedFixture::rewrite(const std::string& cfg) { path_ = dir.write("ugated.json", cfg); }

std::string UgatedFixture::stats() const {
  std::string body;
  return httpGet(admin, "/stats", &body) == 200 ? body : std::string();
}

int64_t UgatedFixture::metric(const std::string& key) const {
  std::istringstream in(stats());
  for (std::string line; std::getline(in, line);) {
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
        line[key.size()] == ' ') {
      return std::strtoll(line.c_str() + key.size() + 1, nullptr, 10);
    }
  }
  return 0;
}

bool UgatedFixture::waitMetric(const std::string& key, int64_t want, int timeoutMs) const {
  return waitFor([&] { return metric(key) == want; }, timeoutMs);
}

const char* closureName(Closure c) {
  switch (c) {
    case Closure::Reset:
      return "reset";
    case Closure::Eof:
      return "eof";
    case Closure::Data:
      return "data";
    case Closure::Open:
      return "still open";
  }
  return "?";
}

Closure awaitClosure(int fd, int timeoutMs) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  bool sawData = false;
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return sawData ? Closure::Data : Closure::Open;
    }
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == ECONNRESET ? Closure::Reset : Closure::Eof;
    if (n == 0) return Closure::Eof;
    sawData = true;
  }
}

EchoClients::EchoClients(uint16_t port, int n) {
  for (int i = 0; i < n; ++i) {
    int fd = connectTcp(port);
    if (fd >= 0) fds_.push_back(fd);
  }
}

EchoClients::~EchoClients() {
  for (int fd : fds_) close(fd);
}

bool EchoClients::allEcho() {
  ++round_;
  for (size_t i = 0; i < fds_.size(); ++i) {
    std::string m = "bystander " + std::to_string(i) + " round " + std::to_string(round_) + ";";
    std::string got(m.size(), '\0');
    if (!writeAll(fds_[i], m.data(), m.size()) || !readN(fds_[i], got.data(), got.size(), 5000) ||
        got != m) {
      return false;
    }
  }
  return !fds_.empty();
}

std::vector<Closure> EchoClients::awaitClosures(int timeoutMs) {
  std::vector<Closure> out;
  for (int fd : fds_) out.push_back(awaitClosure(fd, timeoutMs));
  return out;
}

int64_t cpuTicks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto paren = all.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream in(all.substr(paren + 2));
  std::string field;
  int64_t utime = 0, stime = 0;
  // Fields after the command: state(3) ... utime(14) stime(15).
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::strtoll(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoll(field.c_str(), nullptr, 10);
  }
  return utime + stime;
}

int openFds(pid_t pid) {
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

bool runInPrivateNetns(const std::function<void()>& fn, std::string* why) {
  bool entered = false;
  std::thread t([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      *why = std::string("cannot create a network namespace: ") + strerror(errno) + " (needs root)";
      return;
    }
    if (system("ip link set lo up") != 0) {
      *why = "ip link set lo up failed (is iproute2 installed?)";
      return;
    }
    entered = true;
    fn();
  });
  t.join();
  return entered;
}

}  // namespace ugate::test
