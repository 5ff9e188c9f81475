// SPDX-License-Identifier: Apache-2.0
// Shared helpers for the config tests: load YAML text, find problems by their full text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "control/config/cluster_config.h"
#include "control/config/diagnostics.h"

namespace tandem::ctl::config::test {

// A valid two-node cluster with a witness (no warnings), the base most tests edit.
inline constexpr std::string_view minimal_cluster = R"(cluster:
  name: demo
  secret_file: /etc/tandem/cluster.key
nodes:
  - name: a
    interconnects:
      - address: 10.0.0.1
  - name: b
    interconnects:
      - address: 10.0.0.2
quorum:
  mode: witness
  witness: {url: "http://10.0.0.9:7791"}
)";

inline cluster_load_result load(std::string_view yaml) {
  return parse_cluster_text(yaml, "cluster.yaml");
}

// Every diagnostic's full text.
inline std::vector<std::string> texts(const diagnostics& d) {
  std::vector<std::string> out;
  for (const diagnostic& x : d.all())
    out.push_back(x.to_string());
  return out;
}

inline std::string joined(const diagnostics& d) {
  return d.to_string();
}

// True when some diagnostic's text is exactly `expected`.
inline ::testing::AssertionResult has_problem(const diagnostics& d, std::string_view expected) {
  for (const diagnostic& x : d.all())
    if (x.to_string() == expected) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "no problem\n  " << expected << "\namong\n"
                                       << d.to_string();
}

// The only error is exactly `expected` (warnings are allowed).
inline ::testing::AssertionResult only_error(const diagnostics& d, std::string_view expected) {
  std::vector<std::string> errors;
  for (const diagnostic& x : d.all())
    if (x.level == severity::error) errors.push_back(x.to_string());
  if (errors.size() == 1 && errors[0] == expected) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected exactly one error\n  " << expected << "\ngot\n"
                                       << d.to_string();
}

}  // namespace tandem::ctl::config::test
