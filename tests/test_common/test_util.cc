#include "test_common/test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace ugate::test {

namespace {
// belowEphemeral: the first port of the kernel's ephemeral range (ip_local_port_range).
int belowEphemeral() {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  int lo = 0, hi = 0;
  if (!(f >> lo >> hi)) return 0;
  return lo;
}

// claimPort: claims `port` for this test across the processes of the machine (tests run in
// parallel, each probing ports the same way): an O_EXCL file per port in a shared directory, aged
// out after kClaimSeconds, which covers the moment between this probe and the daemon's own bind.
// The same scheme as tests/integration/free_ports.py, so shell and C++ tests respect each other.
bool claimPort(uint16_t port) {
  constexpr int kClaimSeconds = 600;
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/ugate-test-ports";
  if (mkdir(dir.c_str(), 01777) == 0) chmod(dir.c_str(), 01777);
  std::string path = dir + "/" + std::to_string(port);
  for (int i = 0; i < 2; ++i) {
    int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
    if (fd >= 0) {
      close(fd);
      return true;
    }
    if (errno != EEXIST) return true;  // no shared directory to claim in: the probe alone decides
    struct stat st{};
    if (stat(path.c_str(), &st) != 0) continue;  // released meanwhile: try again
    if (time(nullptr) - st.st_mtime < kClaimSeconds) return false;
    unlink(path.c_str());  // stale: its claimer has long bound it or gone
  }
  return false;
}

// boundPort binds a loopback socket of `type` to a free port and returns it open with its port.
// The port comes from below the ephemeral range when there is room: a port handed out by bind(0)
// is also what connect() picks as a local port, so in the moment between this probe and ugated's
// own bind, another test's outgoing connection could take it (a flaky EADDRINUSE).
int boundPort(int type, uint16_t& port) {
  static thread_local std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(getpid()));
  const int lo = belowEphemeral();
  constexpr int kFirst = 10000;
  for (int attempt = 0; lo - kFirst > 1000 && attempt < 256; ++attempt) {
    int fd = socket(AF_INET, type, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    port = static_cast<uint16_t>(kFirst + static_cast<int>(rng() % static_cast<unsigned>(lo - kFirst)));
    a.sin_port = htons(port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 && claimPort(port)) return fd;
    close(fd);
  }
  int fd = socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}
}  // namespace

uint16_t freePort() {
  uint16_t port;
  close(boundPort(SOCK_STREAM, port));
  return port;
}

uint16_t freeUdpPort(bool v6Too) {
  for (;;) {
    uint16_t port;
    int fd = boundPort(SOCK_DGRAM, port);
    bool ok = true;
    if (v6Too) {
      int fd6 = socket(AF_INET6, SOCK_DGRAM, 0);
      sockaddr_in6 a6{};
      a6.sin6_family = AF_INET6;
      a6.sin6_addr = in6addr_loopback;
      a6.sin6_port = htons(port);
      ok = bind(fd6, reinterpret_cast<sockaddr*>(&a6), sizeof(a6)) == 0;
      close(fd6);
    }
    close(fd);
    if (ok) return port;
  }
}

int connectTcp(uint16_t port, const char* host) {
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  if (strchr(host, ':')) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    inet_pton(AF_INET6, host, &a6->sin6_addr);
    len = sizeof(*a6);
    family = AF_INET6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    inet_pton(AF_INET, host, &a4->sin_addr);
    len = sizeof(*a4);
    family = AF_INET;
  }
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

bool writeAll(int fd, const void* buf, size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

static bool waitReadable(int fd, int timeoutMs) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeoutMs) > 0;
}

std::string readAll(int fd, int timeoutMs) {
  std::string out;
  char buf[65536];
  for (;;) {
    if (!waitReadable(fd, timeoutMs)) break;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

bool readN(int fd, void* buf, size_t n, int timeoutMs) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    if (!waitReadable(fd, timeoutMs)) return false;
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool waitFor(const std::function<bool()>& pred, int timeoutMs) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

std::string roundTrip(uint16_t port, const std::string& request, int timeoutMs) {
  int fd = connectTcp(port);
  if (fd < 0) return {};
  writeAll(fd, request.data(), request.size());
  std::string resp = readAll(fd, timeoutMs);
  close(fd);
  return resp;
}

std::string readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int httpGet(uint16_t port, const std::string& path, std::string* body) {
  std::string resp =
      roundTrip(port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 5000);
  if (resp.size() < 12 || resp.compare(0, 5, "HTTP/") != 0) return -1;
  int status = atoi(resp.c_str() + 9);
  if (body) {
    auto pos = resp.find("\r\n\r\n");
    *body = pos == std::string::npos ? "" : resp.substr(pos + 4);
  }
  return status;
}

uint64_t fnv1a64(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

std::vector<uint8_t> fromHex(std::string_view hex) {
  std::vector<uint8_t> out;
  int hi = -1;
  for (char c : hex) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      continue;
    }
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  return out;
}

std::string fromHexString(std::string_view hex) {
  std::vector<uint8_t> b = fromHex(hex);
  return std::string(b.begin(), b.end());
}

std::string toHex(std::string_view bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (size_t i = 0; i < n; i += 4) {
    uint32_t v = rng();
    memcpy(&s[i], &v, std::min<size_t>(4, n - i));
  }
  return s;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/ugate-test-XXXXXX";
  path_ = mkdtemp(tmpl);
}
TempDir::~TempDir() { std::filesystem::remove_all(path_); }
std::string TempDir::write(const std::string& name, const std::string& content) const {
  std::string p = path_ + "/" + name;
  std::ofstream(p) << content;
  return p;
}

DaemonProcess::DaemonProcess(std::vector<std::string> args) : DaemonProcess(std::move(args), {}) {}

DaemonProcess::DaemonProcess(std::vector<std::string> args, std::vector<std::string> wrap) {
  char tmpl[] = "/tmp/ugated-log-XXXXXX";
  int logFd = mkstemp(tmpl);
  logPath_ = tmpl;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(logFd, 1);
    dup2(logFd, 2);
    std::vector<char*> argv;
    std::string bin = UGATED_BINARY;
    // UGATE_TEST_WRAPPER runs ugated under a tool, e.g. "valgrind -q" or "gdb -batch -ex run -ex bt --args".
    if (const char* w = getenv("UGATE_TEST_WRAPPER")) {
      std::istringstream ws(w);
      for (std::string t; ws >> t;) wrap.push_back(t);
    }
    for (auto& t : wrap) argv.push_back(t.data());
    argv.push_back(bin.data());
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(logFd);
}

DaemonProcess::~DaemonProcess() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (getenv("UGATE_KEEP_LOGS") == nullptr) unlink(logPath_.c_str());
}

bool DaemonProcess::running() {
  if (reaped_) return false;
  int st;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = st;
    return false;
  }
  return true;
}

bool DaemonProcess::waitReady(uint16_t adminPort, int timeoutMs) {
  return waitFor([&] { return running() && httpGet(adminPort, "/ready") == 200; }, timeoutMs);
}

void DaemonProcess::signal(int sig) {
  if (!reaped_) kill(pid_, sig);
}

int DaemonProcess::wait(int timeoutMs) {
  if (!waitFor([&] { return !running(); }, timeoutMs)) return -1;
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

std::string DaemonProcess::logs() const { return readFile(logPath_); }

void ListeningChild::start(std::vector<std::string> argv) {
  kill9();
  port_ = 0;
  int p[2];
  if (pipe(p) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(p[1], 1);
    close(p[0]);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(p[1]);
  std::string line;
  char c;
  while (line.find('\n') == std::string::npos) {
    pollfd pf{p[0], POLLIN, 0};
    if (poll(&pf, 1, 5000) <= 0 || read(p[0], &c, 1) != 1) break;
    line.push_back(c);
  }
  close(p[0]);
  if (line.rfind("listening ", 0) == 0) port_ = static_cast<uint16_t>(atoi(line.c_str() + 10));
}

void ListeningChild::kill9() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

TcpServer::TcpServer(Handler h, const char* host) : handler_(h ? std::move(h) : Handler(echo)) {
  fd_ = socket(strchr(host, ':') ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage ss{};
  socklen_t len;
  if (strchr(host, ':')) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, host, &a6->sin6_addr);
    len = sizeof(*a6);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    a4->sin_family = AF_INET;
    inet_pton(AF_INET, host, &a4->sin_addr);
    len = sizeof(*a4);
  }
  bind(fd_, reinterpret_cast<sockaddr*>(&ss), len);
  listen(fd_, 4096);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                         : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  thread_ = std::thread([this] {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++accepted_;
      conns_.emplace_back([this, c] {
        handler_(c);
        close(c);
      });
    }
  });
}

TcpServer::~TcpServer() {
  stop_ = true;
  thread_.join();
  for (auto& t : conns_) t.join();
  close(fd_);
}

void TcpServer::echo(int fd) {
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!writeAll(fd, buf, static_cast<size_t>(n))) return;
  }
  shutdown(fd, SHUT_WR);
}

std::string httpBody(uint16_t port, const std::string& path) {
  std::string body;
  httpGet(port, path, &body);
  return body;
}

std::unique_ptr<TcpServer> taggedServer(const std::string& tag) {
  return std::make_unique<TcpServer>([tag](int fd) {
    writeAll(fd, tag.data(), tag.size());
    TcpServer::echo(fd);
  });
}

std::string tagThrough(uint16_t port) {
  const int fd = connectTcp(port);
  if (fd < 0) return "";
  shutdown(fd, SHUT_WR);
  std::string s = readAll(fd, 3000);
  close(fd);
  return s;
}

namespace {
socklen_t fillAddress(const char* host, uint16_t port, sockaddr_storage& ss) {
  ss = sockaddr_storage{};
  if (strchr(host, ':')) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    inet_pton(AF_INET6, host, &a6->sin6_addr);
    return sizeof(*a6);
  }
  auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
  a4->sin_family = AF_INET;
  a4->sin_port = htons(port);
  inet_pton(AF_INET, host, &a4->sin_addr);
  return sizeof(*a4);
}
}  // namespace

UdpEchoServer::UdpEchoServer(const char* host) {
  sockaddr_storage ss;
  socklen_t len = fillAddress(host, 0, ss);
  fd_ = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int big = 4 << 20;
  setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
  setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
  bind(fd_, reinterpret_cast<sockaddr*>(&ss), len);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                         : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  thread_ = std::thread([this] {
    std::vector<char> buf(65536);
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      sockaddr_storage from{};
      socklen_t flen = sizeof(from);
      ssize_t n = recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (n < 0) continue;
      ++received_;
      char ip[INET6_ADDRSTRLEN] = {};
      uint16_t port;
      if (from.ss_family == AF_INET6) {
        auto* a6 = reinterpret_cast<sockaddr_in6*>(&from);
        inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof(ip));
        port = ntohs(a6->sin6_port);
      } else {
        auto* a4 = reinterpret_cast<sockaddr_in*>(&from);
        inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof(ip));
        port = ntohs(a4->sin_port);
      }
      {
        std::lock_guard<std::mutex> lk(mu_);
        peers_.insert(std::string(ip) + ":" + std::to_string(port));
      }
      sendto(fd_, buf.data(), static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
  });
}

UdpEchoServer::~UdpEchoServer() {
  stop_ = true;
  thread_.join();
  close(fd_);
}

size_t UdpEchoServer::peers() const {
  std::lock_guard<std::mutex> lk(mu_);
  return peers_.size();
}

int udpSocket(uint16_t port, const char* host, int timeoutMs) {
  sockaddr_storage ss;
  socklen_t len = fillAddress(host, port, ss);
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{timeoutMs / 1000, (timeoutMs % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool udpExchange(int fd, const std::string& out, std::string& in) {
  in.clear();
  if (send(fd, out.data(), out.size(), 0) != static_cast<ssize_t>(out.size())) return false;
  std::string buf(65536, '\0');
  ssize_t n = recv(fd, buf.data(), buf.size(), 0);
  if (n < 0) return false;
  in.assign(buf.data(), static_cast<size_t>(n));
  return true;
}

}  // namespace ugate::test
