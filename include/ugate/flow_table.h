#pragma once
// FlowTable: the UDP flows of one listener on one worker, keyed by client address (and, for TPROXY
// capture, original destination), in least-recently-used order. Sans-I/O: time is passed in (the
// reactor's cached now), so idle expiry and eviction are tested under simulated time. The table
// does not own its entries: the forwarder embeds a FlowEntry in each flow and frees it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>

#include <ugate/socket_address.h>
#include <ugate/time.h>

namespace ugate::udp {

/** FlowKey: who sent (client) and, for a TPROXY capture, where to (origDst; else invalid). */
struct FlowKey {
  SocketAddress client;
  SocketAddress origDst;
  bool operator==(const FlowKey& o) const { return client == o.client && origDst == o.origDst; }
};

struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const;
};

/** FlowEntry: the table's bookkeeping, embedded in each flow. */
struct FlowEntry {
  FlowKey key;
  MonotonicTime lastActivity{};
  FlowEntry* newer{nullptr};  // toward the most recently used
  FlowEntry* older{nullptr};  // toward the least recently used
  bool inTable{false};
};

class FlowTable {
 public:
  /** @param maxFlows the cap (>= 1); @param idle how long a flow may go without a datagram. */
  FlowTable(size_t maxFlows, Duration idle) : max_(maxFlows), idle_(idle) {}
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  /** find returns the flow for k, or null. */
  FlowEntry* find(const FlowKey& k) const;
  /**
   * insert adds e (its key set) as the most recently used, active at now. The caller makes room
   * first: full() must be false (evict oldest()), and the key must not be in the table.
   */
  void insert(FlowEntry* e, MonotonicTime now);
  /** touch records a datagram of e at now: it becomes the most recently used. O(1). */
  void touch(FlowEntry* e, MonotonicTime now);
  /** remove takes e out of the table (no-op if it is not in it). */
  void remove(FlowEntry* e);

  /** oldest: the least recently used flow (the one to evict), or null when empty. */
  FlowEntry* oldest() const { return oldest_; }
  /** expiredAt: the least recently used flow if it has been idle for `idle` at now, else null. */
  FlowEntry* expiredAt(MonotonicTime now) const;
  /** nextDeadline: when the least recently used flow expires, if any (arm a timer for it). */
  std::optional<MonotonicTime> nextDeadline() const;

  bool full() const { return map_.size() >= max_; }
  size_t size() const { return map_.size(); }
  size_t maxFlows() const { return max_; }
  Duration idle() const { return idle_; }
  /** setLimits applies a reload's cap and idle timeout (the caller evicts any excess). */
  void setLimits(size_t maxFlows, Duration idle) {
    max_ = maxFlows;
    idle_ = idle;
  }

 private:
  void unlink(FlowEntry* e);
  void pushNewest(FlowEntry* e);

  std::unordered_map<FlowKey, FlowEntry*, FlowKeyHash> map_;
  FlowEntry* newest_{nullptr};
  FlowEntry* oldest_{nullptr};
  size_t max_;
  Duration idle_;
};

}  // namespace ugate::udp
