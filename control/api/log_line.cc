// SPDX-License-Identifier: Apache-2.0
// The daemons' log line on stderr.
#include "control/api/log_line.h"

#include <cstdio>
#include <ctime>

namespace tandem::ctl::api {

void log_line(std::string_view program, std::string_view line) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::localtime_r(&ts.tv_sec, &t);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &t);
  std::fprintf(stderr, "%s.%03ld %.*s: %.*s\n", when, ts.tv_nsec / 1'000'000,
               static_cast<int>(program.size()), program.data(), static_cast<int>(line.size()),
               line.data());
}

}  // namespace tandem::ctl::api
