// SPDX-License-Identifier: Apache-2.0
// The group manager (control/groups/group_manager.h) on one node with a simulated peer: real exec
// resources and script monitors (short shell commands in a temporary directory), the cluster
// view fed by the test as tandemd would feed it.
#include "control/groups/group_manager.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/config/cluster_config.h"

namespace tandem::ctl::groups {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using ::testing::HasSubstr;

constexpr uint8_t node_a = 0, node_b = 1;

struct temp_dir {
  fs::path path;
  temp_dir() {
    char tmpl[] = "/tmp/tandem-gm-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A two-node cluster file; `groups` and `monitors` are appended as YAML.
config::cluster_config cluster_of(const std::string& groups_yaml) {
  const std::string text =
      "cluster: {name: lab, secret_file: /nonexistent}\n"
      "nodes:\n"
      "  - {name: node-a, interconnects: [{address: 10.9.0.1}]}\n"
      "  - {name: node-b, interconnects: [{address: 10.9.0.2}]}\n"
      "quorum: {mode: none}\n" +
      groups_yaml;
  auto r = config::parse_cluster_text(text, "test.yaml");
  EXPECT_TRUE(r.ok()) << r.diag.to_string();
  return config::effective_config(r.config, "node-a");
}

// Two resources that log their starts and stops (and their environment) to <dir>/log.
std::string logging_group(const temp_dir& d, const std::string& second_start = "",
                          const std::string& extra = "") {
  const std::string log = d.file("log");
  const std::string r2 =
      second_start.empty() ? "echo start-r2 $TANDEM_GROUP $TANDEM_EVENT >> " + log : second_start;
  return "groups:\n"
         "  - name: web\n"
         "    nodes: [node-a, node-b]\n"
         "    resources:\n"
         "      - name: r1\n"
         "        type: exec\n"
         "        params: {start: 'echo start-r1 >> " +
         log + "', stop: 'echo stop-r1 >> " + log +
         "'}\n"
         "      - name: r2\n"
         "        type: exec\n"
         "        depends_on: [r1]\n"
         "        params: {start: '" +
         r2 + "', stop: 'echo stop-r2 >> " + log +
         "'}\n"
         "        activation: {retries: 1, failovers: 1, final_action: stop_group}\n" +
         extra;
}

class manager : public ::testing::Test {
 protected:
  void make(const std::string& groups_yaml, bool lease = false) {
    cfg_ = cluster_of(groups_yaml);
    manager_hooks h;
    h.emit = [this](const cluster::event& e) { events_.push_back(e); };
    h.stop_cluster = [this](const std::string& why) { stop_cluster_ = why; };
    h.check_timed = [this](const std::string& m, std::chrono::nanoseconds took) {
      timed_.emplace_back(m, took);
    };
    manager_options o;
    o.log_dir = dir_.file("logs");
    o.lease_quorum = lease;
    gm_ = std::make_unique<group_manager>(io_, cfg_, "node-a", node_a, std::move(h), o);
    view_.assign(2, peer_input{});
    view_[node_a] = {true, true, true, true, {}};
    view_[node_b] = {true, false, false, false, {}};  // down
  }

  void peer_b_up() { view_[node_b] = {true, true, true, true, {}}; }

  // Drives the io_context and feeds the view (as tandemd's timer does) until `done` or timeout.
  bool until(const std::function<bool()>& done, milliseconds timeout = milliseconds(10'000)) {
    const auto deadline = clock::now() + timeout;
    while (clock::now() < deadline) {
      view_[node_a].groups = gm_->reports();
      gm_->update(view_, clock::now());
      if (done()) return true;
      io_.run_for(milliseconds(20));
      io_.restart();
    }
    return done();
  }

  cluster::group_report web() const {
    for (const auto& r : gm_->reports())
      if (r.group == cluster::group_id_of("web")) return r;
    ADD_FAILURE() << "no report for web";
    return {};
  }
  bool web_is(cluster::group_state s) const { return web().state == s; }

  size_t count(uint32_t id) const {
    size_t n = 0;
    for (const auto& e : events_)
      n += e.id == id ? 1 : 0;
    return n;
  }
  std::string messages(uint32_t id) const {
    std::string out;
    for (const auto& e : events_)
      if (e.id == id) out += e.message + "\n";
    return out;
  }

  temp_dir dir_;
  asio::io_context io_;
  config::cluster_config cfg_;
  std::unique_ptr<group_manager> gm_;
  std::vector<peer_input> view_;
  std::vector<cluster::event> events_;
  std::string stop_cluster_;
  std::vector<std::pair<std::string, std::chrono::nanoseconds>> timed_;  // check_timed calls
};

TEST_F(manager, starts_in_dependency_order_and_stops_in_reverse) {
  make(logging_group(dir_));
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::online); }));
  EXPECT_EQ(read(dir_.file("log")), "start-r1\nstart-r2 web start\n");
  EXPECT_EQ(count(group_events::online), 1u);
  const nlohmann::json st = gm_->status(clock::now());
  EXPECT_EQ(st["groups"][0]["resources"][1]["state"], "online");
  EXPECT_EQ(st["groups"][0]["nodes"]["node-b"], "down");

  const nlohmann::json ans = gm_->command("stop", "web", "");
  ASSERT_TRUE(ans.value("ok", false)) << ans.dump();
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::offline); }));
  EXPECT_EQ(read(dir_.file("log")), "start-r1\nstart-r2 web start\nstop-r2\nstop-r1\n");
  EXPECT_EQ(web().intent, cluster::group_intent::stop);
  // It stays stopped until a start command.
  EXPECT_FALSE(until([&] { return !web_is(cluster::group_state::offline); }, milliseconds(300)));
  ASSERT_TRUE(gm_->command("start", "web", "").value("ok", false));
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::online); }));
}

TEST_F(manager, a_failed_activation_is_undone_and_fails_over) {
  make(logging_group(dir_, "exit 3"));
  peer_b_up();
  view_[node_b].groups = {};
  // node-a is preferred, so it starts; r2 fails twice (retries: 1).
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::failed); }));
  // Undone newest first, the failed resource included (it may be half up).
  EXPECT_EQ(read(dir_.file("log")), "start-r1\nstop-r2\nstop-r1\n");
  EXPECT_EQ(count(group_events::resource_failed), 2u);
  EXPECT_THAT(messages(group_events::start_failed), HasSubstr("failing over to node-b"));
  EXPECT_EQ(web().failovers, 1);
  // node-b takes it (as its heartbeat says): node-a does nothing more.
  view_[node_b].groups = {{cluster::group_id_of("web"), cluster::group_state::online, 1}};
  EXPECT_FALSE(until([&] { return !web_is(cluster::group_state::failed); }, milliseconds(300)));
  EXPECT_EQ(count(group_events::final_action), 0u);
}

TEST_F(manager, a_failed_activation_with_nowhere_to_go_runs_the_final_action) {
  make(logging_group(dir_, "exit 3"));
  ASSERT_TRUE(until([&] { return count(group_events::final_action) > 0; }));
  EXPECT_THAT(messages(group_events::start_failed), HasSubstr("no other node can take it"));
  // stop_group: recorded as a cluster-wide stop (so no node retries it by itself).
  ASSERT_TRUE(until([&] { return web().intent == cluster::group_intent::stop; }));
  EXPECT_EQ(web().state, cluster::group_state::offline);
  // The operator's start clears the failure and tries again.
  ASSERT_TRUE(gm_->command("start", "web", "").value("ok", false));
  ASSERT_TRUE(until([&] { return count(group_events::resource_failed) >= 4; }));
}

TEST_F(manager, a_monitor_restarts_then_fails_over) {
  const std::string broken = dir_.file("broken");
  make(logging_group(dir_, "", "") +
       "monitors:\n"
       "  - name: health\n"
       "    type: script\n"
       "    group: web\n"
       "    interval: 100ms\n"
       "    timeout: 2s\n"
       "    retries: 0\n"
       "    params: {path: /bin/sh, args: ['-c', 'test ! -e " +
       broken +
       "']}\n"
       "    recovery: {resource: r2, restarts: 1, failovers: 1, final_action: none}\n");
  peer_b_up();
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::online); }));
  std::ofstream(broken) << "x";
  ASSERT_TRUE(until([&] { return count(group_events::recovery_failover) > 0; }));
  EXPECT_EQ(count(group_events::recovery_restart), 1u);
  EXPECT_THAT(messages(group_events::recovery_restart), HasSubstr("resource r2 of group web"));
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::failed); }));
  EXPECT_EQ(web().failovers, 1);
  // The restart stopped and started r2 only; the failover stopped both.
  EXPECT_EQ(read(dir_.file("log")),
            "start-r1\nstart-r2 web start\nstop-r2\nstart-r2 web restart\nstop-r2\nstop-r1\n");
}

TEST_F(manager, every_check_reports_how_long_it_took) {
  make(logging_group(dir_) +
       "monitors:\n"
       "  - name: slow\n"
       "    type: script\n"
       "    interval: 100ms\n"
       "    params: {path: /bin/sh, args: ['-c', 'sleep 0.05']}\n"
       "  - name: failing\n"
       "    type: script\n"
       "    interval: 100ms\n"
       "    retries: 100\n"
       "    params: {path: /bin/sh, args: ['-c', 'exit 1']}\n");
  auto checks_of = [this](const std::string& m) {
    size_t n = 0;
    for (const auto& [name, took] : timed_)
      n += name == m ? 1 : 0;
    return n;
  };
  ASSERT_TRUE(until([&] { return checks_of("slow") >= 3 && checks_of("failing") >= 3; }));
  for (const auto& [name, took] : timed_) {
    if (name == "slow") {
      EXPECT_GE(took, milliseconds(50)) << name;
    }
    EXPECT_LT(took, milliseconds(5'000)) << name;
  }
  EXPECT_GE(count(group_events::monitor_failed), 3u);  // failed checks are timed too
}

TEST_F(manager, a_monitor_runs_its_final_action_once_restarts_and_failovers_are_used_up) {
  make(logging_group(dir_) +
       "monitors:\n"
       "  - name: always-bad\n"
       "    type: script\n"
       "    group: web\n"
       "    interval: 100ms\n"
       "    retries: 1\n"
       "    params: {path: /bin/false}\n"
       "    recovery: {restarts: 1, failovers: 0, final_action: stop_group}\n");
  ASSERT_TRUE(until([&] { return count(group_events::final_action) > 0; }));
  EXPECT_EQ(count(group_events::recovery_restart), 1u);
  EXPECT_EQ(count(group_events::recovery_failover), 0u);
  // retries: 1, so each step acts on the second failure in a row.
  EXPECT_GE(count(group_events::monitor_failed), 4u);
  // stop_group: a cluster-wide stop, carried out here.
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::offline); }));
  EXPECT_EQ(web().intent, cluster::group_intent::stop);
  EXPECT_EQ(count(group_events::final_action), 1u);
}

TEST_F(manager, an_intent_relayed_by_a_peer_is_carried_out_and_relayed_on) {
  make(logging_group(dir_));
  peer_b_up();
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::online); }));
  cluster::group_report r{cluster::group_id_of("web"), cluster::group_state::offline};
  r.intent = cluster::group_intent::move;
  r.target = node_b;
  r.intent_seq = 7;
  view_[node_b].groups = {r};
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::offline); }));
  EXPECT_EQ(web().intent, cluster::group_intent::move);
  EXPECT_EQ(web().intent_seq, 7u);
  EXPECT_EQ(web().target, node_b);
  EXPECT_THAT(messages(group_events::command), HasSubstr("move to node-b"));
  EXPECT_THAT(messages(group_events::stopping), HasSubstr("moving to node-b"));
}

// One cluster-wide lease: only its holder runs groups. A peer without the lease still counts as a
// place to fail over to, and once nothing runs here this node asks to hand the lease over.
TEST_F(manager, with_a_lease_a_failover_hands_the_lease_to_the_peer) {
  make(logging_group(dir_, "exit 3"), true);
  peer_b_up();
  view_[node_b].quorum = false;  // node-a holds the lease
  EXPECT_FALSE(gm_->wants_lease_handoff());
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::failed); }));
  EXPECT_THAT(messages(group_events::start_failed), HasSubstr("failing over to node-b"));
  ASSERT_TRUE(until([&] { return gm_->wants_lease_handoff().has_value(); }));
  EXPECT_EQ(*gm_->wants_lease_handoff(), "node-b");
  // Once node-b holds it there is nothing more to hand over.
  view_[node_a].quorum = false;
  view_[node_b].quorum = true;
  EXPECT_TRUE(until([&] { return !gm_->wants_lease_handoff(); }));
}

TEST_F(manager, a_reload_adds_groups_and_rebuilds_the_resources_of_stopped_ones) {
  make(logging_group(dir_));
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::online); }));
  EXPECT_EQ(gm_->blocked_by_running({"web", "other"}), std::vector<std::string>{"web"});
  // A new group starts; the running one is untouched.
  const std::string log = dir_.file("log");
  config::cluster_config next =
      cluster_of(logging_group(dir_) + "  - name: extra\n    resources:\n" +
                 "      - {name: x, type: exec, params: {start: 'echo start-x >> " + log + "'}}\n");
  gm_->reconfigure(next);
  ASSERT_TRUE(until([&] {
    for (const auto& r : gm_->reports())
      if (r.group == cluster::group_id_of("extra")) return r.state == cluster::group_state::online;
    return false;
  }));
  EXPECT_TRUE(web_is(cluster::group_state::online));
  // Stopped, web's resources follow the file: its next start runs the new command.
  ASSERT_TRUE(gm_->command("stop", "web", "").value("ok", false));
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::offline); }));
  std::string changed = logging_group(dir_, "echo start-new >> " + log);
  gm_->reconfigure(cluster_of(changed));
  EXPECT_TRUE(gm_->blocked_by_running({"web"}).empty());
  ASSERT_TRUE(gm_->command("start", "web", "").value("ok", false));
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::online); }));
  EXPECT_THAT(read(log), HasSubstr("start-new"));
  // The new file drops "extra", which still runs here: kept (tandemd refuses such a reload).
  bool extra = false;
  for (const auto& r : gm_->reports())
    extra |= r.group == cluster::group_id_of("extra");
  EXPECT_TRUE(extra) << "a running group is never dropped by a reload";
}

TEST_F(manager, commands_are_checked) {
  make(logging_group(dir_));
  EXPECT_THAT(gm_->command("start", "nope", "").value("error", ""), HasSubstr("groups: web"));
  EXPECT_THAT(gm_->command("move", "web", "node-x").value("error", ""),
              HasSubstr("no node named 'node-x'"));
  // node-b is down: no move there.
  EXPECT_THAT(gm_->command("move", "web", "node-b").value("error", ""),
              HasSubstr("not up, online and holding quorum"));
  EXPECT_THAT(gm_->command("move", "web", "").value("error", ""), HasSubstr("no other node"));
}

TEST_F(manager, a_resource_that_cannot_be_set_up_makes_the_group_unavailable_here) {
  // An Azure record outside its zone cannot be addressed: refused at set-up, by name.
  make(
      "groups:\n"
      "  - name: web\n"
      "    resources:\n"
      "      - {name: dns, type: azure_dns, params: {subscription_id: s1, resource_group: rg,"
      " zone: example.com, record_name: web.example.org, address: 192.168.200.1}}\n");
  EXPECT_EQ(web().state, cluster::group_state::failed);
  EXPECT_THAT(messages(group_events::unavailable),
              HasSubstr("record_name web.example.org. is not in zone example.com"));
  const nlohmann::json st = gm_->status(clock::now());
  EXPECT_THAT(st["groups"][0].value("unavailable", ""), HasSubstr("resource dns"));
}

TEST_F(manager, a_group_online_here_is_reasserted_when_a_peer_returns_or_gives_it_up) {
  make(logging_group(dir_));
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::online); }));
  EXPECT_EQ(count(group_events::reasserted), 0u);
  // node-b was known to be down and is back: it may have claimed the resources meanwhile.
  peer_b_up();
  ASSERT_TRUE(until([&] { return count(group_events::reasserted) == 1; }));
  EXPECT_THAT(messages(group_events::reasserted), HasSubstr("node-b is back in the cluster"));
  // It ran the group at the same time; node-a is preferred, so node-b stops it and node-a
  // asserts its resources again once it has.
  view_[node_b].groups = {{cluster::group_id_of("web"), cluster::group_state::online, 0}};
  EXPECT_FALSE(until([&] { return count(group_events::reasserted) > 1; }, milliseconds(200)));
  view_[node_b].groups = {{cluster::group_id_of("web"), cluster::group_state::offline, 0}};
  ASSERT_TRUE(until([&] { return count(group_events::reasserted) == 2; }));
  EXPECT_THAT(messages(group_events::reasserted),
              HasSubstr("it also ran on node-b, which stopped it"));
  EXPECT_TRUE(web_is(cluster::group_state::online));
}

TEST_F(manager, stop_all_stops_active_groups_and_blocks_starts) {
  make(logging_group(dir_));
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::online); }));
  bool done = false;
  gm_->stop_all("cluster stop", [&] { done = true; });
  ASSERT_TRUE(until([&] { return done; }));
  EXPECT_TRUE(web_is(cluster::group_state::offline));
  EXPECT_FALSE(gm_->any_active());
  EXPECT_FALSE(until([&] { return !web_is(cluster::group_state::offline); }, milliseconds(300)));
  gm_->allow_starts(true);
  ASSERT_TRUE(until([&] { return web_is(cluster::group_state::online); }));
}

}  // namespace
}  // namespace tandem::ctl::groups
