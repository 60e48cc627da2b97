#pragma once
// The `http-connect` listener kind's entry point for src/ugated/modules.cc.
#include <ugate/listener.h>

namespace ugate::http {

/** registerConnectProxyModule adds the `http-connect` listener kind (options `users`, `allowOpenProxy`). */
void registerConnectProxyModule(ListenerKindRegistry& r);

}  // namespace ugate::http
