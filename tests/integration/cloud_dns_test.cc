// SPDX-License-Identifier: Apache-2.0
// The gcp_dns and azure_dns resources and monitors against the fake Google Cloud DNS + GCE
// metadata and Azure DNS + Azure IMDS endpoints (tests/cloud/fake_gcp_azure.py) on loopback: the
// record follows the active node, stop deletes only our own record, the token is fetched again
// after it expired, throttling is ridden out and a refusal is reported at once.
#include <stdlib.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/groups/monitor.h"
#include "control/groups/resource.h"
#include "tests/lab/fake_aws.h"

namespace tandem::ctl::groups {
namespace {

using namespace std::chrono_literals;
using config::param_value;
using json = nlohmann::json;

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

action_context ctx_for(const std::string& node) {
  action_context ctx;
  ctx.cluster = "lab";
  ctx.node = node;
  ctx.group = "web";
  ctx.resource = "dns";
  ctx.event = "start";
  ctx.timeout = 10s;
  return ctx;
}

class cloud_dns : public ::testing::Test {
 protected:
  void SetUp() override {
    cloud_ = std::make_unique<lab::fake_gcp_azure>();
    for (const auto& [name, value] : cloud_->environment()) {
      const char* old = ::getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      ::setenv(name.c_str(), value.c_str(), 1);
    }
  }
  void TearDown() override {
    if (HasFailure() && cloud_) std::cerr << "fake log:\n" << cloud_->log();
    for (const auto& [name, value] : saved_) {
      if (value)
        ::setenv(name.c_str(), value->c_str(), 1);
      else
        ::unsetenv(name.c_str());
    }
    cloud_.reset();
  }

  config::resource_config config_for(config::resource_type type, const std::string& address) {
    config::resource_config rc;
    rc.name = "dns";
    rc.type = type;
    if (type == config::resource_type::gcp_dns) {
      rc.params.values["project"] = param_value{std::string("tandem-test")};
      rc.params.values["zone"] = param_value{std::string("example-zone")};
    } else {
      rc.params.values["subscription_id"] =
          param_value{std::string("00000000-0000-0000-0000-0000000000aa")};
      rc.params.values["resource_group"] = param_value{std::string("tandem-rg")};
      rc.params.values["zone"] = param_value{std::string("example.com")};
    }
    rc.params.values["record_name"] = param_value{std::string("www.example.com")};
    rc.params.values["address"] = param_value{address};
    rc.params.values["ttl"] = param_value{int64_t{30}};
    rc.params.values["endpoint"] = param_value{cloud_->endpoint()};
    return rc;
  }

  std::unique_ptr<resource> make(config::resource_type type, const std::string& address) {
    resource_env env;
    env.node = "node1";
    return make_resource(config_for(type, address), env);
  }

  std::unique_ptr<monitor> watch(config::monitor_type type, resource& r) {
    config::monitor_config mc;
    mc.name = "m-dns";
    mc.type = type;
    mc.group = "web";
    mc.params.values["resource"] = param_value{r.name()};
    monitor_env env;
    env.node = "node1";
    env.find = [&r](std::string_view name) { return name == r.name() ? &r : nullptr; };
    return make_monitor(mc, env);
  }

  // The addresses of www.example.com. A in the fake, for either provider.
  std::vector<std::string> www(config::resource_type type) {
    const json st = cloud_->state();
    if (type == config::resource_type::gcp_dns) {
      for (const json& r : st["gcp"]["zones"]["example-zone"]["records"])
        if (r.value("name", "") == "www.example.com." && r.value("type", "") == "A")
          return r["rrdatas"].get<std::vector<std::string>>();
    } else {
      for (const json& r : st["azure"]["zones"]["example.com"]["records"])
        if (r.value("name", "") == "www" && r.value("type", "") == "A")
          return r["addresses"].get<std::vector<std::string>>();
    }
    return {};
  }

  // The whole life of the record with two nodes, for one provider.
  void follows_the_active_node(config::resource_type type, config::monitor_type mtype) {
    auto d1 = make(type, "10.0.1.10");
    const action_result s1 = d1->start(ctx_for("node1"));
    ASSERT_TRUE(s1.ok) << s1.message;
    EXPECT_TRUE(contains(s1.message, "www.example.com. A (none) -> 10.0.1.10")) << s1.message;
    EXPECT_EQ(www(type), std::vector<std::string>{"10.0.1.10"});
    auto m1 = watch(mtype, *d1);
    const check_result c1 = m1->check(5s);
    EXPECT_TRUE(c1.ok) << c1.message;

    auto d2 = make(type, "10.0.2.10");
    const action_result s2 = d2->start(ctx_for("node2"));
    ASSERT_TRUE(s2.ok) << s2.message;
    EXPECT_TRUE(contains(s2.message, "10.0.1.10 -> 10.0.2.10")) << s2.message;
    EXPECT_EQ(www(type), std::vector<std::string>{"10.0.2.10"});
    const check_result stale = m1->check(5s);
    EXPECT_FALSE(stale.ok);
    EXPECT_FALSE(stale.inconclusive);
    EXPECT_EQ(stale.message,
              "the record www.example.com. A points at 10.0.2.10 instead of 10.0.1.10");

    const action_result st1 = d1->stop(ctx_for("node1"));
    ASSERT_TRUE(st1.ok) << st1.message;
    EXPECT_EQ(st1.message, "record kept: it points at 10.0.2.10");
    EXPECT_EQ(www(type), std::vector<std::string>{"10.0.2.10"});
    const action_result st2 = d2->stop(ctx_for("node2"));
    ASSERT_TRUE(st2.ok) << st2.message;
    EXPECT_TRUE(www(type).empty());
    EXPECT_TRUE(d2->stop(ctx_for("node2")).ok);
  }

  std::unique_ptr<lab::fake_gcp_azure> cloud_;
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST_F(cloud_dns, the_cloud_dns_record_follows_the_active_node) {
  follows_the_active_node(config::resource_type::gcp_dns, config::monitor_type::gcp_dns);
  EXPECT_GE(cloud_->count("changes.get"), 2);  // each change polled until done
}

TEST_F(cloud_dns, the_azure_record_set_follows_the_active_node) {
  follows_the_active_node(config::resource_type::azure_dns, config::monitor_type::azure_dns);
}

TEST_F(cloud_dns, an_expired_token_is_fetched_again_once) {
  auto d = make(config::resource_type::gcp_dns, "10.0.1.10");
  ASSERT_TRUE(d->start(ctx_for("node1")).ok);
  auto m = watch(config::monitor_type::gcp_dns, *d);
  ASSERT_TRUE(m->check(5s).ok);
  const int tokens = cloud_->count("gce.token");
  cloud_->expire_tokens();
  const check_result c = m->check(5s);
  EXPECT_TRUE(c.ok) << c.message;
  EXPECT_EQ(cloud_->count("gce.token"), tokens + 1);

  auto a = make(config::resource_type::azure_dns, "10.0.1.10");
  ASSERT_TRUE(a->start(ctx_for("node1")).ok);
  cloud_->expire_tokens();
  const int azure_tokens = cloud_->count("azure.token");
  ASSERT_TRUE(a->stop(ctx_for("node1")).ok);
  EXPECT_EQ(cloud_->count("azure.token"), azure_tokens + 1);
}

TEST_F(cloud_dns, throttling_is_ridden_out_and_a_refusal_is_reported_at_once) {
  cloud_->fault(
      {{"service", "azure"}, {"action", "recordsets.put"}, {"kind", "throttle"}, {"count", 2}});
  auto a = make(config::resource_type::azure_dns, "10.0.1.10");
  const action_result s = a->start(ctx_for("node1"));
  ASSERT_TRUE(s.ok) << s.message;
  EXPECT_EQ(cloud_->count("recordsets.put"), 3);

  cloud_->fault({{"service", "gcp"}, {"action", "*"}, {"kind", "unauthorized"}, {"count", 5}});
  auto g = make(config::resource_type::gcp_dns, "10.0.1.10");
  cloud_->reset_calls();
  const action_result f = g->start(ctx_for("node1"));
  EXPECT_FALSE(f.ok);
  EXPECT_TRUE(contains(f.message, "Cloud DNS zone tandem-test/example-zone: ")) << f.message;
  EXPECT_TRUE(contains(f.message, "HTTP 403")) << f.message;
  EXPECT_EQ(cloud_->count("rrsets.list"), 1);
}

TEST_F(cloud_dns, a_silent_api_makes_the_monitor_inconclusive) {
  auto g = make(config::resource_type::gcp_dns, "10.0.1.10");
  ASSERT_TRUE(g->start(ctx_for("node1")).ok);
  auto m = watch(config::monitor_type::gcp_dns, *g);
  cloud_->fault(
      {{"service", "gcp"}, {"action", "*"}, {"kind", "delay"}, {"delay_ms", 3000}, {"count", 5}});
  const check_result c = m->check(700ms);
  EXPECT_FALSE(c.ok);
  EXPECT_TRUE(c.inconclusive) << c.message;
  EXPECT_TRUE(contains(c.message, "Timeout occurred")) << c.message;
}

}  // namespace
}  // namespace tandem::ctl::groups
