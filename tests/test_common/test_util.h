#pragma once
// Helpers for tests that drive real sockets and ugated as a process.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace ugate::test {

/** freePort: an unused loopback TCP port, below the ephemeral range when possible (see boundPort). */
uint16_t freePort();
/** freeUdpPort: the same for UDP; with v6Too the port is also free on ::1. */
uint16_t freeUdpPort(bool v6Too = false);
/** connectTcp: blocking connect to 127.0.0.1:port (or host), -1 on failure. */
int connectTcp(uint16_t port, const char* host = "127.0.0.1");
/** writeAll / readAll: blocking helpers; readAll reads until EOF. */
bool writeAll(int fd, const void* buf, size_t len);
std::string readAll(int fd, int timeoutMs = 10000);
/** readN reads exactly n bytes or fails. */
bool readN(int fd, void* buf, size_t n, int timeoutMs = 10000);
/** waitFor polls pred every 20 ms until it holds or timeout passes. */
bool waitFor(const std::function<bool()>& pred, int timeoutMs = 10000);
/** exchange: connect to 127.0.0.1:port, send `request`, return all that comes back until EOF. */
std::string roundTrip(uint16_t port, const std::string& request, int timeoutMs = 10000);
/** readFile: the whole file ("" when it cannot be read). */
std::string readFile(const std::string& path);
/** httpGet: a minimal blocking HTTP/1.1 GET against 127.0.0.1:port; returns status, fills body. */
/** httpBody: the body of GET path on 127.0.0.1:port, whatever the status ("" when it fails). */
std::string httpBody(uint16_t port, const std::string& path);
int httpGet(uint16_t port, const std::string& path, std::string* body = nullptr);
/** fnv1a64: checksum of a payload. */
uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 1469598103934665603ULL);
/** fromHex decodes hex digits (either case), skipping anything else: spaces, line breaks. */
std::vector<uint8_t> fromHex(std::string_view hex);
/** fromHexString: fromHex as a std::string. */
std::string fromHexString(std::string_view hex);
/** toHex: lower-case hex of bytes, no separators. */
std::string toHex(std::string_view bytes);
/** pattern fills a buffer with a deterministic pseudo-random pattern from seed. */
std::string pattern(size_t n, uint32_t seed);

/** TempDir: a directory removed with its contents at destruction. */
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

/** Daemon: runs ugated as a child process, logs captured to a file. Killed at destruction. */
class DaemonProcess {
 public:
  explicit DaemonProcess(std::vector<std::string> args);
  /** wrapper: a command ugated runs under, e.g. {"strace", "-f", "-o", "FILE"}. */
  DaemonProcess(std::vector<std::string> args, std::vector<std::string> wrapper);
  ~DaemonProcess();
  pid_t pid() const { return pid_; }
  /** waitReady waits until GET /ready on adminPort answers 200 (false if the process died). */
  bool waitReady(uint16_t adminPort, int timeoutMs = 10000);
  void signal(int sig);
  /** wait reaps the process; returns its exit status (or -1 on timeout). */
  int wait(int timeoutMs = 10000);
  bool running();
  std::string logs() const;

 private:
  pid_t pid_{-1};
  std::string logPath_;
  int status_{-1};
  bool reaped_{false};
};

/**
 * ListeningChild: a helper program in a process of its own (so a test can kill it mid-stream) that
 * prints "listening PORT" as its first line: ugate_loadgen echo, ugate_origin. SIGKILLed by kill9()
 * or at destruction.
 */
class ListeningChild {
 public:
  ListeningChild() = default;
  explicit ListeningChild(std::vector<std::string> argv) { start(std::move(argv)); }
  ~ListeningChild() { kill9(); }
  ListeningChild(const ListeningChild&) = delete;
  ListeningChild& operator=(const ListeningChild&) = delete;
  /** start runs argv (argv[0]: the program's path); port() stays 0 if no port was printed within 5 s. */
  void start(std::vector<std::string> argv);
  uint16_t port() const { return port_; }
  void kill9();

 private:
  pid_t pid_{-1};
  uint16_t port_{0};
};

/** EchoServer: a thread-per-connection TCP echo (or custom) server on 127.0.0.1:0. */
class TcpServer {
 public:
  using Handler = std::function<void(int fd)>;
  explicit TcpServer(Handler h = nullptr, const char* host = "127.0.0.1");
  ~TcpServer();
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  /** echo is the default handler: echo until EOF, then half-close. */
  static void echo(int fd);

 private:
  int fd_{-1};
  uint16_t port_{0};
  Handler handler_;
  std::thread thread_;
  std::vector<std::thread> conns_;
  std::atomic<int> accepted_{0};
  std::atomic<bool> stop_{false};
};

/** taggedServer: a TcpServer that sends `tag` on each connection, then echoes until EOF. */
std::unique_ptr<TcpServer> taggedServer(const std::string& tag);
/** tagThrough: what a connection to 127.0.0.1:port receives after half-closing ("" when it fails). */
std::string tagThrough(uint16_t port);

/**
 * UdpEchoServer: a thread echoing every datagram to its sender on host:0 (empty ones too), counting
 * them and remembering the last sender's address.
 */
class UdpEchoServer {
 public:
  explicit UdpEchoServer(const char* host = "127.0.0.1");
  ~UdpEchoServer();
  uint16_t port() const { return port_; }
  int received() const { return received_.load(); }
  /** peers: distinct sender addresses seen ("ip:port"). */
  size_t peers() const;

 private:
  int fd_{-1};
  uint16_t port_{0};
  std::thread thread_;
  std::atomic<int> received_{0};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::set<std::string> peers_;
};

/** udpSocket: a blocking UDP socket connected to host:port with a receive timeout. -1 on failure. */
int udpSocket(uint16_t port, const char* host = "127.0.0.1", int timeoutMs = 5000);
/** udpExchange sends `out` on a connected UDP socket and reads one datagram back ("" + false on timeout). */
bool udpExchange(int fd, const std::string& out, std::string& in);

}  // namespace ugate::test
