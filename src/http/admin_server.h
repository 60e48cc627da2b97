#pragma once
// AdminServer: a small HTTP/1.1 server for the admin endpoint, on the main thread's reactor.
// Requests are answered asynchronously (stats are gathered from the workers first).
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/reactor.h>
#include <ugate/result.h>
#include <ugate/socket_address.h>

#include <ugate/log_throttle.h>
#include "http/http1_parser.h"

namespace ugate::http {

struct AdminResponse {
  int status{200};
  std::string contentType{"text/plain; charset=utf-8"};
  std::string body;
  std::vector<Header> headers;  // headers: more header fields (e.g. Allow on a 405)
};
using AdminResponder = std::function<void(AdminResponse)>;

class AdminHandler {
 public:
  virtual ~AdminHandler() = default;
  /** handleAdmin answers req by calling respond exactly once, now or later, on the same thread. */
  virtual void handleAdmin(const Request& req, AdminResponder respond) = 0;
  /**
   * onAdminBadRequest: the server refused a request before handleAdmin (`reason`: a stable
   * snake_case name such as headers_too_large, malformed, body_not_accepted). For counting.
   */
  virtual void onAdminBadRequest(std::string_view reason) { (void)reason; }
};

class AdminServer {
 public:
  /** AdminServer: `name` labels its errors and log lines ("admin", "health"). */
  AdminServer(Reactor& r, AdminHandler& h, std::string name = "admin");
  ~AdminServer();
  /** listen binds addr; the error names the address on failure. */
  Result<void> listen(const SocketAddress& addr);
  /** adopt listens on an already bound, listening socket (an upgrade hands it over); takes fd. */
  void adopt(int fd);
  /** listenFd: the listening socket (-1 when closed). */
  int listenFd() const;
  SocketAddress boundAddress() const { return bound_; }
  void close();

  class Conn;  // one client connection (admin_server.cc)

 private:
  class Acceptor;
  friend class Conn;
  void remove(Conn* c);
  /** badRequest counts a refused request and logs it (at most one line per 10 s, with a count). */
  void badRequest(int fd, std::string_view reason, std::string_view detail);

  Reactor& reactor_;
  AdminHandler& handler_;
  std::string name_;
  std::unique_ptr<Acceptor> acceptor_;
  SocketAddress bound_;
  Conn* conns_{nullptr};
  size_t numConns_{0};
  LogThrottle badRequestLog_;
};

}  // namespace ugate::http
