// SPDX-License-Identifier: Apache-2.0
// Process checks for tests: a killed process whose parent died lingers as a zombie until PID 1
// reaps it, which can take seconds in a sandbox, so "still running" means "not a zombie".
#pragma once

#include <sys/types.h>

#include <fstream>
#include <string>

namespace tandem::test {

inline bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close_paren = line.rfind(')');  // the command name may contain spaces
  if (close_paren == std::string::npos || close_paren + 2 >= line.size()) return false;
  const char state = line[close_paren + 2];
  return state != 'Z' && state != 'X';
}

}  // namespace tandem::test
