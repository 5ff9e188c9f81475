// SPDX-License-Identifier: Apache-2.0
// partition_resolver (control/quorum/partition.h): how probe results become a verdict.
#include "control/quorum/partition.h"

#include <chrono>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

namespace tandem::ctl::quorum {
namespace {

using namespace std::chrono_literals;
using tp = std::chrono::steady_clock::time_point;

const tp t0 = tp(50s);

partition_config two_targets() {
  partition_config c;
  c.targets = {{probe_kind::ping, "10.99.0.1"}, {probe_kind::http, "http://10.99.0.2/health"}};
  c.max_age = 2s;
  return c;
}

TEST(partition_resolver, is_off_without_targets) {
  partition_resolver r({});
  EXPECT_FALSE(r.enabled());
  EXPECT_EQ(r.decide(true, t0), partition_verdict::off);
  EXPECT_EQ(r.decide(false, t0), partition_verdict::off);
}

TEST(partition_resolver, is_only_needed_when_peers_are_lost) {
  partition_resolver r(two_targets());
  EXPECT_EQ(r.decide(false, t0), partition_verdict::not_needed);
  r.record({0, false, t0, "timeout"});
  EXPECT_EQ(r.decide(false, t0), partition_verdict::not_needed);
  EXPECT_EQ(r.failing_count(t0), 1u);
}

TEST(partition_resolver, no_result_yet_means_isolated) {
  partition_resolver r(two_targets());
  EXPECT_EQ(r.decide(true, t0), partition_verdict::isolated);
  EXPECT_EQ(r.failing_count(t0), 0u) << "never probed is not counted as failing";
  EXPECT_EQ(r.describe_unreachable(t0),
            "10.99.0.1 (ping: no result yet), http://10.99.0.2/health (http: no result yet)");
}

TEST(partition_resolver, one_answering_target_is_enough) {
  partition_resolver r(two_targets());
  r.record({0, false, t0, "timeout after 1000 ms"});
  r.record({1, true, t0, "HTTP 200"});
  EXPECT_EQ(r.decide(true, t0), partition_verdict::reachable);
  EXPECT_EQ(r.reachable_count(t0), 1u);
  EXPECT_EQ(r.describe_unreachable(t0), "10.99.0.1 (ping: timeout after 1000 ms)");
  r.record({1, false, t0 + 1s, "connection refused"});
  EXPECT_EQ(r.decide(true, t0 + 1s), partition_verdict::isolated);
}

TEST(partition_resolver, results_age_out_exactly_after_max_age) {
  partition_resolver r(two_targets());
  r.record({0, true, t0, "reply"});
  EXPECT_EQ(r.decide(true, t0 + 2s), partition_verdict::reachable);
  EXPECT_EQ(r.decide(true, t0 + 2s + 1ns), partition_verdict::isolated);
  EXPECT_EQ(r.next_deadline(t0), t0 + 2s + 1ns);
  EXPECT_FALSE(r.next_deadline(t0 + 2s + 1ns)) << "nothing left to age out";
  EXPECT_NE(r.describe_unreachable(t0 + 3s).find("last answer 3000 ms ago"), std::string::npos);
}

TEST(partition_resolver, a_late_older_result_does_not_override_a_newer_one) {
  partition_resolver r(two_targets());
  r.record({0, true, t0 + 1s, "reply"});
  r.record({0, false, t0, "timeout"});  // a slow probe started earlier
  EXPECT_TRUE(r.reachable(0, t0 + 1s));
}

// A reload: the targets both lists have (same kind and address) keep their latest result,
// wherever they moved in the list; the others start without one.
TEST(partition_resolver, adopt_results_carries_over_the_targets_kept_by_a_reload) {
  partition_config before;
  before.targets = {{probe_kind::ping, "10.99.0.1"},
                    {probe_kind::http, "http://10.99.0.2/health"},
                    {probe_kind::ping, "10.99.0.3"},
                    {probe_kind::ping, "10.99.0.5"}};
  before.max_age = 2s;
  partition_resolver old(before);
  old.record({0, true, t0, "reply"});
  old.record({1, false, t0, "connection refused"});
  old.record({2, true, t0, "reply"});
  // 10.99.0.5 was never probed.

  partition_config after;
  after.targets = {{probe_kind::http, "10.99.0.3"},                // same address, other kind
                   {probe_kind::http, "http://10.99.0.2/health"},  // kept, same place
                   {probe_kind::ping, "10.99.0.4"},                // new
                   {probe_kind::ping, "10.99.0.1"},                // kept, moved from 0 to 3
                   {probe_kind::ping, "10.99.0.5"}};               // kept, no result to take
  after.max_age = 5s;
  partition_resolver next(after);
  next.adopt_results(old);

  EXPECT_FALSE(next.reachable(0, t0)) << "another kind is another target";
  EXPECT_FALSE(next.reachable(1, t0));
  EXPECT_FALSE(next.reachable(2, t0));
  EXPECT_TRUE(next.reachable(3, t0));
  EXPECT_FALSE(next.reachable(4, t0));
  EXPECT_EQ(next.reachable_count(t0), 1u);
  EXPECT_EQ(next.failing_count(t0), 1u) << "only the kept failure; new targets are unprobed";
  EXPECT_EQ(next.decide(true, t0), partition_verdict::reachable);
  EXPECT_EQ(next.describe_unreachable(t0),
            "10.99.0.3 (http: no result yet), "
            "http://10.99.0.2/health (http: connection refused), "
            "10.99.0.4 (ping: no result yet), 10.99.0.5 (ping: no result yet)");
  // The carried result keeps its time and ages out under the NEW max_age.
  EXPECT_TRUE(next.reachable(3, t0 + 5s));
  EXPECT_FALSE(next.reachable(3, t0 + 5s + 1ns));
  EXPECT_EQ(next.next_deadline(t0), t0 + 5s + 1ns);
  next.record({3, false, t0 - 1s, "timeout"});  // older than the carried one: ignored
  EXPECT_TRUE(next.reachable(3, t0));
  next.record({3, false, t0 + 1s, "timeout"});  // the slot is target 3's now
  EXPECT_FALSE(next.reachable(3, t0 + 1s));
  EXPECT_EQ(next.failing_count(t0 + 1s), 2u);
  next.record({0, true, t0 + 1s, "HTTP 204"});
  EXPECT_TRUE(next.reachable(0, t0 + 1s));
  // The old resolver is untouched.
  EXPECT_TRUE(old.reachable(0, t0));
  EXPECT_TRUE(old.reachable(2, t0));
  EXPECT_EQ(old.failing_count(t0), 1u);
}

TEST(partition_resolver, adopt_results_from_nothing_or_into_nothing) {
  partition_resolver old(two_targets());
  old.record({0, true, t0, "reply"});
  partition_resolver off({});
  off.adopt_results(old);  // resolution turned off: nothing to take
  EXPECT_EQ(off.decide(true, t0), partition_verdict::off);
  partition_resolver fresh(two_targets());
  fresh.adopt_results(partition_resolver({}));
  EXPECT_EQ(fresh.decide(true, t0), partition_verdict::isolated);
  EXPECT_EQ(fresh.failing_count(t0), 0u);
  partition_resolver same(two_targets());
  same.adopt_results(old);
  EXPECT_EQ(same.decide(true, t0), partition_verdict::reachable);
  EXPECT_FALSE(same.reachable(1, t0));
}

TEST(partition_resolver, refuses_bad_input) {
  partition_config c = two_targets();
  c.targets[1].address.clear();
  EXPECT_THROW(partition_resolver{c}, std::invalid_argument);
  c = two_targets();
  c.max_age = -1s;
  EXPECT_THROW(partition_resolver{c}, std::invalid_argument);
  partition_resolver r(two_targets());
  EXPECT_THROW(r.record({2, true, t0, ""}), std::invalid_argument);
  partition_config d = two_targets();
  d.max_age = 0s;
  EXPECT_EQ(partition_resolver(d).config().max_age, 3s) << "the default";
}

}  // namespace
}  // namespace tandem::ctl::quorum
