// SPDX-License-Identifier: Apache-2.0
// tandemctl run in-process, its exit code and what it printed: for tests that drive a daemon
// through the CLI (link tandem_ctl_cli).
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "control/cli/commands.h"

namespace tandem::test {

struct cli_result {
  int code;
  std::string out, err;
};

inline cli_result tandemctl(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = ctl::cli::run_tandemctl(args, out, err);
  return {code, out.str(), err.str()};
}

}  // namespace tandem::test
