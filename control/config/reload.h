// SPDX-License-Identifier: Apache-2.0
// What changed between two configurations, and whether a running daemon can apply each change.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "control/config/cluster_config.h"

namespace tandem::ctl::config {

enum class change_kind {
  live,            // applied at once by the running daemon
  group_restart,   // applied to a group while it is stopped; refused while the group runs
  daemon_restart,  // needs tandemd (or, for mirrors, tandem-replicator) restarted
};
std::string_view to_string(change_kind k) noexcept;

struct config_change {
  // Key path with list entries named by their name (or node), else by index:
  // "groups[web].resources[db].params.volume", "nodes[b].overrides.heartbeat.timeout".
  std::string path;
  std::string before;  // the old value as compact JSON ("" when added)
  std::string after;   // the new value as compact JSON ("" when removed)
  change_kind kind = change_kind::live;
  std::string reason;  // why it needs what it needs
};

struct reload_plan {
  std::vector<config_change> changes;  // in the order of the file's sections

  [[nodiscard]] bool empty() const noexcept { return changes.empty(); }
  // True when nothing needs a daemon restart (group_restart changes may still be refused for
  // groups that are running).
  [[nodiscard]] bool live_applicable() const noexcept;
  [[nodiscard]] std::vector<const config_change*> of_kind(change_kind k) const;
  // Groups whose changes need them stopped ("web").
  [[nodiscard]] std::vector<std::string> groups_to_restart() const;
};

// Compares two valid configurations. Pass effective_config() views to see one node's changes
// (its overrides applied); pass the files as loaded to see every node's.
reload_plan diff_for_reload(const cluster_config& before, const cluster_config& after);

}  // namespace tandem::ctl::config
