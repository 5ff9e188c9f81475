// SPDX-License-Identifier: Apache-2.0
// Two tandemd nodes in lab namespaces and the fake AWS endpoints on a third host of the public
// lan, with alerts.sns and alerts.cloudwatch pointing at the fake: when node2 crashes, node1
// publishes heartbeat.node_down to the SNS topic (the webhook payload as the message, signed and
// checked by botocore), and every node sends its monitor's check times to CloudWatch as
// MonitorCheckTime datums with the Cluster, Node and Monitor dimensions. A topic that does not
// exist shows up in the status counters and as an alert_failed event.
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

constexpr const char* topic = "arn:aws:sns:us-east-1:123456789012:tandem-alerts";
constexpr const char* missing_topic = "arn:aws:sns:us-east-1:123456789012:no-such-topic";

// The SNS messages the fake stored for `topic_arn` whose payload names `event`.
json messages_of(fake_aws& cloud, const std::string& topic_arn, const std::string& event) {
  json out = json::array();
  const json state = cloud.state();
  for (const json& m : state["sns_messages"]) {
    if (m.value("topic_arn", "") != topic_arn) continue;
    const json payload = json::parse(m.value("message", ""), nullptr, false);
    if (payload.is_object() && payload.value("name", "") == event) out.push_back(m);
  }
  return out;
}

// The MonitorCheckTime datums the fake stored from `node`.
json datums_of(fake_aws& cloud, const std::string& node) {
  json out = json::array();
  const json state = cloud.state();
  for (const json& d : state["metrics"])
    if (d.value("metric_name", "") == "MonitorCheckTime" &&
        d["dimensions"].value("Node", "") == node)
      out.push_back(d);
  return out;
}

TEST(aws_alerts_netns, node_down_goes_to_sns_and_check_times_to_cloudwatch) {
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
    const std::string endpoint = "\"" + cloud->endpoint() + "\"";
    // CloudWatch has no region here: it comes from AWS_REGION, as the SDKs find it.
    return std::string(
               "alerts:\n"
               "  sns:\n"
               "    - topic_arn: ") +
           topic + "\n      endpoint: " + endpoint +
           "\n      events: [\"heartbeat.*\"]\n"
           "    - topic_arn: " +
           missing_topic + "\n      endpoint: " + endpoint +
           "\n      severity: error\n"
           "      events: [heartbeat.node_down]\n"
           "  cloudwatch:\n"
           "    endpoint: " +
           endpoint +
           "\n    interval: 1s\n"
           "monitors:\n"
           "  - name: probe\n"
           "    type: script\n"
           "    interval: 200ms\n"
           "    params: {path: /bin/sh, args: ['-c', 'sleep 0.02']}\n";
  };
  tandemd_cluster c(o);
  std::vector<std::string> env;
  for (const auto& [name, value] : cloud->environment(false))
    env.push_back(name + "=" + value);
  c.set_env(env);

  c.start(0);
  c.start(1);
  ASSERT_TRUE(c.wait_all_up()) << c.logs();

  // Check times from both nodes, sent every second in batches.
  ASSERT_TRUE(tandemd_cluster::wait_until(
      [&] {
        return datums_of(*cloud, "node1").size() >= 3 && datums_of(*cloud, "node2").size() >= 3;
      },
      20s, 200ms))
      << c.logs() << cloud->log();
  for (const char* node : {"node1", "node2"}) {
    for (const json& d : datums_of(*cloud, node)) {
      EXPECT_EQ(d["namespace"], "Tandem") << d.dump();
      EXPECT_EQ(d["dimensions"], json({{"Cluster", "lab"}, {"Node", node}, {"Monitor", "probe"}}))
          << d.dump();
      EXPECT_EQ(d["unit"], "Milliseconds") << d.dump();
      EXPECT_GE(d["value"].get<double>(), 20.0) << d.dump();  // the check sleeps 20 ms
      EXPECT_LT(d["value"].get<double>(), 5000.0) << d.dump();
    }
  }

  // node2 crashes: node1 declares it down and publishes the event.
  c.kill9(1);
  ASSERT_TRUE(tandemd_cluster::wait_until(
      [&] { return !messages_of(*cloud, topic, "heartbeat.node_down").empty(); }, 20s, 100ms))
      << c.log(0) << cloud->log();
  const json m = messages_of(*cloud, topic, "heartbeat.node_down")[0];
  EXPECT_EQ(m["subject"], "tandem lab: heartbeat.node_down on node1");
  EXPECT_EQ(m["access_key"], fake_access_key);
  const json payload = json::parse(m["message"].get<std::string>());
  EXPECT_EQ(payload["cluster"], "lab");
  EXPECT_EQ(payload["node"], "node1");
  EXPECT_EQ(payload["about"], "node2");
  EXPECT_EQ(payload["module"], "heartbeat");
  EXPECT_EQ(payload["severity"], "error");
  EXPECT_GT(payload["serial"].get<uint64_t>(), 0u);
  EXPECT_TRUE(payload["message"].get<std::string>().starts_with("node node2 is down")) << payload;
  EXPECT_EQ(payload["time"].get<std::string>().size(), 24u) << payload;

  // The missing topic: one refused call (no retry storm), counted and reported as an event.
  ASSERT_TRUE(tandemd_cluster::wait_until(
      [&] {
        const json st = c.status(0);
        return st["sns"].size() == 2 && st["sns"][1].value("failed", 0) >= 1;
      },
      10s, 100ms))
      << c.status(0).dump(2);
  const json st = c.status(0);
  EXPECT_EQ(st["sns"][0]["topic_arn"], topic);
  EXPECT_GE(st["sns"][0]["sent"].get<int>(), 1) << st["sns"].dump();
  EXPECT_EQ(st["sns"][0]["failed"], 0) << st["sns"].dump();
  EXPECT_TRUE(st["sns"][0].contains("last_message_id")) << st["sns"].dump();
  EXPECT_EQ(st["sns"][1]["topic_arn"], missing_topic);
  EXPECT_NE(st["sns"][1].value("last_error", "").find("NotFound: Topic does not exist"),
            std::string::npos)
      << st["sns"].dump();
  EXPECT_GT(st["cloudwatch"]["datums_sent"].get<int>(), 0) << st["cloudwatch"].dump();
  EXPECT_EQ(st["cloudwatch"]["failed_calls"], 0) << st["cloudwatch"].dump();
  int publishes_to_missing = 0;
  for (const json& call : cloud->calls())
    if (call.value("service", "") == "sns" && call.value("status", 0) == 404)
      ++publishes_to_missing;
  EXPECT_EQ(publishes_to_missing, 1);
  const std::string events = c.events(0).dump();
  EXPECT_NE(events.find("could not be published to SNS topic " + std::string(missing_topic)),
            std::string::npos)
      << events;
}

}  // namespace
}  // namespace tandem::lab
