#pragma once
// The ADS client's state (issue 19 §3, CDS + EDS), sans-I/O: response bytes in, the requests to
// send (serialized DiscoveryRequest / DeltaDiscoveryRequest) and the clusters held out; no
// sockets, no clock. The I/O around it is ads_client.h.
// - It subscribes CDS to the names it is given (or wildcard), and EDS to the EDS names of the
//   clusters it accepted, following CDS as it changes.
// - A response is applied whole or not at all: any invalid resource NACKs it (error_detail with
//   the reason; SotW version_info = the last accepted one) and what was held stays.
// - SotW CDS is the full state (a cluster absent is removed); EDS only updates what it carries.
//   Delta: resources upserted, removed_resources removed.
// - A new stream starts with the node, the subscriptions and, for delta,
//   initial_resource_versions of what is held; what was held stays in force meanwhile.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <ugate/ambient.h>
#include <ugate/cluster.h>

#include "xds/ambient_convert.h"
#include "xds/cluster_convert.h"
#include "xds/message_convert.h"

namespace ugate::xds {

/** AdsClientOptions: what the client asks for, and as whom. */
struct AdsClientOptions {
  bool delta{false};
  std::string nodeId;
  std::string nodeCluster;
  std::map<std::string, std::string> metadata;  // node.metadata (string values)
  bool wildcard{false};                         // CDS: every cluster the server has
  std::set<std::string> clusters;               // CDS names (without wildcard)
  /** ambient: (delta only) Istio ambient types too: istio.workload.Address, istio.security.Authorization, wildcard. */
  bool ambient{false};
  /** mailboxes: ugate.v1.Message names to subscribe (this node's ID, "topic:<t>"); empty: none. */
  std::set<std::string> mailboxes;
  bool operator==(const AdsClientOptions&) const = default;
};

/** ClientVerdict: what the client made of one response. */
enum class ClientVerdict : uint8_t {
  Ack,      // applied (or nothing in it was for us) and ACKed
  Nack,     // refused with a reason: NACKed, nothing changed
  Invalid,  // not a response message at all: the stream should end
};

struct ClientOutcome {
  ClientVerdict verdict{ClientVerdict::Ack};
  std::string typeUrl;
  std::string error;                  // the reason (Nack, Invalid)
  bool changed{false};                // clusters() changed
  bool ambientChanged{false};         // ambient() changed
  std::vector<std::string> requests;  // to send, in order
  /** messages: (an accepted Message response) envelopes not seen before, by mailbox, in order. */
  std::vector<Mailbox> messages;
};

/**
 * DecodedResponse: one response's bytes decoded, with no state read (so any thread may make it):
 * the protobuf parsed and each CDS / EDS / Address / Authorization resource of the response's own
 * type converted (or the reason it cannot be). Other resources keep their bytes (refused when applied). The expensive
 * part of a big update (issue 19 §5: a 10 000-endpoint assignment); AdsClient makes it off worker 0.
 */
struct DecodedResponse {
  bool ok{false};  // a (Delta)DiscoveryResponse at all
  std::string typeUrl;
  std::string nonce;
  std::string version;  // SotW version_info; delta system_version_info
  struct Resource {
    std::string name;     // "" in SotW
    std::string version;  // SotW: the response's version_info
    std::string anyType;
    std::string bytes;                          // empty when converted below
    std::optional<Result<CdsCluster>> cds;      // converted (a CDS resource of a CDS response)
    std::optional<Result<EdsAssignment>> eds;   // converted (an EDS resource of an EDS response)
    std::optional<Result<AmbientAddress>> address;  // (an Address of an Address response)
    std::optional<Result<AmbientPolicy>> policy;    // (an Authorization of an Authorization response)
    std::optional<Result<Mailbox>> mailbox;         // (a Message of a Message response)
  };
  std::vector<Resource> resources;
  std::vector<std::string> removed;  // delta removed_resources
};

class AdsClientState {
 public:
  explicit AdsClientState(AdsClientOptions o) : opts_(std::move(o)) {}

  /** streamStarted: a new stream (the last one ended): its first requests, the node in the first. */
  std::vector<std::string> streamStarted();
  /** streamEnded: no stream now; what is held stays. */
  void streamEnded() { streaming_ = false; }
  /** onMessage: one response message's bytes (untrusted): onDecoded(decode(...)). */
  ClientOutcome onMessage(std::string_view bytes);
  /** decode: the stateless part of onMessage (any thread; `delta` as options().delta). */
  static DecodedResponse decode(bool delta, std::string_view bytes);
  /** onDecoded: the rest of onMessage, in the order the responses came (d made with options().delta). */
  ClientOutcome onDecoded(DecodedResponse d);
  /**
   * setOptions (a reload): new subscriptions. Clusters no longer subscribed are dropped (changed =
   * true). @return the requests that update the stream's subscriptions (none when not streaming);
   *   a change of `delta` or of the node needs a new stream (restartNeeded).
   */
  std::vector<std::string> setOptions(AdsClientOptions o, bool& changed);
  bool restartNeeded(const AdsClientOptions& o) const;
  const AdsClientOptions& options() const { return opts_; }

  /**
   * clusters: what is held, joined: each accepted cluster with its assignment. A cluster whose
   * assignment has not arrived (yet, or any more) is warming instead: not in this map, so that no
   * stream meets it without endpoints (the caller keeps what it had of it, as Envoy's warming).
   */
  std::map<std::string, DynamicCluster> clusters() const;
  /** warming: accepted clusters without their assignment. */
  std::set<std::string> warming() const;
  /** ambient: the Istio ambient state held, as the data path reads it (indexed). */
  std::shared_ptr<const AmbientSnapshot> ambient() const;
  size_t ambientResources() const { return addresses_.size() + policies_.size(); }
  /** version: the last accepted version of a type (SotW version_info; delta system_version_info). */
  std::string version(std::string_view typeUrl) const;

 private:
  struct Held {
    CdsCluster cluster;
    std::string version;
    bool operator==(const Held&) const = default;
  };
  struct HeldAssignment {
    EdsAssignment assignment;
    std::string version;
    bool operator==(const HeldAssignment&) const = default;
  };
  /** Incoming: one resource of a response (its name "" in SotW). */
  struct Incoming {
    std::string_view name;
    std::string_view version;
    std::string_view anyType;
    std::string_view bytes;
    DecodedResponse::Resource* decoded{nullptr};  // its converted CDS / EDS value, taken when applied
  };
  struct TypeState {
    std::string version;  // last accepted
    std::string nonce;    // of the last response on this stream
    std::set<std::string> names;  // subscribed on this stream (sent)
    bool subscribed{false};       // a request of this type went out on this stream
  };

  /**
   * apply validates every resource of a response of `type` and, when all are valid, makes them
   * held (fullState: what is not in it is removed). @return "" or the reason to NACK.
   */
  std::string apply(const std::string& type, const std::vector<Incoming>& in,
                    const std::vector<std::string>& removed, bool fullState, bool& changed,
                    std::vector<Mailbox>& fresh);
  std::string applyCds(const std::vector<Incoming>& in, const std::vector<std::string>& removed, bool fullState,
                       bool& changed);
  std::string applyEds(const std::vector<Incoming>& in, const std::vector<std::string>& removed, bool& changed);
  /** applyAmbient: Address or Authorization resources (delta: upserts by name, removals). */
  std::string applyAmbient(const std::string& type, const std::vector<Incoming>& in,
                           const std::vector<std::string>& removed, bool& changed);
  /**
   * applyMessages: Message resources: each mailbox replaces what was seen of it; envelopes whose id
   * was not in it before go to `fresh` (so a mailbox sent again on a new stream delivers nothing twice).
   */
  std::string applyMessages(const std::vector<Incoming>& in, const std::vector<std::string>& removed,
                            std::vector<Mailbox>& fresh);
  bool known(const std::string& type) const;
  /** conclude: the ACK (version now accepted) or the NACK (err) of response o, and what follows. */
  void conclude(ClientOutcome& o, const std::string& err, const std::string& version);
  std::set<std::string> edsNames() const;
  /** desired: the names type should be subscribed to now (CDS: empty with wildcard). */
  std::set<std::string> desired(const std::string& type) const;
  bool wanted(const std::string& cluster) const { return opts_.wildcard || opts_.clusters.count(cluster) != 0; }
  /** sotwRequest / deltaRequest: a request of `type` (names, version, nonce; error for a NACK). */
  std::string sotwRequest(const std::string& type, const std::string* error);
  std::string deltaRequest(const std::string& type, const std::set<std::string>& sub,
                           const std::set<std::string>& unsub, const std::string* error, bool initial);
  /** resubscribe: requests for the subscriptions that differ from what the stream has. */
  void resubscribe(std::vector<std::string>& out);
  /** dropUnreferenced: assignments no held cluster names any more. */
  void dropUnreferenced();

  AdsClientOptions opts_;
  bool streaming_{false};
  bool nodeSent_{false};
  std::map<std::string, Held> clusters_;               // by cluster name
  std::map<std::string, HeldAssignment> assignments_;  // by EDS name
  template <class T>
  struct HeldAmbient {
    T value;
    std::string version;
    bool operator==(const HeldAmbient&) const = default;
  };
  struct AddressHeld {
    std::optional<AmbientWorkload> workload;
    std::optional<AmbientService> service;
    bool operator==(const AddressHeld&) const = default;
  };
  std::map<std::string, HeldAmbient<AddressHeld>> addresses_;   // by xDS name (uid, namespace/hostname)
  std::map<std::string, HeldAmbient<AmbientPolicy>> policies_;  // by xDS name (namespace/name)
  std::map<std::string, TypeState, std::less<>> types_;
  std::map<std::string, std::set<std::string>> mailboxIds_;  // mailbox → the envelope ids it holds
};

}  // namespace ugate::xds
