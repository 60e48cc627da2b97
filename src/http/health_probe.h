#pragma once
// HealthProbe: the readiness port kubelet probes (top-level "health", Istio's 15021
// /healthz/ready). It answers one path and nothing else: no stats, no config, no control.
#include <functional>
#include <string>
#include <string_view>

#include "http/admin_server.h"

namespace ugate::http {

/** ReadyState: what a readiness probe reports. */
enum class ReadyState : uint8_t { Starting, Ready, Draining };

/**
 * answerHealthProbe: the answer to req on a health port serving `path` (sans-I/O). GET or HEAD of
 * `path` (a query string is ignored): 200 `ready` when state is Ready, else 503 `starting` or
 * `draining`. Anything else, any other method included: 404, so the port tells a scanner nothing.
 */
AdminResponse answerHealthProbe(const Request& req, std::string_view path, ReadyState state);

/**
 * HealthProbeHandler serves answerHealthProbe on an AdminServer of its own, reading the state from
 * `state` on every request (main thread).
 */
class HealthProbeHandler final : public AdminHandler {
 public:
  HealthProbeHandler(std::string path, std::function<ReadyState()> state)
      : path_(std::move(path)), state_(std::move(state)) {}
  /** path: the one path served. setPath changes it (a reload; main thread). */
  const std::string& path() const { return path_; }
  void setPath(std::string path) { path_ = std::move(path); }
  // ugate::http::AdminHandler
  void handleAdmin(const Request& req, AdminResponder respond) override {
    respond(answerHealthProbe(req, path_, state_()));
  }

 private:
  std::string path_;
  std::function<ReadyState()> state_;
};

}  // namespace ugate::http
