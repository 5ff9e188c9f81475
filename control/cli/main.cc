// SPDX-License-Identifier: Apache-2.0
// tandemctl: the command-line client (commands in control/cli/commands.h).
#include <iostream>
#include <string>
#include <vector>

#include "control/cli/commands.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  return tandem::ctl::cli::run_tandemctl(args, std::cout, std::cerr);
}
