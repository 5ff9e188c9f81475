// SPDX-License-Identifier: Apache-2.0
// majority_quorum and none_quorum (control/quorum/majority.h, none.h): counts, ties, events.
#include "control/quorum/majority.h"

#include <chrono>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/quorum/none.h"

namespace tandem::ctl::quorum {
namespace {

using namespace std::chrono_literals;
using ids = std::vector<uint8_t>;

const time_point t0 = time_point(100s);

cluster_ref nodes(size_t n, uint8_t self, uint8_t first_id = 0) {
  cluster_ref c;
  c.self = self;
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<uint8_t>(first_id + i);
    c.nodes.push_back({id, "node-" + std::to_string(id)});
  }
  return c;
}

struct recorder {
  std::vector<event> events;
  std::vector<loss> losses;
  event_sink sink() {
    return [this](const event& e) { events.push_back(e); };
  }
  size_t count(uint32_t id) const {
    size_t n = 0;
    for (const auto& e : events)
      n += e.id == id ? 1 : 0;
    return n;
  }
};

TEST(majority_quorum, needs_more_than_half_of_the_configured_nodes) {
  for (size_t n = 1; n <= 7; ++n) {
    for (size_t up = 1; up <= n; ++up) {
      majority_quorum q(nodes(n, 0), {}, t0, {});
      ids u;
      for (size_t i = 0; i < up; ++i)
        u.push_back(static_cast<uint8_t>(i));
      q.update_membership(u, t0);
      EXPECT_EQ(q.holds(t0), 2 * up > n) << up << " of " << n;
      EXPECT_EQ(q.needed(), n / 2 + 1);
      EXPECT_EQ(q.state(t0).up, up);
      EXPECT_EQ(q.state(t0).configured, n);
    }
  }
}

TEST(majority_quorum, a_single_node_cluster_holds_from_the_start) {
  recorder r;
  majority_quorum q(nodes(1, 0), {}, t0, r.sink());
  EXPECT_TRUE(q.holds(t0));
  EXPECT_EQ(r.count(quorum_events::held), 1u);
}

TEST(majority_quorum, an_exact_half_loses_without_a_tie_breaker) {
  recorder r;
  majority_quorum q(nodes(2, 0), {}, t0, r.sink());
  EXPECT_FALSE(q.holds(t0));
  q.update_membership(ids{0, 1}, t0 + 1s);
  EXPECT_TRUE(q.holds(t0 + 1s));
  q.on_lost([&](const loss& l) { r.losses.push_back(l); });
  q.update_membership(ids{0}, t0 + 2s);
  EXPECT_FALSE(q.holds(t0 + 2s));
  ASSERT_EQ(r.losses.size(), 1u);
  EXPECT_EQ(r.losses[0].at, t0 + 2s);
  EXPECT_EQ(r.losses[0].stop_by, t0 + 2s + 5s);
  EXPECT_NE(r.losses[0].reason.find("no tie-breaker"), std::string::npos) << r.losses[0].reason;
  EXPECT_EQ(q.takeover_delay(), 5s);
}

TEST(majority_quorum, the_tie_breaker_favours_the_half_with_the_lowest_configured_id) {
  // Four nodes with ids 3..6: the lowest configured id is 3.
  majority_config cfg;
  cfg.tie = tie_breaker::lowest_id;
  recorder ra, rb;
  majority_quorum a(nodes(4, 3, 3), cfg, t0, ra.sink());  // node 3
  majority_quorum b(nodes(4, 5, 3), cfg, t0, rb.sink());  // node 5
  // Partition {3,4} | {5,6}: only the half with node 3 keeps quorum.
  a.update_membership(ids{3, 4}, t0);
  b.update_membership(ids{5, 6}, t0);
  EXPECT_TRUE(a.holds(t0));
  EXPECT_FALSE(b.holds(t0));
  EXPECT_EQ(ra.count(quorum_events::tie_broken), 1u);
  EXPECT_EQ(rb.count(quorum_events::tie_broken), 0u);
  // Partition {4,5} | {3,6}: node 5's half lacks 3 even though 4 is the lowest id it sees.
  b.update_membership(ids{4, 5}, t0 + 1s);
  EXPECT_FALSE(b.holds(t0 + 1s));
  a.update_membership(ids{3, 6}, t0 + 1s);
  EXPECT_TRUE(a.holds(t0 + 1s));
  EXPECT_EQ(ra.count(quorum_events::tie_broken), 1u) << "still a tie: reported once";
  // A majority needs no tie-breaker, whichever nodes it has.
  b.update_membership(ids{4, 5, 6}, t0 + 2s);
  EXPECT_TRUE(b.holds(t0 + 2s));
  // Two nodes: node 0 survives alone, node 1 does not.
  majority_quorum n0(nodes(2, 0), cfg, t0, {});
  majority_quorum n1(nodes(2, 1), cfg, t0, {});
  EXPECT_TRUE(n0.holds(t0));
  EXPECT_FALSE(n1.holds(t0));
  EXPECT_NE(n1.state(t0).detail.find("lowest node id"), std::string::npos) << n1.state(t0).detail;
}

TEST(majority_quorum, unknown_ids_and_duplicates_do_not_count) {
  majority_quorum q(nodes(3, 0), {}, t0, {});
  q.update_membership(ids{0, 7, 9, 0, 0}, t0);
  EXPECT_FALSE(q.holds(t0));
  EXPECT_EQ(q.state(t0).up, 1u);
  q.update_membership(ids{2}, t0);  // self always counts
  EXPECT_TRUE(q.holds(t0));
}

TEST(majority_quorum, raises_held_and_lost_once_per_change) {
  recorder r;
  majority_quorum q(nodes(3, 1), {}, t0, r.sink());
  q.update_membership(ids{0, 1}, t0 + 1s);
  q.update_membership(ids{0, 1, 2}, t0 + 2s);
  q.update_membership(ids{1, 2}, t0 + 3s);
  EXPECT_EQ(r.count(quorum_events::held), 1u);
  q.update_membership(ids{1}, t0 + 4s);
  q.update_membership(ids{1}, t0 + 5s);
  ASSERT_EQ(r.count(quorum_events::lost), 1u);
  const event& lost = r.events.back();
  EXPECT_EQ(lost.id, quorum_events::lost);
  EXPECT_EQ(lost.level, severity::error);
  EXPECT_EQ(lost.module, "quorum");
  EXPECT_EQ(lost.time, t0 + 4s);
  EXPECT_NE(lost.message.find("1 of 3 nodes up (2 needed"), std::string::npos) << lost.message;
  EXPECT_NE(lost.message.find("node-0, node-2"), std::string::npos) << lost.message;
}

TEST(majority_quorum, refuses_bad_clusters) {
  EXPECT_THROW(majority_quorum(nodes(2, 5), {}, t0, {}), std::invalid_argument);
  cluster_ref dup = nodes(2, 0);
  dup.nodes[1].id = 0;
  EXPECT_THROW(majority_quorum(dup, {}, t0, {}), std::invalid_argument);
  cluster_ref same_name = nodes(2, 0);
  same_name.nodes[1].name = same_name.nodes[0].name;
  EXPECT_THROW(majority_quorum(same_name, {}, t0, {}), std::invalid_argument);
  cluster_ref big = nodes(1, 40, 40);
  EXPECT_THROW(majority_quorum(big, {}, t0, {}), std::invalid_argument);
}

TEST(majority_quorum, partition_resolution_only_removes_quorum) {
  partition_config pc;
  pc.targets = {{probe_kind::ping, "10.0.0.1"}, {probe_kind::http, "http://10.0.0.2/"}};
  pc.max_age = 3s;
  majority_config cfg;
  cfg.tie = tie_breaker::lowest_id;
  recorder r;
  majority_quorum q(nodes(2, 0), cfg, t0, r.sink(), pc);
  q.update_membership(ids{0, 1}, t0);
  EXPECT_TRUE(q.holds(t0)) << "nobody lost: resolution not needed";
  q.update_membership(ids{0}, t0 + 1s);
  EXPECT_FALSE(q.holds(t0 + 1s)) << "tie kept by the breaker, but isolated (no results)";
  EXPECT_EQ(r.count(quorum_events::isolated), 1u);
  const std::vector<probe_result> res = {{0, false, t0 + 1200ms, "timeout"},
                                         {1, true, t0 + 1200ms, "HTTP 200"}};
  q.update_reachability(res, t0 + 1200ms);
  EXPECT_TRUE(q.holds(t0 + 1200ms)) << "one target answers: not the isolated side";
  EXPECT_EQ(q.state(t0 + 1200ms).partition, partition_verdict::reachable);
  // The answer ages out 3 s later: tick at the deadline notices it.
  EXPECT_EQ(q.next_deadline(), t0 + 4200ms + std::chrono::nanoseconds(1));
  q.tick(t0 + 4200ms + std::chrono::nanoseconds(1));
  EXPECT_FALSE(q.holds(t0 + 4201ms));
  EXPECT_EQ(r.count(quorum_events::isolated), 2u);
  // Node 1 (no tie-breaker win) never gets quorum from reachability alone.
  majority_quorum q1(nodes(2, 1), cfg, t0, {}, pc);
  q1.update_reachability(res, t0 + 1200ms);
  EXPECT_FALSE(q1.holds(t0 + 1200ms));
}

// set_partition: a reload's targets. A kept target keeps its answer; a brand-new list has no
// answer yet, so a node with peers lost is the isolated side until a new target answers.
TEST(majority_quorum, set_partition_switching_resolution_on_reports_an_isolated_node) {
  recorder r;
  majority_quorum q(nodes(3, 0), {}, t0, r.sink());  // no targets: resolution off
  q.update_membership(ids{0, 1, 2}, t0);
  q.update_membership(ids{0, 1}, t0 + 1s);  // node 2 lost; 2 of 3 still hold
  ASSERT_TRUE(q.holds(t0 + 1s));
  partition_config pc;
  pc.targets = {{probe_kind::ping, "10.0.0.5"}};  // never probed yet
  q.set_partition(pc, t0 + 2s);
  EXPECT_FALSE(q.holds(t0 + 2s));
  EXPECT_EQ(r.count(quorum_events::isolated), 1u);
  EXPECT_EQ(r.count(quorum_events::lost), 1u);
  // Off again: nothing to judge, quorum comes back from the majority rule alone.
  q.set_partition({}, t0 + 3s);
  EXPECT_TRUE(q.holds(t0 + 3s));
  EXPECT_EQ(q.state(t0 + 3s).partition, partition_verdict::off);
}

TEST(majority_quorum, set_partition_keeps_the_answers_of_kept_targets) {
  partition_config pc;
  pc.targets = {{probe_kind::ping, "10.0.0.1"}, {probe_kind::http, "http://10.0.0.2/"}};
  pc.max_age = 3s;
  recorder r;
  majority_quorum q(nodes(3, 0), {}, t0, r.sink(), pc);
  q.on_lost([&](const loss& l) { r.losses.push_back(l); });
  q.update_membership(ids{0, 1, 2}, t0);
  const std::vector<probe_result> res = {{0, true, t0, "reply"}, {1, false, t0, "timeout"}};
  q.update_reachability(res, t0);
  q.update_membership(ids{0, 1}, t0 + 1s);  // node 2 lost: resolution needed, 10.0.0.1 answers
  ASSERT_TRUE(q.holds(t0 + 1s));
  ASSERT_EQ(q.state(t0 + 1s).partition, partition_verdict::reachable);

  // Invalid lists are refused and change nothing.
  partition_config bad;
  bad.targets = {
      {probe_kind::ping, "10.0.0.7"}, {probe_kind::ping, "10.0.0.8"}, {probe_kind::ping, ""}};
  EXPECT_THROW(q.set_partition(bad, t0 + 1200ms), std::invalid_argument);
  bad.targets.back().address = "10.0.0.9";
  bad.max_age = -1s;
  EXPECT_THROW(q.set_partition(bad, t0 + 1200ms), std::invalid_argument);
  EXPECT_TRUE(q.holds(t0 + 1200ms)) << "the old targets, with their answers, still count";
  EXPECT_EQ(q.state(t0 + 1200ms).partition, partition_verdict::reachable);
  const probe_result third{2, true, t0 + 1200ms, "reply"};
  EXPECT_THROW(q.update_reachability(std::span(&third, 1), t0 + 1200ms), std::invalid_argument)
      << "still two targets, not the refused three";

  // A list that keeps 10.0.0.1 (now second) and adds one never probed: still held.
  partition_config kept;
  kept.targets = {{probe_kind::http, "http://10.0.0.9/"}, {probe_kind::ping, "10.0.0.1"}};
  kept.max_age = 3s;
  q.set_partition(kept, t0 + 1500ms);
  EXPECT_TRUE(q.holds(t0 + 1500ms));
  EXPECT_EQ(q.state(t0 + 1500ms).partition, partition_verdict::reachable);
  EXPECT_EQ(r.count(quorum_events::lost), 0u);
  EXPECT_EQ(r.count(quorum_events::isolated), 0u);
  EXPECT_TRUE(r.losses.empty());
  // The carried answer still ages out when it would have: 3 s after it came.
  EXPECT_EQ(q.next_deadline(), t0 + 3s + std::chrono::nanoseconds(1));

  // Only a brand-new target: nothing has answered it yet, so this node is isolated.
  partition_config fresh;
  fresh.targets = {{probe_kind::ping, "10.0.0.5"}};
  q.set_partition(fresh, t0 + 2s);
  EXPECT_FALSE(q.holds(t0 + 2s));
  EXPECT_EQ(q.state(t0 + 2s).partition, partition_verdict::isolated);
  EXPECT_EQ(r.count(quorum_events::isolated), 1u);
  ASSERT_EQ(r.count(quorum_events::lost), 1u);
  ASSERT_EQ(r.losses.size(), 1u);
  EXPECT_EQ(r.losses[0].at, t0 + 2s);
  EXPECT_EQ(r.losses[0].stop_by, t0 + 2s + 5s);
  EXPECT_NE(r.losses[0].reason.find("10.0.0.5 (ping: no result yet)"), std::string::npos)
      << r.losses[0].reason;
  EXPECT_NE(r.losses[0].reason.find("isolated side"), std::string::npos) << r.losses[0].reason;
  EXPECT_EQ(r.losses[0].reason.find("10.0.0.1"), std::string::npos) << r.losses[0].reason;
  // Its first answer gives quorum back.
  const probe_result ok{0, true, t0 + 2500ms, "reply"};
  q.update_reachability(std::span(&ok, 1), t0 + 2500ms);
  EXPECT_TRUE(q.holds(t0 + 2500ms));
  EXPECT_EQ(r.count(quorum_events::held), 2u);
  EXPECT_EQ(r.losses.size(), 1u);
}

TEST(majority_quorum, set_partition_matters_only_while_peers_are_lost) {
  partition_config pc;
  pc.targets = {{probe_kind::ping, "10.0.0.1"}};
  recorder r;
  majority_quorum q(nodes(3, 0), {}, t0, r.sink(), pc);
  q.update_membership(ids{0, 1, 2}, t0);
  partition_config fresh;
  fresh.targets = {{probe_kind::ping, "10.0.0.5"}};
  q.set_partition(fresh, t0 + 1s);
  EXPECT_TRUE(q.holds(t0 + 1s)) << "every node up: resolution not needed";
  EXPECT_EQ(q.state(t0 + 1s).partition, partition_verdict::not_needed);
  EXPECT_EQ(r.count(quorum_events::lost), 0u);
  q.set_partition({}, t0 + 2s);  // resolution turned off
  q.update_membership(ids{0, 1}, t0 + 3s);
  EXPECT_TRUE(q.holds(t0 + 3s));
  EXPECT_EQ(q.state(t0 + 3s).partition, partition_verdict::off);
  EXPECT_EQ(r.count(quorum_events::lost), 0u);
}

TEST(none_quorum, always_holds_and_reports_every_partition_as_a_risk) {
  recorder r;
  none_quorum q(nodes(3, 0), t0, r.sink());
  EXPECT_TRUE(q.holds(t0));
  EXPECT_EQ(q.kind(), mode::none);
  EXPECT_EQ(q.takeover_delay(), duration::zero());
  q.update_membership(ids{0, 1, 2}, t0 + 1s);
  EXPECT_EQ(r.count(quorum_events::split_brain_risk), 0u);
  q.update_membership(ids{0, 1}, t0 + 2s);
  EXPECT_TRUE(q.holds(t0 + 2s));
  ASSERT_EQ(r.count(quorum_events::split_brain_risk), 1u);
  const event& e = r.events.back();
  EXPECT_EQ(e.level, severity::error);
  EXPECT_NE(e.message.find("node-2"), std::string::npos);
  EXPECT_NE(e.message.find("split brain"), std::string::npos);
  q.update_membership(ids{0, 1}, t0 + 3s);
  EXPECT_EQ(r.count(quorum_events::split_brain_risk), 1u) << "same partition: once";
  q.update_membership(ids{0}, t0 + 4s);
  EXPECT_EQ(r.count(quorum_events::split_brain_risk), 2u) << "a new partition: again";
  q.update_membership(ids{0, 1, 2}, t0 + 5s);
  q.update_membership(ids{0}, t0 + 6s);
  EXPECT_EQ(r.count(quorum_events::split_brain_risk), 3u);
  EXPECT_EQ(r.count(quorum_events::lost), 0u);
}

TEST(none_quorum, an_isolated_node_still_gives_its_groups_up_with_resolution) {
  partition_config pc;
  pc.targets = {{probe_kind::ping, "10.0.0.1"}};
  recorder r;
  none_quorum q(nodes(2, 0), t0, r.sink(), pc, 7s);
  q.on_lost([&](const loss& l) { r.losses.push_back(l); });
  q.update_membership(ids{0, 1}, t0);
  const probe_result ok{0, true, t0, "reply"};
  q.update_reachability(std::span(&ok, 1), t0);
  q.update_membership(ids{0}, t0 + 1s);
  EXPECT_TRUE(q.holds(t0 + 1s));
  EXPECT_NE(r.events.back().message.find("a target answers"), std::string::npos);
  const probe_result bad{0, false, t0 + 2s, "timeout"};
  q.update_reachability(std::span(&bad, 1), t0 + 2s);
  EXPECT_FALSE(q.holds(t0 + 2s));
  ASSERT_EQ(r.losses.size(), 1u);
  EXPECT_EQ(r.losses[0].stop_by, t0 + 9s);
  EXPECT_NE(r.losses[0].reason.find("isolated side"), std::string::npos);
}

TEST(none_quorum, set_partition_with_only_new_targets_gives_the_groups_up) {
  partition_config pc;
  pc.targets = {{probe_kind::ping, "10.0.0.1"}};
  recorder r;
  none_quorum q(nodes(2, 0), t0, r.sink(), pc, 7s);
  q.on_lost([&](const loss& l) { r.losses.push_back(l); });
  q.update_membership(ids{0, 1}, t0);
  const probe_result ok{0, true, t0, "reply"};
  q.update_reachability(std::span(&ok, 1), t0);
  q.update_membership(ids{0}, t0 + 1s);
  ASSERT_TRUE(q.holds(t0 + 1s));
  partition_config kept;
  kept.targets = {{probe_kind::ping, "10.0.0.1"}, {probe_kind::ping, "10.0.0.2"}};
  q.set_partition(kept, t0 + 1500ms);
  EXPECT_TRUE(q.holds(t0 + 1500ms));
  EXPECT_EQ(r.count(quorum_events::lost), 0u);
  partition_config bad;
  bad.targets = {{probe_kind::http, ""}};
  EXPECT_THROW(q.set_partition(bad, t0 + 1600ms), std::invalid_argument);
  EXPECT_TRUE(q.holds(t0 + 1600ms));
  partition_config fresh;
  fresh.targets = {{probe_kind::http, "https://10.0.0.3/"}};
  q.set_partition(fresh, t0 + 2s);
  EXPECT_FALSE(q.holds(t0 + 2s));
  EXPECT_EQ(r.count(quorum_events::isolated), 1u);
  ASSERT_EQ(r.count(quorum_events::lost), 1u);
  ASSERT_EQ(r.losses.size(), 1u);
  EXPECT_EQ(r.losses[0].at, t0 + 2s);
  EXPECT_EQ(r.losses[0].stop_by, t0 + 9s);
  EXPECT_NE(r.losses[0].reason.find("https://10.0.0.3/ (http: no result yet)"), std::string::npos)
      << r.losses[0].reason;
  // Turning resolution off again: mode none holds whatever is down.
  q.set_partition({}, t0 + 3s);
  EXPECT_TRUE(q.holds(t0 + 3s));
  EXPECT_EQ(r.count(quorum_events::held), 2u);
}

}  // namespace
}  // namespace tandem::ctl::quorum
