// SPDX-License-Identifier: Apache-2.0
// The placement rule (placement.h): pure decisions from the cluster view of one group.
#include "control/groups/placement.h"

#include <algorithm>
#include <tuple>

namespace tandem::ctl::groups {
namespace {

bool runs(group_state s) noexcept {
  return s == group_state::starting || s == group_state::online || s == group_state::stopping;
}

const node_input* find(const placement_input& in, uint8_t id) noexcept {
  return id < in.nodes.size() ? &in.nodes[id] : nullptr;
}

std::string name_of(const placement_input& in, uint8_t id) {
  return id < in.names.size() ? in.names[id] : "node " + std::to_string(id);
}

// Position in the preference list; past the end for nodes not in it.
size_t rank(const placement_input& in, uint8_t id) noexcept {
  const auto it = std::find(in.preference.begin(), in.preference.end(), id);
  return static_cast<size_t>(it - in.preference.begin());
}

}  // namespace

bool newer(const intent_record& a, const intent_record& b) noexcept {
  return std::tuple(a.seq, static_cast<uint8_t>(a.kind), a.target) >
         std::tuple(b.seq, static_cast<uint8_t>(b.kind), b.target);
}

intent_record merge_intent(const intent_record& a, const intent_record& b) noexcept {
  return newer(b, a) ? b : a;
}

std::string describe(const intent_record& i, std::string_view target_name) {
  switch (i.kind) {
    case group_intent::none:
      return "no command (autostart decides)";
    case group_intent::run:
      return "start";
    case group_intent::stop:
      return "stop";
    case group_intent::move:
      return "move to " + std::string(target_name);
  }
  return "?";
}

bool wanted(const placement_input& in) noexcept {
  switch (in.intent.kind) {
    case group_intent::none:
      return in.autostart;
    case group_intent::run:
    case group_intent::move:
      return true;
    case group_intent::stop:
      return false;
  }
  return false;
}

bool eligible(const placement_input& in, uint8_t node) noexcept {
  const node_input* n = find(in, node);
  if (n == nullptr || !n->known || !n->up || !n->online || !n->quorum) return false;
  if (rank(in, node) >= in.preference.size()) return false;
  return n->state != group_state::failed;
}

std::optional<uint8_t> target_of(const placement_input& in) noexcept {
  if (in.intent.kind == group_intent::move && eligible(in, in.intent.target))
    return in.intent.target;
  for (uint8_t id : in.preference)
    if (eligible(in, id)) return id;
  return std::nullopt;
}

placement decide(const placement_input& in, bool previous_owner_lost) {
  placement p;
  const node_input* me = find(in, in.self);
  if (me == nullptr) {
    p.reason = "this node is not configured";
    return p;
  }
  p.target = target_of(in);
  // Other up nodes that run the group, most preferred first.
  std::vector<uint8_t> others;
  for (const node_input& n : in.nodes) {
    if (n.id != in.self && n.known && n.up && runs(n.state)) others.push_back(n.id);
  }
  std::sort(others.begin(), others.end(), [&](uint8_t a, uint8_t b) {
    return std::pair(rank(in, a), a) < std::pair(rank(in, b), b);
  });

  switch (me->state) {
    case group_state::starting:
    case group_state::stopping:
      p.reason = me->state == group_state::starting ? "starting here" : "stopping here";
      return p;
    case group_state::failed:
      p.reason = "failed on this node; `tandemctl group start` clears it";
      return p;
    case group_state::online: {
      if (!me->up || !me->quorum) {
        p.what = step::stop;
        p.event = "quorum";
        p.reason = me->up ? "this node does not hold quorum" : "this node left the cluster";
        return p;
      }
      if (!wanted(in)) {
        p.what = step::stop;
        p.event = "stop";
        p.reason = "the operator stopped the group";
        return p;
      }
      for (uint8_t o : others) {
        const auto mine = std::pair(rank(in, in.self), in.self);
        if (std::pair(rank(in, o), o) < mine) {
          p.what = step::stop;
          p.event = "conflict";
          p.reason = "the group also runs on " + name_of(in, o) +
                     ", which is preferred: this node stops it";
          return p;
        }
      }
      if (in.intent.kind == group_intent::move && in.intent.target != in.self &&
          eligible(in, in.intent.target)) {
        p.what = step::stop;
        p.event = "move";
        p.reason = "moving to " + name_of(in, in.intent.target);
        return p;
      }
      const bool pinned = in.intent.kind == group_intent::move && in.intent.target == in.self;
      if (in.auto_failback && !pinned && p.target && *p.target != in.self &&
          rank(in, *p.target) < rank(in, in.self)) {
        p.what = step::stop;
        p.event = "failback";
        p.reason = "failing back to " + name_of(in, *p.target);
        return p;
      }
      p.reason = "online here";
      return p;
    }
    case group_state::offline:
      break;
  }

  // Offline here.
  if (!wanted(in)) {
    p.reason = in.intent.kind == group_intent::stop ? "stopped by the operator"
                                                    : "autostart is off; `tandemctl group start`";
    return p;
  }
  if (!others.empty()) {
    p.reason = "runs on " + name_of(in, others.front());
    return p;
  }
  if (!p.target) {
    p.reason = "no eligible node (up, online, holding quorum, not failed)";
    return p;
  }
  if (*p.target != in.self) {
    p.reason = "to be started by " + name_of(in, *p.target);
    return p;
  }
  for (const node_input& n : in.nodes) {
    if (!n.known) {
      p.reason = "waiting to hear from " + name_of(in, n.id) + " before starting";
      return p;
    }
  }
  if (in.takeover_blocked) {
    p.reason = "waiting out the takeover delay (the lost node stops its groups meanwhile)";
    return p;
  }
  p.what = step::start;
  if (in.intent.kind == group_intent::move && in.intent.target == in.self) {
    p.event = "move";
  } else if (previous_owner_lost) {
    p.event = "failover";
  } else {
    p.event = "start";
  }
  p.reason = "starting here";
  return p;
}

}  // namespace tandem::ctl::groups
