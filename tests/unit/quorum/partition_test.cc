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
