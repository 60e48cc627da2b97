#pragma once
// DiscoveryWorker: the discovery module's state on worker 0. Owns one UDP socket per interface and
// family (SO_BINDTODEVICE, the group joined on that interface, IP_MULTICAST_IF/IPV6_MULTICAST_IF,
// TTL/hops 1), an rtnetlink socket for interface and address changes, and three timers: the
// periodic announcement, the neighbours' expiry, and a short debounce after netlink events. All of
// it runs on the worker's reactor and never blocks (non-blocking sockets; getifaddrs is a kernel
// round trip over netlink, no network I/O).
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <ugate/log_throttle.h>
#include <ugate/module.h>
#include <ugate/reactor.h>

#include "auth/crypto.h"
#include "local/discovery_config.h"
#include "local/discovery_module.h"
#include "local/neighbour_table.h"

namespace ugate {
class WorkerContext;
}

namespace ugate::local {

class DiscoveryWorker final : public ModuleWorker, public IoWatcher {
 public:
  /** @param key the node's key (invalid: it could not be loaded; discovery then stays off). */
  DiscoveryWorker(WorkerContext& w, DiscoveryShared& shared, auth::PrivateKey key, std::string keyError);
  ~DiscoveryWorker() override;

  // ugate::ModuleWorker
  void configApplied(const Config& cfg) override;
  void drain() override;
  // ugate::IoWatcher (the netlink socket)
  void onIoEvent(uint32_t events) override;

 private:
  /** Link: one interface and family: its socket and the addresses it announces. */
  struct Link final : IoWatcher {
    Link(DiscoveryWorker& o, uint64_t i) : owner(o), id(i) {}
    void onIoEvent(uint32_t) override { owner.readLink(id); }
    DiscoveryWorker& owner;
    uint64_t id;
    std::string ifname;
    int ifindex{0};
    int family{4};
    int fd{-1};
  };
  /** Interface: what getifaddrs says of one interface that qualifies. */
  struct Interface {
    std::string name;
    int index{0};
    std::vector<IpAddr> addresses;
  };

  void start();
  void stop(const char* state);
  /** identityMatches: the key's ID is the TLS provider's (false: logged; the caller stops). */
  bool identityMatches();
  std::vector<Interface> scanInterfaces() const;
  /** refreshLinks opens and closes sockets to match the interfaces; returns the links opened. */
  std::set<uint64_t> refreshLinks();
  bool openLink(Link& l);
  void closeLink(Link& l);
  Link* findLink(uint64_t id);
  void readLink(uint64_t id);
  void announce(Link& l, SendCause cause, const sockaddr* to, socklen_t toLen);
  void announceAll(SendCause cause);
  void onAnnounceTimer();
  void onExpiryTimer();
  void onChangeTimer();
  void armExpiry();
  void publish();
  std::vector<IpAddr> addressesOf(int ifindex) const;

  WorkerContext& w_;
  DiscoveryShared& shared_;
  auth::PrivateKey key_;
  std::string keyError_;
  DiscoveryConfig cfg_;
  bool running_{false};
  bool draining_{false};
  std::string state_{"disabled"};
  std::unique_ptr<Receiver> rx_;
  std::vector<std::unique_ptr<Link>> links_;
  std::vector<Interface> interfaces_;  // interfaces_: the last scan
  uint64_t nextLinkId_{1};
  uint64_t sequence_{0};
  int nl_{-1};
  std::set<std::string> missing_;  // missing_: configured interfaces not usable at the last scan
  std::set<int> changed_;  // changed_: interface indexes netlink reported since the last refresh
  bool rescanAll_{false};
  TimerPtr announceTimer_, expiryTimer_, changeTimer_;
  LogThrottle rejectLog_;
};

}  // namespace ugate::local
