// SPDX-License-Identifier: Apache-2.0
// tandemd's event log: every event of every module, numbered, kept in a bounded ring for the API.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "control/cluster/event.h"

namespace tandem::ctl::daemon {

// "heartbeat.node_down": the name webhooks and `tandemctl events --name` match on. Unknown ids
// get "<module>.event_<id>".
[[nodiscard]] std::string event_name(std::string_view module, uint32_t id);

struct event_record {
  uint64_t serial = 0;  // 1, 2, ...: the order the daemon saw them in, never reused in a run
  std::chrono::system_clock::time_point wall;
  std::chrono::steady_clock::time_point mono;  // CLOCK_MONOTONIC: shared by every namespace
  cluster::severity level = cluster::severity::info;
  std::string module;
  uint32_t id = 0;
  std::string name;
  std::string message;
  std::optional<std::string> about;  // the node it is about, by name
  std::optional<uint8_t> link;
};

[[nodiscard]] std::string rfc3339_ms(std::chrono::system_clock::time_point t);
[[nodiscard]] nlohmann::json to_json(const event_record& r);

// Keeps the newest `capacity` records. One owner (the daemon's io_context thread).
class event_log {
 public:
  explicit event_log(size_t capacity = 4096) : capacity_(capacity) {}

  const event_record& add(event_record r);  // assigns the serial
  // Records with serial > `after`, oldest first, at most `limit`.
  [[nodiscard]] nlohmann::json since(uint64_t after, size_t limit) const;
  [[nodiscard]] uint64_t last_serial() const noexcept { return next_ - 1; }
  [[nodiscard]] uint64_t first_serial() const noexcept {
    return records_.empty() ? next_ : records_.front().serial;
  }
  // Events per severity since start (for /metrics).
  [[nodiscard]] uint64_t count(cluster::severity s) const noexcept {
    return counts_[static_cast<size_t>(s)];
  }

 private:
  size_t capacity_;
  uint64_t next_ = 1;
  std::deque<event_record> records_;
  uint64_t counts_[3] = {0, 0, 0};
};

}  // namespace tandem::ctl::daemon
