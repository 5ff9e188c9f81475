// SPDX-License-Identifier: Apache-2.0
// groups_config (control/config/groups_config.h): references, cycles, start order, typed and
// per-node parameters, monitors and their recovery.
#include "control/config/groups_config.h"

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "control/config/cluster_config.h"
#include "tests/unit/config/test_util.h"

namespace tandem::ctl::config {
namespace {

using namespace std::chrono_literals;
using test::has_problem;
using test::load;
using test::only_error;

// minimal_cluster (13 lines) followed by `tail`, whose first line is line 14.
std::string with(std::string_view tail) {
  return std::string(test::minimal_cluster) + std::string(tail);
}

std::vector<std::string> names(const std::vector<const resource_config*>& v) {
  std::vector<std::string> out;
  for (const resource_config* r : v)
    out.push_back(r->name);
  return out;
}

TEST(groups_config, resources_with_typed_defaults_and_start_order) {
  auto r = load(with(R"(groups:
  - name: web
    failback: auto
    resources:
      - {name: app, type: exec, depends_on: [ip], params: {start: "run web", stop: "stop web"}}
      - {name: ip, type: floating_ip, params: {address: 10.0.0.100/24}}
      - name: other
        type: exec
        params: {start: /bin/true}
        activation: {timeout: 5s, retries: 2, failovers: 0, final_action: stop_cluster}
)"));
  ASSERT_TRUE(r.ok()) << r.diag.to_string();
  const group_config& g = r.config.groups.at(0);
  EXPECT_EQ(g.nodes, (std::vector<std::string>{"a", "b"}));  // every node, by priority
  EXPECT_EQ(g.failback, failback_policy::automatic);
  EXPECT_TRUE(g.autostart);
  EXPECT_EQ(names(g.start_order()), (std::vector<std::string>{"ip", "app", "other"}));
  const resource_config* ip = g.find_resource("ip");
  ASSERT_NE(ip, nullptr);
  EXPECT_EQ(ip->type, resource_type::floating_ip);
  EXPECT_EQ(*ip->params.str("address"), "10.0.0.100/24");
  EXPECT_EQ(ip->params.integer("announce_count"), 3);
  EXPECT_EQ(ip->params.duration("announce_interval"), 200ms);
  EXPECT_EQ(ip->params.flag("duplicate_check"), true);
  EXPECT_EQ(ip->params.duration("duplicate_check_time"), 300ms);
  EXPECT_EQ(ip->activation.timeout, 60s);
  EXPECT_EQ(ip->deactivation.action, final_action::stop_cluster);
  const resource_config* other = g.find_resource("other");
  EXPECT_EQ(other->activation.timeout, 5s);
  EXPECT_EQ(other->activation.retries, 2);
  EXPECT_EQ(other->activation.failovers, 0);
  EXPECT_EQ(other->activation.action, final_action::stop_cluster);
}

TEST(groups_config, unknown_node_in_group) {
  auto r = load(with("groups:\n  - name: web\n    nodes: [a, bb]\n"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:16:12: groups[0].nodes: unknown node \"bb\" (did "
                         "you mean \"b\"?)"));
  auto twice = load(with("groups:\n  - name: web\n    nodes: [a, a]\n"));
  EXPECT_TRUE(only_error(twice.diag,
                         "cluster.yaml:16:16: groups[0].nodes[1]: \"a\" is listed "
                         "twice"));
}

TEST(groups_config, dependency_cycle) {
  auto r = load(with(R"(groups:
  - name: web
    resources:
      - {name: x, type: exec, depends_on: [z], params: {start: a}}
      - {name: y, type: exec, depends_on: [x], params: {start: b}}
      - {name: z, type: exec, depends_on: [y], params: {start: c}}
)"));
  // Reported where the cycle closes: y depends on x, which is still being started.
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:18:43: groups[0].resources[1].depends_on: "
                         "dependency cycle: x -> z -> y -> x"));
}

TEST(groups_config, dependency_mistakes) {
  auto r = load(with(R"(groups:
  - name: web
    resources:
      - {name: x, type: exec, depends_on: [x, yy], params: {start: a}}
      - {name: y, type: exec, params: {start: b}}
      - {name: y, type: exec, params: {start: b}}
)"));
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:17:43: groups[0].resources[0].depends_on: "
                          "resource \"x\" depends on itself"));
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:17:43: groups[0].resources[0].depends_on: unknown "
                          "resource \"yy\" in group \"web\" (did you mean \"y\"?)"));
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:19:16: groups[0].resources[2].name: resource name "
                          "\"y\" is used twice in group \"web\""));
  EXPECT_EQ(r.diag.error_count(), 3u) << r.diag.to_string();
}

TEST(groups_config, parameters_are_checked_against_the_type) {
  auto r = load(with(R"(groups:
  - name: web
    resources:
      - name: ip
        type: floating_ip
        params: {adress: 10.0.0.100/24, announce_count: many}
      - name: vip
        type: aws_vip
        params: {address: "fd00::1", vpc_id: vpc-1, eni_id: eni-a}
        per_node: {b: {address: 10.0.0.1}}
      - {name: bad, type: shell}
)"));
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:19:18: groups[0].resources[0].params: unknown "
                          "parameter \"adress\" for type floating_ip (did you mean "
                          "\"address\"?)"));
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:19:57: groups[0].resources[0].params."
                          "announce_count: \"many\" is not a whole number"));
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:19:17: groups[0].resources[0].params: missing "
                          "required parameter \"address\""));
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:22:27: groups[0].resources[1].params.address: "
                          "\"fd00::1\" is IPv6; this needs an IPv4 address"));
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:23:33: groups[0].resources[1].per_node.b.address: "
                          "parameter \"address\" cannot differ per node; set it in params"));
  EXPECT_TRUE(has_problem(r.diag,
                          "cluster.yaml:24:27: groups[0].resources[2].type: \"shell\" is "
                          "not one of mirror, filesystem, floating_ip, exec, aws_vip, "
                          "aws_eip, aws_dns, gcp_dns or azure_dns"));
}

TEST(groups_config, per_node_parameters) {
  const std::string text = with(R"(groups:
  - name: web
    resources:
      - name: vip
        type: aws_vip
        params: {address: 172.16.0.10, vpc_id: vpc-1}
        per_node:
          a: {eni_id: eni-a}
          b: {eni_id: eni-b, region: us-east-1}
)");
  auto r = load(text);
  ASSERT_TRUE(r.ok()) << r.diag.to_string();
  const resource_config& vip = r.config.groups[0].resources[0];
  EXPECT_EQ(*vip.params_for("a").str("eni_id"), "eni-a");
  EXPECT_EQ(vip.params_for("a").str("region"), nullptr);
  EXPECT_EQ(*vip.params_for("b").str("region"), "us-east-1");
  const cluster_config b = effective_config(r.config, "b");
  EXPECT_EQ(*b.groups[0].resources[0].params.str("eni_id"), "eni-b");
  EXPECT_TRUE(b.groups[0].resources[0].per_node.empty());

  auto missing = load(with(R"(groups:
  - name: web
    resources:
      - name: vip
        type: aws_vip
        params: {address: 172.16.0.10, vpc_id: vpc-1}
        per_node:
          a: {eni_id: eni-a}
          c: {eni_id: eni-c}
)"));
  EXPECT_TRUE(has_problem(missing.diag,
                          "cluster.yaml:19:17: groups[0].resources[0].params: missing "
                          "required parameter \"eni_id\" for node b (set it in "
                          "params, or per node in per_node.<node>)"));
  EXPECT_TRUE(has_problem(missing.diag,
                          "cluster.yaml:22:14: groups[0].resources[0].per_node.c: "
                          "unknown node \"c\""));
  EXPECT_EQ(missing.diag.error_count(), 2u) << missing.diag.to_string();
}

TEST(groups_config, mirror_and_filesystem_resources) {
  const std::string mirrors = R"(mirrors:
  volumes:
    - name: db
      data: /dev/vdb
      meta: /m
      replicas:
        - {node: a, address: 10.0.1.1}
        - {node: b, address: 10.0.1.2}
)";
  auto r = load(with(mirrors + R"(groups:
  - name: web
    resources:
      - {name: fs, type: filesystem, params: {mirror: data, mount_point: /srv}}
      - {name: data, type: mirror, params: {volume: db}}
)"));
  ASSERT_TRUE(r.ok()) << r.diag.to_string();
  const group_config& g = r.config.groups[0];
  EXPECT_EQ(g.find_resource("fs")->depends_on, std::vector<std::string>{"data"});  // implied
  EXPECT_EQ(names(g.start_order()), (std::vector<std::string>{"data", "fs"}));

  auto bad = load(with(mirrors + R"(groups:
  - name: web
    resources:
      - {name: fs, type: filesystem, params: {mirror: app, mount_point: /srv}}
      - {name: app, type: exec, params: {start: x}}
      - {name: data, type: mirror, params: {volume: dbb}}
      - {name: data2, type: mirror, params: {volume: db}}
      - {name: data3, type: mirror, params: {volume: db}}
      - {name: fs2, type: filesystem, params: {mount_point: /srv2}}
)"));
  EXPECT_TRUE(has_problem(bad.diag,
                          "cluster.yaml:25:55: groups[0].resources[0].params.mirror: "
                          "resource \"app\" is of type exec, not mirror"));
  EXPECT_TRUE(has_problem(bad.diag,
                          "cluster.yaml:27:53: groups[0].resources[2].params.volume: "
                          "unknown volume \"dbb\" (did you mean \"db\"?)"));
  EXPECT_TRUE(has_problem(bad.diag,
                          "cluster.yaml:29:54: groups[0].resources[4].params.volume: "
                          "volume \"db\" is already used by group web, resource data2; "
                          "a volume belongs to one mirror resource"));
  EXPECT_TRUE(has_problem(bad.diag,
                          "cluster.yaml:30:47: groups[0].resources[5].params: needs a "
                          "mirror (a mirror resource of the group) or a device"));
  EXPECT_EQ(bad.diag.error_count(), 4u) << bad.diag.to_string();

  // A group may only run where the volume has a replica.
  std::string three_nodes(test::minimal_cluster);
  three_nodes.insert(three_nodes.find("quorum:"),
                     "  - name: c\n    interconnects:\n"
                     "      - address: 10.0.0.3\n");
  auto three = load(three_nodes + mirrors + "groups:\n  - name: web\n    resources:\n" +
                    "      - {name: data, type: mirror, params: {volume: db}}\n");
  EXPECT_TRUE(only_error(three.diag,
                         "cluster.yaml:28:53: groups[0].resources[0].params.volume: "
                         "group \"web\" may run on node \"c\", which holds no replica "
                         "of volume \"db\""));
}

TEST(groups_config, monitors_and_recovery) {
  auto r = load(with(R"(groups:
  - name: web
    resources:
      - {name: app, type: exec, params: {start: x}}
monitors:
  - name: app-pid
    type: pid
    group: web
    params: {resource: app}
    recovery: {resource: app, restarts: 2}
  - name: gw
    type: ip
    interval: 1s
    params: {targets: [10.0.0.254, "fd00::1"]}
)"));
  ASSERT_TRUE(r.ok()) << r.diag.to_string();
  const monitor_config* pid = r.config.find_monitor("app-pid");
  ASSERT_NE(pid, nullptr);
  EXPECT_EQ(pid->when, monitor_when::active);  // watching a group: while it is active
  EXPECT_EQ(pid->interval, 5s);
  EXPECT_EQ(pid->timeout, 30s);
  EXPECT_EQ(pid->retries, 1);
  EXPECT_EQ(pid->recovery.resource, "app");
  EXPECT_EQ(pid->recovery.restarts, 2);
  EXPECT_EQ(pid->recovery.failovers, 1);
  EXPECT_EQ(pid->recovery.action, final_action::none);
  const monitor_config* gw = r.config.find_monitor("gw");
  EXPECT_EQ(gw->when, monitor_when::always);
  EXPECT_EQ(*gw->params.str("mode"), "any");
  EXPECT_EQ(gw->params.list("targets")->size(), 2u);

  auto bad = load(with(R"(groups:
  - name: web
    resources:
      - {name: app, type: exec, params: {start: x}}
monitors:
  - {name: m1, type: pid, group: web, params: {resource: ap}}
  - {name: m2, type: pid, group: wbe, params: {resource: app}}
  - {name: m3, type: mirror_state, when: active, params: {volume: db}}
  - {name: m4, type: script, params: {path: /bin/check}, recovery: {final_action: fence}}
  - {name: m4, type: ip, interval: 10ms, params: {targets: []}}
)"));
  EXPECT_TRUE(has_problem(bad.diag,
                          "cluster.yaml:19:58: monitors[0].params.resource: group "
                          "\"web\" has no resource \"ap\" (did you mean \"app\"?)"));
  EXPECT_TRUE(has_problem(bad.diag,
                          "cluster.yaml:20:34: monitors[1].group: unknown group \"wbe\" "
                          "(did you mean \"web\"?)"));
  EXPECT_TRUE(has_problem(bad.diag,
                          "cluster.yaml:21:42: monitors[2].when: when: active needs a "
                          "group: (the monitor runs while that group is active)"));
  EXPECT_TRUE(has_problem(bad.diag,
                          "cluster.yaml:21:67: monitors[2].params.volume: unknown "
                          "volume \"db\": the file has no mirrors: section"));
  EXPECT_TRUE(has_problem(bad.diag,
                          "cluster.yaml:22:83: monitors[3].recovery.final_action: "
                          "final_action fence needs quorum.on_loss.fence_command, which "
                          "is not set for a and b"));
  EXPECT_TRUE(has_problem(bad.diag,
                          "cluster.yaml:23:12: monitors[4].name: monitor name \"m4\" is "
                          "used twice"));
  EXPECT_TRUE(has_problem(bad.diag,
                          "cluster.yaml:23:36: monitors[4].interval: 10ms is too short: "
                          "at least 100ms"));
  EXPECT_TRUE(has_problem(bad.diag,
                          "cluster.yaml:23:60: monitors[4].params.targets: needs at "
                          "least one address"));
  EXPECT_EQ(bad.diag.error_count(), 8u) << bad.diag.to_string();
}

TEST(groups_config, deactivation_cannot_stop_the_group) {
  auto r = load(with(R"(groups:
  - name: web
    resources:
      - name: app
        type: exec
        params: {start: x}
        deactivation: {final_action: stop_group}
)"));
  EXPECT_TRUE(only_error(r.diag,
                         "cluster.yaml:20:38: groups[0].resources[0].deactivation."
                         "final_action: \"stop_group\" is not one of none, stop_cluster "
                         "or fence"));
}

}  // namespace
}  // namespace tandem::ctl::config
