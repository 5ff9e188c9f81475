// SPDX-License-Identifier: Apache-2.0
// config_json (control/config/config_json.h): the written-out configuration loads back to itself.
#include "control/config/config_json.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/config/test_util.h"

namespace tandem::ctl::config {
namespace {

using json = nlohmann::ordered_json;

// Loads `text`, writes it out, loads that, and expects the same JSON (and no problems).
void expect_round_trip(const std::string& text, const std::string& name) {
  auto first = parse_cluster_text(text, name);
  ASSERT_TRUE(first.ok()) << first.diag.to_string();
  const json j = to_json(first.config);
  auto from_json = parse_cluster_text(j.dump(), name + ".json");
  ASSERT_TRUE(from_json.ok()) << from_json.diag.to_string() << j.dump(2);
  EXPECT_EQ(to_json(from_json.config), j) << name;
  auto from_yaml = parse_cluster_text(to_yaml(j), name + ".out.yaml");
  ASSERT_TRUE(from_yaml.ok()) << from_yaml.diag.to_string() << to_yaml(j);
  EXPECT_EQ(to_json(from_yaml.config), j) << name;
  for (const node_config& n : first.config.nodes) {
    const json e = to_json(effective_config(first.config, n.name));
    auto again = parse_cluster_text(e.dump(), name + "." + n.name + ".json");
    ASSERT_TRUE(again.ok()) << again.diag.to_string();
    EXPECT_EQ(to_json(again.config), e);
  }
}

TEST(config_json, examples_round_trip) {
  for (const auto& e : std::filesystem::directory_iterator(TANDEM_EXAMPLES_DIR)) {
    if (e.path().extension() != ".yaml" || e.path().filename() == "mirrors.yaml") continue;
    std::ifstream in(e.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    expect_round_trip(text, e.path().filename().string());
  }
  expect_round_trip(std::string(test::minimal_cluster), "minimal");
}

TEST(config_json, shape_and_canonical_units) {
  auto r = test::load(std::string(test::minimal_cluster) +
                      "heartbeat: {interval: 1500ms, timeout: 1m30s}\n");
  ASSERT_TRUE(r.ok()) << r.diag.to_string();
  const json j = to_json(r.config);
  EXPECT_EQ(j["heartbeat"]["interval"], "1500ms");
  EXPECT_EQ(j["heartbeat"]["timeout"], "90s");
  EXPECT_EQ(j["nodes"][1]["interconnects"][0]["port"], 7789);
  EXPECT_EQ(j["quorum"]["witness"]["lease"], "10s");
  EXPECT_FALSE(j.contains("mirrors"));
  // Keys keep the file's order.
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it)
    keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"version", "cluster", "nodes", "heartbeat", "quorum",
                                            "groups", "monitors", "alerts", "api"}));
}

TEST(config_json, diagnostics_as_json) {
  diagnostic d{severity::error, "c.yaml", {3, 9, "cluster.name"}, "bad"};
  const json j = to_json(d);
  EXPECT_EQ(j.dump(),
            R"({"severity":"error","file":"c.yaml","line":3,"column":9,)"
            R"("path":"cluster.name","message":"bad","text":"c.yaml:3:9: cluster.name: bad"})");
}

TEST(config_json, yaml_output_keeps_null_like_text_as_text) {
  const json j = {{"a", "null"}, {"b", "~"}, {"c", json::array({"x", "y"})}, {"d", true}};
  EXPECT_EQ(to_yaml(j), "a: \"null\"\nb: \"~\"\nc: [x, y]\nd: true\n");
}

TEST(config_json, sns_and_cloudwatch_round_trip_with_their_defaults) {
  const std::string text = std::string(test::minimal_cluster) +
                           "alerts:\n"
                           "  sns:\n"
                           "    - topic_arn: arn:aws:sns:eu-west-1:123456789012:tandem-alerts\n"
                           "    - topic_arn: arn:aws:sns:us-east-1:123456789012:pager\n"
                           "      endpoint: https://10.0.0.9:8443\n"
                           "      severity: error\n"
                           "      events: [quorum.lost]\n"
                           "  cloudwatch: {interval: 90s}\n";
  expect_round_trip(text, "alerts");
  auto r = test::load(text);
  const json a = to_json(r.config)["alerts"];
  EXPECT_EQ(a["sns"][0],
            json::parse(R"({"topic_arn": "arn:aws:sns:eu-west-1:123456789012:tandem-alerts",
      "region": "eu-west-1", "severity": "warning", "events": []})"));
  EXPECT_EQ(a["sns"][1]["endpoint"], "https://10.0.0.9:8443");
  EXPECT_EQ(a["cloudwatch"], json::parse(R"({"namespace": "Tandem", "interval": "90s"})"));
  EXPECT_FALSE(to_json(test::load(test::minimal_cluster).config)["alerts"].contains("cloudwatch"));
}

}  // namespace
}  // namespace tandem::ctl::config
