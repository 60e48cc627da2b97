#pragma once
// The SNI passthrough module: registers the `sni` listener kind.
#include <ugate/listener.h>

namespace ugate::sni {

/** registerSniModule adds the `sni` listener kind to `r`. Startup only (not thread-safe). */
void registerSniModule(ListenerKindRegistry& r);

}  // namespace ugate::sni
