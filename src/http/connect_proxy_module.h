#pragma once
// The `http-connect` listener kind's entry point for src/ugated/modules.cc.
#include "core/listener_kind.h"

namespace ugate::http {

/** registerConnectProxyModule adds the `http-connect` listener kind (options `users`, `allowOpenProxy`). */
void registerConnectProxyModule(ListenerKindRegistry& r);

}  // namespace ugate::http
