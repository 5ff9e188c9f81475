// SPDX-License-Identifier: Apache-2.0
// The failover groups of one node at run time: placement (placement.h) on every change of the
// cluster view, activation and deactivation of resources on worker threads, monitors, recovery
// (restart the resource or the group, fail over, final action) and the operator's commands.
//
// Threading: every public member runs on the daemon's io_context thread. Resource actions run
// on one strand per group of an action pool, monitor checks on a monitor pool; their results
// are posted back to the io_context. docs/groups.md has the behaviour and the events.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "control/cluster/event.h"
#include "control/cluster/heartbeat_packet.h"
#include "control/config/cluster_config.h"

namespace tandem::ctl::groups {

inline constexpr std::string_view group_module = "group";

// Event ids of the "group" module (docs/groups.md has the messages).
namespace group_events {
inline constexpr uint32_t starting = 1;               // info: activation begins (and why)
inline constexpr uint32_t online = 2;                 // info: every resource is active
inline constexpr uint32_t start_failed = 3;           // error: activation failed on this node
inline constexpr uint32_t stopping = 4;               // info: deactivation begins (and why)
inline constexpr uint32_t offline = 5;                // info: every resource is stopped
inline constexpr uint32_t stop_failed = 6;            // error: a resource could not be stopped
inline constexpr uint32_t resource_started = 7;       // info
inline constexpr uint32_t resource_failed = 8;        // error: an activation attempt failed
inline constexpr uint32_t resource_stopped = 9;       // info
inline constexpr uint32_t resource_stop_failed = 10;  // error: a deactivation attempt failed
inline constexpr uint32_t monitor_failed = 11;        // warning: a check failed
inline constexpr uint32_t monitor_recovered = 12;     // info: healthy again
inline constexpr uint32_t recovery_restart = 13;      // warning: a monitor restarts its target
inline constexpr uint32_t recovery_failover = 14;     // error: a monitor fails the group over
inline constexpr uint32_t final_action = 15;          // error: retries and failovers used up
inline constexpr uint32_t command = 16;               // info: an operator command was recorded
inline constexpr uint32_t conflict = 17;              // error: the group ran on two nodes
inline constexpr uint32_t unavailable = 18;  // error: a resource or monitor cannot run here
inline constexpr uint32_t waiting = 19;      // info: a takeover waits for the lost node's stop
inline constexpr uint32_t reasserted = 20;   // info: resources asserted again (peer is back)
inline constexpr uint32_t monitor_unverified = 21;  // warning: a check could not be made
}  // namespace group_events

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;

// The cluster as the daemon sees it now: one entry per configured node (index = node id).
struct peer_input {
  bool known = false;   // membership has decided up or down
  bool up = false;      // self: this node takes part in the cluster
  bool online = false;  // reported node state online (self: joined and not leaving)
  bool quorum = false;  // reported quorum (self: holds it now)
  std::vector<cluster::group_report> groups;  // what it last reported (up nodes)
};

struct manager_hooks {
  cluster::event_sink emit;                              // events (module "group")
  std::function<void(const std::string&)> stop_cluster;  // final action stop_cluster
  std::function<void(const std::string&)> fence;         // final action fence
  std::function<void()> changed;  // this node's group reports changed: heartbeat soon
  // A monitor's check is over, whatever its result: its name and how long check() took (the
  // CloudWatch check times). Called after the result was handled; optional.
  std::function<void(const std::string& monitor, std::chrono::nanoseconds took)> check_timed;
};

struct manager_options {
  std::string log_dir;  // exec resources' output; empty: discarded
  // How long after a node that ran a group disappears the others wait before starting it
  // (quorum::takeover_delay()).
  std::chrono::nanoseconds takeover_delay{0};
  // Quorum is one cluster-wide lease (witness, etcd): only its holder runs groups, so a group
  // goes to another node by handing the lease over (wants_lease_handoff()).
  bool lease_quorum = false;
};

class group_manager {
 public:
  // Builds every group's resources and monitors from `cfg` (this node's effective view). A
  // resource or monitor that cannot run here makes its group unavailable on this node (an
  // event says why); it never throws for that.
  group_manager(asio::io_context& io, const config::cluster_config& cfg, std::string node,
                uint8_t self, manager_hooks hooks, manager_options opts = {});
  ~group_manager();
  group_manager(const group_manager&) = delete;
  group_manager& operator=(const group_manager&) = delete;

  // The cluster view changed (heartbeat, membership, quorum) or time passed: decide again.
  void update(const std::vector<peer_input>& view, time_point now);
  // What this node reports in its heartbeats.
  [[nodiscard]] std::vector<cluster::group_report> reports() const;

  // Operator commands: records the intent (relayed cluster-wide) and returns at once; the
  // answer says what will happen. group "": every group (start / stop only).
  nlohmann::json command(std::string_view cmd, std::string_view group, std::string_view node);
  [[nodiscard]] nlohmann::json status(time_point now) const;

  // Stops every group active here (quorum lost, cluster stop, shutdown), then calls `done` (at
  // once when none is active). Groups stay down here until allow_starts(true).
  void stop_all(const std::string& why, std::function<void()> done);
  void allow_starts(bool allowed);
  [[nodiscard]] bool any_active() const;

  // A reloaded configuration: node lists, failback, autostart and new groups apply at once;
  // changed resources or monitors of a group are rebuilt while it is stopped here. Returns the
  // groups whose resource changes are refused because they run here (nothing is applied then).
  [[nodiscard]] std::vector<std::string> blocked_by_running(
      const std::vector<std::string>& groups_to_restart) const;
  void reconfigure(const config::cluster_config& cfg);

  void set_takeover_delay(std::chrono::nanoseconds d);

  // Lease quorum: this node holds the lease, runs no group, and a group should start on a peer
  // that lacks the lease (a failover, move or failback): the daemon then gives the lease up
  // until that peer holds it. Returns the peer's name, or nullopt.
  [[nodiscard]] std::optional<std::string> wants_lease_handoff() const;

 private:
  struct impl;
  std::unique_ptr<impl> d_;
};

}  // namespace tandem::ctl::groups
