#pragma once
// MessageBox: Web Push encrypted messages (RFC 8291 aes128gcm bodies) waiting for a node or a topic,
// handed between modules without either including the other: a module that accepts such messages
// posts them here; the xds module's ADS server publishes them as ugate.v1.Message resources (one
// mailbox per recipient), so a node subscribed by name receives its messages through any xDS relay,
// which sees only ciphertext. Process-wide, as peerDirectory(); writers serialise on a mutex and
// publish an immutable snapshot, readers copy it without a lock. Nothing here decrypts or validates
// the bodies: the ADS server checks each (ugate::xds::checkEnvelope) and leaves out what fails.
// The other direction (a node receiving its mailbox from an ADS server) is the inbox: the xds
// module's ADS client hands each new envelope to the handler a module registered (webpush stores it
// for a local subscriber); the box never holds those.
#include <atomic>
#include <functional>
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
  /** removeIf drops every message `drop` selects (e.g. those of a subscription that is gone); how many. */
  size_t removeIf(const std::function<bool(const BoxedMessage&)>& drop);
  /** list: the messages still alive at nowUnixMs (created + ttl), by recipient then id; drops the others. */
  std::vector<BoxedMessage> list(int64_t nowUnixMs);
  size_t size() const { return snap_.load(std::memory_order_acquire)->size(); }
  static constexpr size_t kMaxMessages = 10'000;

  /**
   * setOnChange: called (on the changing thread, outside the lock) after each post and each removal
   * that dropped something, so that a server publishing the box need not wait for its next poll
   * (a message acknowledged must not be served again); it must only post work to its own thread.
   * Empty: none.
   */
  void setOnChange(std::function<void()> fn);

  /**
   * Inbox (node side): `deliver` hands messages that arrived for this node (recipient = this node's
   * ID or a topic it follows) to the handler a module registered with setInbox; the handler runs on
   * the delivering thread and must only post work to its own. false: no handler (nothing took them).
   */
  using InboxHandler = std::function<void(std::vector<BoxedMessage>)>;
  void setInbox(InboxHandler h);
  bool deliver(std::vector<BoxedMessage> msgs);

  /**
   * Topics this node reads (`xds.client.messages.topics`, set by the xds module as its config is
   * applied; empty when it reads none): a local subscription may be bound to `topic:<t>` only for
   * a t listed here, since only those mailboxes arrive.
   */
  void setReadTopics(std::vector<std::string> topics);
  bool readsTopic(std::string_view topic) const;

 private:
  void store(std::vector<BoxedMessage> next);  // writeMu_ held
  std::mutex writeMu_;
  std::atomic<std::shared_ptr<const std::vector<BoxedMessage>>> snap_;
  void changed();  // calls onChange_ (writeMu_ not held)
  mutable std::mutex hookMu_;  // guards onChange_, inbox_ and readTopics_
  std::function<void()> onChange_;
  InboxHandler inbox_;
  std::vector<std::string> readTopics_;
};

/** messageBox: the process-wide box. */
MessageBox& messageBox();

}  // namespace ugate
