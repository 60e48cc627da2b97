#pragma once
// Interface and address changes from rtnetlink (RTMGRP_LINK, RTMGRP_IPV4_IFADDR,
// RTMGRP_IPV6_IFADDR), sans-I/O: the worker reads the datagrams from its non-blocking netlink
// socket on the reactor and hands the bytes here.
#include <cstdint>
#include <set>
#include <span>

namespace ugate::local {

/**
 * linkEvents adds the interface index of every RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR and
 * RTM_DELADDR message in one netlink datagram to `changed`. Truncated or malformed messages end
 * the walk. @return the number of such messages.
 */
size_t linkEvents(std::span<const uint8_t> datagram, std::set<int>& changed);

/** openLinkEventSocket: a non-blocking NETLINK_ROUTE socket subscribed to the groups above, or -1 (errno). */
int openLinkEventSocket();

}  // namespace ugate::local
