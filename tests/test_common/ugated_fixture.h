#pragma once
// Helpers for the fault and limit tests: ugated as a process on a generated config, /stats values,
// bystander connections that must survive a fault, and a private network namespace.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "test_common/test_util.h"

namespace ugate::test {

/** UgatedFixture: a config file in a temp dir and ugated running on it, with an admin port. */
class UgatedFixture {
 public:
  TempDir dir;
  uint16_t admin = freePort();
  std::unique_ptr<DaemonProcess> proc;

  /** config: a whole config; `listeners` is the body of the array, `extra` more top-level keys. */
  std::string config(const std::string& listeners, const std::string& extra = "",
                     int workers = 1) const;
  /** listener: one listener object; `to` may be empty (kinds that dial what the client asks). */
  static std::string listener(const std::string& name, const std::string& kind, uint16_t port,
                              const std::string& to, const std::string& more = "");
  /** start writes cfg and runs ugated on it until /ready (wrapper: a command put in front). */
  bool start(const std::string& cfg, std::vector<std::string> wrapper = {});
  /** rewrite replaces the config file (SIGHUP makes ugated read it). */
  void rewrite(const std::string& cfg);
  std::string logs() const { return proc ? proc->logs() : std::string(); }
  std::string stats() const;
  /** metric: the value of the /stats line whose name and labels are `key`; 0 when absent. */
  int64_t metric(const std::string& key) const;
  /** waitMetric polls /stats until metric(key) == want. */
  bool waitMetric(const std::string& key, int64_t want, int timeoutMs = 10000) const;

 private:
  std::string path_;
};

/** Closure: how a connection ended, seen from its client. */
enum class Closure { Reset, Eof, Data, Open };
const char* closureName(Closure c);
/** awaitClosure waits up to timeoutMs for the peer to close fd (data read is discarded). */
Closure awaitClosure(int fd, int timeoutMs = 5000);

/**
 * EchoClients: connections through a healthy echo route, opened before a fault and checked after
 * it: a fault on one stream must leave the others untouched.
 */
class EchoClients {
 public:
  EchoClients(uint16_t port, int n);
  ~EchoClients();
  int opened() const { return static_cast<int>(fds_.size()); }
  /** allEcho: each connection sends a message of its own and reads exactly it back. */
  bool allEcho();
  /** awaitClosures: awaitClosure on each connection. */
  std::vector<Closure> awaitClosures(int timeoutMs = 5000);

 private:
  std::vector<int> fds_;
  int round_{0};
};

/** cpuTicks: utime + stime of a process in clock ticks (sysconf(_SC_CLK_TCK) a second). */
int64_t cpuTicks(pid_t pid);
/** openFds: how many fds a process holds (/proc/PID/fd). */
int openFds(pid_t pid);

/**
 * runInPrivateNetns runs fn on a thread that first enters a network namespace of its own
 * (unshare(CLONE_NEWNET), lo up). Sockets fn opens and processes it starts (ugated, iptables) live
 * there; the namespace disappears with the thread and those processes. Returns false (and sets
 * why) when namespaces are not available (not root).
 */
bool runInPrivateNetns(const std::function<void()>& fn, std::string* why);

}  // namespace ugate::test
