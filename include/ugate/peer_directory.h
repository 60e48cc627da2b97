#pragma once
// PeerDirectory: the nodes this process can reach directly, without a gateway. The modules that find
// them publish them (local discovery: source "local"); the module that dials mesh targets reads them
// (`<name>.mesh` and `<node-id>.mesh` go straight to a node found here, mTLS pinned to its ID,
// before an association or a gateway is tried). Process-wide, as modules() is: each source publishes
// its whole set at once as a new immutable snapshot (writers serialise on a mutex), and readers on
// any thread look up the current snapshot without a lock.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/socket_address.h>

namespace ugate {

/** DirectPeer: one node reachable directly, as its source found it. */
struct DirectPeer {
  std::string id;      // node ID, upper case (the ID its certificate must carry)
  std::string name;    // the name it announced ("" if none)
  std::string source;  // who found it ("local": discovery on a link)
  /** meshTcp: where its mesh listener (HTTP/2 over mTLS) answers, best first (never empty). */
  std::vector<SocketAddress> meshTcp;
  /** meshQuic: its mesh over QUIC, best first (empty when it announced none). */
  std::vector<SocketAddress> meshQuic;
  std::string interface;       // the link it was found on ("" if not link-bound)
  int64_t lastSeenUnixMs{0};   // when the source last heard of it
};

class PeerDirectory {
 public:
  PeerDirectory();
  /**
   * publish replaces everything `source` published before with `peers` (an empty set withdraws
   * them all). Peers without an ID or a mesh address are skipped.
   */
  void publish(std::string_view source, std::vector<DirectPeer> peers);
  /**
   * find: the peer with this node ID (case-insensitive) or, failing that, this name
   * (case-insensitive). A name two sources or two nodes share resolves to none of them: a
   * direct dial must not guess.
   */
  std::optional<DirectPeer> find(std::string_view idOrName) const;
  /** list: every peer of every source, by source then node ID. */
  std::vector<DirectPeer> list() const;
  size_t size() const;

 private:
  struct Snapshot;
  std::shared_ptr<const Snapshot> current() const { return snap_.load(std::memory_order_acquire); }
  std::mutex writeMu_;  // writeMu_: serialises publishers; readers never take it
  std::atomic<std::shared_ptr<const Snapshot>> snap_;
};

/** peerDirectory: the process-wide directory. */
PeerDirectory& peerDirectory();

}  // namespace ugate
