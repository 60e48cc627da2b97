#include <ugate/listener.h>

namespace ugate {

ListenerKindRegistry::ListenerKindRegistry() {
  ListenerKindSpec tcp;
  tcp.name = "tcp";
  tcp.streamKind = StreamKind::Tcp;
  tcp.toRequired = true;
  add(std::move(tcp));
}

void ListenerKindRegistry::add(ListenerKindSpec spec) {
  for (auto& k : kinds_) {
    if (k.name == spec.name) {
      k = std::move(spec);
      return;
    }
  }
  kinds_.push_back(std::move(spec));
}

const ListenerKindSpec* ListenerKindRegistry::find(std::string_view name) const {
  for (const auto& k : kinds_) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::vector<std::string> ListenerKindRegistry::names() const {
  std::vector<std::string> v;
  for (const auto& k : kinds_) v.push_back(k.name);
  return v;
}

ListenerKindRegistry& listenerKinds() {
  static ListenerKindRegistry r;
  return r;
}

}  // namespace ugate
