// SPDX-License-Identifier: Apache-2.0
// Two tandemd nodes in lab namespaces and the fake AWS endpoints on a third host of the public
// lan: the group's aws_vip, aws_eip and aws_dns resources follow it. Online on node1, the route
// and the Elastic IP point at node1's ENI and the record at node1's address; a route moved
// behind tandem's back is put right by the aws_vip monitor's recovery; when node1 crashes, node2
// takes the group: the route of every table and the Elastic IP move to node2's ENI, the VIP to
// node2's interface and the Route 53 record to node2's address.
#include <chrono>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "tests/lab/fake_aws.h"
#include "tests/lab/tandemd_cluster.h"

namespace tandem::lab {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* eni1 = "eni-0aaaaaaaaaaaaaaaa";
constexpr const char* eni2 = "eni-0bbbbbbbbbbbbbbbb";

std::string online_on(tandemd_cluster& c, int i) {
  const json st = c.call(i, {{"cmd", "group_status"}});
  for (const json& g : st.value("groups", json::array()))
    if (g.value("name", "") == "api" && g.contains("nodes"))
      for (const auto& [n, s] : g["nodes"].items())
        if (s == "online") return n;
  return "";
}

bool wait_online(tandemd_cluster& c, int watcher, const std::string& node,
                 std::chrono::milliseconds limit) {
  return tandemd_cluster::wait_until(
      [&] {
        try {
          return online_on(c, watcher) == node;
        } catch (const std::exception&) {
          return false;
        }
      },
      limit, 20ms);
}

// The ENI every route for the VIP points at, or "mixed".
std::string vip_target(fake_aws& cloud) {
  std::string target;
  const json state = cloud.state();
  for (const json& t : state["route_tables"])
    for (const json& r : t["routes"])
      if (r.value("destination_cidr", "") == "10.200.0.10/32") {
        const std::string eni = r.value("network_interface_id", "");
        if (!target.empty() && target != eni) return "mixed";
        target = eni;
      }
  return target;
}

// The A record api.example.com. in the fake's hosted zone ("" when there is none).
std::string record_target(fake_aws& cloud) {
  const json st = cloud.state();
  for (const json& r : st["hosted_zones"]["Z0FAKE000000000000001"]["records"])
    if (r.value("name", "") == "api.example.com." && r.value("type", "") == "A")
      return r["values"].size() == 1 ? r["values"][0].get<std::string>() : "several";
  return "";
}

std::string eip_target(fake_aws& cloud) {
  return cloud.state()["addresses"][0].value("network_interface_id", "");
}

TEST(aws_failover_netns, the_route_the_elastic_ip_and_the_record_follow_the_group_to_the_survivor) {
  std::unique_ptr<fake_aws> cloud;
  tandemd_cluster_options o;
  o.nodes = 2;
  o.interconnects = 1;
  o.public_lan = true;
  o.quorum = "{mode: none}";
  o.extra_hosts = {{"cloud", {0}}};
  o.extra_of = [&cloud](const lab& l) {
    fake_aws_options fo;
    fo.netns = l.netns("cloud");
    fo.listen = l.address("cloud", 0);
    fo.port = 8443;
    fo.imds_port = 8080;
    cloud = std::make_unique<fake_aws>(fo);
    const std::string common = "vpc_id: vpc-0fake0000000000001, endpoint: \"" + cloud->endpoint() +
                               "\", region: us-east-1";
    return "groups:\n"
           "  - name: api\n"
           "    nodes: [node1, node2]\n"
           "    resources:\n"
           "      - name: vip\n"
           "        type: aws_vip\n"
           "        params: {address: 10.200.0.10, interface: eth0, " +
           common +
           "}\n"
           "        per_node: {node1: {eni_id: " +
           eni1 + "}, node2: {eni_id: " + eni2 +
           "}}\n"
           "      - name: eip\n"
           "        type: aws_eip\n"
           "        params: {allocation_id: eipalloc-0fake00000000001, endpoint: \"" +
           cloud->endpoint() +
           "\", region: us-east-1}\n"
           "        per_node: {node1: {eni_id: " +
           eni1 + "}, node2: {eni_id: " + eni2 +
           "}}\n"
           "      - name: dns\n"
           "        type: aws_dns\n"
           "        params: {hosted_zone_id: Z0FAKE000000000000001, record_name: api.example.com,"
           " ttl: 10, endpoint: \"" +
           cloud->endpoint() +
           "\"}\n"
           "        per_node: {node1: {address: " +
           l.address("node1", 0) + "}, node2: {address: " + l.address("node2", 0) +
           "}}\n"
           "monitors:\n"
           "  - name: vip-route\n"
           "    type: aws_vip\n"
           "    group: api\n"
           "    interval: 300ms\n"
           "    retries: 0\n"
           "    params: {resource: vip}\n"
           "    recovery: {resource: vip, restarts: 3}\n";
  };
  tandemd_cluster c(o);
  std::vector<std::string> env;
  for (const auto& [name, value] : cloud->environment(false))
    env.push_back(name + "=" + value);
  c.set_env(env);

  c.start(0);
  c.start(1);
  ASSERT_TRUE(c.wait_all_up()) << c.logs();
  ASSERT_TRUE(wait_online(c, 1, "node1", 30s)) << c.logs() << cloud->log();
  EXPECT_EQ(vip_target(*cloud), eni1);
  EXPECT_EQ(eip_target(*cloud), eni1);
  EXPECT_EQ(record_target(*cloud), c.net().address("node1", 0));
  EXPECT_NE(c.net()
                .exec("node1", {"ip", "-o", "addr", "show", "dev", "eth0"})
                .output.find("10.200.0.10/32"),
            std::string::npos);

  // Someone points one table elsewhere: the monitor fails and its recovery restarts the vip
  // resource, which routes it back.
  json tables = cloud->state()["route_tables"];
  for (json& t : tables)
    for (json& r : t["routes"])
      if (r.value("destination_cidr", "") == "10.200.0.10/32" &&
          t["route_table_id"] == "rtb-0public000000000001")
        r["network_interface_id"] = "eni-0someoneelse000000";
  cloud->set_state({{"route_tables", tables}});
  EXPECT_TRUE(tandemd_cluster::wait_until([&] { return vip_target(*cloud) == eni1; }, 15s, 50ms))
      << c.log(0);
  EXPECT_TRUE(wait_online(c, 0, "node1", 10s)) << c.log(0);  // restarted in place, no failover
  const std::string events = c.events(0).dump();
  EXPECT_NE(events.find("the routing for VIP 10.200.0.10 was changed: route table "
                        "rtb-0public000000000001 points at eni-0someoneelse000000"),
            std::string::npos)
      << events;

  // node1 crashes: node2 takes the group, the route and the Elastic IP.
  c.kill9(0);
  ASSERT_TRUE(wait_online(c, 1, "node2", 30s)) << c.log(1) << cloud->log();
  EXPECT_EQ(vip_target(*cloud), eni2);
  EXPECT_EQ(eip_target(*cloud), eni2);
  EXPECT_EQ(record_target(*cloud), c.net().address("node2", 0));
  EXPECT_NE(c.net()
                .exec("node2", {"ip", "-o", "addr", "show", "dev", "eth0"})
                .output.find("10.200.0.10/32"),
            std::string::npos);
  const json st = c.call(1, {{"cmd", "group_status"}});
  const std::string dump = st.dump();
  EXPECT_NE(dump.find("rtb-0private00000000002"), std::string::npos) << dump;
  EXPECT_NE(dump.find("198.51.100.7"), std::string::npos) << dump;
}

}  // namespace
}  // namespace tandem::lab
