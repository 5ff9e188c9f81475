// SPDX-License-Identifier: Apache-2.0
// tandemd on three lab hosts (two interconnects each): a killed daemon and a node cut off from
// every link are seen gone by the others within the heartbeat timeout plus one interval, and
// rejoin; one link down is a warning only; a clean stop is seen at once; a node with another
// secret is never admitted and the events say why.
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/cli/commands.h"
#include "tests/lab/tandemd_cluster.h"
#include "tests/support/temp_dir.h"

namespace tandem::lab {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using json = nlohmann::json;
using clock = std::chrono::steady_clock;

// 200 ms / 1 s heartbeats. The contract is detection by timeout + one interval after the last
// heartbeat; the test polls every 10 ms from outside and runs under ASan on a loaded 2-core
// machine, so it allows 500 ms of scheduling on top.
constexpr auto interval = 200ms;
constexpr auto timeout = 1000ms;
constexpr auto bound = timeout + interval + 500ms;

bool has_event(const json& events, const std::string& name, const std::string& text = {}) {
  for (const json& e : events)
    if (e.value("name", "") == name && e.value("message", "").find(text) != std::string::npos)
      return true;
  return false;
}

// Waits until node `watcher` sees node `target` in `state`; returns how long it took.
std::chrono::milliseconds time_until(tandemd_cluster& c, int watcher, int target,
                                     const std::string& state, clock::time_point since,
                                     std::chrono::milliseconds limit = 10s) {
  const bool ok = tandemd_cluster::wait_until([&] { return c.state_of(watcher, target) == state; },
                                              limit, 10ms);
  if (!ok) return limit;
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - since);
}

// A directory of its own for the fence command's record, removed at the end.
struct fence_dir : test::temp_dir {
  fence_dir() : test::temp_dir("tandem-fence") {}
  std::string log() const { return file("fence.log"); }
};

// Majority quorum; a node that loses it runs the fence command, which appends its node name
// and the reason (from the environment tandemd gives it) to fence.log.
tandemd_cluster_options fenced(const fence_dir& d) {
  tandemd_cluster_options o;
  o.quorum =
      "{mode: majority, on_loss: {action: fence, fence_command: 'echo \"$TANDEM_NODE: "
      "$TANDEM_REASON\" >> " +
      d.log() + "'}}";
  return o;
}

class tandemd_netns : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "%s\n", c_.logs().c_str());
  }
  fence_dir fence_;
  tandemd_cluster c_{fenced(fence_)};
};

TEST_F(tandemd_netns, three_nodes_see_a_crash_and_a_cut_node_go_and_come_back) {
  for (int i = 0; i < 3; ++i)
    c_.start(i);
  ASSERT_TRUE(c_.wait_all_up()) << "the three nodes never all saw each other";
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(c_.holds_quorum(i)) << c_.node(i);
    const json s = c_.status(i);
    EXPECT_EQ(s["links"].size(), 2u);
    for (const json& n : s["nodes"])
      if (!n.value("self", false)) {
        EXPECT_EQ(n["links"].size(), 2u) << n.dump();
      }
  }

  // kill -9 node3: nodes 1 and 2 see it gone in time and keep quorum (2 of 3).
  auto t0 = clock::now();
  c_.kill9(2);
  const auto seen1 = time_until(c_, 0, 2, "down", t0);
  const auto seen2 = time_until(c_, 1, 2, "down", t0);
  EXPECT_LE(seen1, bound);
  EXPECT_LE(seen2, bound);
  std::fprintf(stderr, "kill -9 detected after %lld / %lld ms (bound %lld)\n",
               static_cast<long long>(seen1.count()), static_cast<long long>(seen2.count()),
               static_cast<long long>(bound.count()));
  EXPECT_TRUE(c_.holds_quorum(0));
  EXPECT_TRUE(c_.holds_quorum(1));
  EXPECT_TRUE(has_event(c_.events(0), "heartbeat.node_down", "node3"));

  // It restarts (a new incarnation) and rejoins.
  c_.start(2);
  ASSERT_TRUE(c_.wait_all_up()) << "node3 did not rejoin after its restart";
  EXPECT_TRUE(has_event(c_.events(0), "heartbeat.node_up", "rejoined"));

  // One interconnect of node2 down: a warning, node2 stays up everywhere.
  c_.net().set_link(c_.node(1), 1, false);
  EXPECT_TRUE(tandemd_cluster::wait_until(
      [&] { return has_event(c_.events(0), "heartbeat.link_down", "node2"); }, 5s));
  EXPECT_EQ(c_.state_of(0, 1), "up");
  EXPECT_EQ(c_.state_of(2, 1), "up");
  EXPECT_TRUE(c_.holds_quorum(1));

  // Now its last link too: every link of node2 is cut. Nodes 1 and 3 see it down in time;
  // node2 sees both others down and loses quorum (1 of 3).
  t0 = clock::now();
  c_.net().set_link(c_.node(1), 0, false);
  EXPECT_LE(time_until(c_, 0, 1, "down", t0), bound);
  EXPECT_LE(time_until(c_, 2, 1, "down", t0), bound);
  EXPECT_TRUE(tandemd_cluster::wait_until([&] { return !c_.holds_quorum(1); }, 5s));
  EXPECT_TRUE(c_.holds_quorum(0));
  EXPECT_TRUE(c_.holds_quorum(2));
  EXPECT_TRUE(has_event(c_.events(1), "tandemd.groups_stop"));
  // node2 ran the fence command, and only node2.
  EXPECT_TRUE(tandemd_cluster::wait_until(
      [&] { return has_event(c_.events(1), "tandemd.fence", "succeeded"); }, 5s));
  std::ifstream fl(fence_.log());
  std::string fence_text((std::istreambuf_iterator<char>(fl)), std::istreambuf_iterator<char>());
  EXPECT_THAT(fence_text, HasSubstr("node2: 1 of 3 nodes up"));
  EXPECT_THAT(fence_text, ::testing::Not(HasSubstr("node1: ")));
  EXPECT_THAT(fence_text, ::testing::Not(HasSubstr("node3: ")));

  // Restored: it rejoins and holds quorum again.
  c_.net().set_link(c_.node(1), 0, true);
  c_.net().set_link(c_.node(1), 1, true);
  ASSERT_TRUE(c_.wait_all_up()) << "node2 did not rejoin after its links came back";
  EXPECT_TRUE(tandemd_cluster::wait_until([&] { return c_.holds_quorum(1); }, 5s));
}

TEST_F(tandemd_netns, a_clean_stop_is_seen_at_once_and_start_rejoins) {
  for (int i = 0; i < 3; ++i)
    c_.start(i);
  ASSERT_TRUE(c_.wait_all_up());

  // tandemctl cluster stop on node3: the others see it leave well before the timeout.
  std::ostringstream out, err;
  auto t0 = clock::now();
  ASSERT_EQ(ctl::cli::run_tandemctl({"--socket", c_.sock(2), "cluster", "stop"}, out, err), 0)
      << err.str();
  EXPECT_THAT(out.str(), HasSubstr("stopped"));
  EXPECT_LT(time_until(c_, 0, 2, "down", t0), timeout);
  EXPECT_TRUE(has_event(c_.events(0), "heartbeat.node_left", "node3"));
  EXPECT_EQ(c_.status(2).value("state", ""), "stopped");

  ASSERT_EQ(ctl::cli::run_tandemctl({"--socket", c_.sock(2), "cluster", "start"}, out, err), 0)
      << err.str();
  ASSERT_TRUE(c_.wait_all_up());

  // SIGTERM: a clean stop as well.
  t0 = clock::now();
  c_.terminate(1);
  EXPECT_LT(time_until(c_, 0, 1, "down", t0), timeout);
  EXPECT_TRUE(has_event(c_.events(2), "heartbeat.node_left", "node2"));
  EXPECT_THAT(c_.log(1), HasSubstr("left cluster lab"));

  // The status and events commands read the daemon.
  std::ostringstream st, ev;
  ASSERT_EQ(ctl::cli::run_tandemctl({"--socket", c_.sock(0), "status"}, st, err), 0) << err.str();
  EXPECT_THAT(st.str(), HasSubstr("node3"));
  EXPECT_THAT(st.str(), HasSubstr("quorum:  held"));
  ASSERT_EQ(
      ctl::cli::run_tandemctl({"--socket", c_.sock(0), "events", "--severity", "info"}, ev, err),
      0);
  EXPECT_THAT(ev.str(), HasSubstr("heartbeat.node_left"));
}

TEST_F(tandemd_netns, a_node_with_another_secret_is_not_admitted_and_the_event_says_why) {
  c_.start(0);
  c_.start(1);
  ASSERT_TRUE(c_.wait_all_up());
  // node3 runs the same file with another secret.
  const std::string other_secret = c_.net().log_dir() + "/other-secret";
  {
    std::ofstream s(other_secret, std::ios::binary);
    s << "this is not the cluster's secret, 32+";
  }
  ASSERT_EQ(::chmod(other_secret.c_str(), 0600), 0);
  std::ifstream in(c_.config());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  text.replace(text.find(c_.secret()), c_.secret().size(), other_secret);
  const std::string other_config = c_.net().log_dir() + "/other.yaml";
  std::ofstream(other_config) << text;
  c_.start(2, {}, other_config);

  EXPECT_TRUE(tandemd_cluster::wait_until(
      [&] { return has_event(c_.events(0), "heartbeat.rejected_auth", "wrong cluster secret"); },
      5s));
  std::this_thread::sleep_for(timeout);
  EXPECT_NE(c_.state_of(0, 2), "up");
  EXPECT_NE(c_.state_of(1, 2), "up");
  EXPECT_NE(c_.state_of(2, 0), "up");
  const json s = c_.status(0);
  bool counted = false;
  for (const json& n : s["nodes"])
    if (n.value("name", "") == "node3") counted = n["counters"].value("dropped_auth", 0) > 0;
  EXPECT_TRUE(counted) << s.dump();
  EXPECT_TRUE(c_.holds_quorum(0));  // 2 of 3
}

// Two nodes, quorum mode none with ping partition resolution. The target is node1's public
// address (10.99.0.10 by the lab's addressing): node1 always reaches it, node2 only over lan 0.
// Cut node2 off: both see the other gone; node2 cannot reach the target and gives quorum up as
// the isolated side, node1 reaches it and keeps quorum.
TEST(tandemd_netns_partition, the_isolated_node_gives_quorum_up_and_the_other_keeps_it) {
  tandemd_cluster_options o;
  o.nodes = 2;
  o.quorum = "{mode: none, partition_resolution: {ping: [10.99.0.10], timeout: 300ms}}";
  tandemd_cluster c(o);
  ASSERT_EQ(c.net().address("node1", 0), "10.99.0.10");
  c.start(0);
  c.start(1);
  ASSERT_TRUE(c.wait_all_up()) << c.logs();
  EXPECT_TRUE(c.holds_quorum(0));
  EXPECT_TRUE(c.holds_quorum(1));
  EXPECT_EQ(c.status(1)["quorum"].value("partition", ""), "not needed");

  c.net().set_link("node2", 0, false);
  c.net().set_link("node2", 1, false);
  EXPECT_TRUE(tandemd_cluster::wait_until([&] { return !c.holds_quorum(1); }, 10s)) << c.logs();
  EXPECT_EQ(c.status(1)["quorum"].value("partition", ""), "isolated");
  EXPECT_TRUE(c.holds_quorum(0)) << c.logs();
  EXPECT_EQ(c.status(0)["quorum"].value("partition", ""), "reachable");
  EXPECT_TRUE(has_event(c.events(1), "quorum.isolated", "10.99.0.10"));
  EXPECT_TRUE(has_event(c.events(0), "quorum.split_brain_risk"));

  c.net().set_link("node2", 0, true);
  c.net().set_link("node2", 1, true);
  ASSERT_TRUE(c.wait_all_up()) << c.logs();
  EXPECT_TRUE(tandemd_cluster::wait_until([&] { return c.holds_quorum(1); }, 10s)) << c.logs();
}

}  // namespace
}  // namespace tandem::lab
