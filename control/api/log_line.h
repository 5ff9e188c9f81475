// SPDX-License-Identifier: Apache-2.0
// The daemons' log line on stderr (the journal under systemd): local time with milliseconds,
// the program's name, the text.
#pragma once

#include <string_view>

namespace tandem::ctl::api {

// "2026-11-23T17:53:26.838 tandemd: <line>\n" on stderr, in one write.
void log_line(std::string_view program, std::string_view line);

}  // namespace tandem::ctl::api
