// SPDX-License-Identifier: Apache-2.0
// Cluster events as the seeds show them: an id per kind of event, a severity, a module, a message.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::ctl::cluster {

enum class severity : uint8_t { info, warning, error };

[[nodiscard]] constexpr std::string_view to_string(severity s) noexcept {
  switch (s) {
    case severity::info:
      return "info";
    case severity::warning:
      return "warning";
    case severity::error:
      return "error";
  }
  return "?";
}

struct event {
  uint32_t id = 0;  // stable per kind of event within the module (docs/heartbeat.md lists them)
  severity level = severity::info;
  std::string_view module;  // a static string, e.g. "heartbeat"
  std::string message;
  std::chrono::steady_clock::time_point time;  // the `now` the event was raised at
  std::optional<uint8_t> node;                 // the node it is about, when there is one
  std::optional<uint8_t> link;                 // the interconnect, when there is one
};

// Where events go (the daemon's event log, alerting). Called synchronously; must not call back
// into the object raising the event.
using event_sink = std::function<void(const event&)>;

}  // namespace tandem::ctl::cluster
