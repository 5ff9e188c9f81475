// SPDX-License-Identifier: Apache-2.0
// Failover groups, their resources and the monitors, typed, with checked parameters.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "control/config/diagnostics.h"

namespace tandem::ctl::config {

enum class resource_type {
  mirror,       // a mirrored volume: promote / demote through the replicator
  filesystem,   // mount / unmount a device (usually a mirror's)
  floating_ip,  // an address that follows the group (netlink)
  exec,         // start / stop commands
  aws_vip,      // a VPC route table entry to this node's ENI
  aws_eip,      // an Elastic IP associated with this node's ENI
  aws_dns,      // a Route 53 record with this node's address
  gcp_dns,      // a Google Cloud DNS record
  azure_dns,    // an Azure DNS record
};

enum class monitor_type {
  ip,                 // ICMP echo to targets
  nic_link,           // link state of an interface (netlink events)
  pid,                // the process an exec resource started
  script,             // a custom command; exit 0 is healthy
  mirror_state,       // a volume's disk state
  mirror_connection,  // a volume's replication link
  floating_ip,        // a floating_ip resource's address is still here
  aws_vip,            // the route still points at this node
  aws_eip,            // the Elastic IP is still associated with this node
  aws_dns,            // the record still holds this node's address
  gcp_dns,
  azure_dns,
  aws_az,  // the availability zone is available
};

// What happens when retries (and, for activation and monitors, failovers) are used up.
enum class final_action {
  none,          // stay in the error state (not for production: the seeds warn against it)
  stop_group,    // stop the group on this node
  stop_cluster,  // stop tandem on this node (its groups move to other nodes)
  fence,         // run the node's fence command (quorum.on_loss.fence_command)
};

enum class failback_policy { manual, automatic };
enum class monitor_when { always, active };

std::string_view to_string(resource_type t) noexcept;
std::string_view to_string(monitor_type t) noexcept;
std::string_view to_string(final_action a) noexcept;
std::string_view to_string(failback_policy f) noexcept;
std::string_view to_string(monitor_when w) noexcept;

// A checked parameter: durations as milliseconds, sizes and counts as integers, lists of
// strings (e.g. IP targets), everything else as strings.
using param_value =
    std::variant<bool, int64_t, std::chrono::milliseconds, std::string, std::vector<std::string>>;

// Type-specific parameters after checking against the type's table (docs/configuration.md lists
// them); defaults are filled in.
struct param_map {
  std::map<std::string, param_value, std::less<>> values;
  field_locs locs;

  [[nodiscard]] bool has(std::string_view key) const { return values.contains(key); }
  // The value when present and of that kind; nullptr / nullopt otherwise.
  [[nodiscard]] const std::string* str(std::string_view key) const;
  [[nodiscard]] const std::vector<std::string>* list(std::string_view key) const;
  [[nodiscard]] std::optional<int64_t> integer(std::string_view key) const;
  [[nodiscard]] std::optional<bool> flag(std::string_view key) const;
  [[nodiscard]] std::optional<std::chrono::milliseconds> duration(std::string_view key) const;
};

struct activation_policy {
  std::chrono::milliseconds timeout{60'000};
  int retries = 0;    // attempts again on this node after a failure
  int failovers = 1;  // then moves the group to the next node this many times
  final_action action = final_action::stop_group;
  source_loc loc;
  field_locs locs;
};

struct deactivation_policy {
  std::chrono::milliseconds timeout{60'000};
  int retries = 0;
  final_action action = final_action::stop_cluster;  // never stop_group (it is stopping)
  source_loc loc;
  field_locs locs;
};

struct resource_config {
  std::string name;
  resource_type type = resource_type::exec;
  std::vector<std::string> depends_on;        // resources of the same group that start first
  param_map params;                           // common to every node
  std::map<std::string, param_map> per_node;  // node -> parameters that differ on that node
  activation_policy activation;
  deactivation_policy deactivation;
  source_loc loc;
  field_locs locs;

  // The parameters on `node`: the common ones with that node's per_node values on top.
  [[nodiscard]] param_map params_for(std::string_view node) const;
};

struct group_config {
  std::string name;
  std::vector<std::string> nodes;  // where it may run, most preferred first
  failback_policy failback = failback_policy::manual;
  bool autostart = true;  // started when the cluster starts
  std::vector<resource_config> resources;
  source_loc loc;
  field_locs locs;

  [[nodiscard]] const resource_config* find_resource(std::string_view name) const noexcept;
  // Resources in start order: every resource after those it depends on, ties in file order.
  // Stopping is the reverse. (The loader has refused dependency cycles.)
  [[nodiscard]] std::vector<const resource_config*> start_order() const;
};

struct recovery_policy {
  std::string resource;  // restart this resource of the monitor's group; empty: the whole group
  int restarts = 3;      // restarts of the target before failing over
  int failovers = 1;     // failovers of the group before the final action
  final_action action = final_action::none;
  source_loc loc;
  field_locs locs;
};

struct monitor_config {
  std::string name;
  monitor_type type = monitor_type::script;
  std::string group;  // the group it watches (for `active` timing, references and recovery)
  monitor_when when = monitor_when::always;
  std::chrono::milliseconds interval{5'000};
  std::chrono::milliseconds timeout{30'000};
  int retries = 1;  // consecutive failures tolerated before recovery starts
  param_map params;
  std::map<std::string, param_map> per_node;
  recovery_policy recovery;
  source_loc loc;
  field_locs locs;

  [[nodiscard]] param_map params_for(std::string_view node) const;
};

// ---- Used by the cluster loader -----------------------------------------------------------------
class cursor;
struct cluster_config;
void read_groups(const cursor& c, std::vector<group_config>& out);
void read_monitors(const cursor& c, std::vector<monitor_config>& out);
// References (nodes, resources, volumes, groups), dependency cycles, required per-node parameters
// and fence commands; needs the whole cluster. Fills the groups' default node lists.
void check_groups_and_monitors(cluster_config& cfg, diagnostics& diag);

}  // namespace tandem::ctl::config
