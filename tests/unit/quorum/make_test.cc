// SPDX-License-Identifier: Apache-2.0
// make_quorum / make_lease_backend (control/quorum/make.h): one object per mode, defaults filled.
#include "control/quorum/make.h"

#include <chrono>
#include <stdexcept>

#include <gtest/gtest.h>

namespace tandem::ctl::quorum {
namespace {

using namespace std::chrono_literals;

const time_point t0 = time_point(10s);

quorum_options options(mode m) {
  quorum_options o;
  o.kind = m;
  o.cluster = {1, {{0, "node-a"}, {1, "node-b"}, {2, "node-c"}}};
  o.witness.url = "http://user:pw@10.0.0.3:29080";
  o.witness.cluster = "alpha";
  o.etcd.endpoints = {"http://10.0.0.4:2379", "http://10.0.0.5:2379"};
  o.etcd.key = "/tandem/alpha/quorum";
  return o;
}

TEST(make_quorum, builds_each_mode_with_its_backend) {
  for (mode m : {mode::none, mode::majority, mode::witness_lease, mode::etcd_lease}) {
    const auto o = options(m);
    const auto q = make_quorum(o, t0, {});
    ASSERT_TRUE(q);
    EXPECT_EQ(q->kind(), m);
    const auto b = make_lease_backend(o);
    EXPECT_EQ(b != nullptr, m == mode::witness_lease || m == mode::etcd_lease);
  }
  const auto w = make_lease_backend(options(mode::witness_lease));
  EXPECT_EQ(w->describe(), "witness http://10.0.0.3:29080") << "credentials never in messages";
  const auto e = make_lease_backend(options(mode::etcd_lease));
  EXPECT_EQ(e->describe(), "etcd http://10.0.0.4:2379,http://10.0.0.5:2379");
  const auto lq = make_quorum(options(mode::etcd_lease), t0, {});
  EXPECT_EQ(dynamic_cast<lease_quorum&>(*lq).config().server,
            "etcd http://10.0.0.4:2379,http://10.0.0.5:2379");
  EXPECT_EQ(dynamic_cast<lease_quorum&>(*lq).node(), "node-b");
  EXPECT_EQ(to_string(mode::witness_lease), "witness");
}

TEST(make_quorum, passes_the_mode_settings_on) {
  auto o = options(mode::majority);
  o.majority.tie = tie_breaker::lowest_id;
  o.majority.stop_timeout = 9s;
  const auto q = make_quorum(o, t0, {});
  EXPECT_EQ(q->takeover_delay(), 9s);
  o = options(mode::witness_lease);
  o.lease.ttl = 30s;
  const auto l = make_quorum(o, t0, {});
  EXPECT_EQ(dynamic_cast<lease_quorum&>(*l).config().renew_interval, 10s);
}

TEST(make_quorum, refuses_a_node_outside_the_cluster) {
  auto o = options(mode::witness_lease);
  o.cluster.self = 9;
  EXPECT_THROW((void)make_quorum(o, t0, {}), std::invalid_argument);
  EXPECT_THROW((void)make_lease_backend(o), std::invalid_argument);
}

}  // namespace
}  // namespace tandem::ctl::quorum
