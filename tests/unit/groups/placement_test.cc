// SPDX-License-Identifier: Apache-2.0
// The placement rule (control/groups/placement.h): who starts, who stops, who waits.
#include "control/groups/placement.h"

#include <gtest/gtest.h>

namespace tandem::ctl::groups {
namespace {

constexpr uint8_t a = 0, b = 1, c = 2;

// Three nodes, all up, online, holding quorum; the group prefers a, b, c.
placement_input three(uint8_t self) {
  placement_input in;
  in.self = self;
  in.preference = {a, b, c};
  in.names = {"node-a", "node-b", "node-c"};
  for (uint8_t i = 0; i < 3; ++i)
    in.nodes.push_back({i, true, true, true, true, group_state::offline});
  return in;
}

TEST(placement, the_most_preferred_node_starts_a_group_that_runs_nowhere) {
  placement_input in = three(a);
  placement p = decide(in);
  EXPECT_EQ(p.what, step::start);
  EXPECT_EQ(p.event, "start");
  EXPECT_EQ(p.target, a);
  in.self = b;
  p = decide(in);
  EXPECT_EQ(p.what, step::none);
  EXPECT_EQ(p.reason, "to be started by node-a");
}

TEST(placement, nobody_starts_while_a_node_is_unknown) {
  placement_input in = three(a);
  in.nodes[c].known = false;
  const placement p = decide(in);
  EXPECT_EQ(p.what, step::none);
  EXPECT_NE(p.reason.find("node-c"), std::string::npos);
}

TEST(placement, a_group_running_elsewhere_stays_there) {
  placement_input in = three(a);
  in.nodes[b].state = group_state::online;
  placement p = decide(in);
  EXPECT_EQ(p.what, step::none);
  EXPECT_EQ(p.reason, "runs on node-b");
  // Stopping and starting count as running: no second activation meanwhile.
  in.nodes[b].state = group_state::stopping;
  EXPECT_EQ(decide(in).what, step::none);
  // A node that is down does not hold it any more.
  in.nodes[b].state = group_state::online;
  in.nodes[b].up = false;
  p = decide(in, true);
  EXPECT_EQ(p.what, step::start);
  EXPECT_EQ(p.event, "failover");
}

TEST(placement, ineligible_nodes_are_skipped) {
  placement_input in = three(b);
  in.nodes[a].quorum = false;
  EXPECT_EQ(decide(in).what, step::start);
  in.nodes[a].quorum = true;
  in.nodes[a].online = false;  // starting or leaving
  EXPECT_EQ(decide(in).what, step::start);
  in.nodes[a].online = true;
  in.nodes[a].state = group_state::failed;
  EXPECT_EQ(decide(in).what, step::start);
  // Not in the group's node list.
  in = three(c);
  in.preference = {a, b};
  in.nodes[a].up = in.nodes[b].up = false;
  EXPECT_EQ(decide(in).what, step::none);
  EXPECT_FALSE(target_of(in));
}

TEST(placement, the_takeover_delay_holds_a_start) {
  placement_input in = three(a);
  in.takeover_blocked = true;
  const placement p = decide(in, true);
  EXPECT_EQ(p.what, step::none);
  EXPECT_NE(p.reason.find("takeover delay"), std::string::npos);
}

TEST(placement, without_quorum_a_node_stops_and_never_starts) {
  placement_input in = three(a);
  in.nodes[a].quorum = false;
  EXPECT_EQ(decide(in).what, step::none);
  in.nodes[a].state = group_state::online;
  const placement p = decide(in);
  EXPECT_EQ(p.what, step::stop);
  EXPECT_EQ(p.event, "quorum");
}

TEST(placement, intents_stop_start_and_move) {
  placement_input in = three(a);
  in.nodes[a].state = group_state::online;
  EXPECT_EQ(decide(in).what, step::none);
  in.intent = {4, group_intent::stop, 0};
  placement p = decide(in);
  EXPECT_EQ(p.what, step::stop);
  EXPECT_EQ(p.event, "stop");
  in.nodes[a].state = group_state::offline;
  EXPECT_EQ(decide(in).what, step::none);
  // autostart off: only a command starts it.
  in.intent = {};
  in.autostart = false;
  EXPECT_EQ(decide(in).what, step::none);
  in.intent = {5, group_intent::run, 0};
  EXPECT_EQ(decide(in).what, step::start);
  // Move to c: a hands over, then c starts it.
  in.nodes[a].state = group_state::online;
  in.intent = {6, group_intent::move, c};
  p = decide(in);
  EXPECT_EQ(p.what, step::stop);
  EXPECT_EQ(p.event, "move");
  in.nodes[a].state = group_state::offline;
  EXPECT_EQ(decide(in).what, step::none);  // a is not the target
  in.self = c;
  p = decide(in);
  EXPECT_EQ(p.what, step::start);
  EXPECT_EQ(p.event, "move");
  // A move to a node that cannot take it falls back to the preference order.
  in.nodes[c].quorum = false;
  in.self = a;
  EXPECT_EQ(decide(in).what, step::start);
}

TEST(placement, failback_follows_the_policy) {
  placement_input in = three(b);
  in.nodes[b].state = group_state::online;
  EXPECT_EQ(decide(in).what, step::none);  // manual: stays on b
  in.auto_failback = true;
  placement p = decide(in);
  EXPECT_EQ(p.what, step::stop);
  EXPECT_EQ(p.event, "failback");
  // A move pins it: no failback away from the operator's choice.
  in.intent = {3, group_intent::move, b};
  EXPECT_EQ(decide(in).what, step::none);
  // A failed preferred node is no failback target.
  in.intent = {};
  in.nodes[a].state = group_state::failed;
  EXPECT_EQ(decide(in).what, step::none);
}

TEST(placement, two_active_nodes_resolve_to_the_preferred_one) {
  placement_input in = three(b);
  in.nodes[a].state = group_state::online;
  in.nodes[b].state = group_state::online;
  placement p = decide(in);
  EXPECT_EQ(p.what, step::stop);
  EXPECT_EQ(p.event, "conflict");
  in.self = a;
  EXPECT_EQ(decide(in).what, step::none);
}

TEST(placement, a_node_that_failed_the_group_waits_for_the_operator) {
  placement_input in = three(a);
  in.nodes[a].state = group_state::failed;
  const placement p = decide(in);
  EXPECT_EQ(p.what, step::none);
  EXPECT_NE(p.reason.find("tandemctl group start"), std::string::npos);
}

TEST(placement, the_newest_intent_wins_the_same_way_everywhere) {
  const intent_record old{3, group_intent::stop, 0};
  const intent_record run{4, group_intent::run, 0};
  const intent_record move{4, group_intent::move, 2};
  EXPECT_TRUE(newer(run, old));
  EXPECT_FALSE(newer(old, run));
  EXPECT_EQ(merge_intent(run, move), move);  // a tie on seq: decided by kind, then target
  EXPECT_EQ(merge_intent(move, run), move);
  EXPECT_EQ(merge_intent(old, intent_record{}), old);
  EXPECT_EQ(describe(move, "node-c"), "move to node-c");
}

}  // namespace
}  // namespace tandem::ctl::groups
