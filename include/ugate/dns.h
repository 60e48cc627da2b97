#pragma once
// Asynchronous name resolution. A Resolver belongs to one reactor and never blocks it.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ugate/result.h>
#include <ugate/socket_address.h>

namespace ugate {

/** DnsQuery: a pending lookup. Destroying it cancels the callback. */
class DnsQuery {
 public:
  virtual ~DnsQuery() = default;
};
using DnsQueryPtr = std::unique_ptr<DnsQuery>;

using DnsCallback = std::function<void(Result<std::vector<SocketAddress>>)>;

class Resolver {
 public:
  virtual ~Resolver() = default;
  /**
   * resolve looks up A and AAAA records for host; addresses carry port. Literal IPs and cached answers
   * complete inline (cb runs before resolve returns, and nullptr is returned). Otherwise the returned
   * query must be kept alive until cb runs; destroying it earlier cancels cb.
   */
  virtual DnsQueryPtr resolve(const std::string& host, uint16_t port, DnsCallback cb) = 0;
};
using ResolverPtr = std::unique_ptr<Resolver>;

}  // namespace ugate
