#pragma once
// NodeTable: the registry of nodes that hold a reverse-accept association with this gateway (one
// per process, in the mesh module's MeshShared): node ID -> (name, the worker holding the
// association, its handle). Written when an association registers or ends (writers serialise on a
// mutex and publish a new immutable snapshot); read on every mesh stream set-up from any worker,
// without a lock, from the current snapshot. Names are unique: a name already held by another node
// ID is refused; the same node ID registering again replaces its older association (which then
// drains). UpstreamTable is the other direction: this node's own associations with its gateways.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <ugate/association_directory.h>
#include <ugate/result.h>
#include <ugate/socket_address.h>

namespace ugate::mesh {

struct NodeEntry {
  std::string id;       // node ID (upper case)
  std::string name;     // from its certificate ("" if none)
  std::string spiffe;
  int worker{-1};       // worker index holding the association
  uint64_t handle{0};   // association handle, unique per process
  SocketAddress peer;   // where it connected from
  int64_t sinceUnixMs{0};
};

class NodeTable {
 public:
  /** mirror: where each change is also published (the process-wide table's; null in tests). */
  explicit NodeTable(AssociationDirectory* mirror = nullptr);
  /**
   * add registers an association. Returns the handle of the association it replaced (same node
   * ID), 0 when none; an error when the name is held by another node.
   */
  Result<uint64_t> add(const NodeEntry& e);
  /** remove drops the entry if `handle` is still the node's current association. */
  void remove(const std::string& id, uint64_t handle);
  /** find by node ID (case-insensitive) or name. */
  std::optional<NodeEntry> find(std::string_view idOrName) const;
  std::vector<NodeEntry> list() const;
  /** size: how many nodes are registered (no copy). */
  size_t size() const { return current()->byId.size(); }
  /** nextHandle: a process-unique association handle (any thread). */
  uint64_t nextHandle() { return handles_.fetch_add(1, std::memory_order_relaxed) + 1; }

 private:
  struct Snapshot {
    std::unordered_map<std::string, NodeEntry> byId;
    std::unordered_map<std::string, std::string> nameToId;  // lower-case name -> node ID
  };
  std::shared_ptr<const Snapshot> current() const { return snap_.load(std::memory_order_acquire); }
  std::mutex writeMu_;  // writeMu_: serialises writers (copy, change, publish); readers never take it
  std::atomic<std::shared_ptr<const Snapshot>> snap_;
  std::atomic<uint64_t> handles_{0};
  AssociationDirectory* mirror_;
  /** store publishes next (writeMu_ held) and mirrors it. */
  void store(std::shared_ptr<const Snapshot> next);
};

/**
 * UpstreamStatus: this node's own side of an association with one of its gateways (`upstreams[]`),
 * for /nodes: a node behind NAT cannot be seen from outside, so its operator looks here.
 */
struct UpstreamStatus {
  enum class State : uint8_t { Connecting, Connected, BackingOff };
  std::string name;            // the upstream's name
  std::string address;         // the gateway's host:port
  std::string gatewayId;       // pinned in the config, or learned from its certificate once connected
  State state{State::Connecting};
  int64_t sinceUnixMs{0};      // when it entered this state
  int attempts{0};             // failed attempts since the association was last up for a while
  int64_t nextRetryUnixMs{0};  // BackingOff: when the next dial starts
  std::string lastError;       // why the last attempt or association ended ("" = none yet)
  int owner{0};                // the worker holding it (a reload may move an upstream to another)
};
const char* upstreamStateName(UpstreamStatus::State s);

/**
 * UpstreamTable: this node's upstream associations (each is held by one worker), in MeshShared.
 * Written on state changes only (dial, up, down), read by the admin endpoint.
 */
class UpstreamTable {
 public:
  void set(const UpstreamStatus& s);
  /** remove: forget `name` if worker `owner` still holds it (another may have taken it over). */
  void remove(const std::string& name, int owner);
  /** list: sorted by name. */
  std::vector<UpstreamStatus> list() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, UpstreamStatus> byName_;
};

/** upper: ASCII upper case (node IDs are case-insensitive base32). */
std::string upper(std::string_view s);

}  // namespace ugate::mesh
