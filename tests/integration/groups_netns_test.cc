// SPDX-License-Identifier: Apache-2.0
// Failover groups end to end (tests/lab/ha_cluster.h): two nodes running tandem-replicator and
// tandemd, a tandem-witness and a client. The group "web" is the mirrored volume, ext4 on it and
// a file service behind the floating IP the client uses. A crashed node, the partition matrix
// (with a witness), a failing service, a dead public link and a node where activation fails: the
// group ends up on the other node, never on two at once, the client's neighbour entry follows
// it, and every file the client stored before is there, on a file system fsck finds clean.
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/exec/process.h"
#include "tests/lab/ha_cluster.h"
#include "tests/support/tandemctl.h"

namespace tandem::lab {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using json = nlohmann::json;
using clock = std::chrono::steady_clock;

// Heartbeat timeout 1 s, witness lease 3 s; activation (promote, loop, fsck, mount, service)
// takes a few seconds under ASan on this 2-core machine.
constexpr auto takeover_limit = 40s;

int64_t ms_since(clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t).count();
}

test::cli_result ctl_on(ha_cluster& c, int i, std::vector<std::string> args) {
  args.insert(args.begin(), {"--socket", c.daemons().sock(i)});
  return test::tandemctl(args);
}

bool has_event(ha_cluster& c, int i, const std::string& name, const std::string& text = {}) {
  for (const json& e : c.daemons().events(i))
    if (e.value("name", "") == name && e.value("message", "").find(text) != std::string::npos)
      return true;
  return false;
}

std::string content(int k) {
  std::string s = "file " + std::to_string(k) + "\n";
  for (int j = 0; j < 200 * (k + 1); ++j)
    s += static_cast<char>('a' + (j * 7 + k) % 26);
  return s;
}

// Node i's service, or with i = vip the floating IP's (wherever the group runs).
constexpr int vip = -1;

std::pair<int, std::string> request(ha_cluster& c, int i, const std::string& method,
                                    const std::string& file, const std::string& body = {}) {
  return i == vip ? c.http_vip(method, file, body) : c.http(i, method, file, body);
}

std::string name_of(ha_cluster& c, int i) {
  return i == vip ? "the floating IP " + c.vip() : c.node(i);
}

// Stores files 0..n-1 through node i's service; all must be acknowledged (201).
void store(ha_cluster& c, int i, int n) {
  for (int k = 0; k < n; ++k) {
    const auto [code, body] = request(c, i, "PUT", "f" + std::to_string(k), content(k));
    ASSERT_EQ(code, 201) << "PUT f" << k << " to " << name_of(c, i) << ": " << body;
  }
}

void check_files(ha_cluster& c, int i, int n) {
  for (int k = 0; k < n; ++k) {
    const auto [code, body] = request(c, i, "GET", "f" + std::to_string(k));
    ASSERT_EQ(code, 200) << "f" << k << " on " << name_of(c, i);
    EXPECT_EQ(body, content(k)) << "f" << k << " differs on " << name_of(c, i);
  }
}

// Stops the group, then checks the file system on node i's copy with e2fsck -fn.
void fsck_clean(ha_cluster& c, int i) {
  const auto r = ctl_on(c, i, {"group", "stop", "web", "--timeout", "60"});
  ASSERT_EQ(r.code, 0) << r.err;
  c.replicator(i, {{"cmd", "promote"}, {"volume", "db"}});
  const json lp = c.replicator(i, {{"cmd", "loop"}, {"volume", "db"}});
  const std::string dev = lp.value("device", "");
  ASSERT_FALSE(dev.empty()) << lp.dump();
  const ctl::run_result fsck = ctl::run({"e2fsck", "-f", "-n", dev}, 60s);
  EXPECT_TRUE(fsck.status.ok()) << fsck.output;
  c.replicator(i, {{"cmd", "unloop"}, {"volume", "db"}});
  c.replicator(i, {{"cmd", "demote"}, {"volume", "db"}});
}

class groups_netns : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && c_) std::fprintf(stderr, "%s\n", c_->logs().c_str());
  }
  ha_cluster& up(const ha_cluster_options& o = {}) {
    c_ = std::make_unique<ha_cluster>(o);
    c_->start();
    return *c_;
  }
  std::unique_ptr<ha_cluster> c_;
};

TEST_F(groups_netns, a_crashed_active_node_fails_over_with_every_acknowledged_file) {
  ha_cluster& c = up();
  ASSERT_TRUE(c.wait_online(0, 0, 60s)) << c.group(0).dump(2);
  ASSERT_TRUE(c.wait_online(1, 0, 5s)) << "node2 does not see it: " << c.group(1).dump(2);
  EXPECT_EQ(c.serving(), "node1");
  // The client uses the floating IP throughout.
  EXPECT_EQ(c.serving_vip(), "node1");
  store(c, vip, 20);
  if (HasFatalFailure()) return;
  EXPECT_EQ(c.client_vip_mac(), c.net().mac("node1", 0));
  const auto st = ctl_on(c, 1, {"group", "status", "web"});
  EXPECT_EQ(st.code, 0) << st.err;
  EXPECT_THAT(st.out, HasSubstr("online on node1"));

  const auto t0 = clock::now();
  c.kill_node(0);
  ASSERT_TRUE(c.wait_online(1, 1, takeover_limit)) << c.group(1).dump(2);
  std::printf("group online on node2 %lld ms after node1 was killed\n",
              static_cast<long long>(ms_since(t0)));
  // Before the client sends anything: node2's announcements moved its neighbour entry.
  EXPECT_TRUE(tandemd_cluster::wait_until(
      [&] { return c.client_vip_mac() == c.net().mac("node2", 0); }, 2s, 20ms))
      << c.net().exec("client", {"ip", "neigh", "show"}).output;
  // A new connection to the same address reaches node2's service, with every file.
  EXPECT_EQ(c.serving_vip(), "node2");
  EXPECT_EQ(c.serving(), "node2");
  check_files(c, vip, 20);
  EXPECT_TRUE(has_event(c, 1, "group.starting", "failover"));
  // The service takes new files on node2.
  const auto [code, body] = c.http_vip("PUT", "after", "written after the failover\n");
  EXPECT_EQ(code, 201) << body;

  // node1 comes back (after a "reboot"): it rejoins as a standby (failback manual) and the group
  // stays.
  c.clear_remains(0);
  c.start_replicator(0);
  c.start_daemon(0);
  ASSERT_TRUE(c.daemons().wait_all_up(30s));
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(c.online_on(0), "node2");
  EXPECT_EQ(c.serving(), "node2");
  EXPECT_EQ(c.serving_vip(), "node2");
  // node2 announced the address again when node1 came back (it may have claimed it meanwhile).
  EXPECT_TRUE(has_event(c, 1, "group.reasserted", "node1 is back"));
  fsck_clean(c, 1);
}

// Records, every 20 ms from outside, whether each node's tandemd runs the group (starting,
// online or stopping) and whether each node's service answers the client: an overlap is a
// round in which both nodes did.
class overlap_probe {
 public:
  explicit overlap_probe(ha_cluster& c) : c_(c), thread_([this] { run(); }) {}
  ~overlap_probe() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int rounds() const { return rounds_; }
  const std::vector<std::string>& overlaps() const { return overlaps_; }

 private:
  void run() {
    while (!stop_) {
      bool active[2] = {false, false};
      for (int i = 0; i < 2; ++i) {
        try {
          const std::string s = c_.group(i).value("state", "");
          active[i] = s == "starting" || s == "online" || s == "stopping";
        } catch (const std::exception&) {
        }
      }
      bool serving[2] = {false, false};
      for (int i = 0; i < 2; ++i)
        serving[i] = c_.http(i, "GET", "", {}, 1s).first == 200;
      ++rounds_;
      if (active[0] && active[1])
        overlaps_.push_back("both daemons active, round " + std::to_string(rounds_));
      if (serving[0] && serving[1])
        overlaps_.push_back("both services answered, round " + std::to_string(rounds_));
      std::this_thread::sleep_for(20ms);
    }
  }
  ha_cluster& c_;
  std::atomic<bool> stop_{false};
  std::atomic<int> rounds_{0};
  std::vector<std::string> overlaps_;
  std::thread thread_;
};

// The partition matrix with a witness (lease 3 s): the active node cut off from everything,
// from the public lan only (it loses the witness, the peer still sees it), the interconnect
// only (both reach the witness: the holder keeps the group), and the witness itself (nobody may
// run the group). Each cut lasts 8 s, then heals; at no moment do both nodes run the group.
TEST_F(groups_netns, the_partition_matrix_never_runs_the_group_twice) {
  ha_cluster& c = up();
  ASSERT_TRUE(c.wait_online(0, 0, 60s)) << c.group(0).dump(2);
  store(c, 0, 5);
  if (HasFatalFailure()) return;
  overlap_probe probe(c);
  const auto where = [&]() -> int {
    for (int i = 0; i < 2; ++i)
      if (c.group(i).value("state", "") == "online") return i;
    return -1;
  };
  for (const char* kind : {"all", "public", "interconnect", "witness"}) {
    const int active = where();
    ASSERT_GE(active, 0) << kind << ": the group runs nowhere before the cut";
    const std::string host = c.node(active);
    std::vector<std::pair<std::string, int>> links;
    if (std::string(kind) == "all") links = {{host, 0}, {host, 1}};
    if (std::string(kind) == "public") links = {{host, 0}};
    if (std::string(kind) == "interconnect") links = {{host, 1}};
    if (std::string(kind) == "witness") links = {{"witness", 0}};
    for (const auto& [h, lan] : links)
      c.net().set_link(h, lan, false);
    std::this_thread::sleep_for(8s);
    const int during = where();
    for (const auto& [h, lan] : links)
      c.net().set_link(h, lan, true);
    if (std::string(kind) == "all" || std::string(kind) == "public") {
      EXPECT_EQ(during, 1 - active) << kind << ": the other node should have taken the group";
    } else if (std::string(kind) == "interconnect") {
      EXPECT_EQ(during, active) << kind << ": the lease holder keeps the group";
    } else {
      EXPECT_EQ(during, -1) << kind << ": without the witness nobody may run the group";
    }
    std::printf("cut %s of %s: during the cut the group ran on %s\n", kind, host.c_str(),
                during < 0 ? "no node" : c.node(during).c_str());
    ASSERT_TRUE(c.daemons().wait_all_up(30s)) << kind;
    ASSERT_TRUE(tandemd_cluster::wait_until([&] { return where() >= 0; }, takeover_limit, 100ms))
        << kind << ": the group did not come back";
  }
  probe.stop();
  std::printf("partition matrix: %d probe rounds, %zu overlaps\n", probe.rounds(),
              probe.overlaps().size());
  EXPECT_TRUE(probe.overlaps().empty()) << probe.overlaps().front();
  EXPECT_GT(probe.rounds(), 30);
  check_files(c, where(), 5);
}

TEST_F(groups_netns, a_failing_service_is_restarted_then_the_group_fails_over) {
  ha_cluster_options o;
  o.monitors =
      "  - name: http-alive\n    type: pid\n    group: web\n    interval: 300ms\n"
      "    retries: 0\n    params: {resource: http}\n"
      "    recovery: {restarts: 1, failovers: 1, final_action: none}\n";
  ha_cluster& c = up(o);
  ASSERT_TRUE(c.wait_online(0, 0, 60s)) << c.group(0).dump(2);
  const auto service_pid = [&]() -> int {
    const json g = c.group(0);
    for (const json& r : g["resources"])
      if (r.value("name", "") == "http" && r.contains("details"))
        return r["details"].value("pid", -1);
    return -1;
  };
  const int first = service_pid();
  ASSERT_GT(first, 0) << c.group(0).dump(2);
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  // Restart 1 of 1 on node1: a new service process, the group stays.
  ASSERT_TRUE(tandemd_cluster::wait_until(
      [&] {
        const int p = service_pid();
        return p > 0 && p != first && c.group(0).value("state", "") == "online";
      },
      20s, 50ms))
      << c.group(0).dump(2);
  EXPECT_TRUE(has_event(c, 0, "group.recovery_restart", "restart 1 of 1"));
  EXPECT_EQ(c.serving(), "node1");
  // Again: restarts are used up, so the group fails over to node2.
  ASSERT_EQ(::kill(service_pid(), SIGKILL), 0);
  ASSERT_TRUE(c.wait_online(1, 1, takeover_limit)) << c.group(1).dump(2);
  EXPECT_TRUE(has_event(c, 0, "group.recovery_failover", "node2"));
  EXPECT_EQ(c.group(0).value("state", ""), "failed");
  EXPECT_EQ(c.serving(), "node2");
}

// The active node's public interface loses its link: the nic_link monitor (driven by link
// events) fails the group over at once, and the floating IP follows it to node2.
TEST_F(groups_netns, a_dead_public_link_fails_the_group_over) {
  ha_cluster_options o;
  o.monitors =
      "  - name: public-link\n    type: nic_link\n    group: web\n    interval: 5s\n"
      "    retries: 0\n    params: {interface: eth0}\n"
      "    recovery: {restarts: 0, failovers: 1, final_action: none}\n"
      "  - name: vip-present\n    type: floating_ip\n    group: web\n    interval: 500ms\n"
      "    params: {resource: vip}\n";
  ha_cluster& c = up(o);
  ASSERT_TRUE(c.wait_online(0, 0, 60s)) << c.group(0).dump(2);
  ASSERT_TRUE(c.wait_online(1, 0, 5s));
  EXPECT_EQ(c.serving_vip(), "node1");
  const auto t0 = clock::now();
  c.net().set_link("node1", 0, false);
  ASSERT_TRUE(c.wait_online(1, 1, takeover_limit)) << c.group(1).dump(2);
  std::printf("group online on node2 %lld ms after node1's public link went down\n",
              static_cast<long long>(ms_since(t0)));
  // The monitor saw it from the link event, long before its 5 s interval.
  EXPECT_TRUE(has_event(c, 0, "group.monitor_failed", "eth0 has no carrier"));
  EXPECT_TRUE(has_event(c, 0, "group.recovery_failover", "public-link"));
  EXPECT_TRUE(tandemd_cluster::wait_until(
      [&] { return c.client_vip_mac() == c.net().mac("node2", 0); }, 2s, 20ms))
      << c.net().exec("client", {"ip", "neigh", "show"}).output;
  EXPECT_EQ(c.serving_vip(), "node2");
  c.net().set_link("node1", 0, true);
}

TEST_F(groups_netns, activation_failure_move_and_failback) {
  ha_cluster_options o;
  o.failback = "auto";
  ha_cluster& c = up(o);
  // Not yet: node1's mount point is a file, so its filesystem resource cannot start.
  ASSERT_TRUE(c.wait_online(0, 0, 60s)) << c.group(0).dump(2);
  // (The group first came up on node1; break it there and make it fail over by a restart.)
  auto r = ctl_on(c, 0, {"group", "stop", "web"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::filesystem::remove(c.mount_point(0));
  std::ofstream(c.mount_point(0)) << "not a directory\n";
  r = ctl_on(c, 0, {"group", "start", "web", "--timeout", "60"});
  EXPECT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(c.wait_online(0, 1, takeover_limit)) << c.group(0).dump(2);
  EXPECT_TRUE(has_event(c, 0, "group.start_failed", "failing over to node2"));
  EXPECT_EQ(c.group(1)["nodes"].value("node1", ""), "failed");
  // A move to node1 is refused while it cannot take it? No: a move clears its failure. Repair
  // the mount point and move the group back with tandemctl.
  std::filesystem::remove(c.mount_point(0));
  std::filesystem::create_directories(c.mount_point(0));
  r = ctl_on(c, 1, {"group", "move", "web", "node1", "--timeout", "60"});
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("online on node1"));
  // Move to node2 pins it there even with failback auto.
  r = ctl_on(c, 0, {"group", "move", "web", "--timeout", "60"});
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("online on node2"));
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(c.online_on(0), "node2");
  // `group start` replaces the move: failback auto brings it home to node1.
  r = ctl_on(c, 1, {"group", "start", "web"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(c.wait_online(1, 0, takeover_limit)) << c.group(1).dump(2);
  EXPECT_TRUE(has_event(c, 1, "group.stopping", "failback"));
  EXPECT_EQ(c.serving(), "node1");
}

}  // namespace
}  // namespace tandem::lab
