// libFuzzer target for the ADS subscription state machine (src/xds/ads_state.h): the input is a
// sequence of operations on one SotwStream and one DeltaStream — requests (types, names from a
// small alphabet with `*`, current, stale or no nonce, ACK or NACK, initial versions) and new
// snapshots (which of the names exist, in which variant). Contract checked: no crash; nonces are
// unique per stream; every response carries the current snapshot's version, only resources that
// exist in it, in name order; SotW resources are subscribed (or wildcard); a delta response never
// names one resource as both sent and removed.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "xds/ads_state.h"
#include "xds/messages.h"

namespace {

using namespace ugate::xds;
using namespace ugate::xds::ads;

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

const std::string kTypes[4] = {std::string(kListenerType), std::string(kRouteConfigurationType),
                               std::string(kClusterType), std::string(kClusterLoadAssignmentType)};
const char* const kNames[4] = {"a", "b", "c", "*"};

std::vector<std::string> namesOf(uint8_t mask) {
  std::vector<std::string> v;
  for (int i = 0; i < 4; ++i) {
    if (mask & (1 << i)) v.emplace_back(kNames[i]);
  }
  return v;
}

SnapshotPtr makeSnapshot(uint64_t gen, uint8_t exists, uint8_t variant) {
  auto s = std::make_shared<Snapshot>();
  s->generation = gen;
  for (int t = 0; t < 4; ++t) {
    for (int n = 0; n < 3; ++n) {
      if (exists & (1 << n)) s->add(kTypes[t], kNames[n], std::string(kNames[n]) + std::to_string((variant >> t) & 1));
    }
  }
  return s;
}

struct Checker {
  std::set<std::string> nonces;
  std::string last[4];
  std::vector<std::string> all;
  void nonce(const std::string& n, int type) {
    check(!n.empty() && nonces.insert(n).second);
    last[type] = n;
    all.push_back(n);
  }
  std::string pick(uint8_t how, int type) const {
    switch (how % 3) {
      case 0: return "";
      case 1: return last[type];
      default: return all.empty() ? "zz" : all[how % all.size()];
    }
  }
};

int typeIndex(const std::string& url) {
  for (int i = 0; i < 4; ++i) {
    if (kTypes[i] == url) return i;
  }
  check(false);
  return 0;
}

void checkResources(const Snapshot& s, const std::string& type, const std::vector<Resource>& rs) {
  for (size_t i = 0; i < rs.size(); ++i) {
    const Resource* r = s.find(type, rs[i].name);
    check(r != nullptr && *r == rs[i]);
    if (i) check(rs[i - 1].name < rs[i].name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint64_t gen = 1;
  SnapshotPtr snap = makeSnapshot(gen, 0x3, 0);
  SotwStream sotw(snap);
  DeltaStream delta(snap);
  Checker cs, cd;
  std::set<std::string> subscribedSotw[4];
  bool wildcardSotw[4] = {};
  bool namedSotw[4] = {};
  // sotwCovered: a SotW response may carry only what is subscribed, or anything under a wildcard.
  auto sotwCovered = [&](int t, const std::vector<Resource>& rs) {
    for (const auto& r : rs) check(wildcardSotw[t] || subscribedSotw[t].count(r.name));
  };
  for (size_t i = 0; i + 3 <= size; i += 3) {
    const uint8_t op = data[i], a = data[i + 1], b = data[i + 2];
    const int type = op >> 4 & 3;
    if (op % 3 == 0) {
      SotwRequest r;
      r.typeUrl = kTypes[type];
      r.names = namesOf(a);
      r.nonce = cs.pick(b, type);
      r.hasError = b & 0x80;
      std::vector<SotwResponse> out;
      sotw.onRequest(r, out);
      check(out.size() <= 1);
      // What the stream holds now (as the state machine's rules define it) for the checks below.
      std::set<std::string> named;
      bool star = false;
      for (const auto& n : r.names) {
        if (n == "*") {
          star = true;
        } else {
          named.insert(n);
        }
      }
      wildcardSotw[type] = star || (named.empty() && !namedSotw[type]);
      namedSotw[type] = namedSotw[type] || !named.empty();
      subscribedSotw[type] = named;
      for (const auto& o : out) {
        check(o.typeUrl == r.typeUrl && o.versionInfo == std::to_string(snap->generation));
        cs.nonce(o.nonce, type);
        checkResources(*snap, o.typeUrl, o.resources);
        sotwCovered(type, o.resources);
      }
    } else if (op % 3 == 1) {
      DeltaRequest r;
      r.typeUrl = kTypes[type];
      r.subscribe = namesOf(a);
      r.unsubscribe = namesOf(a >> 4);
      r.nonce = cd.pick(b, type);
      r.hasError = b & 0x80;
      if (b & 0x40) r.initialVersions["a"] = "v";
      if (b & 0x20) r.initialVersions["zz"] = "v";
      std::vector<DeltaResponse> out;
      delta.onRequest(r, out);
      check(out.size() <= 1);
      for (const auto& o : out) {
        check(o.typeUrl == r.typeUrl && o.systemVersion == std::to_string(snap->generation));
        cd.nonce(o.nonce, type);
        checkResources(*snap, o.typeUrl, o.resources);
        for (const auto& res : o.resources) {
          for (const auto& rm : o.removed) check(rm != res.name);
        }
      }
    } else {
      snap = makeSnapshot(++gen, a, b);
      std::vector<SotwResponse> so;
      sotw.onSnapshot(snap, so);
      for (const auto& o : so) {
        cs.nonce(o.nonce, typeIndex(o.typeUrl));
        checkResources(*snap, o.typeUrl, o.resources);
        sotwCovered(typeIndex(o.typeUrl), o.resources);
      }
      std::vector<DeltaResponse> dout;
      delta.onSnapshot(snap, dout);
      for (const auto& o : dout) {
        cd.nonce(o.nonce, typeIndex(o.typeUrl));
        checkResources(*snap, o.typeUrl, o.resources);
      }
    }
  }
  return 0;
}
