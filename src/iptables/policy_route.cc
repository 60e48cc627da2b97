#include "iptables/policy_route.h"

#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>

#include <memory>
#include <vector>

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>
#include <netlink/socket.h>

namespace ugate::iptables {

namespace {

struct SockDeleter {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct CacheDeleter {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
struct RuleDeleter {
  void operator()(rtnl_rule* r) const { rtnl_rule_put(r); }
};
struct RouteDeleter {
  void operator()(rtnl_route* r) const { rtnl_route_put(r); }
};
struct AddrDeleter {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct NlAddrDeleter {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
using SockPtr = std::unique_ptr<nl_sock, SockDeleter>;
using NlAddrPtr = std::unique_ptr<nl_addr, NlAddrDeleter>;

Error nlError(const std::string& what, int err) {
  int e = err < 0 ? -err : err;
  Errc code = e == NLE_PERM || e == NLE_NOACCESS ? Errc::AuthFailed : Errc::Io;
  return makeError(code, what + ": " + nl_geterror(err) +
                             (e == NLE_PERM || e == NLE_NOACCESS ? " (needs CAP_NET_ADMIN)" : ""));
}

Result<SockPtr> connectRoute() {
  SockPtr s(nl_socket_alloc());
  if (!s) return makeError(Errc::ResourceExhausted, "netlink: out of memory");
  int err = nl_connect(s.get(), NETLINK_ROUTE);
  if (err < 0) return nlError("netlink connect", err);
  return s;
}

int af(Family f) { return f == Family::V4 ? AF_INET : AF_INET6; }
const char* ipFlag(Family f) { return f == Family::V4 ? "-4" : "-6"; }

struct RuleMatch {
  int family;
  uint32_t mark;
  uint32_t table;
  std::vector<rtnl_rule*> found;  // owned by the cache
};

Result<Change> ensureRule(nl_sock* sock, Family f, uint32_t mark, uint32_t table, bool present) {
  nl_cache* raw = nullptr;
  int err = rtnl_rule_alloc_cache(sock, af(f), &raw);
  if (err < 0) return nlError("list policy rules", err);
  std::unique_ptr<nl_cache, CacheDeleter> cache(raw);
  RuleMatch m{af(f), mark, table, {}};
  nl_cache_foreach(
      cache.get(),
      [](nl_object* o, void* arg) {
        auto* want = static_cast<RuleMatch*>(arg);
        auto* r = reinterpret_cast<rtnl_rule*>(o);
        if (rtnl_rule_get_family(r) == want->family && rtnl_rule_get_mark(r) == want->mark &&
            rtnl_rule_get_table(r) == want->table && rtnl_rule_get_action(r) == FR_ACT_TO_TBL &&
            rtnl_rule_get_src(r) == nullptr && rtnl_rule_get_dst(r) == nullptr) {
          want->found.push_back(r);
        }
      },
      &m);
  const std::string what = std::string("ip ") + ipFlag(f) + " rule fwmark " + std::to_string(mark) +
                           " lookup " + std::to_string(table);
  if (present) {
    if (!m.found.empty()) return Change::Unchanged;
    std::unique_ptr<rtnl_rule, RuleDeleter> r(rtnl_rule_alloc());
    rtnl_rule_set_family(r.get(), af(f));
    rtnl_rule_set_mark(r.get(), mark);
    rtnl_rule_set_mask(r.get(), 0xffffffff);
    rtnl_rule_set_table(r.get(), table);
    rtnl_rule_set_action(r.get(), FR_ACT_TO_TBL);
    err = rtnl_rule_add(sock, r.get(), NLM_F_CREATE);
    if (err < 0) return nlError("add " + what, err);
    return Change::Added;
  }
  for (rtnl_rule* r : m.found) {
    err = rtnl_rule_delete(sock, r, 0);
    if (err < 0 && -err != NLE_OBJ_NOTFOUND) return nlError("delete " + what, err);
  }
  return m.found.empty() ? Change::Unchanged : Change::Removed;
}

Result<Change> ensureRoute(nl_sock* sock, Family f, uint32_t table, bool present) {
  const std::string what =
      std::string("ip ") + ipFlag(f) + " route local default dev lo table " + std::to_string(table);
  int lo = static_cast<int>(if_nametoindex("lo"));
  if (lo == 0) return makeError(Errc::NotFound, what + ": no loopback interface");
  std::unique_ptr<rtnl_route, RouteDeleter> r(rtnl_route_alloc());
  nl_addr* rawDst = nullptr;
  int err = nl_addr_parse("default", af(f), &rawDst);
  if (err < 0) return nlError(what, err);
  NlAddrPtr dst(rawDst);
  rtnl_route_set_family(r.get(), static_cast<uint8_t>(af(f)));
  rtnl_route_set_table(r.get(), table);
  rtnl_route_set_type(r.get(), RTN_LOCAL);
  rtnl_route_set_scope(r.get(), RT_SCOPE_HOST);
  rtnl_route_set_protocol(r.get(), RTPROT_BOOT);
  rtnl_route_set_dst(r.get(), dst.get());
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  rtnl_route_nh_set_ifindex(nh, lo);
  rtnl_route_add_nexthop(r.get(), nh);  // the route owns it now
  if (present) {
    err = rtnl_route_add(sock, r.get(), NLM_F_CREATE | NLM_F_EXCL);
    if (err == -NLE_EXIST) return Change::Unchanged;
    if (err < 0) return nlError("add " + what, err);
    return Change::Added;
  }
  err = rtnl_route_delete(sock, r.get(), 0);
  if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NOADDR) return Change::Unchanged;
  if (err < 0) return nlError("delete " + what, err);
  return Change::Removed;
}

Change combine(Change a, Change b) { return a != Change::Unchanged ? a : b; }

}  // namespace

Result<Change> ensurePolicyRoute(Family f, uint32_t mark, uint32_t table, bool present) {
  auto sock = connectRoute();
  if (!sock) return sock.error();
  // Rule after route on add (the rule never points at an empty table), before it on removal.
  if (present) {
    auto route = ensureRoute(sock->get(), f, table, true);
    if (!route) return route.error();
    auto rule = ensureRule(sock->get(), f, mark, table, true);
    if (!rule) return rule.error();
    return combine(*route, *rule);
  }
  auto rule = ensureRule(sock->get(), f, mark, table, false);
  if (!rule) return rule.error();
  auto route = ensureRoute(sock->get(), f, table, false);
  if (!route) return route.error();
  return combine(*rule, *route);
}

Result<Change> ensurePassthroughAddress(bool present) {
  const std::string what = "ip -6 addr ::6/128 dev lo";
  auto sock = connectRoute();
  if (!sock) return sock.error();
  int lo = static_cast<int>(if_nametoindex("lo"));
  if (lo == 0) return makeError(Errc::NotFound, what + ": no loopback interface");
  nl_addr* raw = nullptr;
  int err = nl_addr_parse("::6/128", AF_INET6, &raw);
  if (err < 0) return nlError(what, err);
  NlAddrPtr local(raw);
  std::unique_ptr<rtnl_addr, AddrDeleter> a(rtnl_addr_alloc());
  rtnl_addr_set_family(a.get(), AF_INET6);
  rtnl_addr_set_ifindex(a.get(), lo);
  rtnl_addr_set_local(a.get(), local.get());
  rtnl_addr_set_prefixlen(a.get(), 128);
  if (present) {
    rtnl_addr_set_flags(a.get(), IFA_F_NODAD);
    err = rtnl_addr_add(sock->get(), a.get(), NLM_F_CREATE | NLM_F_EXCL);
    if (err == -NLE_EXIST) return Change::Unchanged;
    if (err < 0) return nlError("add " + what, err);
    return Change::Added;
  }
  err = rtnl_addr_delete(sock->get(), a.get(), 0);
  if (err == -NLE_NOADDR || err == -NLE_OBJ_NOTFOUND) return Change::Unchanged;
  if (err < 0) return nlError("delete " + what, err);
  return Change::Removed;
}

std::string describePolicyRoute(Family f, uint32_t mark, uint32_t table) {
  const std::string t = std::to_string(table);
  return std::string("ip ") + ipFlag(f) + " route add local default dev lo table " + t + "\nip " +
         ipFlag(f) + " rule add fwmark " + std::to_string(mark) + " lookup " + t + "\n";
}

}  // namespace ugate::iptables
