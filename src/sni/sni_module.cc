#include "sni/sni_module.h"

#include <memory>

#include <ugate/config.h>
#include "sni/sni_config.h"
#include "sni/sni_front_door.h"

namespace ugate::sni {

void registerSniModule(ListenerKindRegistry& r) {
  ListenerKindSpec spec;
  spec.name = "sni";
  spec.streamKind = StreamKind::Sni;
  spec.toRequired = false;  // without `to`, names no route matches are closed (no_route)
  spec.optionKeys = sniOptionKeys();
  spec.parseOptions = parseSniOptions;
  spec.validate = [](const ListenerConfig& l, const std::string& path) -> Result<void> {
    if (l.to.type == Target::Type::Original) {
      return makeError(
          Errc::InvalidArgument,
          path + ".to: 'original' has no meaning for kind 'sni' (no original destination)");
    }
    return {};
  };
  spec.newFrontDoor = [](const ListenerConfig& l) -> FrontDoorPtr {
    auto opts = std::dynamic_pointer_cast<const SniOptions>(l.options);
    if (!opts) opts = std::make_shared<SniOptions>();
    return std::make_unique<SniFrontDoor>(std::move(opts), l.address.port());
  };
  r.add(std::move(spec));
}

}  // namespace ugate::sni
