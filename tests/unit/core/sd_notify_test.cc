#include "core/sd_notify.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

namespace ugate {
namespace {

// Receiver is a bound AF_UNIX datagram socket standing in for systemd's notify socket.
class Receiver {
 public:
  ~Receiver() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    if (!path_.empty()) {
      ::unlink(path_.c_str());
    }
  }

  // bindPath binds to a filesystem path; returns the NOTIFY_SOCKET value.
  std::string bindPath(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    open(addr, static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1));
    path_ = path;
    return path;
  }

  // bindAbstract binds to an abstract name; returns the NOTIFY_SOCKET value ("@name").
  std::string bindAbstract(const std::string& name) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path + 1, name.data(), name.size());
    open(addr, static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size()));
    return "@" + name;
  }

  // receive returns the next datagram, or nullopt after 2 s.
  std::optional<std::string> receive() {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 2000) != 1) {
      return std::nullopt;
    }
    std::array<char, 4096> buf{};
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_TRUNC);
    if (n < 0 || static_cast<size_t>(n) > buf.size()) {
      return std::nullopt;
    }
    return std::string(buf.data(), static_cast<size_t>(n));
  }

  // pending reports whether a datagram is queued.
  bool pending() {
    pollfd pfd{fd_, POLLIN, 0};
    return ::poll(&pfd, 1, 0) == 1;
  }

 private:
  void open(const sockaddr_un& addr, socklen_t len) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0) << std::strerror(errno);
    ASSERT_EQ(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len), 0)
        << std::strerror(errno);
  }

  int fd_ = -1;
  std::string path_;
};

uint64_t monotonicUsec() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

class SdNotifyTest : public testing::Test {
 protected:
  void SetUp() override {
    if (const char* old = std::getenv("NOTIFY_SOCKET")) {
      saved_ = old;
    }
    ::unsetenv("NOTIFY_SOCKET");
    char tmpl[] = "/tmp/ugate_sd_notify_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    dir_ = tmpl;
  }

  void TearDown() override {
    if (saved_) {
      ::setenv("NOTIFY_SOCKET", saved_->c_str(), 1);
    } else {
      ::unsetenv("NOTIFY_SOCKET");
    }
    ::rmdir(dir_.c_str());
  }

  static void setNotifySocket(const std::string& value) {
    ASSERT_EQ(::setenv("NOTIFY_SOCKET", value.c_str(), 1), 0);
  }

  // abstractName is unique per process and test, so parallel runs do not collide.
  static std::string abstractName() {
    return "ugate-sd-notify-test-" + std::to_string(::getpid()) + "-" +
           testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  std::optional<std::string> saved_;
  std::string dir_;
};

TEST_F(SdNotifyTest, UnsetReturnsFalse) { EXPECT_FALSE(sdNotify("READY=1")); }

TEST_F(SdNotifyTest, EmptyOrUnsupportedReturnsFalse) {
  for (const char* value : {"", "@", "relative/path", "vsock:2:1234"}) {
    setNotifySocket(value);
    EXPECT_FALSE(sdNotify("READY=1")) << "NOTIFY_SOCKET=" << value;
  }
}

TEST_F(SdNotifyTest, TooLongPathReturnsFalse) {
  setNotifySocket("/" + std::string(sizeof(sockaddr_un{}.sun_path), 'x'));
  EXPECT_FALSE(sdNotify("READY=1"));
}

TEST_F(SdNotifyTest, MissingSocketReturnsFalse) {
  setNotifySocket(dir_ + "/absent");
  EXPECT_FALSE(sdNotify("READY=1"));
}

TEST_F(SdNotifyTest, SendsToFilesystemPath) {
  Receiver rx;
  setNotifySocket(rx.bindPath(dir_ + "/notify"));
  ASSERT_TRUE(sdNotify("READY=1\nSTATUS=serving 3 listeners"));
  EXPECT_EQ(rx.receive(), "READY=1\nSTATUS=serving 3 listeners");
  ASSERT_TRUE(sdNotify("STOPPING=1"));
  EXPECT_EQ(rx.receive(), "STOPPING=1");
  EXPECT_FALSE(rx.pending());
}

TEST_F(SdNotifyTest, SendsToAbstractName) {
  Receiver rx;
  setNotifySocket(rx.bindAbstract(abstractName()));
  ASSERT_TRUE(sdNotify("READY=1"));
  EXPECT_EQ(rx.receive(), "READY=1");
  EXPECT_FALSE(rx.pending());
}

TEST_F(SdNotifyTest, SendsReloadingState) {
  Receiver rx;
  setNotifySocket(rx.bindAbstract(abstractName()));
  const std::string state = sdReloadingState();
  ASSERT_TRUE(sdNotify(state));
  EXPECT_EQ(rx.receive(), state);
}

TEST_F(SdNotifyTest, ReloadingStateCarriesMonotonicMicroseconds) {
  const uint64_t before = monotonicUsec();
  const std::string state = sdReloadingState();
  const uint64_t after = monotonicUsec();
  const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
  ASSERT_EQ(state.substr(0, prefix.size()), prefix);
  const std::string digits = state.substr(prefix.size());
  ASSERT_FALSE(digits.empty());
  ASSERT_EQ(digits.find_first_not_of("0123456789"), std::string::npos) << digits;
  const uint64_t usec = std::stoull(digits);
  EXPECT_LE(before, usec);
  EXPECT_LE(usec, after);
}

// A receiver that never reads fills its queue; sdNotify must then fail rather than block.
TEST_F(SdNotifyTest, FullReceiverDoesNotBlock) {
  Receiver rx;
  setNotifySocket(rx.bindAbstract(abstractName()));
  bool failed = false;
  for (int i = 0; i < 100000 && !failed; ++i) {
    failed = !sdNotify("STATUS=filling the queue");
  }
  EXPECT_TRUE(failed);
  EXPECT_EQ(rx.receive(), "STATUS=filling the queue");
}

}  // namespace
}  // namespace ugate
