#pragma once
// The receiving side of discovery, sans-I/O: a per-source token bucket (checked before any crypto),
// a replay window per node (sequence strictly increasing, timestamp inside a window around our
// clock), and the neighbour table with expiry. Time is a parameter everywhere: the monotonic `now`
// of the reactor and the wall clock in ms (for the announced timestamps). One owner thread.
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <ugate/peer_directory.h>
#include <ugate/time.h>

#include "local/announcement.h"

namespace ugate::local {

/** kReplayWindow: how far below a node's highest sequence a late announcement is still taken. */
inline constexpr uint64_t kReplayWindow = 64;

/** SourceRateLimiter: a token bucket per source address; bounded in the number of sources. */
class SourceRateLimiter {
 public:
  /** @param perSecond tokens added per second; @param burst bucket size; @param maxSources cap. */
  SourceRateLimiter(double perSecond, double burst, size_t maxSources);
  /** allow takes one token from source's bucket; false when it is empty (or the table is full). */
  bool allow(const std::string& source, MonotonicTime now);
  size_t size() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens;
    MonotonicTime last;
  };
  void prune(MonotonicTime now);
  double perSecond_, burst_;
  size_t maxSources_;
  std::unordered_map<std::string, Bucket> buckets_;
};

/**
 * ReplayWindow: per node, the highest sequence accepted and which of the kReplayWindow sequences
 * below it were seen (a sliding bitmap, as IPsec's anti-replay window: a node's IPv4 and IPv6
 * announcements, and its unicast replies, may arrive out of order). An announcement is fresh when
 * its timestamp lies in [wall - maxAge, wall + maxFuture] and its sequence is above the highest,
 * or inside the window, above the first one accepted from that node and not seen yet. A node's entry is kept for maxAge + maxFuture after its
 * last acceptance: by then a replay of anything it sent is too old anyway.
 */
class ReplayWindow {
 public:
  ReplayWindow(Duration maxAge, Duration maxFuture, size_t maxNodes);
  /** check: None, TooOld, TooNew, Replay or TableFull; records nothing. */
  Reject check(const std::string& nodeId, uint64_t sequence, int64_t timestampMs, int64_t wallMs,
               MonotonicTime now);
  /** accept records sequence as node's last (call after check returned None). */
  void accept(const std::string& nodeId, uint64_t sequence, MonotonicTime now);
  size_t size() const { return last_.size(); }

 private:
  struct Entry {
    uint64_t highest;
    uint64_t seen;  // seen: bit i set = sequence highest - i was accepted
    MonotonicTime at;
  };
  void prune(MonotonicTime now);
  Duration maxAge_, maxFuture_;
  size_t maxNodes_;
  std::unordered_map<std::string, Entry> last_;
};

/** Neighbour: a node heard on a link. */
struct Neighbour {
  std::string nodeId;
  std::string name;
  std::vector<IpAddr> addresses;  // announced
  std::string source;             // source: the address the last datagram came from (ip%if)
  std::string interface;          // interface: where it was last heard
  uint16_t tcpPort{0};
  uint16_t quicPort{0};
  uint64_t sequence{0};
  MonotonicTime firstSeen{};
  MonotonicTime lastSeen{};
  int64_t lastSeenWallMs{0};
};

/**
 * directPeer: how the mesh dials n directly (ugate/peer_directory.h, source "local"): its mesh
 * port at the address its last datagram came from first (proven on this link), then at each
 * address it announced; link-local IPv6 addresses after all others, with `scopeId` (the index of
 * the interface n was heard on).
 * No mesh addresses (empty meshTcp) when n announced no TCP mesh port.
 */
DirectPeer directPeer(const Neighbour& n, uint32_t scopeId);

/** NeighbourTable: nodes by ID; an entry not refreshed within `expire` goes. */
class NeighbourTable {
 public:
  NeighbourTable(Duration expire, size_t maxNodes) : expire_(expire), maxNodes_(maxNodes) {}
  /** update stores n (keeping firstSeen of a known node). @return true when the node is new. */
  bool update(Neighbour n);
  bool full() const { return nodes_.size() >= maxNodes_; }
  bool contains(const std::string& id) const { return nodes_.count(id) != 0; }
  /** expire removes the nodes last seen more than `expire` before now; returns them. */
  std::vector<Neighbour> expire(MonotonicTime now);
  /** nextExpiry: when the oldest entry expires (nullopt: empty). */
  std::optional<MonotonicTime> nextExpiry() const;
  void setExpire(Duration d) { expire_ = d; }
  const std::map<std::string, Neighbour>& nodes() const { return nodes_; }

 private:
  Duration expire_;
  size_t maxNodes_;
  std::map<std::string, Neighbour> nodes_;
};

/** ReceiverParams: the receiver's limits (docs/CONFIG.md, `discovery`). */
struct ReceiverParams {
  std::string ownId;
  Duration expire{360'000};
  Duration maxAge{300'000};
  Duration maxFuture{300'000};
  double ratePerSecond{2};
  double rateBurst{10};
  double verifyPerSecond{200};  // signature verifications, all sources together (burst: twice that)
  size_t maxSources{1024};
  size_t maxNodes{256};
};

/** Received: the outcome of one datagram. */
struct Received {
  Reject reject{Reject::None};
  bool isNew{false};        // the node was not in the table
  Announcement announcement;  // valid when reject == None
};

/**
 * Receiver: rate limit per source → parse (structure, key, ID) → the verify budget of all sources
 * together → signature → own → replay window → table. Every datagram gets one outcome; the caller
 * counts it by reason. The two budgets bound the CPU a flood (with spoofed sources too) can cost:
 * a P-256 verify is the only expensive step.
 */
class Receiver {
 public:
  explicit Receiver(ReceiverParams p);
  /**
   * receive handles one datagram from `source` (its address text) heard on `interface`.
   * @param wallMs our wall clock in ms, for the timestamp window; @param now the monotonic time.
   */
  Received receive(std::span<const uint8_t> datagram, const std::string& source, const std::string& interface,
                   int64_t wallMs, MonotonicTime now);
  NeighbourTable& table() { return table_; }
  const NeighbourTable& table() const { return table_; }
  const ReceiverParams& params() const { return p_; }

 private:
  ReceiverParams p_;
  SourceRateLimiter rate_;
  SourceRateLimiter verifyBudget_;  // one bucket ("*") for every source
  ReplayWindow replay_;
  NeighbourTable table_;
};

}  // namespace ugate::local
