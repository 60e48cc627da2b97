#include "core/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace ugate {
namespace {

// FdCloser closes fd_ on scope exit, so every early return releases the socket.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

// notifyAddress fills `addr` from $NOTIFY_SOCKET and returns the address length, or 0 when the
// variable is unset, empty, too long or not a path/abstract name.
socklen_t notifyAddress(sockaddr_un& addr) {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (env == nullptr) {
    return 0;
  }
  const std::string_view name(env);
  if (name.size() < 2 || (name.front() != '/' && name.front() != '@')) {
    return 0;
  }
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (name.front() == '@') {
    // Abstract namespace: leading NUL, no terminator; the length delimits the name.
    if (name.size() > sizeof(addr.sun_path)) {
      return 0;
    }
    std::memcpy(addr.sun_path + 1, name.data() + 1, name.size() - 1);
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  }
  // Filesystem path: needs room for the terminating NUL.
  if (name.size() >= sizeof(addr.sun_path)) {
    return 0;
  }
  std::memcpy(addr.sun_path, name.data(), name.size());
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
}

}  // namespace

bool sdNotify(std::string_view state) {
  sockaddr_un addr;
  const socklen_t addr_len = notifyAddress(addr);
  if (addr_len == 0) {
    return false;
  }
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return false;
  }
  FdCloser closer(fd);
  ssize_t sent;
  do {
    sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                    reinterpret_cast<const sockaddr*>(&addr), addr_len);
  } while (sent < 0 && errno == EINTR);
  return sent >= 0 && static_cast<size_t>(sent) == state.size();
}

std::string sdReloadingState() {
  // Control plane: systemd compares against its own CLOCK_MONOTONIC, so read that clock directly
  // rather than an injected TimeSource.
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t usec =
      static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
}

}  // namespace ugate
