// SPDX-License-Identifier: Apache-2.0
// reload (control/config/reload.h): changes found by name and classified live / group / daemon.
#include "control/config/reload.h"

#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "tests/unit/config/test_util.h"

namespace tandem::ctl::config {
namespace {

constexpr std::string_view base = R"(cluster:
  name: demo
  secret_file: /etc/tandem/cluster.key
nodes:
  - name: a
    interconnects: [{address: 10.0.0.1}]
  - name: b
    interconnects: [{address: 10.0.0.2}]
heartbeat: {interval: 1s, timeout: 10s}
quorum:
  mode: witness
  witness: {url: "http://10.0.0.9:7791"}
groups:
  - name: web
    resources:
      - {name: app, type: exec, params: {start: /bin/web}}
monitors:
  - {name: gw, type: ip, params: {targets: [10.0.0.254]}}
)";

cluster_config load_ok(const std::string& text) {
  auto r = test::load(text);
  EXPECT_TRUE(r.ok()) << r.diag.to_string();
  return r.config;
}

std::string edit(std::string_view from, std::string_view to, std::string text = std::string(base)) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(reload, identical_files_have_no_changes) {
  const reload_plan p = diff_for_reload(load_ok(std::string(base)), load_ok(std::string(base)));
  EXPECT_TRUE(p.empty());
  EXPECT_TRUE(p.live_applicable());
}

TEST(reload, heartbeat_timing_is_live) {
  const reload_plan p =
      diff_for_reload(load_ok(std::string(base)), load_ok(edit("interval: 1s", "interval: 200ms")));
  ASSERT_EQ(p.changes.size(), 1u);
  EXPECT_EQ(p.changes[0].path, "heartbeat.interval");
  EXPECT_EQ(p.changes[0].before, "1s");
  EXPECT_EQ(p.changes[0].after, "200ms");
  EXPECT_EQ(p.changes[0].kind, change_kind::live);
  EXPECT_TRUE(p.live_applicable());
}

TEST(reload, cluster_identity_and_membership_need_a_restart) {
  for (const auto& [from, to, path] :
       {std::tuple{"name: demo", "name: prod", "cluster.name"},
        std::tuple{"/etc/tandem/cluster.key", "/etc/tandem/new.key", "cluster.secret_file"},
        std::tuple{"{address: 10.0.0.2}", "{address: 10.0.0.3}",
                   "nodes[b].interconnects[0].address"},
        std::tuple{"mode: witness", "mode: etcd\n  etcd: {endpoints: [\"http://e:2379\"]}",
                   "quorum.mode"}}) {
    const reload_plan p = diff_for_reload(load_ok(std::string(base)), load_ok(edit(from, to)));
    ASSERT_FALSE(p.empty()) << path;
    EXPECT_EQ(p.changes[0].path, path);
    EXPECT_EQ(p.changes[0].kind, change_kind::daemon_restart) << path;
    EXPECT_FALSE(p.live_applicable()) << path;
  }
  const reload_plan added =
      diff_for_reload(load_ok(std::string(base)),
                      load_ok(edit("heartbeat:",
                                   "  - name: c\n    interconnects: [{address: 10.0.0.3}]\n"
                                   "heartbeat:")));
  ASSERT_EQ(added.changes.size(), 2u);  // the node, and the group's default node list
  EXPECT_EQ(added.changes[0].path, "nodes[c]");
  EXPECT_EQ(added.changes[0].before, "");
  EXPECT_EQ(added.changes[0].kind, change_kind::daemon_restart);
  EXPECT_EQ(added.changes[1].path, "groups[web].nodes");
  EXPECT_EQ(added.changes[1].kind, change_kind::live);
}

TEST(reload, group_changes) {
  const reload_plan res = diff_for_reload(load_ok(std::string(base)),
                                          load_ok(edit("start: /bin/web", "start: /bin/web2")));
  ASSERT_EQ(res.changes.size(), 1u);
  EXPECT_EQ(res.changes[0].path, "groups[web].resources[app].params.start");
  EXPECT_EQ(res.changes[0].kind, change_kind::group_restart);
  EXPECT_TRUE(res.live_applicable());
  EXPECT_EQ(res.groups_to_restart(), std::vector<std::string>{"web"});

  const reload_plan failback =
      diff_for_reload(load_ok(std::string(base)),
                      load_ok(edit("  - name: web\n", "  - name: web\n    failback: auto\n")));
  ASSERT_EQ(failback.changes.size(), 1u);
  EXPECT_EQ(failback.changes[0].path, "groups[web].failback");
  EXPECT_EQ(failback.changes[0].kind, change_kind::live);

  const std::string two = edit("monitors:", "  - name: db\n    resources: []\nmonitors:");
  const reload_plan add = diff_for_reload(load_ok(std::string(base)), load_ok(two));
  ASSERT_EQ(add.changes.size(), 1u);
  EXPECT_EQ(add.changes[0].path, "groups[db]");
  EXPECT_EQ(add.changes[0].kind, change_kind::live);
  const reload_plan remove = diff_for_reload(load_ok(two), load_ok(std::string(base)));
  ASSERT_EQ(remove.changes.size(), 1u);
  EXPECT_EQ(remove.changes[0].after, "");
  EXPECT_EQ(remove.changes[0].kind, change_kind::group_restart);
}

TEST(reload, monitors_alerts_and_overrides_are_live) {
  const reload_plan m = diff_for_reload(
      load_ok(std::string(base)), load_ok(edit("targets: [10.0.0.254]", "targets: [10.0.0.1]")));
  ASSERT_EQ(m.changes.size(), 1u);
  EXPECT_EQ(m.changes[0].path, "monitors[gw].params.targets");
  EXPECT_EQ(m.changes[0].before, "[\"10.0.0.254\"]");
  EXPECT_EQ(m.changes[0].kind, change_kind::live);

  const reload_plan o = diff_for_reload(
      load_ok(std::string(base)),
      load_ok(edit("[{address: 10.0.0.2}]",
                   "[{address: 10.0.0.2}]\n    overrides: {heartbeat: {timeout: 12s}}")));
  ASSERT_EQ(o.changes.size(), 1u);
  EXPECT_EQ(o.changes[0].path, "nodes[b].overrides.heartbeat.timeout");
  EXPECT_EQ(o.changes[0].before, "");
  EXPECT_EQ(o.changes[0].after, "12s");
  EXPECT_EQ(o.changes[0].kind, change_kind::live);
}

TEST(reload, effective_views_show_one_nodes_changes) {
  const std::string before = edit(
      "[{address: 10.0.0.2}]", "[{address: 10.0.0.2}]\n    overrides: {heartbeat: {timeout: 12s}}");
  const std::string after = edit(
      "[{address: 10.0.0.2}]", "[{address: 10.0.0.2}]\n    overrides: {heartbeat: {timeout: 15s}}");
  const cluster_config old_cfg = load_ok(before);
  const cluster_config new_cfg = load_ok(after);
  const reload_plan all = diff_for_reload(old_cfg, new_cfg);
  ASSERT_EQ(all.changes.size(), 1u);
  EXPECT_EQ(all.changes[0].path, "nodes[b].overrides.heartbeat.timeout");
  EXPECT_EQ(all.changes[0].kind, change_kind::live);
  const reload_plan b =
      diff_for_reload(effective_config(old_cfg, "b"), effective_config(new_cfg, "b"));
  ASSERT_EQ(b.changes.size(), 2u);
  EXPECT_EQ(b.changes[0].path, "nodes[b].overrides.heartbeat.timeout");
  EXPECT_EQ(b.changes[1].path, "heartbeat.timeout");
  EXPECT_EQ(b.changes[1].after, "15s");
  EXPECT_TRUE(b.live_applicable());
}

TEST(reload, mirrors) {
  const std::string m = std::string(base) + R"(mirrors:
  volumes:
    - name: db
      data: /dev/vdb
      meta: /m
      resync: {rate: 100MiB}
      replicas:
        - {node: a, address: 10.0.1.1}
        - {node: b, address: 10.0.1.2}
)";
  const reload_plan rate =
      diff_for_reload(load_ok(m), load_ok(edit("rate: 100MiB", "rate: 50MiB", m)));
  ASSERT_EQ(rate.changes.size(), 1u);
  EXPECT_EQ(rate.changes[0].path, "mirrors.volumes[db].resync.rate");
  EXPECT_EQ(rate.changes[0].kind, change_kind::live);
  const reload_plan port =
      diff_for_reload(load_ok(m), load_ok(edit("10.0.1.2}", "10.0.1.2, port: 7800}", m)));
  ASSERT_EQ(port.changes.size(), 1u);
  EXPECT_EQ(port.changes[0].path, "mirrors.volumes[db].replicas[b].port");
  EXPECT_EQ(port.changes[0].kind, change_kind::daemon_restart);
}

}  // namespace
}  // namespace tandem::ctl::config
