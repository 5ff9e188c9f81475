// SPDX-License-Identifier: Apache-2.0
// cluster_config (control/config/cluster_config.h): each kind of mistake with its exact location,
// every problem at once, overrides, effective views, the examples.
#include "control/config/cluster_config.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "tests/unit/config/test_util.h"

namespace tandem::ctl::config {
namespace {

using namespace std::chrono_literals;
using test::has_problem;
using test::load;
using test::minimal_cluster;
using test::only_error;

// minimal_cluster with the first `from` replaced by `to` (which must be there).
std::string edit(std::string_view from, std::string_view to,
                 std::string text = std::string(minimal_cluster)) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

std::string with(std::string_view tail) {
  return std::string(minimal_cluster) + std::string(tail);
}

TEST(cluster_config, minimal_file_is_valid_with_defaults) {
  auto r = load(minimal_cluster);
  ASSERT_TRUE(r.ok()) << r.diag.to_string();
  EXPECT_TRUE(r.diag.all().empty()) << r.diag.to_string();
  const cluster_config& c = r.config;
  EXPECT_EQ(c.name, "demo");
  EXPECT_EQ(c.secret_file, "/etc/tandem/cluster.key");
  ASSERT_EQ(c.nodes.size(), 2u);
  EXPECT_EQ(c.nodes[0].priority, 1);
  EXPECT_EQ(c.nodes[1].priority, 2);
  ASSERT_EQ(c.nodes[1].interconnects.size(), 1u);
  EXPECT_EQ(c.nodes[1].interconnects[0].address, "10.0.0.2");
  EXPECT_EQ(c.nodes[1].interconnects[0].port, 7789);
  EXPECT_EQ(c.heartbeat.interval, 1s);
  EXPECT_EQ(c.heartbeat.timeout, 10s);
  EXPECT_EQ(c.quorum.mode, quorum_mode::witness);
  EXPECT_EQ(c.quorum.witness.url, "http://10.0.0.9:7791");
  EXPECT_EQ(c.quorum.witness.lease, 10s);
  EXPECT_EQ(c.quorum.witness.renew, 3s);
  EXPECT_EQ(c.quorum.on_loss.action, loss_action::stop_groups);
  EXPECT_FALSE(c.mirrors.present);
  EXPECT_FALSE(c.api.http);
  EXPECT_EQ(c.api.socket, "/run/tandem/tandemd.sock");
}

TEST(cluster_config, bad_ip_address) {
  auto r = load(edit("10.0.0.2", "10.0.0.300"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:10:18: nodes[1].interconnects[0].address: "
                         "\"10.0.0.300\" is not an IP address"));
}

TEST(cluster_config, ipv6_interconnects_and_family_mismatch) {
  auto ok = load(edit("10.0.0.2", "fd00::2", edit("10.0.0.1", "fd00::1")));
  EXPECT_TRUE(ok.ok()) << ok.diag.to_string();
  auto r = load(edit("10.0.0.2", "fd00::2"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:10:18: nodes[1].interconnects[0].address: link 0 "
                         "is IPv6 here but IPv4 on node \"a\"; both ends of a link use "
                         "the same address family"));
}

TEST(cluster_config, duplicate_node_name) {
  auto r = load(edit("name: b", "name: a"));
  EXPECT_TRUE(only_error(
      r.diag, "cluster.yaml:8:11: nodes[1].name: node name \"a\" is used twice (first on line 5)"));
}

TEST(cluster_config, duplicate_priority) {
  auto r = load(edit("  - name: b\n", "  - name: b\n    priority: 1\n"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:9:15: nodes[1].priority: priority 1 is already "
                         "node \"a\"'s; priorities must be unique"));
}

TEST(cluster_config, duplicate_interconnect_endpoint) {
  auto r = load(edit("10.0.0.2", "10.0.0.1"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:10:18: nodes[1].interconnects[0].address: 10.0.0.1 "
                         "port 7789 is already an interconnect of node \"a\""));
}

TEST(cluster_config, interconnect_counts_must_match) {
  auto r = load(edit("      - address: 10.0.0.2\n",
                     "      - address: 10.0.0.2\n      - {address: 10.1.0.2, port: 7000}\n"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:10:7: nodes[1].interconnects: node \"b\" has 2 "
                         "interconnects and node \"a\" has 1: interconnects are matched "
                         "by position (the n-th of every node form link n), so every node "
                         "lists the same number"));
}

TEST(cluster_config, unknown_key_with_suggestion) {
  auto r = load(with("heartbeat:\n  intervall: 2s\n"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:15:3: heartbeat: unknown key \"intervall\" (did "
                         "you mean \"interval\"?)"));
  auto top = load(with("grups: []\n"));
  EXPECT_TRUE(only_error(top.diag,
                         "cluster.yaml:14:1: unknown key \"grups\" (did you mean "
                         "\"groups\"?)"));
}

TEST(cluster_config, unknown_key_without_suggestion_lists_the_known_ones) {
  auto r = load(with("heartbeat:\n  period: 2s\n"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:15:3: heartbeat: unknown key \"period\"; known "
                         "keys here: interval, timeout"));
}

TEST(cluster_config, duplicate_key) {
  auto r = load(with("heartbeat:\n  interval: 2s\n  interval: 3s\n"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:16:3: heartbeat: key \"interval\" appears twice "
                         "(first on line 15)"));
}

TEST(cluster_config, heartbeat_timeout_too_small) {
  auto r = load(with("heartbeat:\n  interval: 1s\n  timeout: 2s\n"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:16:12: heartbeat.timeout: the heartbeat timeout "
                         "(2s) must be more than twice the interval (1s), or a single "
                         "lost heartbeat would declare a node dead"));
}

TEST(cluster_config, heartbeat_minimums) {
  auto r = load(with("heartbeat:\n  interval: 50ms\n  timeout: 400ms\n"));
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:15:13: heartbeat.interval: 50ms is too short: "
                          "the heartbeat interval is at least 100ms"));
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:16:12: heartbeat.timeout: 400ms is too short: "
                          "the heartbeat timeout is at least 500ms"));
  EXPECT_EQ(r.diag.error_count(), 2u);
  auto fast = load(with("heartbeat:\n  interval: 100ms\n  timeout: 500ms\n"));
  EXPECT_TRUE(fast.ok()) << fast.diag.to_string();
  EXPECT_EQ(fast.config.heartbeat.interval, 100ms);
}

TEST(cluster_config, bad_duration_unit) {
  auto r = load(with("heartbeat:\n  interval: 1sec\n"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:15:13: heartbeat.interval: \"1sec\": unknown unit "
                         "\"sec\" (use ms, s, m or h)"));
  auto bare = load(with("heartbeat:\n  timeout: 10\n"));
  EXPECT_TRUE(only_error(bare.diag,
                         "cluster.yaml:15:12: heartbeat.timeout: \"10\" has no unit: "
                         "write e.g. 10s or 10ms"));
}

TEST(cluster_config, missing_required_key) {
  auto r = load(edit("  secret_file: /etc/tandem/cluster.key\n", ""));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:2:3: cluster: missing required key "
                         "\"secret_file\""));
  auto nodes = load("cluster: {name: x, secret_file: /k}\n");
  EXPECT_TRUE(only_error(nodes.diag, "cluster.yaml:1:1: missing required key \"nodes\""));
}

TEST(cluster_config, wrong_type_list_versus_map) {
  auto r = load(edit("    interconnects:\n      - address: 10.0.0.2\n",
                     "    interconnects:\n      address: 10.0.0.2\n"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:10:7: nodes[1].interconnects: expected a list "
                         "(\"- \" lines or [a, b]), found a map"));
  auto m = load(with("heartbeat: [1s, 10s]\n"));
  EXPECT_TRUE(only_error(m.diag,
                         "cluster.yaml:14:12: heartbeat: expected a map (key: value "
                         "lines), found a list"));
  auto s = load(edit("name: demo", "name: [demo]"));
  EXPECT_TRUE(only_error(s.diag,
                         "cluster.yaml:2:9: cluster.name: expected a single value, "
                         "found a list"));
}

TEST(cluster_config, yaml_syntax_errors_name_line_and_column) {
  auto r = load(edit("{url: \"http://10.0.0.9:7791\"}", "{url: \"http://10.0.0.9:7791\""));
  ASSERT_EQ(r.diag.all().size(), 1u) << r.diag.to_string();
  EXPECT_EQ(r.diag.all()[0].to_string(),
            "cluster.yaml:14:1: YAML syntax error: end of map flow not found");
  auto indent = load("cluster:\n  name: demo\n secret_file: /k\n");
  ASSERT_EQ(indent.diag.all().size(), 1u) << indent.diag.to_string();
  EXPECT_EQ(indent.diag.all()[0].to_string(),
            "cluster.yaml:3:2: YAML syntax error: end of map not found");
  auto two = load(std::string(minimal_cluster) + "---\nfoo: 1\n");
  EXPECT_TRUE(only_error(two.diag,
                         "cluster.yaml:14:1: the file holds more than one YAML document "
                         "(separated by ---); a configuration file holds exactly one"));
  // yaml-cpp 0.7 loops forever on these in LoadAll(); the loader stops and says where.
  auto comma = load("- a\n- b\n,\n");
  EXPECT_TRUE(only_error(comma.diag, "cluster.yaml:3:1: YAML syntax error: unexpected \",\""));
  auto deep = load("a: " + std::string(5000, '['));
  ASSERT_EQ(deep.diag.all().size(), 1u) << deep.diag.to_string();
  EXPECT_EQ(deep.diag.all()[0].to_string().rfind("cluster.yaml:1:", 0), 0u);
  EXPECT_NE(deep.diag.all()[0].message.find("YAML syntax error: nested too deeply ("),
            std::string::npos)
      << deep.diag.to_string();
  auto lone = load(",");
  EXPECT_TRUE(only_error(lone.diag, "cluster.yaml:1:1: YAML syntax error: unexpected \",\""));
}

TEST(cluster_config, empty_and_unreadable_files) {
  auto empty = load("");
  EXPECT_TRUE(only_error(empty.diag,
                         "cluster.yaml:1:1: the file is empty: expected the cluster: "
                         "and nodes: sections at least"));
  auto scalar = load("hello\n");
  EXPECT_TRUE(only_error(scalar.diag,
                         "cluster.yaml:1:1: expected a map (key: value lines), "
                         "found the value \"hello\""));
  auto missing = parse_cluster_file("/nonexistent/tandem/cluster.yaml");
  EXPECT_TRUE(only_error(missing.diag,
                         "/nonexistent/tandem/cluster.yaml: cannot read: No such "
                         "file or directory"));
  EXPECT_THROW((void)load_cluster_file("/nonexistent/tandem/cluster.yaml"), config_error);
  auto nul = load(std::string("cluster:\0", 9));
  EXPECT_TRUE(only_error(nul.diag,
                         "cluster.yaml: the file contains a NUL byte: it is not a text "
                         "file"));
}

TEST(cluster_config, text_must_be_utf8_without_control_characters) {
  auto latin1 = load(edit("name: demo", "name: d\xe9mo"));
  EXPECT_TRUE(only_error(latin1.diag,
                         "cluster.yaml:2:10: the file is not valid UTF-8 here "
                         "(configuration files are UTF-8 text)"));
  auto control = load(edit("name: demo", "name: \"de\\x01mo\""));
  EXPECT_TRUE(only_error(control.diag,
                         "cluster.yaml:2:9: cluster.name: \"de\\x01mo\" contains a "
                         "control character"));
  auto utf8 = load(with("  on_loss: {fence_command: \"echo \xc3\xa9t\xc3\xa9 > /dev/null\"}\n"));
  EXPECT_TRUE(utf8.ok()) << utf8.diag.to_string();
}

TEST(cluster_config, every_problem_is_reported_at_once) {
  const std::string text = R"(cluster:
  name: Demo
  secret_file: etc/key
nodes:
  - name: a
    interconnects:
      - {address: 10.0.0.1, port: 70000}
  - name: a
    interconnects:
      - address: 10.0.0.300
heartbeat:
  intervall: 1s
  timeout: 1sec
quorum:
  mode: witnes
)";
  auto r = load(text);
  EXPECT_EQ(test::texts(r.diag),
            (std::vector<std::string>{
                "cluster.yaml:2:9: cluster.name: \"Demo\" is not a valid name: lower-case "
                "letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63 "
                "characters",
                "cluster.yaml:3:16: cluster.secret_file: \"etc/key\" is not an absolute path",
                "cluster.yaml:7:35: nodes[0].interconnects[0].port: \"70000\" is out of range: "
                "expected 1 to 65535",
                "cluster.yaml:8:11: nodes[1].name: node name \"a\" is used twice (first on line "
                "5)",
                "cluster.yaml:10:18: nodes[1].interconnects[0].address: \"10.0.0.300\" is not an "
                "IP address",
                "cluster.yaml:12:3: heartbeat: unknown key \"intervall\" (did you mean "
                "\"interval\"?)",
                "cluster.yaml:13:12: heartbeat.timeout: \"1sec\": unknown unit \"sec\" (use ms, "
                "s, m or h)",
                "cluster.yaml:15:9: quorum.mode: \"witnes\" is not one of majority, witness, etcd "
                "or none (did you mean \"witness\"?)",
            }));
  EXPECT_EQ(r.diag.error_count(), 8u);
}

TEST(cluster_config, load_cluster_file_throws_with_every_problem) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("tandem-config-" + std::to_string(::getpid()) + ".yaml"))
                               .string();
  struct remove_at_exit {
    std::string p;
    ~remove_at_exit() { std::filesystem::remove(p); }
  } guard{path};
  std::ofstream(path) << edit("10.0.0.2", "10.0.0.300", edit("name: demo", "name: Demo"));
  try {
    (void)load_cluster_file(path);
    FAIL() << "no exception";
  } catch (const config_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path + ":2:9: cluster.name:"), std::string::npos) << what;
    EXPECT_NE(what.find(path + ":10:18: nodes[1].interconnects[0].address:"), std::string::npos)
        << what;
    EXPECT_EQ(e.problems().size(), 2u);
  }
  std::ofstream(path) << minimal_cluster;
  EXPECT_EQ(load_cluster_file(path).name, "demo");
}

TEST(cluster_config, quorum_warnings_and_lease_rules) {
  auto majority = load(
      edit("  mode: witness\n  witness: {url: \"http://10.0.0.9:7791\"}\n", "  mode: majority\n"));
  ASSERT_TRUE(majority.ok());
  EXPECT_TRUE(has_problem(majority.diag,
                          "cluster.yaml:12:9: warning: quorum.mode: with two nodes "
                          "a majority is both nodes: losing either stops every "
                          "group; use mode witness or etcd"));
  auto none = load(edit("mode: witness", "mode: none"));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(has_problem(none.diag,
                          "cluster.yaml:13:12: warning: quorum.witness: ignored: "
                          "quorum.mode is none"));
  auto renew = load(edit("{url: \"http://10.0.0.9:7791\"}",
                         "{url: \"http://10.0.0.9:7791\", lease: 4s, renew: 2s}"));
  EXPECT_TRUE(only_error(renew.diag,
                         "cluster.yaml:13:60: quorum.witness.renew: renew (2s) must "
                         "be less than half the lease (4s), so a node renews at least "
                         "twice before its lease can expire"));
  auto no_witness = load(edit("  witness: {url: \"http://10.0.0.9:7791\"}\n", ""));
  EXPECT_TRUE(only_error(no_witness.diag,
                         "cluster.yaml:12:9: quorum.mode: mode witness needs a "
                         "quorum.witness section with the witness url"));
  auto etcd = load(edit("  mode: witness\n  witness: {url: \"http://10.0.0.9:7791\"}\n",
                        "  mode: etcd\n  etcd:\n    endpoints: [\"http://10.0.0.9:2379\"]\n"
                        "    lease: 2500ms\n    renew: 1s\n"));
  EXPECT_TRUE(only_error(etcd.diag,
                         "cluster.yaml:15:12: quorum.etcd.lease: 2500ms is not a whole "
                         "number of seconds, which etcd lease TTLs are"));
  auto etcd_ok = load(edit("  mode: witness\n  witness: {url: \"http://10.0.0.9:7791\"}\n",
                           "  mode: etcd\n  etcd:\n    endpoints: [\"https://[fd00::9]:2379\"]\n"));
  ASSERT_TRUE(etcd_ok.ok()) << etcd_ok.diag.to_string();
  EXPECT_EQ(etcd_ok.config.quorum.etcd.key, "/tandem/demo/quorum");
  auto url = load(edit("http://10.0.0.9:7791", "10.0.0.9:7791"));
  EXPECT_TRUE(only_error(url.diag,
                         "cluster.yaml:13:18: quorum.witness.url: \"10.0.0.9:7791\" is "
                         "not an http:// or https:// URL with a host"));
}

TEST(cluster_config, tie_breaker_stop_timeout_and_witness_token) {
  auto ok = load(edit("  mode: witness\n  witness: {url: \"http://10.0.0.9:7791\"}\n",
                      "  mode: majority\n  tie_breaker: lowest_id\n  stop_timeout: 30s\n"));
  ASSERT_TRUE(ok.ok()) << ok.diag.to_string();
  EXPECT_EQ(ok.config.quorum.tie, tie_breaker::lowest_id);
  EXPECT_EQ(ok.config.quorum.stop_timeout, 30s);
  auto token = load(edit("{url: \"http://10.0.0.9:7791\"}",
                         "{url: \"http://10.0.0.9:7791\", token_file: /etc/tandem/witness.token}"));
  ASSERT_TRUE(token.ok()) << token.diag.to_string();
  EXPECT_EQ(token.config.quorum.witness.token_file, "/etc/tandem/witness.token");
  auto ignored = load(edit("  mode: witness\n", "  mode: witness\n  tie_breaker: lowest_id\n"));
  ASSERT_TRUE(ignored.ok());
  EXPECT_TRUE(has_problem(ignored.diag,
                          "cluster.yaml:13:16: warning: quorum.tie_breaker: ignored: "
                          "quorum.mode is witness"))
      << ignored.diag.to_string();
  auto short_stop = load(edit("  mode: witness\n", "  mode: witness\n  stop_timeout: 200ms\n"));
  EXPECT_TRUE(only_error(short_stop.diag,
                         "cluster.yaml:13:17: quorum.stop_timeout: 200ms is out of range: "
                         "1s .. 10m (the slowest group stop plus one heartbeat interval)"))
      << short_stop.diag.to_string();
  auto bad_tie = load(edit("  mode: witness\n", "  mode: witness\n  tie_breaker: coin\n"));
  EXPECT_FALSE(bad_tie.ok());
}

TEST(cluster_config, at_most_32_nodes) {
  std::string text = "cluster: {name: big, secret_file: /etc/tandem/secret}\nnodes:\n";
  for (int i = 0; i < 33; ++i)
    text += "  - {name: n" + std::to_string(i) + ", interconnects: [{address: 10.0.0." +
            std::to_string(i + 1) + "}]}\n";
  auto r = load(text);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.diag.to_string().find("32 are supported"), std::string::npos) << r.diag.to_string();
}

TEST(cluster_config, fence_needs_a_command_on_every_node) {
  auto r = load(with("  on_loss: {action: fence}\n"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:14:21: quorum.on_loss.action: action fence needs "
                         "a fence_command (for node \"a\")"));
  auto per_node =
      load(edit("  - name: b\n",
                "  - name: b\n    overrides: {quorum: {on_loss: {fence_command: \"off b\"}}}\n",
                with("  on_loss: {action: fence, fence_command: \"off a\"}\n")));
  ASSERT_TRUE(per_node.ok()) << per_node.diag.to_string();
  EXPECT_EQ(effective_config(per_node.config, "b").quorum.on_loss.fence_command, "off b");
  EXPECT_EQ(effective_config(per_node.config, "a").quorum.on_loss.fence_command, "off a");
}

TEST(cluster_config, overrides_are_applied_per_node) {
  const std::string text = edit("  - name: b\n", R"(  - name: b
    overrides:
      heartbeat: {timeout: 15s}
      quorum:
        partition_resolution: {ping: [10.0.1.254], timeout: 2s}
        on_loss: {action: fence, fence_command: "poweroff -f"}
      api:
        http: {address: 10.0.0.2}
)",
                                with("  partition_resolution: {ping: [10.0.0.254]}\n"
                                     "api:\n  http: {token_file: /etc/tandem/api.token}\n"));
  auto r = load(text);
  ASSERT_TRUE(r.ok()) << r.diag.to_string();
  const cluster_config b = effective_config(r.config, "b");
  EXPECT_EQ(b.effective_node, "b");
  EXPECT_EQ(b.heartbeat.interval, 1s);
  EXPECT_EQ(b.heartbeat.timeout, 15s);
  EXPECT_EQ(b.quorum.resolution.ping, std::vector<std::string>{"10.0.1.254"});
  EXPECT_EQ(b.quorum.resolution.timeout, 2s);
  EXPECT_EQ(b.quorum.on_loss.action, loss_action::fence);
  EXPECT_EQ(b.quorum.on_loss.fence_command, "poweroff -f");
  EXPECT_EQ(b.api.http_address, "10.0.0.2");
  const cluster_config a = effective_config(r.config, "a");
  EXPECT_EQ(a.heartbeat.timeout, 10s);
  EXPECT_EQ(a.quorum.resolution.ping, std::vector<std::string>{"10.0.0.254"});
  EXPECT_EQ(a.quorum.on_loss.action, loss_action::stop_groups);
  EXPECT_EQ(a.api.http_address, "127.0.0.1");
  EXPECT_EQ(r.config.heartbeat.timeout, 10s);  // the file's own view is untouched
  try {
    (void)effective_config(r.config, "c");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "no node named \"c\" in cluster.yaml (nodes: a, b)");
  }
}

TEST(cluster_config, only_some_keys_may_be_overridden) {
  auto r = load(edit("  - name: b\n",
                     "  - name: b\n    overrides:\n      cluster: {name: other}\n"
                     "      heartbeat: {intreval: 2s}\n"));
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:10:7: nodes[1].overrides: unknown key \"cluster\"; "
                          "known keys here: heartbeat, quorum, api"));
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:11:19: nodes[1].overrides.heartbeat: unknown key "
                          "\"intreval\" (did you mean \"interval\"?)"));
  EXPECT_EQ(r.diag.error_count(), 2u);
}

TEST(cluster_config, overridden_heartbeat_is_checked_per_node_and_against_peers) {
  auto own =
      load(edit("  - name: b\n", "  - name: b\n    overrides: {heartbeat: {interval: 6s}}\n"));
  EXPECT_TRUE(has_problem(own.diag,
                          "cluster.yaml:9:39: nodes[1].overrides.heartbeat.interval: the "
                          "heartbeat timeout (10s) on node b must be more than twice the "
                          "interval (6s), or a single lost heartbeat would declare a "
                          "node dead"));
  EXPECT_TRUE(has_problem(own.diag,
                          "cluster.yaml:9:39: nodes[1].overrides.heartbeat.interval: "
                          "node \"a\" declares a peer dead after 10s but node \"b\" "
                          "sends heartbeats every 6s: every node's timeout must be more "
                          "than twice every node's interval"));
  EXPECT_EQ(own.diag.error_count(), 2u) << own.diag.to_string();
  auto ok = load(edit("  - name: b\n",
                      "  - name: b\n    overrides: {heartbeat: {interval: 200ms, timeout: 3s}}\n"));
  EXPECT_TRUE(ok.ok()) << ok.diag.to_string();
}

TEST(cluster_config, api_http_needs_a_token) {
  auto r = load(with("api:\n  http: {address: 0.0.0.0, port: 7788}\n"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:15:9: api.http: the HTTP API needs a token_file "
                         "(clients send it as a bearer token)"));
}

TEST(cluster_config, alias_bombs_are_cut_short) {
  // 300 groups x 300 resources x 250 dependencies through aliases: 22 million values from a
  // few kilobytes. The visit budget stops the reading early with one clear error.
  auto many = [](std::string_view alias, int n) {
    std::string s = "[";
    for (int i = 0; i < n; ++i)
      s += (i ? ", *" : "*") + std::string(alias);
    return s + "]";
  };
  std::string deps = "[";
  for (int i = 0; i < 250; ++i)
    deps += (i ? ", d" : "d") + std::to_string(i);
  deps += "]";
  const std::string text = "x-deps: &deps " + deps +
                           "\nx-res: &res {name: r, type: exec, params: {start: a}, depends_on: "
                           "*deps}\nx-group: &group {name: g, resources: " +
                           many("res", 300) + "}\n" + std::string(minimal_cluster) +
                           "groups: " + many("group", 300) + "\n";
  const auto start = std::chrono::steady_clock::now();
  auto r = load(text);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml: the document is too complex (more than 200000 "
                          "values, counting aliases)"));
  EXPECT_FALSE(r.ok());
}

// The fuzz corpus starts from the examples; keep its copies current.
TEST(cluster_config, fuzz_corpus_holds_the_examples) {
  auto read = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  for (const auto& e : std::filesystem::directory_iterator(TANDEM_EXAMPLES_DIR)) {
    if (e.path().extension() != ".yaml") continue;
    const auto copy = std::filesystem::path(TANDEM_CONFIG_CORPUS) / e.path().filename();
    EXPECT_EQ(read(copy), read(e.path())) << "cp " << e.path().string() << " " << copy.string();
  }
}

TEST(cluster_config, the_examples_are_valid) {
  for (const auto& e : std::filesystem::directory_iterator(TANDEM_EXAMPLES_DIR)) {
    if (e.path().extension() != ".yaml" || e.path().filename() == "mirrors.yaml") continue;
    auto r = parse_cluster_file(e.path().string());
    EXPECT_TRUE(r.ok()) << r.diag.to_string();
    EXPECT_EQ(r.diag.warning_count(), 0u) << r.diag.to_string();
    for (const node_config& n : r.config.nodes)
      EXPECT_EQ(effective_config(r.config, n.name).effective_node, n.name);
  }
  auto full = parse_cluster_file(std::string(TANDEM_EXAMPLES_DIR) + "/cluster.yaml");
  ASSERT_TRUE(full.ok()) << full.diag.to_string();
  const cluster_config& c = full.config;
  EXPECT_EQ(c.name, "demo");
  EXPECT_EQ(c.nodes.size(), 2u);
  EXPECT_EQ(c.groups.size(), 1u);
  EXPECT_EQ(c.monitors.size(), 3u);
  ASSERT_EQ(c.mirrors.volumes.size(), 1u);
  EXPECT_EQ(c.mirrors.volumes[0].size, 10ull << 30);
  const cluster_config b = effective_config(c, "node-b");
  EXPECT_EQ(b.quorum.resolution.ping, std::vector<std::string>{"10.0.1.254"});
  EXPECT_EQ(*b.find_monitor("gateway")->params.list("targets"),
            std::vector<std::string>{"10.0.1.254"});
  EXPECT_EQ(*effective_config(c, "node-a").find_monitor("gateway")->params.list("targets"),
            std::vector<std::string>{"10.0.0.254"});
}

// ---- alerts: SNS topics and CloudWatch ----------------------------------------------------------

TEST(cluster_config, sns_topics_take_their_region_from_the_arn) {
  auto r =
      load(with("alerts:\n"
                "  sns:\n"
                "    - topic_arn: arn:aws:sns:eu-west-1:123456789012:tandem-alerts\n"
                "    - topic_arn: arn:aws-cn:sns:cn-north-1:123456789012:ops.fifo\n"
                "      region: cn-north-1\n"
                "      endpoint: https://sns.example.test:8443\n"
                "      severity: error\n"
                "      events: [\"heartbeat.*\", quorum.lost]\n"));
  ASSERT_TRUE(r.ok()) << r.diag.to_string();
  EXPECT_TRUE(r.diag.all().empty()) << r.diag.to_string();
  const alerts_config& a = r.config.alerts;
  ASSERT_EQ(a.sns.size(), 2u);
  EXPECT_EQ(a.sns[0].topic_arn, "arn:aws:sns:eu-west-1:123456789012:tandem-alerts");
  EXPECT_EQ(a.sns[0].region, "eu-west-1");
  EXPECT_EQ(a.sns[0].endpoint, "");
  EXPECT_EQ(a.sns[0].min_severity, alert_severity::warning);
  EXPECT_TRUE(a.sns[0].events.empty());
  EXPECT_EQ(a.sns[1].region, "cn-north-1");
  EXPECT_EQ(a.sns[1].endpoint, "https://sns.example.test:8443");
  EXPECT_EQ(a.sns[1].min_severity, alert_severity::error);
  EXPECT_EQ(a.sns[1].events, (std::vector<std::string>{"heartbeat.*", "quorum.lost"}));
  EXPECT_FALSE(a.cloudwatch.present);
}

TEST(cluster_config, sns_topic_arns_are_checked_part_by_part) {
  auto bad = [](std::string_view arn) {
    return load(with("alerts:\n  sns:\n    - topic_arn: \"" + std::string(arn) + "\"\n"));
  };
  const std::string at = "cluster.yaml:16:18: alerts.sns[0].topic_arn: ";
  EXPECT_TRUE(only_error(bad("tandem-alerts").diag,
                         at + "\"tandem-alerts\" is not an SNS topic ARN: an SNS topic ARN has the "
                              "form arn:aws:sns:<region>:<account>:<topic>"));
  EXPECT_TRUE(only_error(bad("arn:aws:sqs:us-east-1:123456789012:q").diag,
                         at + "\"arn:aws:sqs:us-east-1:123456789012:q\" is not an SNS topic ARN: "
                              "service \"sqs\" is not sns (an SNS topic ARN has the form "
                              "arn:aws:sns:<region>:<account>:<topic>)"));
  EXPECT_TRUE(only_error(bad("arn:aws-iso:sns:us-east-1:123456789012:t").diag,
                         at + "\"arn:aws-iso:sns:us-east-1:123456789012:t\" is not an SNS topic "
                              "ARN: partition \"aws-iso\" is not aws, aws-cn or aws-us-gov"));
  EXPECT_TRUE(only_error(bad("arn:aws:sns:US-EAST-1:123456789012:t").diag,
                         at + "\"arn:aws:sns:US-EAST-1:123456789012:t\" is not an SNS topic ARN: "
                              "region \"US-EAST-1\" is not an AWS region (such as us-east-1)"));
  EXPECT_TRUE(only_error(bad("arn:aws:sns:cn-north-1:123456789012:t").diag,
                         at + "\"arn:aws:sns:cn-north-1:123456789012:t\" is not an SNS topic ARN: "
                              "region cn-north-1 belongs to partition aws-cn, not aws"));
  EXPECT_TRUE(only_error(bad("arn:aws:sns:us-east-1:12345:t").diag,
                         at + "\"arn:aws:sns:us-east-1:12345:t\" is not an SNS topic ARN: account "
                              "\"12345\" is not a 12-digit AWS account id"));
  EXPECT_TRUE(only_error(bad("arn:aws:sns:us-east-1:123456789012:a:b").diag,
                         at + "\"arn:aws:sns:us-east-1:123456789012:a:b\" is not an SNS topic "
                              "ARN: topic name \"a:b\" is not 1 to 256 of A-Z, a-z, 0-9, '_' and "
                              "'-' (and \".fifo\" last for a FIFO topic)"));
  EXPECT_FALSE(bad("arn:aws:sns:us-east-1:123456789012:" + std::string(257, 'x')).ok());
  EXPECT_FALSE(bad("arn:aws:sns:us-east-1:123456789012:.fifo").ok());
  EXPECT_TRUE(bad("arn:aws:sns:us-east-1:123456789012:" + std::string(256, 'x')).ok());
  EXPECT_TRUE(bad("arn:aws-us-gov:sns:us-gov-west-1:123456789012:Alerts_1.fifo").ok());

  auto missing = load(with("alerts:\n  sns:\n    - {severity: info}\n"));
  EXPECT_TRUE(only_error(missing.diag,
                         "cluster.yaml:16:7: alerts.sns[0]: missing required key \"topic_arn\""));
}

TEST(cluster_config, sns_topic_settings_are_checked) {
  auto r =
      load(with("alerts:\n"
                "  sns:\n"
                "    - topic_arn: arn:aws:sns:us-east-1:123456789012:t\n"
                "      region: us_east_1\n"
                "      endpoint: sns.example.test\n"
                "      severity: fatal\n"
                "      events: [Heartbeat]\n"
                "      topic: x\n"));
  EXPECT_EQ(r.diag.error_count(), 5u) << r.diag.to_string();
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:17:15: alerts.sns[0].region: \"us_east_1\" is not an AWS "
                          "region (such as us-east-1 or eu-central-1)"));
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:20:16: alerts.sns[0].events[0]: \"Heartbeat\" is not an "
                          "event name or pattern (a-z, 0-9, '_', '.', '*', e.g. \"group.*\")"));
  for (const char* key : {"alerts.sns[0].endpoint", "alerts.sns[0].severity", "topic"})
    EXPECT_NE(r.diag.to_string().find(key), std::string::npos) << key << "\n" << r.diag.to_string();

  // Another region than the topic's is allowed (a VPC endpoint, FIPS), with a warning.
  auto other =
      load(with("alerts:\n"
                "  sns:\n"
                "    - topic_arn: arn:aws:sns:us-east-1:123456789012:t\n"
                "      region: us-west-2\n"));
  EXPECT_TRUE(other.ok()) << other.diag.to_string();
  EXPECT_TRUE(has_problem(other.diag,
                          "cluster.yaml:17:15: warning: alerts.sns[0].region: region us-west-2 is "
                          "not the topic's (us-east-1): SNS publishes only to topics of the "
                          "region it is called in"));
  EXPECT_EQ(other.config.alerts.sns[0].region, "us-west-2");

  std::string many = "alerts:\n  sns:\n";
  for (int i = 0; i < 33; ++i)
    many += "    - topic_arn: arn:aws:sns:us-east-1:123456789012:t" + std::to_string(i) + "\n";
  EXPECT_TRUE(only_error(load(with(many)).diag,
                         "cluster.yaml:16:5: alerts.sns: has 33 SNS topics; at most 32 are "
                         "supported"));
}

TEST(cluster_config, cloudwatch_defaults_and_settings) {
  auto d = load(with("alerts:\n  cloudwatch: {}\n"));
  ASSERT_TRUE(d.ok()) << d.diag.to_string();
  const cloudwatch_config& cw = d.config.alerts.cloudwatch;
  EXPECT_TRUE(cw.present);
  EXPECT_EQ(cw.metric_namespace, "Tandem");
  EXPECT_EQ(cw.region, "");
  EXPECT_EQ(cw.endpoint, "");
  EXPECT_EQ(cw.interval, 60s);

  auto s =
      load(with("alerts:\n"
                "  cloudwatch:\n"
                "    namespace: \"Acme/HA cluster#1:prod\"\n"
                "    region: ap-southeast-2\n"
                "    endpoint: https://monitoring.example.test\n"
                "    interval: 1s\n"));
  ASSERT_TRUE(s.ok()) << s.diag.to_string();
  EXPECT_EQ(s.config.alerts.cloudwatch.metric_namespace, "Acme/HA cluster#1:prod");
  EXPECT_EQ(s.config.alerts.cloudwatch.region, "ap-southeast-2");
  EXPECT_EQ(s.config.alerts.cloudwatch.endpoint, "https://monitoring.example.test");
  EXPECT_EQ(s.config.alerts.cloudwatch.interval, 1s);
}

TEST(cluster_config, cloudwatch_settings_are_checked) {
  auto cw = [](std::string_view body) {
    return load(with("alerts:\n  cloudwatch:\n" + std::string(body)));
  };
  EXPECT_TRUE(only_error(cw("    interval: 500ms\n").diag,
                         "cluster.yaml:16:15: alerts.cloudwatch.interval: 500ms is too short: "
                         "CloudWatch metrics are sent at most every second (interval is at least "
                         "1s)"));
  EXPECT_TRUE(only_error(cw("    namespace: AWS/EC2\n").diag,
                         "cluster.yaml:16:16: alerts.cloudwatch.namespace: \"AWS/EC2\": namespaces "
                         "starting with AWS/ are reserved for AWS services"));
  EXPECT_TRUE(only_error(cw("    namespace: \"tandem\\tprod\"\n").diag,
                         "cluster.yaml:16:16: alerts.cloudwatch.namespace: \"tandem\\tprod\" is "
                         "not a CloudWatch namespace (1 to 255 of A-Z, a-z, 0-9, '.', '-', '_', "
                         "'/', '#', ':' and spaces)"));
  EXPECT_FALSE(cw("    namespace: \"" + std::string(256, 'n') + "\"\n").ok());
  EXPECT_TRUE(only_error(cw("    region: moon-base\n").diag,
                         "cluster.yaml:16:13: alerts.cloudwatch.region: \"moon-base\" is not an "
                         "AWS region (such as us-east-1 or eu-central-1)"));
  EXPECT_TRUE(only_error(cw("    intervall: 5s\n").diag,
                         "cluster.yaml:16:5: alerts.cloudwatch: unknown key \"intervall\" (did "
                         "you mean \"interval\"?)"));
}

TEST(cluster_config, aws_region_names) {
  for (const char* r : {"us-east-1", "eu-central-2", "us-gov-west-1", "cn-northwest-1",
                        "ap-southeast-5", "il-central-1"})
    EXPECT_TRUE(is_aws_region(r)) << r;
  for (const char* r : {"", "us-east", "us-east-", "-us-east-1", "us--east-1", "US-EAST-1",
                        "us-east-1a", "east-1", "us-east-1-"})
    EXPECT_FALSE(is_aws_region(r)) << r;
  EXPECT_EQ(aws_partition_of("cn-north-1"), "aws-cn");
  EXPECT_EQ(aws_partition_of("us-gov-east-1"), "aws-us-gov");
  EXPECT_EQ(aws_partition_of("us-east-1"), "aws");
  const auto a = parse_sns_arn("arn:aws:sns:us-east-1:123456789012:tandem-alerts");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->partition, "aws");
  EXPECT_EQ(a->region, "us-east-1");
  EXPECT_EQ(a->account, "123456789012");
  EXPECT_EQ(a->topic, "tandem-alerts");
}

}  // namespace
}  // namespace tandem::ctl::config
