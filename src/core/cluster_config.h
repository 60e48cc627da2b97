#pragma once
// The JSON side of the top-level "clusters" section (src/core/cluster_config.cc).
#include <string>

#include <nlohmann/json_fwd.hpp>

#include <ugate/config.h>

namespace ugate::cfgjson {

/**
 * addCluster parses clusters[i] (path p) into c.clusters; throws ConfigError (through fail) with
 * the JSON path of its first problem: a duplicate name, no endpoints, a bad address or weight, an
 * unknown lb policy, health check or outlier values out of range.
 */
void addCluster(const nlohmann::json& j, const std::string& path, Config& c);

}  // namespace ugate::cfgjson
