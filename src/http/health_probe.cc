#include "http/health_probe.h"

namespace ugate::http {

AdminResponse answerHealthProbe(const Request& req, std::string_view path, ReadyState state) {
  const std::string_view target = std::string_view(req.target).substr(0, req.target.find('?'));
  if ((req.method != "GET" && req.method != "HEAD") || target != path) {
    return {404, "text/plain; charset=utf-8", "not found\n", {}};
  }
  switch (state) {
    case ReadyState::Ready: return {200, "text/plain; charset=utf-8", "ready\n", {}};
    case ReadyState::Starting: return {503, "text/plain; charset=utf-8", "starting\n", {}};
    case ReadyState::Draining: break;
  }
  return {503, "text/plain; charset=utf-8", "draining\n", {}};
}

}  // namespace ugate::http
