// SPDX-License-Identifier: Apache-2.0
// Where a failover group runs: the rule every node evaluates on the same inputs (its membership
// view and the group entries of the heartbeats), acting only for itself.
//
// Pure logic, no clock and no I/O: the group manager feeds it and carries out what it says.
// docs/groups.md has the reasoning. In short:
// - The operator's last command (intent: run, stop, move to N) is relayed by every node in its
//   heartbeats; the highest (intent_seq, intent, target) wins everywhere (merge_intent).
// - A node is eligible for a group when it is up, online, holds quorum, is in the group's node
//   list and has not failed the group (since the last operator command).
// - A group that runs (starting, online or stopping) on an up node stays there; nobody else
//   starts it. A node that runs it stops it when it is no longer wanted, when the operator moved
//   it to another eligible node, or (failback: auto) when a more preferred node is eligible.
// - A group that runs nowhere is started by its target: the move target when that is eligible,
//   else the most preferred eligible node; never while any configured node is still unknown
//   (just started: it might run the group), and never before the takeover delay after its last
//   owner disappeared (the time that node has to stop it once it notices its own loss).
// - Two nodes running it (a partition healed without quorum) is a conflict: the less preferred
//   one stops.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/cluster/heartbeat_packet.h"

namespace tandem::ctl::groups {

using cluster::group_intent;
using cluster::group_state;

// The operator's command as relayed.
struct intent_record {
  uint32_t seq = 0;
  group_intent kind = group_intent::none;
  uint8_t target = 0;  // move: the node id
  bool operator==(const intent_record&) const = default;
};
// True when `a` wins over `b` (higher seq; ties broken by kind, then target, so every node picks
// the same one).
[[nodiscard]] bool newer(const intent_record& a, const intent_record& b) noexcept;
[[nodiscard]] intent_record merge_intent(const intent_record& a, const intent_record& b) noexcept;
[[nodiscard]] std::string describe(const intent_record& i, std::string_view target_name);

// One configured node as this node sees it, for one group.
struct node_input {
  uint8_t id = 0;
  bool known = false;   // membership has an opinion (up or down); false: not yet decided
  bool up = false;      // heartbeats arrive (self: this node takes part in the cluster)
  bool online = false;  // reports node state online (not starting / leaving / stopping)
  bool quorum = false;  // reports that it holds quorum (self: holds it now)
  group_state state = group_state::offline;  // its state for this group (down nodes: ignored)
};

struct placement_input {
  uint8_t self = 0;
  std::vector<uint8_t> preference;  // the group's nodes, most preferred first (ids)
  bool autostart = true;
  bool auto_failback = false;
  intent_record intent;            // merged
  std::vector<node_input> nodes;   // every configured node, self included, indexed by id
  std::vector<std::string> names;  // node names by id (for the reasons)
  bool takeover_blocked = false;   // the takeover delay after a lost owner has not passed yet
};

enum class step : uint8_t {
  none,   // nothing to do (the reason says what the group waits for)
  start,  // start the group here
  stop,   // stop the group here
};

struct placement {
  step what = step::none;
  // The event word for the action: "start", "failover", "move", "failback", "stop", "quorum",
  // "conflict"; for none: "".
  std::string event;
  std::string reason;             // one line: why (status shows it)
  std::optional<uint8_t> target;  // the node that should run the group, if any
};

[[nodiscard]] bool wanted(const placement_input& in) noexcept;
[[nodiscard]] bool eligible(const placement_input& in, uint8_t node) noexcept;
// The node that should run the group when it runs nowhere (nullopt: none is eligible).
[[nodiscard]] std::optional<uint8_t> target_of(const placement_input& in) noexcept;

// What this node should do now. `previous_owner_lost` (for the event word): the group ran on a
// node that disappeared, so a start here is a failover.
[[nodiscard]] placement decide(const placement_input& in, bool previous_owner_lost = false);

}  // namespace tandem::ctl::groups
