#pragma once
// HandoverChannel: one end of the upgrade's Unix SOCK_SEQPACKET socket pair (core/handover.h has
// the messages). Blocking, with a deadline per call: it runs on the old process's upgrade thread
// and on the new process's main thread before that one serves anything, never on a reactor.
#include <string>
#include <string_view>
#include <vector>

#include <ugate/result.h>

namespace ugate::handover {

class Channel {
 public:
  /** Channel owns fd (a connected SOCK_SEQPACKET socket). */
  explicit Channel(int fd);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  /** send writes one message with fds beside it (they stay the caller's). */
  Result<void> send(std::string_view msg, const std::vector<int>& fds = {});
  /**
   * recv reads one message within timeoutMs; descriptors that came with it are appended to fds
   * (close-on-exec). The peer closing its end is Errc::Shutdown ("closed").
   */
  Result<std::string> recv(std::vector<int>& fds, int timeoutMs);

 private:
  int fd_;
};

}  // namespace ugate::handover
