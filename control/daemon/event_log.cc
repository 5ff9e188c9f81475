// SPDX-License-Identifier: Apache-2.0
// tandemd's event log and the names of every module's events.
#include "control/daemon/event_log.h"

#include <ctime>
#include <utility>

namespace tandem::ctl::daemon {
namespace {

struct named {
  std::string_view module;
  uint32_t id;
  std::string_view name;
};

// The modules' event ids (control/cluster/membership.h, control/quorum/quorum.h, daemon.h).
constexpr named names[] = {
    {"heartbeat", 1, "node_up"},
    {"heartbeat", 2, "node_down"},
    {"heartbeat", 3, "link_up"},
    {"heartbeat", 4, "link_down"},
    {"heartbeat", 5, "node_restarted"},
    {"heartbeat", 6, "delay"},
    {"heartbeat", 7, "config_differs"},
    {"heartbeat", 8, "node_left"},
    {"heartbeat", 10, "rejected_auth"},
    {"heartbeat", 11, "rejected_cluster"},
    {"heartbeat", 12, "rejected_node"},
    {"heartbeat", 13, "rejected_version"},
    {"heartbeat", 14, "rejected_malformed"},
    {"heartbeat", 15, "rejected_misdirected"},
    {"heartbeat", 16, "rejected_replay"},
    {"quorum", 1, "held"},
    {"quorum", 2, "lost"},
    {"quorum", 3, "renew_failed"},
    {"quorum", 4, "renew_recovered"},
    {"quorum", 5, "held_elsewhere"},
    {"quorum", 6, "split_brain_risk"},
    {"quorum", 7, "tie_broken"},
    {"quorum", 8, "lease_revoked"},
    {"quorum", 9, "unreachable"},
    {"quorum", 10, "isolated"},
    {"quorum", 11, "targets_unreachable"},
    {"quorum", 12, "suspended"},
    {"quorum", 13, "released"},
    {"quorum", 14, "lease_anomaly"},
    {"tandemd", 1, "started"},
    {"tandemd", 2, "stopping"},
    {"tandemd", 3, "cluster_started"},
    {"tandemd", 4, "cluster_stopped"},
    {"tandemd", 5, "groups_stop"},
    {"tandemd", 6, "fence"},
    {"tandemd", 7, "fence_failed"},
    {"tandemd", 8, "config_reloaded"},
    {"tandemd", 9, "reload_refused"},
    {"tandemd", 10, "send_failed"},
    {"tandemd", 11, "alert_failed"},
    {"tandemd", 12, "lease_handoff"},
    {"group", 1, "starting"},
    {"group", 2, "online"},
    {"group", 3, "start_failed"},
    {"group", 4, "stopping"},
    {"group", 5, "offline"},
    {"group", 6, "stop_failed"},
    {"group", 7, "resource_started"},
    {"group", 8, "resource_failed"},
    {"group", 9, "resource_stopped"},
    {"group", 10, "resource_stop_failed"},
    {"group", 11, "monitor_failed"},
    {"group", 12, "monitor_recovered"},
    {"group", 13, "recovery_restart"},
    {"group", 14, "recovery_failover"},
    {"group", 15, "final_action"},
    {"group", 16, "command"},
    {"group", 17, "conflict"},
    {"group", 18, "unavailable"},
    {"group", 19, "waiting"},
    {"group", 20, "reasserted"},
    {"group", 21, "monitor_unverified"},
};

}  // namespace

std::string event_name(std::string_view module, uint32_t id) {
  for (const named& n : names)
    if (n.module == module && n.id == id) return std::string(module) + "." + std::string(n.name);
  return std::string(module) + ".event_" + std::to_string(id);
}

std::string rfc3339_ms(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const time_t secs = static_cast<time_t>(ms / 1000);
  tm utc{};
  ::gmtime_r(&secs, &utc);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  char out[64];
  std::snprintf(out, sizeof out, "%.*s.%03lldZ", static_cast<int>(n), buf,
                static_cast<long long>(ms % 1000));
  return out;
}

nlohmann::json to_json(const event_record& r) {
  nlohmann::json j = {
      {"serial", r.serial},
      {"time", rfc3339_ms(r.wall)},
      {"mono_ns",
       std::chrono::duration_cast<std::chrono::nanoseconds>(r.mono.time_since_epoch()).count()},
      {"severity", cluster::to_string(r.level)},
      {"module", r.module},
      {"id", r.id},
      {"name", r.name},
      {"message", r.message}};
  if (r.about) j["about"] = *r.about;
  if (r.link) j["link"] = *r.link;
  return j;
}

const event_record& event_log::add(event_record r) {
  r.serial = next_++;
  ++counts_[static_cast<size_t>(r.level)];
  records_.push_back(std::move(r));
  while (records_.size() > capacity_)
    records_.pop_front();
  return records_.back();
}

nlohmann::json event_log::since(uint64_t after, size_t limit) const {
  nlohmann::json out = nlohmann::json::array();
  for (const event_record& r : records_) {
    if (r.serial <= after) continue;
    if (out.size() >= limit) break;
    out.push_back(to_json(r));
  }
  return out;
}

}  // namespace tandem::ctl::daemon
