#include "core/handover_channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/handover.h"

namespace ugate::handover {

namespace {
constexpr size_t kMaxFds = 8;  // a session carries at most 6
}

Channel::Channel(int fd) : fd_(fd) {}

Channel::~Channel() {
  if (fd_ >= 0) ::close(fd_);
}

Result<void> Channel::send(std::string_view msg, const std::vector<int>& fds) {
  if (fds.size() > kMaxFds) return makeError(Errc::InvalidArgument, "handover: too many descriptors");
  iovec iov{const_cast<char*>(msg.data()), msg.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  if (!fds.empty()) {
    mh.msg_control = control;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    ssize_t n = sendmsg(fd_, &mh, MSG_NOSIGNAL);
    if (n >= 0) return {};
    if (errno == EINTR) continue;
    return makeError(errcFromErrno(errno), std::string("handover: send: ") + strerror(errno));
  }
}

Result<std::string> Channel::recv(std::vector<int>& fds, int timeoutMs) {
  pollfd p{fd_, POLLIN, 0};
  for (;;) {
    int r = poll(&p, 1, timeoutMs);
    if (r > 0) break;
    if (r == 0) return makeError(Errc::ConnectTimeout, "handover: no message within " + std::to_string(timeoutMs) + " ms");
    if (errno != EINTR) return makeError(errcFromErrno(errno), std::string("handover: poll: ") + strerror(errno));
  }
  std::string buf(kMaxMessage + 1, '\0');
  iovec iov{buf.data(), buf.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  mh.msg_control = control;
  mh.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(fd_, &mh, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return makeError(errcFromErrno(errno), std::string("handover: recv: ") + strerror(errno));
  const size_t before = fds.size();
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.push_back(fd);
    }
  }
  if (n == 0 && fds.size() == before) return makeError(Errc::Shutdown, "handover: the other process closed the channel");
  if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || static_cast<size_t>(n) > kMaxMessage) {
    for (size_t i = before; i < fds.size(); ++i) ::close(fds[i]);
    fds.resize(before);
    return makeError(Errc::TooLarge, "handover: a message or its descriptors were truncated");
  }
  buf.resize(static_cast<size_t>(n));
  return buf;
}

}  // namespace ugate::handover
