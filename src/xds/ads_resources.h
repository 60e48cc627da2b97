#pragma once
// The resources the ADS server publishes (issue 19 §2), built from a config snapshot: every route
// whose `match.hosts` has an exact name and whose `to` is host:port or cluster:NAME gives, for each
// such name H, the four resources a proxyless gRPC client resolves `xds:///H` with:
// - Listener H: an api_listener holding an HttpConnectionManager that reads RouteConfiguration H
//   over ADS, with the Router filter;
// - RouteConfiguration H: one virtual host (domains H and *) routing prefix "" to Cluster H;
// - Cluster H: type EDS, its ClusterLoadAssignment named H, round robin;
// - ClusterLoadAssignment H: one locality (region "ugate", weight 1) with the target's endpoints
//   and their weights (host:port: weight 1; a cluster: its endpoints' weights).
// Only IP literals are published (grpc-js requires IP addresses; resolving names here would make
// the resources depend on DNS timing): an endpoint that is a name is left out, and a host with no
// endpoint left is skipped. A route `via` a mesh gateway is skipped (a proxyless client cannot
// follow it), and so is a route that matches peer identities (its target is for authenticated
// peers; a client would dial it directly, past that check). The first route that names a host
// wins, as in routing; its other match keys (listener, port, ...) do not apply to xDS clients.
#include <string>
#include <vector>

#include <ugate/association_directory.h>
#include <ugate/config.h>
#include <ugate/message_box.h>
#include <ugate/peer_directory.h>

#include "xds/ads_state.h"

namespace ugate::xds::ads {

/** buildSnapshot: the resources of `c` as snapshot `generation`; why routes or endpoints were left out in `skipped`. */
Snapshot buildSnapshot(const Config& c, uint64_t generation, std::vector<std::string>* skipped = nullptr);

/**
 * addNodes puts the ugate.v1.Node resources into s (kNodeType, named by node ID): this node
 * (`selfId`, "" when it has no identity yet: then only the others; its mesh listeners of `c`) and
 * every node in `peers` (reached via this node), then every node holding an association here
 * (`associated`, source "association"; one already listed from `peers` keeps that entry). A node
 * whose ID is selfId is skipped.
 */
void addNodes(Snapshot& s, const Config& c, const std::string& selfId, const std::vector<DirectPeer>& peers,
              const std::vector<AssociatedNode>& associated = {});

/**
 * addMessages puts one ugate.v1.Message resource per recipient into s (kMessageType, named by the
 * recipient: a node ID or "topic:<topic>"): its mailbox of the messages given. A message whose
 * recipient, id, body (not an aes128gcm Web Push body) or urgency is invalid is left out, its reason
 * in `skipped`.
 */
void addMessages(Snapshot& s, const std::vector<BoxedMessage>& messages, std::vector<std::string>* skipped = nullptr);

}  // namespace ugate::xds::ads
