// SPDX-License-Identifier: Apache-2.0
// The monitors (control/groups/monitor.h): pid against real child processes, script exit
// statuses and timeouts, ip against loopback and TEST-NET, the mirror monitors against an
// in-process stand-in for tandem-replicator's control socket, the types this build lacks.
#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/api/jsonl_socket.h"
#include "control/config/cluster_config.h"
#include "control/config/groups_config.h"
#include "control/exec/process.h"
#include "control/groups/monitor.h"
#include "control/quorum/prober.h"
#include "tests/support/temp_dir.h"

namespace tandem::ctl::groups {
namespace {

using namespace std::chrono_literals;
using config::monitor_config;
using config::monitor_type;
using json = nlohmann::json;
using std::chrono::steady_clock;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// An exec resource stand-in whose main_pid() the test sets.
class fake_exec final : public resource {
 public:
  explicit fake_exec(std::string name) : resource(std::move(name)) {}
  config::resource_type type() const noexcept override { return config::resource_type::exec; }
  action_result do_start(const action_context&) override { return {true, {}}; }
  action_result do_stop(const action_context&) override { return {true, {}}; }
  pid_t main_pid() const override { return pid.load(); }
  std::atomic<pid_t> pid{-1};
};

// Everything a monitor sees: one node "n1" of cluster "c1", a group "g" with resource "web".
struct surroundings {
  config::cluster_config cfg;
  fake_exec web{"web"};
  monitor_env env;

  surroundings() {
    cfg.name = "c1";
    env.cfg = &cfg;
    env.node = "n1";
    env.find = [this](std::string_view n) -> resource* { return n == "web" ? &web : nullptr; };
  }
};

monitor_config make_config(std::string name, monitor_type t) {
  monitor_config mc;
  mc.name = std::move(name);
  mc.type = t;
  mc.group = "g";
  return mc;
}

std::unique_ptr<monitor> make(const monitor_config& mc, const surroundings& s) {
  return make_monitor(mc, s.env);
}

// ---- pid ----------------------------------------------------------------------------------------

TEST(pid_monitor, healthy_while_the_process_runs_failed_once_it_died_or_was_reaped) {
  surroundings s;
  monitor_config mc = make_config("webw", monitor_type::pid);
  mc.params.values["resource"] = std::string("web");
  const auto m = make(mc, s);
  EXPECT_EQ(m->type(), monitor_type::pid);
  EXPECT_EQ(m->name(), "webw");

  spawn_options o;
  o.argv = {"sleep", "30"};
  process child = process::spawn(o);
  s.web.pid = child.pid();
  for (int i = 0; i < 3; ++i) {
    const check_result r = m->check(1s);
    EXPECT_TRUE(r.ok) << r.message;
    EXPECT_EQ(r.message, "");
  }

  child.signal(SIGKILL);
  ASSERT_TRUE(child.wait(5s)) << "the child did not die";
  const std::string which = "pid " + std::to_string(child.pid()) + " of resource web exited";
  const check_result zombie = m->check(1s);  // ended, not reaped yet: still in /proc
  EXPECT_FALSE(zombie.ok);
  EXPECT_EQ(zombie.message, which + " (not yet reaped)");

  child.stop();  // reaped: gone from /proc
  const check_result gone = m->check(1s);
  EXPECT_FALSE(gone.ok);
  EXPECT_EQ(gone.message, which);

  process again = process::spawn(o);  // the resource restarted it: healthy again
  s.web.pid = again.pid();
  EXPECT_TRUE(m->check(1s).ok);
}

TEST(pid_monitor, a_resource_without_a_process_or_a_missing_resource_is_a_failure) {
  surroundings s;
  monitor_config mc = make_config("webw", monitor_type::pid);
  mc.params.values["resource"] = std::string("web");
  const check_result none = make(mc, s)->check(1s);
  EXPECT_FALSE(none.ok);
  EXPECT_EQ(none.message, "resource web has no running process");

  mc.params.values["resource"] = std::string("db");
  const check_result missing = make(mc, s)->check(1s);
  EXPECT_FALSE(missing.ok);
  EXPECT_EQ(missing.message, "the group has no resource db");
}

// ---- script -------------------------------------------------------------------------------------

monitor_config script_config(std::vector<std::string> args) {
  monitor_config mc = make_config("check", monitor_type::script);
  mc.params.values["path"] = std::string("/bin/sh");
  mc.params.values["args"] = std::move(args);
  return mc;
}

TEST(script_monitor, exit_0_is_healthy_and_the_environment_names_node_group_and_monitor) {
  surroundings s;
  const auto m = make(script_config({"-c",
                                     "test \"$TANDEM_NODE/$TANDEM_GROUP/$TANDEM_MONITOR/"
                                     "$TANDEM_CLUSTER\" = n1/g/check/c1 || "
                                     "{ echo \"env: $TANDEM_NODE/$TANDEM_GROUP/"
                                     "$TANDEM_MONITOR/$TANDEM_CLUSTER\"; exit 1; }"}),
                      s);
  EXPECT_EQ(m->type(), monitor_type::script);
  const check_result r = m->check(5s);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.message, "");
}

TEST(script_monitor, per_node_parameters_win) {
  surroundings s;
  monitor_config mc = script_config({"-c", "exit 1"});
  mc.per_node["n1"].values["args"] = std::vector<std::string>{"-c", "exit 0"};
  EXPECT_TRUE(make(mc, s)->check(5s).ok);
  s.env.node = "n2";
  EXPECT_FALSE(make(mc, s)->check(5s).ok);
}

TEST(script_monitor, a_failure_names_the_status_and_the_end_of_the_output) {
  surroundings s;
  const check_result r =
      make(script_config({"-c", "echo starting; printf 'disk\nfull\n' >&2; exit 3"}), s)->check(5s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "/bin/sh exited with 3: starting disk full");

  const check_result sig = make(script_config({"-c", "kill -KILL $$"}), s)->check(5s);
  EXPECT_FALSE(sig.ok);
  EXPECT_TRUE(contains(sig.message, "/bin/sh killed by signal 9")) << sig.message;

  // Long output: only its last ~200 bytes, on one line.
  const check_result lng =
      make(script_config({"-c",
                          "i=0; while [ $i -lt 100 ]; do echo line$i; i=$((i+1)); done; "
                          "echo the-end; exit 1"}),
           s)
          ->check(5s);
  EXPECT_FALSE(lng.ok);
  EXPECT_TRUE(contains(lng.message, "exited with 1: ...")) << lng.message;
  EXPECT_TRUE(lng.message.ends_with("line98 line99 the-end")) << lng.message;
  EXPECT_FALSE(contains(lng.message, "line0 ")) << lng.message;
  EXPECT_LT(lng.message.size(), 260u) << lng.message;
  EXPECT_EQ(lng.message.find('\n'), std::string::npos);
}

TEST(script_monitor, a_check_that_runs_too_long_is_killed_at_the_timeout) {
  surroundings s;
  monitor_config mc = make_config("slow", monitor_type::script);
  mc.params.values["path"] = std::string("/bin/sleep");
  mc.params.values["args"] = std::vector<std::string>{"5"};
  const auto m = make(mc, s);
  const auto t0 = steady_clock::now();
  const check_result r = m->check(200ms);
  const auto took = steady_clock::now() - t0;
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "/bin/sleep timed out after 200 ms");
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 1s);
}

TEST(script_monitor, a_program_that_cannot_run_is_a_failure_not_an_exception) {
  surroundings s;
  monitor_config mc = make_config("nothere", monitor_type::script);
  mc.params.values["path"] = std::string("/nonexistent/tandem-check");
  const check_result r = make(mc, s)->check(1s);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.message.starts_with("cannot run /nonexistent/tandem-check: ")) << r.message;
}

// ---- ip -----------------------------------------------------------------------------------------

// Skips the test when this machine gives us no ICMP socket of either kind.
#define SKIP_WITHOUT_ICMP()                                               \
  do {                                                                    \
    const quorum::ping_outcome probe = quorum::ping("127.0.0.1", 1000ms); \
    if (!probe.reachable && probe.detail.starts_with("cannot open"))      \
      GTEST_SKIP() << "no ICMP socket here: " << probe.detail;            \
  } while (0)

// An address that does not answer here: a documentation network (RFC 5737) normally, but test
// machines sometimes sit on one (this lab's uplink is 192.0.2.0/24), so each is tried first.
std::string silent_address() {
  static const std::string found = [] {
    for (const char* a : {"203.0.113.1", "198.51.100.1", "192.0.2.1", "240.0.0.1"}) {
      if (!quorum::ping(a, 300ms).reachable) return std::string(a);
    }
    return std::string();
  }();
  return found;
}

#define SKIP_WITHOUT_SILENT_ADDRESS(var)    \
  const std::string var = silent_address(); \
  if (var.empty()) GTEST_SKIP() << "every candidate address answers pings here"

monitor_config ip_config(std::vector<std::string> targets, const std::string& mode = "any") {
  monitor_config mc = make_config("gw", monitor_type::ip);
  mc.params.values["targets"] = std::move(targets);
  mc.params.values["mode"] = mode;
  return mc;
}

TEST(ip_monitor, loopback_answers) {
  SKIP_WITHOUT_ICMP();
  surroundings s;
  const auto m = make(ip_config({"127.0.0.1"}), s);
  EXPECT_EQ(m->type(), monitor_type::ip);
  const check_result r = m->check(2s);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_TRUE(make(ip_config({"127.0.0.1"}, "all"), s)->check(2s).ok);
}

TEST(ip_monitor, a_silent_target_fails_within_the_timeout) {
  SKIP_WITHOUT_ICMP();
  SKIP_WITHOUT_SILENT_ADDRESS(silent);
  surroundings s;
  const auto t0 = steady_clock::now();
  const check_result r = make(ip_config({silent}), s)->check(300ms);
  const auto took = steady_clock::now() - t0;
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.message.starts_with("no target answered: " + silent + " (")) << r.message;
  EXPECT_LT(took, 1s);
}

TEST(ip_monitor, mode_any_is_healthy_as_soon_as_one_answers) {
  SKIP_WITHOUT_ICMP();
  SKIP_WITHOUT_SILENT_ADDRESS(silent);
  surroundings s;
  const auto t0 = steady_clock::now();
  const check_result r = make(ip_config({silent, "127.0.0.1"}), s)->check(5s);
  const auto took = steady_clock::now() - t0;
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_LT(took, 2s) << "the silent target is not waited for";
}

TEST(ip_monitor, mode_all_lists_the_targets_that_did_not_answer) {
  SKIP_WITHOUT_ICMP();
  SKIP_WITHOUT_SILENT_ADDRESS(silent);
  surroundings s;
  const check_result r =
      make(ip_config({"127.0.0.1", silent, "not-an-address"}, "all"), s)->check(1500ms);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.message.starts_with("2 of 3 targets did not answer (mode all): ")) << r.message;
  EXPECT_TRUE(contains(r.message, silent + " (")) << r.message;
  EXPECT_TRUE(contains(r.message, "not-an-address (not an IP address")) << r.message;
  EXPECT_FALSE(contains(r.message, "127.0.0.1")) << r.message;
}

TEST(ip_monitor, a_silent_target_is_asked_again_every_second) {
  SKIP_WITHOUT_ICMP();
  SKIP_WITHOUT_SILENT_ADDRESS(silent);
  surroundings s;
  const check_result r = make(ip_config({silent}), s)->check(2500ms);
  EXPECT_FALSE(r.ok);
  // Either silence (then three echo requests were sent) or an error from the network.
  if (contains(r.message, "no reply to")) {
    EXPECT_TRUE(contains(r.message, "no reply to 3 echo requests within")) << r.message;
  }
}

// ---- mirror_state, mirror_connection ------------------------------------------------------------

// tandem-replicator's control socket: answers "status" with what the test sets.
struct fake_replicator {
  asio::io_context io;
  std::unique_ptr<api::jsonl_server> server;
  std::thread thread;
  std::mutex mu;
  json volume;        // the volume's entry in the answer
  std::string error;  // when set: {"ok":false,"error":...}
  std::chrono::milliseconds delay{0};
  std::vector<json> requests;

  explicit fake_replicator(const std::string& path) {
    api::jsonl_server_options o;
    o.path = path;
    server = std::make_unique<api::jsonl_server>(io, o, [this](const json& req) {
      std::unique_lock lock(mu);
      requests.push_back(req);
      const auto wait = delay;
      lock.unlock();
      if (wait.count() > 0) std::this_thread::sleep_for(wait);
      lock.lock();
      if (!error.empty()) return json{{"ok", false}, {"error", error}};
      json out = {{"ok", true}, {"node", "n1"}, {"volumes", json::array()}};
      if (volume.is_object() && req.value("volume", "") == volume.value("name", ""))
        out["volumes"].push_back(volume);
      return out;
    });
    thread = std::thread([this] { io.run(); });
  }
  ~fake_replicator() {
    io.stop();
    thread.join();
  }
  void set(json v) {
    const std::lock_guard lock(mu);
    volume = std::move(v);
  }
};

json attached_volume(const std::string& role, const std::string& disk, const std::string& conn,
                     const std::string& reason = "") {
  return {{"name", "db"},     {"attached", true},   {"role", role},
          {"disk", disk},     {"connection", conn}, {"reason", reason},
          {"dirty_bytes", 0}, {"node_id", 1},       {"peer", "n2 10.0.0.2:7790"}};
}

struct mirror_fixture : ::testing::Test {
  tandem::test::temp_dir dir{"tandem-mon"};
  surroundings s;
  std::string socket = dir.file("replicator.sock");

  mirror_fixture() { s.cfg.mirrors.control_socket = socket; }

  std::unique_ptr<monitor> make_mirror(monitor_type t) {
    monitor_config mc = make_config(t == monitor_type::mirror_state ? "mdw" : "mdnw", t);
    mc.params.values["volume"] = std::string("db");
    return make(mc, s);
  }
};

TEST_F(mirror_fixture, up_to_date_and_connected_is_healthy) {
  fake_replicator rep(socket);
  rep.set(attached_volume("primary", "up_to_date", "connected"));
  const auto state = make_mirror(monitor_type::mirror_state);
  const auto conn = make_mirror(monitor_type::mirror_connection);
  EXPECT_EQ(state->type(), monitor_type::mirror_state);
  EXPECT_EQ(conn->type(), monitor_type::mirror_connection);
  const check_result a = state->check(2s);
  EXPECT_TRUE(a.ok) << a.message;
  const check_result b = conn->check(2s);
  EXPECT_TRUE(b.ok) << b.message;
  const std::lock_guard lock(rep.mu);
  ASSERT_EQ(rep.requests.size(), 2u);
  EXPECT_EQ(rep.requests[0], (json{{"cmd", "status"}, {"volume", "db"}}));
}

TEST_F(mirror_fixture, a_resync_towards_this_node_is_healthy_for_both) {
  fake_replicator rep(socket);
  rep.set(attached_volume("secondary", "inconsistent", "sync_target"));
  EXPECT_TRUE(make_mirror(monitor_type::mirror_state)->check(2s).ok);
  EXPECT_TRUE(make_mirror(monitor_type::mirror_connection)->check(2s).ok);
  rep.set(attached_volume("primary", "up_to_date", "sync_source"));
  EXPECT_TRUE(make_mirror(monitor_type::mirror_state)->check(2s).ok);
  EXPECT_TRUE(make_mirror(monitor_type::mirror_connection)->check(2s).ok);
}

TEST_F(mirror_fixture, bad_data_or_a_lost_peer_is_a_failure_with_the_reason) {
  fake_replicator rep(socket);
  const auto state = make_mirror(monitor_type::mirror_state);
  const auto conn = make_mirror(monitor_type::mirror_connection);

  rep.set(attached_volume("secondary", "inconsistent", "refused", "the peer's data is unrelated"));
  check_result r = state->check(2s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message,
            "volume db: disk is inconsistent, connection refused (the peer's data is unrelated)");
  r = conn->check(2s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(
      r.message,
      "volume db: not connected to its peer (connection refused: the peer's data is unrelated)");

  rep.set(attached_volume("secondary", "outdated", "connecting"));
  r = state->check(2s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "volume db: disk is outdated, connection connecting");
  r = conn->check(2s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "volume db: not connected to its peer (connection connecting)");

  rep.set(attached_volume("primary", "up_to_date", "standalone"));
  EXPECT_TRUE(state->check(2s).ok) << "this node's data is fine without its peer";
  EXPECT_FALSE(conn->check(2s).ok);

  rep.set(json{{"name", "db"}, {"attached", false}});
  r = state->check(2s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "volume db: not attached");
  r = conn->check(2s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "volume db: not attached");
}

TEST_F(mirror_fixture, the_replicators_refusal_or_an_unknown_volume_is_a_failure) {
  fake_replicator rep(socket);
  {
    const std::lock_guard lock(rep.mu);
    rep.error = "unknown volume \"db\" (configured: web)";
  }
  check_result r = make_mirror(monitor_type::mirror_state)->check(2s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message,
            "tandem-replicator refused the status of volume db: unknown volume \"db\" "
            "(configured: web)");
  {
    const std::lock_guard lock(rep.mu);
    rep.error.clear();
  }
  r = make_mirror(monitor_type::mirror_connection)->check(2s);  // no entry for db
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "tandem-replicator has no volume db");
}

TEST_F(mirror_fixture, no_replicator_is_a_clear_failure) {
  const check_result r = make_mirror(monitor_type::mirror_state)->check(1s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "tandem-replicator is not running (socket " + socket + ")");
  EXPECT_EQ(make_mirror(monitor_type::mirror_connection)->check(1s).message, r.message);
}

TEST_F(mirror_fixture, a_replicator_that_does_not_answer_in_time_is_a_failure) {
  fake_replicator rep(socket);
  rep.set(attached_volume("primary", "up_to_date", "connected"));
  {
    const std::lock_guard lock(rep.mu);
    rep.delay = 1s;
  }
  const auto t0 = steady_clock::now();
  const check_result r = make_mirror(monitor_type::mirror_state)->check(200ms);
  EXPECT_LT(steady_clock::now() - t0, 900ms);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.message.starts_with("tandem-replicator did not answer: ")) << r.message;
  EXPECT_TRUE(contains(r.message, "200 ms")) << r.message;
}

// ---- cloud monitors ---------------------------------------------------------------------------

TEST(make_monitor, cloud_monitors_are_refused_for_what_their_configuration_lacks) {
  surroundings s;
  struct expectation {
    monitor_type type;
    const char* text;
  };
  const expectation cases[] = {
      {monitor_type::aws_vip, "monitor m1: parameter resource is missing"},
      {monitor_type::aws_eip, "monitor m1: parameter resource is missing"},
      {monitor_type::aws_dns, "monitor m1: parameter resource is missing"},
      {monitor_type::gcp_dns, "monitor m1: parameter resource is missing"},
      {monitor_type::azure_dns, "monitor m1: parameter resource is missing"},
      {monitor_type::aws_az, "monitor m1: parameter availability_zone is missing"},
  };
  for (const expectation& e : cases) {
    try {
      (void)make_monitor(make_config("m1", e.type), s.env);
      ADD_FAILURE() << to_string(e.type) << ": no exception";
    } catch (const std::runtime_error& x) {
      EXPECT_EQ(std::string(x.what()), e.text);
    }
  }
}

TEST(make_monitor, a_floating_ip_monitor_needs_its_resource) {
  surroundings s;
  try {
    (void)make_monitor(make_config("m3", monitor_type::floating_ip), s.env);
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& x) {
    EXPECT_STREQ(x.what(), "monitor m3: parameter resource is missing");
  }
  config::monitor_config mc = make_config("m4", monitor_type::floating_ip);
  mc.params.values["resource"] = config::param_value{std::string("vip")};
  auto m = make_monitor(mc, s.env);
  const check_result r = m->check(std::chrono::milliseconds(100));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "the group has no floating_ip resource vip");
}

TEST(make_monitor, a_missing_parameter_is_named) {
  surroundings s;
  try {
    (void)make_monitor(make_config("m2", monitor_type::script), s.env);
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& x) {
    EXPECT_STREQ(x.what(), "monitor m2: parameter path is missing");
  }
}

}  // namespace
}  // namespace tandem::ctl::groups
