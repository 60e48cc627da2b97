#include "xds/ads_client_state.h"

#include <algorithm>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "xds/messages.h"

namespace ugate::xds {

namespace {

namespace discovery = envoy::service::discovery::v3;

constexpr int kNackCode = 3;  // google.rpc.Code INVALID_ARGUMENT
constexpr size_t kMaxNackMessage = 512;

const std::string kCds(kClusterType);
const std::string kEds(kClusterLoadAssignmentType);
const std::string kAddress(kAddressType);
const std::string kAuthz(kAuthorizationType);
const std::string kMessage(kMessageType);

void fillNode(const AdsClientOptions& o, envoy::config::core::v3::Node& n) {
  n.set_id(o.nodeId);
  n.set_cluster(o.nodeCluster);
  n.set_user_agent_name("ugated");
  n.set_user_agent_version("xds-client");
  for (const auto& [k, v] : o.metadata) (*n.mutable_metadata()->mutable_fields())[k].set_string_value(v);
}

void setError(google::rpc::Status& s, const std::string& why) {
  s.set_code(kNackCode);
  s.set_message(why.substr(0, kMaxNackMessage));
}

std::string printable(std::string_view s) {
  std::string o(s.substr(0, 120));
  for (char& ch : o) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  }
  return o;
}

std::string wrongType(size_t i, std::string_view anyType, std::string_view type) {
  return "resource " + std::to_string(i) + " is a '" + printable(anyType) + "' in a response of " + std::string(type);
}

}  // namespace

std::set<std::string> AdsClientState::edsNames() const {
  std::set<std::string> n;
  for (const auto& [name, h] : clusters_) n.insert(h.cluster.edsName);
  return n;
}

std::set<std::string> AdsClientState::desired(const std::string& type) const {
  if (type == kCds) return opts_.wildcard ? std::set<std::string>{} : opts_.clusters;
  if (type == kEds) return edsNames();
  if (type == kMessage) return opts_.mailboxes;
  return {};
}

void AdsClientState::dropUnreferenced() {
  const std::set<std::string> eds = edsNames();
  std::erase_if(assignments_, [&](const auto& kv) { return !eds.count(kv.first); });
}

std::string AdsClientState::applyCds(const std::vector<Incoming>& in, const std::vector<std::string>& removed,
                                     bool fullState, bool& changed) {
  std::map<std::string, Held> next = fullState ? std::map<std::string, Held>{} : clusters_;
  std::set<std::string> seen;
  for (size_t i = 0; i < in.size(); ++i) {
    const Incoming& r = in[i];
    if (r.anyType != kCds) return wrongType(i, r.anyType, "CDS");
    Result<CdsCluster> c = r.decoded && r.decoded->cds ? std::move(*r.decoded->cds) : parseCdsCluster(r.bytes);
    if (!c) return c.error().detail;
    if (!seen.insert(c->name).second) return "cluster " + c->name + " twice in one response";
    if (!r.name.empty() && r.name != c->name) {
      return "resource '" + printable(r.name) + "' holds cluster " + c->name;
    }
    if (!wanted(c->name)) continue;
    const std::string name = c->name;  // (the right side of `=` is evaluated first)
    next[name] = Held{std::move(*c), std::string(r.version)};
  }
  for (const std::string& n : removed) next.erase(n);
  changed = next != clusters_;
  clusters_ = std::move(next);
  dropUnreferenced();
  return "";
}

std::string AdsClientState::applyEds(const std::vector<Incoming>& in, const std::vector<std::string>& removed,
                                     bool& changed) {
  std::map<std::string, HeldAssignment> next = assignments_;
  const std::set<std::string> eds = edsNames();
  std::set<std::string> seen;
  for (size_t i = 0; i < in.size(); ++i) {
    const Incoming& r = in[i];
    if (r.anyType != kEds) return wrongType(i, r.anyType, "EDS");
    Result<EdsAssignment> a =
        r.decoded && r.decoded->eds ? std::move(*r.decoded->eds) : parseEdsAssignment(r.bytes);
    if (!a) return a.error().detail;
    if (!seen.insert(a->name).second) return "assignment " + a->name + " twice in one response";
    if (!r.name.empty() && r.name != a->name) {
      return "resource '" + printable(r.name) + "' holds the assignment of " + a->name;
    }
    if (!eds.count(a->name)) continue;
    const std::string name = a->name;
    next[name] = HeldAssignment{std::move(*a), std::string(r.version)};
  }
  for (const std::string& n : removed) next.erase(n);
  changed = next != assignments_;
  assignments_ = std::move(next);
  return "";
}

std::string AdsClientState::applyAmbient(const std::string& type, const std::vector<Incoming>& in,
                                         const std::vector<std::string>& removed, bool& changed) {
  // Validate everything first: a response is applied whole or not at all.
  const bool addr = type == kAddress;
  auto nextA = addresses_;
  auto nextP = policies_;
  std::set<std::string> seen;
  for (size_t i = 0; i < in.size(); ++i) {
    const Incoming& r = in[i];
    if (r.anyType != type) return wrongType(i, r.anyType, addr ? "Address" : "Authorization");
    std::string name;
    if (addr) {
      Result<AmbientAddress> a =
          r.decoded && r.decoded->address ? std::move(*r.decoded->address) : parseAmbientAddress(r.bytes);
      if (!a) return a.error().detail;
      name = r.name.empty() ? a->name() : std::string(r.name);
      nextA[name] = {AddressHeld{std::move(a->workload), std::move(a->service)}, std::string(r.version)};
    } else {
      Result<AmbientPolicy> p =
          r.decoded && r.decoded->policy ? std::move(*r.decoded->policy) : parseAmbientPolicy(r.bytes);
      if (!p) return p.error().detail;
      name = r.name.empty() ? p->key() : std::string(r.name);
      nextP[name] = {std::move(*p), std::string(r.version)};
    }
    if (!seen.insert(name).second) return "resource '" + printable(name) + "' twice in one response";
  }
  for (const std::string& n : removed) {
    if (addr) {
      nextA.erase(n);
    } else {
      nextP.erase(n);
    }
  }
  if (addr) {
    changed = nextA != addresses_;
    addresses_ = std::move(nextA);
  } else {
    changed = nextP != policies_;
    policies_ = std::move(nextP);
  }
  return "";
}

std::string AdsClientState::applyMessages(const std::vector<Incoming>& in, const std::vector<std::string>& removed,
                                          std::vector<Mailbox>& fresh) {
  std::vector<Mailbox> boxes;
  std::set<std::string> seen;
  for (size_t i = 0; i < in.size(); ++i) {
    const Incoming& r = in[i];
    if (r.anyType != kMessage) return wrongType(i, r.anyType, "Message");
    Result<Mailbox> m = r.decoded && r.decoded->mailbox ? std::move(*r.decoded->mailbox) : parseMailbox(r.bytes);
    if (!m) return m.error().detail;
    if (!r.name.empty() && r.name != m->recipient) {
      return "resource '" + printable(r.name) + "' holds the mailbox of " + m->recipient;
    }
    if (!seen.insert(m->recipient).second) return "mailbox " + m->recipient + " twice in one response";
    if (!opts_.mailboxes.count(m->recipient)) continue;  // not ours: ignored
    boxes.push_back(std::move(*m));
  }
  for (Mailbox& m : boxes) {
    std::set<std::string>& had = mailboxIds_[m.recipient];
    std::set<std::string> now;
    Mailbox out{m.recipient, {}};
    for (RelayEnvelope& e : m.envelopes) {
      now.insert(e.id);
      if (!had.count(e.id)) out.envelopes.push_back(std::move(e));
    }
    had = std::move(now);
    if (!out.envelopes.empty()) fresh.push_back(std::move(out));
  }
  for (const std::string& n : removed) mailboxIds_.erase(n);
  return "";
}

bool AdsClientState::known(const std::string& type) const {
  return type == kCds || type == kEds || (opts_.ambient && opts_.delta && (type == kAddress || type == kAuthz)) ||
         (type == kMessage && !opts_.mailboxes.empty());
}

std::string AdsClientState::apply(const std::string& type, const std::vector<Incoming>& in,
                                  const std::vector<std::string>& removed, bool fullState, bool& changed,
                                  std::vector<Mailbox>& fresh) {
  changed = false;
  if (type == kMessage && known(type)) return applyMessages(in, removed, fresh);
  if (type == kCds) return applyCds(in, removed, fullState, changed);
  if (type == kEds) return applyEds(in, removed, changed);
  if ((type == kAddress || type == kAuthz) && opts_.ambient && opts_.delta) {
    return applyAmbient(type, in, removed, changed);
  }
  return "type '" + printable(type) + "' was not subscribed";
}

std::string AdsClientState::sotwRequest(const std::string& type, const std::string* error) {
  TypeState& t = types_[type];
  discovery::DiscoveryRequest q;
  if (!nodeSent_) fillNode(opts_, *q.mutable_node());
  nodeSent_ = true;
  q.set_type_url(type);
  q.set_version_info(t.version);
  q.set_response_nonce(t.nonce);
  t.names = desired(type);
  for (const std::string& n : t.names) q.add_resource_names(n);
  t.subscribed = true;
  if (error) setError(*q.mutable_error_detail(), *error);
  return q.SerializeAsString();
}

std::string AdsClientState::deltaRequest(const std::string& type, const std::set<std::string>& sub,
                                         const std::set<std::string>& unsub, const std::string* error,
                                         bool initial) {
  TypeState& t = types_[type];
  discovery::DeltaDiscoveryRequest q;
  if (!nodeSent_) fillNode(opts_, *q.mutable_node());
  nodeSent_ = true;
  q.set_type_url(type);
  for (const std::string& n : sub) q.add_resource_names_subscribe(n);
  for (const std::string& n : unsub) q.add_resource_names_unsubscribe(n);
  if (initial) {
    auto& iv = *q.mutable_initial_resource_versions();
    if (type == kCds) {
      for (const auto& [name, h] : clusters_) iv[name] = h.version;
    } else if (type == kAddress) {
      for (const auto& [name, h] : addresses_) iv[name] = h.version;
    } else if (type == kAuthz) {
      for (const auto& [name, h] : policies_) iv[name] = h.version;
    } else if (type == kMessage) {
      // None: the server sends each mailbox again; ids already seen are not delivered twice.
    } else {
      for (const auto& [name, h] : assignments_) iv[name] = h.version;
    }
  } else {
    q.set_response_nonce(t.nonce);
  }
  for (const std::string& n : sub) t.names.insert(n);
  for (const std::string& n : unsub) t.names.erase(n);
  t.subscribed = true;
  if (error) setError(*q.mutable_error_detail(), *error);
  return q.SerializeAsString();
}

void AdsClientState::resubscribe(std::vector<std::string>& out) {
  if (!streaming_) return;
  for (const std::string& type : {kCds, kEds, kAddress, kAuthz, kMessage}) {
    const bool ambientType = type == kAddress || type == kAuthz;
    if (ambientType && !known(type)) continue;
    TypeState& t = types_[type];
    const std::set<std::string> want = desired(type);
    const bool any = ambientType || (type == kCds ? (opts_.wildcard || !want.empty()) : !want.empty());
    if (!t.subscribed) {
      if (!any) continue;
      out.push_back(opts_.delta ? deltaRequest(type, want, {}, nullptr, true) : sotwRequest(type, nullptr));
      continue;
    }
    if (t.names == want) continue;
    if (!opts_.delta) {
      out.push_back(sotwRequest(type, nullptr));
      continue;
    }
    std::set<std::string> sub, unsub;
    std::set_difference(want.begin(), want.end(), t.names.begin(), t.names.end(), std::inserter(sub, sub.end()));
    std::set_difference(t.names.begin(), t.names.end(), want.begin(), want.end(), std::inserter(unsub, unsub.end()));
    out.push_back(deltaRequest(type, sub, unsub, nullptr, false));
  }
}

std::vector<std::string> AdsClientState::streamStarted() {
  streaming_ = true;
  nodeSent_ = false;
  for (auto& [type, t] : types_) {
    t.nonce.clear();
    t.names.clear();
    t.subscribed = false;
  }
  std::vector<std::string> out;
  resubscribe(out);
  return out;
}

ClientOutcome AdsClientState::onMessage(std::string_view bytes) { return onDecoded(decode(opts_.delta, bytes)); }

namespace {

// addResource: one resource of a response of typeUrl, converted when it is a CDS, EDS, Address or
// Authorization resource of the response's own type (what apply() would convert; any other is
// refused there without being converted).
void addResource(DecodedResponse& d, std::string name, std::string version, const std::string& anyType,
                 const std::string& bytes) {
  DecodedResponse::Resource& r = d.resources.emplace_back();
  r.name = std::move(name);
  r.version = std::move(version);
  r.anyType = anyType;
  if (anyType == d.typeUrl && anyType == kCds) {
    r.cds = parseCdsCluster(bytes);
  } else if (anyType == d.typeUrl && anyType == kEds) {
    r.eds = parseEdsAssignment(bytes);
  } else if (anyType == d.typeUrl && anyType == kAddress) {
    r.address = parseAmbientAddress(bytes);
  } else if (anyType == d.typeUrl && anyType == kAuthz) {
    r.policy = parseAmbientPolicy(bytes);
  } else if (anyType == d.typeUrl && anyType == kMessage) {
    r.mailbox = parseMailbox(bytes);
  } else {
    r.bytes = bytes;
  }
}

}  // namespace

DecodedResponse AdsClientState::decode(bool delta, std::string_view bytes) {
  DecodedResponse d;
  if (!delta) {
    discovery::DiscoveryResponse m;
    if (!parseMessage(bytes, m)) return d;
    d.ok = true;
    d.typeUrl = m.type_url();
    d.nonce = m.nonce();
    d.version = m.version_info();
    d.resources.reserve(static_cast<size_t>(m.resources_size()));
    for (const auto& any : m.resources()) addResource(d, {}, m.version_info(), any.type_url(), any.value());
    return d;
  }
  discovery::DeltaDiscoveryResponse m;
  if (!parseMessage(bytes, m)) return d;
  d.ok = true;
  d.typeUrl = m.type_url();
  d.nonce = m.nonce();
  d.version = m.system_version_info();
  for (const auto& r : m.resources()) {
    if (!r.has_resource()) continue;  // a name and version only: nothing to apply
    addResource(d, r.name(), r.version(), r.resource().type_url(), r.resource().value());
  }
  d.removed.assign(m.removed_resources().begin(), m.removed_resources().end());
  return d;
}

void AdsClientState::conclude(ClientOutcome& o, const std::string& err, const std::string& version) {
  auto reply = [&](const std::string* e) {
    return opts_.delta ? deltaRequest(o.typeUrl, {}, {}, e, false) : sotwRequest(o.typeUrl, e);
  };
  if (!err.empty()) {
    o.verdict = ClientVerdict::Nack;
    o.error = err;
    o.requests.push_back(reply(&err));
    if (!known(o.typeUrl)) types_.erase(o.typeUrl);  // never asked for: no state kept
    return;
  }
  types_[o.typeUrl].version = version;
  o.requests.push_back(reply(nullptr));
  resubscribe(o.requests);
}

ClientOutcome AdsClientState::onDecoded(DecodedResponse d) {
  ClientOutcome o;
  if (!d.ok) {
    o.verdict = ClientVerdict::Invalid;
    o.error = opts_.delta ? "not a DeltaDiscoveryResponse" : "not a DiscoveryResponse";
    return o;
  }
  o.typeUrl = d.typeUrl;
  types_[o.typeUrl].nonce = d.nonce;
  std::vector<Incoming> in;
  in.reserve(d.resources.size());
  for (DecodedResponse::Resource& r : d.resources) in.push_back({r.name, r.version, r.anyType, r.bytes, &r});
  bool changed = false;
  std::vector<Mailbox> fresh;
  const std::string err = apply(o.typeUrl, in, d.removed, !opts_.delta && o.typeUrl == kCds, changed, fresh);
  if (err.empty()) o.messages = std::move(fresh);
  (o.typeUrl == kAddress || o.typeUrl == kAuthz ? o.ambientChanged : o.changed) = changed;
  conclude(o, err, d.version);
  return o;
}

bool AdsClientState::restartNeeded(const AdsClientOptions& o) const {
  return o.delta != opts_.delta || o.nodeId != opts_.nodeId || o.nodeCluster != opts_.nodeCluster ||
         o.metadata != opts_.metadata || o.wildcard != opts_.wildcard || o.ambient != opts_.ambient;
}

std::vector<std::string> AdsClientState::setOptions(AdsClientOptions o, bool& changed) {
  opts_ = std::move(o);
  const size_t before = clusters_.size();
  std::erase_if(clusters_, [&](const auto& kv) { return !wanted(kv.first); });
  changed = clusters_.size() != before;
  dropUnreferenced();
  std::erase_if(mailboxIds_, [&](const auto& kv) { return !opts_.mailboxes.count(kv.first); });
  std::vector<std::string> out;
  resubscribe(out);
  return out;
}

std::map<std::string, DynamicCluster> AdsClientState::clusters() const {
  std::map<std::string, DynamicCluster> out;
  for (const auto& [name, h] : clusters_) {
    auto a = assignments_.find(h.cluster.edsName);
    if (a == assignments_.end()) continue;
    out[name] = buildCluster(h.cluster, &a->second.assignment, "cds " + h.version + ", eds " + a->second.version);
  }
  return out;
}

std::shared_ptr<const AmbientSnapshot> AdsClientState::ambient() const {
  if (!opts_.ambient || !opts_.delta) return nullptr;
  auto s = std::make_shared<AmbientSnapshot>();
  for (const auto& [name, h] : addresses_) {
    if (h.value.workload) s->workloads[h.value.workload->uid] = *h.value.workload;
    if (h.value.service) s->services[h.value.service->key()] = *h.value.service;
  }
  for (const auto& [name, h] : policies_) s->policies[h.value.key()] = h.value;
  s->version = version(kAddress) + "/" + version(kAuthz);
  s->index();
  return s;
}

std::set<std::string> AdsClientState::warming() const {
  std::set<std::string> out;
  for (const auto& [name, h] : clusters_) {
    if (!assignments_.count(h.cluster.edsName)) out.insert(name);
  }
  return out;
}

std::string AdsClientState::version(std::string_view typeUrl) const {
  auto it = types_.find(typeUrl);
  return it == types_.end() ? std::string() : it->second.version;
}

}  // namespace ugate::xds
