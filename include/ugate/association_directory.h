#pragma once
// AssociationDirectory: the nodes that hold a reverse-accept association with this gateway, as the
// mesh registered them; read by modules that tell others who is reachable through this node (the
// xds module's ugate.v1.Node resources). Process-wide, as peerDirectory(): the mesh publishes the
// whole set at once on each registration or end (writers serialise on a mutex), readers copy the
// current immutable snapshot without a lock. Reaching such a node is the mesh's business (over its
// association, `<name>.mesh`); this is only the list.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ugate {

/** AssociatedNode: one node registered here over a reverse-accept association. */
struct AssociatedNode {
  std::string id;      // node ID, upper case (its certificate's)
  std::string name;    // from its certificate ("" if none)
  std::string spiffe;  // its SPIFFE ID ("" if none)
  std::string from;    // the address it connected from ("ip:port")
  int64_t sinceUnixMs{0};  // when the association registered
  bool operator==(const AssociatedNode&) const = default;
};

class AssociationDirectory {
 public:
  AssociationDirectory();
  /** publish replaces the whole set (sorted by ID here). */
  void publish(std::vector<AssociatedNode> nodes);
  /** list: the current set, by node ID. */
  std::vector<AssociatedNode> list() const;
  /** generation: incremented by each publish that changed the set (a cheap change check). */
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  std::mutex writeMu_;
  std::atomic<std::shared_ptr<const std::vector<AssociatedNode>>> snap_;
  std::atomic<uint64_t> generation_{0};
};

/** associationDirectory: the process-wide directory. */
AssociationDirectory& associationDirectory();

}  // namespace ugate
