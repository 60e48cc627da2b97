#pragma once
// MessageBox: Web Push encrypted messages (RFC 8291 aes128gcm bodies) waiting for a node or a topic,
// handed between modules without either including the other: a module that accepts such messages
// posts them here; the xds module's ADS server publishes them as ugate.v1.Message resources (one
// mailbox per recipient), so a node subscribed by name receives its messages through any xDS relay,
// which sees only ciphertext. Process-wide, as peerDirectory(); writers serialise on a mutex and
// publish an immutable snapshot, readers copy it without a lock. Nothing here decrypts or validates
// the bodies: the ADS server checks each (ugate::xds::checkEnvelope) and leaves out what fails.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace ugate {

struct BoxedMessage {
  std::string recipient;  // a node ID, or "topic:<topic>"
  std::string id;         // unique per recipient; a second post with the same id replaces the first
  std::string ciphertext; // the aes128gcm body
  uint32_t ttlSeconds{0};
  std::string urgency;
  int64_t createdUnixMs{0};
  bool operator==(const BoxedMessage&) const = default;
};

class MessageBox {
 public:
  MessageBox();
  /** post adds m (or replaces the message of the same recipient and id); at most kMaxMessages kept, oldest dropped. */
  void post(BoxedMessage m);
  /** remove drops a recipient's message (delivered, or withdrawn). */
  void remove(std::string_view recipient, std::string_view id);
  /** list: the messages still alive at nowUnixMs (created + ttl), by recipient then id; drops the others. */
  std::vector<BoxedMessage> list(int64_t nowUnixMs);
  size_t size() const { return snap_.load(std::memory_order_acquire)->size(); }
  static constexpr size_t kMaxMessages = 10'000;

 private:
  void store(std::vector<BoxedMessage> next);  // writeMu_ held
  std::mutex writeMu_;
  std::atomic<std::shared_ptr<const std::vector<BoxedMessage>>> snap_;
};

/** messageBox: the process-wide box. */
MessageBox& messageBox();

}  // namespace ugate
