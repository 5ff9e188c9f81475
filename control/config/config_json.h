// SPDX-License-Identifier: Apache-2.0
// The configuration as JSON or YAML in the file's own shape, defaults filled, units canonical.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "control/config/cluster_config.h"
#include "control/config/diagnostics.h"
#include "control/config/mirrors_config.h"

namespace tandem::ctl::config {

// Keys in the file's order (ordered_json). Every key is written, defaults included; sizes,
// durations and rates are canonical strings ("64KiB", "1s", "200MiB"). The result is itself a
// valid configuration: loading it gives the same JSON again.
nlohmann::ordered_json to_json(const cluster_config& cfg);
nlohmann::ordered_json to_json(const mirrors_config& m);

// {"severity", "file", "line", "column", "path", "message", "text"} (text: to_string()).
nlohmann::ordered_json to_json(const diagnostic& d);

// Block-style YAML of a JSON value, for humans (tandemctl config show).
std::string to_yaml(const nlohmann::ordered_json& j);

}  // namespace tandem::ctl::config
