#pragma once
#include <ugate/router.h>

#include <ugate/config.h>

namespace ugate {

/**
 * RouteTable: routes in config order; the first whose every given field matches wins. When none does,
 * the listener's own `to` is the target. Holds a reference to the config snapshot it was built from.

 */
class RouteTable final : public Router {
 public:
  explicit RouteTable(ConfigPtr cfg) : cfg_(std::move(cfg)) {}
  // ugate::Router
  RouteDecision route(const StreamMeta& meta) const override;

  /** nameMatches: exact (case-insensitive) or "*.suffix" (any subdomain) or "*". */
  static bool nameMatches(std::string_view pattern, std::string_view name);
  /** alpnMatches: `offered` is meta.alpn (offered protocols joined by ','): exact match of any. */
  static bool alpnMatches(std::string_view protocol, std::string_view offered);

 private:
  /** decide: `requested` = the listener's kind dials the requested host (ListenerKindSpec). */
  static RouteDecision decide(const Target& t, std::string_view routeName, const StreamMeta& meta,
                              bool requested);
  ConfigPtr cfg_;
};

}  // namespace ugate
