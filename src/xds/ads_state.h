#pragma once
// The ADS server's per-stream subscription state (issue 19 §2), sans-I/O: plain structs in, the
// responses to send out; no protobuf, no sockets, no clock. One SotwStream per
// StreamAggregatedResources call, one DeltaStream per DeltaAggregatedResources call; both read the
// resources from an immutable Snapshot and are told when a new one replaces it (a config reload).
// The rules (../shared/docs/XDS.md, "Semantics implementations get wrong"):
// - nonces are per stream, versions per type; an ACK echoes a response's nonce, a NACK is an ACK
//   with an error (its version_info stays the last accepted one): a NACK changes nothing sent and
//   nothing is sent again until the resources or the subscription change;
// - SotW: a request whose nonce is not the last one sent for its type is stale: not answered, but
//   its resource_names are kept and answered on the next current request; an empty resource_names
//   is a wildcard only until the client names a resource of that type (`*` is explicit); LDS and
//   CDS responses carry the full subscribed set (absent = deleted), RDS and EDS only what exists;
// - a newly (re)subscribed resource is sent even if unchanged;
// - delta: subscription changes count even with a stale nonce; initial_resource_versions skips what
//   the client has, names it has that no longer exist are removed_resources, an explicitly
//   subscribed name that does not exist is reported once in removed_resources; unsubscribing needs
//   no response, except a name that `*` still covers (sent again).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ugate::xds::ads {

/** Resource: one named resource of one type: its encoded message (an Any's value) and version. */
struct Resource {
  std::string name;
  std::string version;  // resourceVersion(bytes)
  std::string bytes;
  bool operator==(const Resource&) const = default;
};

/** resourceVersion: a resource's version, a hash of its encoding (equal bytes, equal version). */
std::string resourceVersion(std::string_view bytes);

/** Snapshot: every resource served, by type URL then name. Immutable once shared. */
struct Snapshot {
  uint64_t generation{0};  // the version_info of responses made from it
  std::map<std::string, std::map<std::string, Resource>, std::less<>> types;
  /** add puts r under typeUrl (its version computed here); a second one of the same name is ignored. */
  void add(std::string_view typeUrl, std::string name, std::string bytes);
  /** find: the resource `name` of typeUrl, or null. */
  const Resource* find(std::string_view typeUrl, const std::string& name) const;
  /** ofType: the resources of typeUrl (an empty map when none). */
  const std::map<std::string, Resource>& ofType(std::string_view typeUrl) const;
};
using SnapshotPtr = std::shared_ptr<const Snapshot>;

/** fullStateType: LDS, CDS and ugate.v1.Node, whose SotW responses carry every subscribed resource. */
bool fullStateType(std::string_view typeUrl);

/** Verdict: what a request said about the stream's last response of its type. */
enum class Verdict : uint8_t {
  Initial,  // no response_nonce: a first request (or a delta subscription change)
  Ack,      // the last response's nonce, no error
  Nack,     // the last response's nonce with error_detail
  Stale,    // a nonce that is not the last one sent for the type
  Refused,  // over StreamLimits: nothing applied; the call should end RESOURCE_EXHAUSTED
};
const char* verdictName(Verdict v);

/**
 * StreamLimits: what one client may make a stream hold (its requests are untrusted): type URLs,
 * and names subscribed per type (a delta stream adds names request after request).
 */
struct StreamLimits {
  size_t maxTypes{16};
  size_t maxNamesPerType{10000};
};

/** SotwRequest: a DiscoveryRequest's fields the state machine reads. */
struct SotwRequest {
  std::string typeUrl;
  std::string versionInfo;
  std::vector<std::string> names;  // resource_names
  std::string nonce;               // response_nonce
  bool hasError{false};            // error_detail present: a NACK
  std::string error;               // error_detail.message
};

/** SotwResponse: a DiscoveryResponse to send. */
struct SotwResponse {
  std::string typeUrl;
  std::string versionInfo;
  std::string nonce;
  std::vector<Resource> resources;  // in name order
};

/**
 * SotwStream: one StreamAggregatedResources call's state. Each method appends the responses to
 * send, in order, to `out`.
 */
class SotwStream {
 public:
  explicit SotwStream(SnapshotPtr s, StreamLimits l = {}) : snap_(std::move(s)), limits_(l) {}
  /**
   * onRequest applies one request (its type URL must not be empty) and answers it if it must;
   * Refused (nothing applied) when it would exceed the limits.
   */
  Verdict onRequest(const SotwRequest& r, std::vector<SotwResponse>& out);
  /** onSnapshot: `s` replaces the snapshot; every subscribed type whose content changed is pushed. */
  void onSnapshot(SnapshotPtr s, std::vector<SotwResponse>& out);
  /** ackedVersion: the version_info of the type's last ACK ("" before any). */
  std::string ackedVersion(std::string_view typeUrl) const;
  /** subscribedTypes: type URLs the client has requested. */
  size_t subscribedTypes() const { return types_.size(); }

 private:
  struct TypeState {
    bool wildcard{false};
    bool named{false};  // the client has named a resource: an empty list is no wildcard any more
    bool pending{false};  // a stale request changed the subscription: answer the next current one
    std::set<std::string, std::less<>> names;
    std::string nonce;  // of the last response
    std::string acked;  // version_info of the last ACK
    std::map<std::string, std::string> sent;  // name → version in the last response
  };
  std::vector<Resource> content(const TypeState& t, std::string_view typeUrl) const;
  void respond(TypeState& t, std::string_view typeUrl, std::vector<SotwResponse>& out);

  SnapshotPtr snap_;
  StreamLimits limits_;
  std::map<std::string, TypeState, std::less<>> types_;
  uint64_t nonces_{0};
};

/** DeltaRequest: a DeltaDiscoveryRequest's fields the state machine reads. */
struct DeltaRequest {
  std::string typeUrl;
  std::vector<std::string> subscribe;
  std::vector<std::string> unsubscribe;
  std::map<std::string, std::string> initialVersions;  // read on the type's first request only
  std::string nonce;
  bool hasError{false};
  std::string error;
};

/** DeltaResponse: a DeltaDiscoveryResponse to send. */
struct DeltaResponse {
  std::string typeUrl;
  std::string systemVersion;
  std::string nonce;
  std::vector<Resource> resources;     // in name order
  std::vector<std::string> removed;    // removed_resources, in name order
};

/** DeltaStream: one DeltaAggregatedResources call's state. */
class DeltaStream {
 public:
  explicit DeltaStream(SnapshotPtr s, StreamLimits l = {}) : snap_(std::move(s)), limits_(l) {}
  /**
   * onRequest applies one request and appends the response it calls for (if any) to `out`;
   * Refused (nothing applied) when it would exceed the limits.
   */
  Verdict onRequest(const DeltaRequest& r, std::vector<DeltaResponse>& out);
  /** onSnapshot: `s` replaces the snapshot; every type with changes for this client is pushed. */
  void onSnapshot(SnapshotPtr s, std::vector<DeltaResponse>& out);
  size_t subscribedTypes() const { return types_.size(); }

 private:
  struct TypeState {
    bool wildcard{false};
    std::set<std::string, std::less<>> names;  // explicit subscriptions
    std::map<std::string, std::string> known;   // name → version the client has
    std::set<std::string, std::less<>> absent;  // explicit names reported as removed
    std::string nonce;
  };
  void diff(TypeState& t, std::string_view typeUrl, std::vector<DeltaResponse>& out);

  SnapshotPtr snap_;
  StreamLimits limits_;
  std::map<std::string, TypeState, std::less<>> types_;
  uint64_t nonces_{0};
};

}  // namespace ugate::xds::ads
