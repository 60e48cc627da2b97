#include "local/link_events.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ugate::local {

size_t linkEvents(std::span<const uint8_t> d, std::set<int>& changed) {
  size_t n = 0;
  size_t off = 0;
  while (d.size() - off >= sizeof(nlmsghdr)) {
    nlmsghdr h;
    std::memcpy(&h, d.data() + off, sizeof(h));
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > d.size() - off) break;
    const uint8_t* body = d.data() + off + NLMSG_HDRLEN;
    const size_t bodyLen = h.nlmsg_len >= NLMSG_HDRLEN ? h.nlmsg_len - NLMSG_HDRLEN : 0;
    if (h.nlmsg_type == RTM_NEWADDR || h.nlmsg_type == RTM_DELADDR) {
      if (bodyLen < sizeof(ifaddrmsg)) break;
      ifaddrmsg a;
      std::memcpy(&a, body, sizeof(a));
      changed.insert(static_cast<int>(a.ifa_index));
      ++n;
    } else if (h.nlmsg_type == RTM_NEWLINK || h.nlmsg_type == RTM_DELLINK) {
      if (bodyLen < sizeof(ifinfomsg)) break;
      ifinfomsg i;
      std::memcpy(&i, body, sizeof(i));
      changed.insert(i.ifi_index);
      ++n;
    } else if (h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR) {
      break;
    }
    const size_t step = NLMSG_ALIGN(h.nlmsg_len);
    if (step > d.size() - off) break;
    off += step;
  }
  return n;
}

int openLinkEventSocket() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

}  // namespace ugate::local
