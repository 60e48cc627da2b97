// libFuzzer target for what `ugated iptables` parses: iptables-save output (parseSave) and the
// option lists (ports, CIDRs, ids), src/iptables/capture_rules.cc.
// Contract checked: a parsed save gives a clean transaction made only of table headers, -D, -F, -X
// and COMMIT, whose -D lines all name rules of the save; an apply transaction ends with exactly the
// rules it installs; parsed lists hold only valid values, and CIDRs print to what parses back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "iptables/capture_rules.h"

namespace {

using namespace ugate;
using namespace ugate::iptables;

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

void checkClean(const SaveState& st, const std::string& script) {
  std::string_view s = script;
  std::string table;
  while (!s.empty()) {
    size_t nl = s.find('\n');
    check(nl != std::string_view::npos);  // every line is terminated
    std::string_view line = s.substr(0, nl);
    s.remove_prefix(nl + 1);
    if (line.starts_with("*")) {
      table = std::string(line.substr(1));
      continue;
    }
    if (line == "COMMIT" || line.starts_with("-F ") || line.starts_with("-X ")) continue;
    check(line.starts_with("-D "));
    const SaveState::Table* t = st.find(table);
    check(t != nullptr);
    bool found = false;
    for (const auto& r : t->rules) found |= line == "-D " + r.chain + " " + r.spec;
    check(found);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto st = parseSave(in)) {
    checkClean(*st, updateScript(*st, {}, nullptr));
    RuleSet next = buildRules(CaptureOptions{}, Family::V6);
    std::string apply = updateScript(*st, {}, &next);
    std::string rules = renderRules(next);
    std::string tail = rules.substr(rules.rfind("*nat\n") + 5);
    tail = tail.substr(tail.find("-A "));
    check(apply.size() >= tail.size() &&
          apply.compare(apply.size() - tail.size(), tail.size(), tail) == 0);
  }
  // The first line as an option list.
  std::string_view first = in.substr(0, in.find('\n'));
  if (auto p = parsePortList(first, true)) {
    for (const auto& port : p->ports) check(port.lo >= 1 && port.hi >= port.lo);
  }
  if (auto c = parseCidrList(first, true)) {
    for (const auto& cidr : c->cidrs) {
      auto again = parseCidrList(cidr.str(), false);
      check(again && again->cidrs.size() == 1 && again->cidrs[0].str() == cidr.str());
    }
  }
  (void)parseIdList(first);
  return 0;
}
