#pragma once
// The c-ares resolver: async A/AAAA lookups driven by the worker reactor, with a TTL cache.
#include <ugate/dns.h>
#include <ugate/reactor.h>
#include <ugate/time.h>

#include <cstddef>
#include <string>
#include <vector>

namespace ugate {

/** ResolverOptions: tuning for newResolver(). The defaults suit production. */
struct ResolverOptions {
  /**
   * queryTimeout: how long c-ares waits for an answer before the next try. c-ares doubles it on
   * each round over the servers, so one server and tries 2 give up after 3 x queryTimeout.
   */
  Duration queryTimeout{5000ms};
  /** tries: attempts per server before a lookup fails with a timeout. */
  int tries{2};
  /** minCacheTtl / maxCacheTtl clamp the lowest TTL of an answer to give its cache lifetime. */
  Duration minCacheTtl{1000ms};
  Duration maxCacheTtl{300000ms};
  /** negativeTtl: how long failures (NXDOMAIN, timeout, no servers) are cached. */
  Duration negativeTtl{5000ms};
  /** maxCacheEntries: cache size; over it, expired entries go first, then the oldest. */
  size_t maxCacheEntries{10000};
  /** servers: "ip", "ip:port" or "[v6]:port"; empty = the servers of /etc/resolv.conf. */
  std::vector<std::string> servers;
  /**
   * hostsFile: a hosts(5) file consulted before DNS instead of /etc/hosts (for tests). Empty =
   * c-ares reads /etc/hosts itself (lookups "fb").
   */
  std::string hostsFile;
};

/**
 * newResolver creates a resolver bound to reactor r (its thread only). Sockets are registered with
 * r, retries run from an r timer, and callbacks run on r's thread, never from inside c-ares.
 *
 * Behaviour of resolve():
 *  - literal IPv4/IPv6 ("::1" or "[::1]") and fresh cache entries complete inline (nullptr);
 *  - concurrent lookups of one name (case-insensitive) share one c-ares query;
 *  - answers list IPv4 first, then IPv6, each in the server's order, with the requested port;
 *  - failures give Error{Errc::DnsFailure, "<host>: <c-ares reason>"} and are cached for
 *    negativeTtl;
 *  - destroying a DnsQuery cancels only its callback; the shared lookup still fills the cache;
 *  - callbacks may destroy their own query, any other query, start new lookups, or destroy the
 *    resolver; destroying the resolver drops every pending callback without calling it.
 *
 * If c-ares cannot be initialised, the resolver still answers literals and fails every other
 * lookup with DnsFailure. r must outlive the resolver. DnsQuery objects may outlive it.
 */
ResolverPtr newResolver(Reactor& r, const ResolverOptions& o);

}  // namespace ugate
