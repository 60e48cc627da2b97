#pragma once
// HealthProbe: one active health check of one endpoint: a TCP connect, and for kind "http" a
// `GET path` whose answer must be 2xx, all within the check's timeout. Runs on one reactor.
#include <functional>
#include <memory>
#include <string>

#include <ugate/config.h>
#include <ugate/reactor.h>
#include <ugate/stream.h>
#include <ugate/tcp_stream.h>

namespace ugate {

class HealthProbe final : private StreamCallbacks {
 public:
  /** Done: the outcome; `why` says what failed. Called once, never from start() itself. */
  using Done = std::function<void(bool ok, const std::string& why)>;
  /** hostHeader: the Host of an http check (the endpoint's configured name). */
  HealthProbe(Reactor& r, const SocketAddress& a, const HealthCheckConfig& hc, const std::string& hostHeader,
              Done done);
  ~HealthProbe() override;
  void start();
  bool finished() const { return finished_; }

 private:
  // ugate::StreamCallbacks
  void onStreamReadable(Stream& s) override;
  void onStreamWritable(Stream& s) override;
  void onConnected(int err);
  void sendRequest();
  /** finish reports once, from a later point of the loop turn (the caller may destroy us then). */
  void finish(bool ok, std::string why);

  Reactor& reactor_;
  SocketAddress addr_;
  bool http_;
  std::string request_;
  size_t written_{0};
  std::string response_;
  std::unique_ptr<TcpStream> stream_;
  TimerPtr timer_;
  Done done_;
  bool finished_{false};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // alive_: false once destroyed
};

/** httpStatusOf: the status code of a response's first line ("HTTP/1.1 204 ..."), -1 if incomplete, 0 if malformed. */
int httpStatusOf(std::string_view response);

}  // namespace ugate
