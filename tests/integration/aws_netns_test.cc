// SPDX-License-Identifier: Apache-2.0
// The AWS resources and monitors against the fake EC2 and IMDSv2 endpoints (tests/cloud), which
// check every request's signature with botocore: aws_vip switches the VIP's route in every route
// table of the VPC that holds it and puts the VIP on the node's interface (in the lab's
// namespaces through resource_env::netns); aws_eip moves the Elastic IP; aws_az reads the zone.
// Each recovers from, or reports clearly: a route moved behind its back, throttling, an expired
// metadata token, a missing IAM permission (at once, no retry storm) and an endpoint that does
// not answer.
#include <stdlib.h>

#include <chrono>
#include <ctime>
#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "control/groups/monitor.h"
#include "control/groups/resource.h"
#include "tests/lab/fake_aws.h"
#include "tests/lab/netns.h"

namespace tandem::ctl::groups {
namespace {

using namespace std::chrono_literals;
using config::param_value;
using json = nlohmann::json;

constexpr const char* vpc = "vpc-0fake0000000000001";
constexpr const char* eni1 = "eni-0aaaaaaaaaaaaaaaa";
constexpr const char* eni2 = "eni-0bbbbbbbbbbbbbbbb";
constexpr const char* vip = "10.200.0.10";
constexpr const char* allocation = "eipalloc-0fake00000000001";

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

// The process environment the AWS clients read (credentials, CA, metadata endpoint), restored
// afterwards.
class scoped_env {
 public:
  explicit scoped_env(const std::vector<std::pair<std::string, std::string>>& vars) {
    for (const auto& [name, value] : vars) {
      const char* old = ::getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      if (value.empty())
        ::unsetenv(name.c_str());
      else
        ::setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ~scoped_env() {
    for (const auto& [name, value] : saved_) {
      if (value)
        ::setenv(name.c_str(), value->c_str(), 1);
      else
        ::unsetenv(name.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

action_context ctx_for(const std::string& node, std::chrono::milliseconds timeout = 10s) {
  action_context ctx;
  ctx.cluster = "lab";
  ctx.node = node;
  ctx.group = "web";
  ctx.resource = "vip";
  ctx.event = "start";
  ctx.timeout = timeout;
  return ctx;
}

// Where route 10.200.0.10/32 of each table points, by table id.
std::map<std::string, std::string> vip_routes(lab::fake_aws& cloud) {
  std::map<std::string, std::string> out;
  const json state = cloud.state();
  for (const json& t : state["route_tables"])
    for (const json& r : t["routes"])
      if (r.value("destination_cidr", "") == std::string(vip) + "/32")
        out[t["route_table_id"]] = r.value("network_interface_id", "");
  return out;
}

class aws_netns : public ::testing::Test {
 protected:
  void SetUp() override {
    lab_ = std::make_unique<lab::lab>(lab::cluster_options(2, 0, false));
    cloud_ = std::make_unique<lab::fake_aws>();
    env_ = std::make_unique<scoped_env>(cloud_->environment(false));
  }
  void TearDown() override {
    if (HasFailure() && cloud_) std::cerr << "fake_aws log:\n" << cloud_->log();
    env_.reset();
    cloud_.reset();
    lab_.reset();
  }

  config::resource_config vip_config(const std::string& eni, const std::string& address = vip,
                                     bool with_interface = true) {
    config::resource_config rc;
    rc.name = "vip";
    rc.type = config::resource_type::aws_vip;
    rc.params.values["address"] = param_value{address};
    rc.params.values["vpc_id"] = param_value{std::string(vpc)};
    rc.params.values["eni_id"] = param_value{eni};
    if (with_interface) rc.params.values["interface"] = param_value{std::string("eth0")};
    rc.params.values["endpoint"] = param_value{cloud_->endpoint()};
    return rc;
  }

  config::resource_config eip_config(const std::string& eni) {
    config::resource_config rc;
    rc.name = "eip";
    rc.type = config::resource_type::aws_eip;
    rc.params.values["allocation_id"] = param_value{std::string(allocation)};
    rc.params.values["eni_id"] = param_value{eni};
    rc.params.values["endpoint"] = param_value{cloud_->endpoint()};
    return rc;
  }

  config::resource_config dns_config(const std::string& address) {
    config::resource_config rc;
    rc.name = "dns";
    rc.type = config::resource_type::aws_dns;
    rc.params.values["hosted_zone_id"] = param_value{std::string("Z0FAKE000000000000001")};
    rc.params.values["record_name"] = param_value{std::string("WWW.example.com")};
    rc.params.values["address"] = param_value{address};
    rc.params.values["ttl"] = param_value{int64_t{10}};
    rc.params.values["endpoint"] = param_value{cloud_->endpoint()};
    return rc;
  }

  // The A records of www.example.com. in the fake's hosted zone.
  std::vector<std::string> www_values() {
    const json st = cloud_->state();
    for (const json& r : st["hosted_zones"]["Z0FAKE000000000000001"]["records"])
      if (r.value("name", "") == "www.example.com." && r.value("type", "") == "A")
        return r["values"].get<std::vector<std::string>>();
    return {};
  }

  std::unique_ptr<resource> make(const std::string& host, const config::resource_config& rc) {
    resource_env env;
    env.node = host;
    env.netns = lab_->netns(host);
    return make_resource(rc, env);
  }

  // A monitor of `type` watching resource `r` (by the name it was configured with).
  std::unique_ptr<monitor> watch(config::monitor_type type, resource& r, const std::string& host) {
    config::monitor_config mc;
    mc.name = "m-" + r.name();
    mc.type = type;
    mc.group = "web";
    mc.params.values["resource"] = param_value{r.name()};
    monitor_env env;
    env.node = host;
    env.netns = lab_->netns(host);
    env.find = [&r](std::string_view name) { return name == r.name() ? &r : nullptr; };
    return make_monitor(mc, env);
  }

  bool has_vip(const std::string& host) {
    return contains(lab_->exec(host, {"ip", "-o", "-4", "addr", "show", "dev", "eth0"}).output,
                    std::string(vip) + "/32");
  }

  std::unique_ptr<lab::lab> lab_;
  std::unique_ptr<lab::fake_aws> cloud_;
  std::unique_ptr<scoped_env> env_;
};

TEST_F(aws_netns, the_vip_route_follows_the_active_node_in_every_table_that_holds_it) {
  auto r2 = make("node2", vip_config(eni2));
  const action_result s2 = r2->start(ctx_for("node2"));
  ASSERT_TRUE(s2.ok) << s2.message;
  EXPECT_TRUE(contains(s2.message, "switched 2")) << s2.message;
  const std::map<std::string, std::string> want2 = {{"rtb-0public000000000001", eni2},
                                                    {"rtb-0private00000000002", eni2}};
  EXPECT_EQ(vip_routes(*cloud_), want2);  // the table without the VIP's route is left alone
  EXPECT_TRUE(has_vip("node2"));
  auto m2 = watch(config::monitor_type::aws_vip, *r2, "node2");
  const check_result c2 = m2->check(5s);
  EXPECT_TRUE(c2.ok) << c2.message;
  EXPECT_EQ(r2->describe()["route_tables"].size(), 2u);

  // Starting again where it is already routed changes nothing.
  cloud_->reset_calls();
  const action_result again = r2->start(ctx_for("node2"));
  ASSERT_TRUE(again.ok) << again.message;
  EXPECT_TRUE(contains(again.message, "already there")) << again.message;
  EXPECT_EQ(cloud_->count("ReplaceRoute"), 0);

  // Failover to node1: both routes move; node2's monitor sees it.
  auto r1 = make("node1", vip_config(eni1));
  const action_result s1 = r1->start(ctx_for("node1"));
  ASSERT_TRUE(s1.ok) << s1.message;
  const std::map<std::string, std::string> want1 = {{"rtb-0public000000000001", eni1},
                                                    {"rtb-0private00000000002", eni1}};
  EXPECT_EQ(vip_routes(*cloud_), want1);
  const check_result stale = m2->check(5s);
  EXPECT_FALSE(stale.ok);
  EXPECT_FALSE(stale.inconclusive);
  EXPECT_TRUE(contains(stale.message, "the routing for VIP 10.200.0.10 was changed"))
      << stale.message;
  EXPECT_TRUE(contains(stale.message, eni1)) << stale.message;

  // Stop takes only the local address away; the route stays for the next node to replace.
  ASSERT_TRUE(r2->stop(ctx_for("node2")).ok);
  EXPECT_FALSE(has_vip("node2"));
  EXPECT_TRUE(has_vip("node1"));
  EXPECT_EQ(vip_routes(*cloud_), want1);
  ASSERT_TRUE(r1->stop(ctx_for("node1")).ok);
  EXPECT_FALSE(has_vip("node1"));
  EXPECT_TRUE(r1->stop(ctx_for("node1")).ok);  // stopping twice is fine
}

TEST_F(aws_netns, a_route_moved_behind_our_back_fails_the_monitor_and_a_restart_repairs_it) {
  auto r = make("node1", vip_config(eni1));
  ASSERT_TRUE(r->start(ctx_for("node1")).ok);
  auto m = watch(config::monitor_type::aws_vip, *r, "node1");
  ASSERT_TRUE(m->check(5s).ok);

  json tables = cloud_->state()["route_tables"];
  for (json& t : tables)
    for (json& route : t["routes"])
      if (route.value("destination_cidr", "") == "10.200.0.10/32" &&
          t["route_table_id"] == "rtb-0private00000000002")
        route["network_interface_id"] = "eni-0someoneelse000000";
  cloud_->set_state({{"route_tables", tables}});

  const check_result c = m->check(5s);
  EXPECT_FALSE(c.ok);
  EXPECT_TRUE(contains(c.message, "rtb-0private00000000002 points at eni-0someoneelse000000"))
      << c.message;

  // The recovery the seed describes: the resource is restarted and routes it back.
  ASSERT_TRUE(r->stop(ctx_for("node1")).ok);
  const action_result s = r->start(ctx_for("node1"));
  ASSERT_TRUE(s.ok) << s.message;
  EXPECT_TRUE(contains(s.message, "switched 1")) << s.message;
  EXPECT_TRUE(m->check(5s).ok);

  // A local address removed by hand is a failure too.
  lab_->exec_checked("node1", {"ip", "addr", "del", "10.200.0.10/32", "dev", "eth0"});
  const check_result gone = m->check(5s);
  EXPECT_FALSE(gone.ok);
  EXPECT_TRUE(contains(gone.message, "no longer on eth0")) << gone.message;
}

TEST_F(aws_netns, a_vip_inside_the_vpc_cidr_is_refused_and_nothing_changes) {
  auto r = make("node1", vip_config(eni1, "10.1.2.3"));
  const action_result s = r->start(ctx_for("node1"));
  EXPECT_FALSE(s.ok);
  EXPECT_TRUE(contains(s.message,
                       "the VIP address 10.1.2.3 belongs to a VPC subnet (10.1.0.0/16 "
                       "of vpc-0fake0000000000001)"))
      << s.message;
  EXPECT_EQ(cloud_->count("ReplaceRoute"), 0);
  EXPECT_FALSE(contains(lab_->exec("node1", {"ip", "-o", "addr"}).output, "10.1.2.3"));
}

TEST_F(aws_netns, a_vpc_that_does_not_exist_is_named_with_the_request_id) {
  config::resource_config rc = vip_config(eni1);
  rc.params.values["vpc_id"] = param_value{std::string("vpc-0doesnotexist00001")};
  auto r = make("node1", rc);
  const action_result s = r->start(ctx_for("node1"));
  EXPECT_FALSE(s.ok);
  EXPECT_TRUE(contains(s.message, "InvalidVpcID.NotFound")) << s.message;
  EXPECT_TRUE(contains(s.message, "vpc-0doesnotexist00001")) << s.message;
  EXPECT_TRUE(contains(s.message, "request id ")) << s.message;
  EXPECT_FALSE(has_vip("node1"));
}

TEST_F(aws_netns, throttling_twice_is_retried_with_backoff_and_then_succeeds) {
  cloud_->fault(
      {{"service", "ec2"}, {"action", "ReplaceRoute"}, {"kind", "throttle"}, {"count", 2}});
  auto r = make("node2", vip_config(eni2));
  const action_result s = r->start(ctx_for("node2"));
  ASSERT_TRUE(s.ok) << s.message;
  // Two throttled attempts, then one per table.
  EXPECT_EQ(cloud_->count("ReplaceRoute"), 4);
  const std::map<std::string, std::string> want = {{"rtb-0public000000000001", eni2},
                                                   {"rtb-0private00000000002", eni2}};
  EXPECT_EQ(vip_routes(*cloud_), want);
}

TEST_F(aws_netns, not_authorized_fails_at_once_with_the_message_and_no_retry_storm) {
  cloud_->fault(
      {{"service", "ec2"}, {"action", "ReplaceRoute"}, {"kind", "unauthorized"}, {"count", 10}});
  auto r = make("node2", vip_config(eni2));
  const auto t0 = std::chrono::steady_clock::now();
  const action_result s = r->start(ctx_for("node2"));
  EXPECT_FALSE(s.ok);
  EXPECT_TRUE(contains(s.message,
                       "UnauthorizedOperation: You are not authorized to perform this "
                       "operation"))
      << s.message;
  EXPECT_TRUE(contains(s.message, "HTTP 403, request id ")) << s.message;
  EXPECT_EQ(cloud_->count("ReplaceRoute"), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_FALSE(has_vip("node2"));
}

TEST_F(aws_netns, an_endpoint_that_does_not_answer_times_out_and_the_monitor_is_inconclusive) {
  auto r = make("node1", vip_config(eni1));
  ASSERT_TRUE(r->start(ctx_for("node1")).ok);
  auto m = watch(config::monitor_type::aws_vip, *r, "node1");

  cloud_->fault(
      {{"service", "ec2"}, {"action", "*"}, {"kind", "delay"}, {"delay_ms", 4000}, {"count", 20}});
  const check_result c = m->check(800ms);
  EXPECT_FALSE(c.ok);
  EXPECT_TRUE(c.inconclusive) << c.message;  // no failover because the API is unreachable
  EXPECT_TRUE(contains(c.message, "Timeout occurred")) << c.message;

  auto r2 = make("node2", vip_config(eni2));
  const auto t0 = std::chrono::steady_clock::now();
  const action_result s = r2->start(ctx_for("node2", 1500ms));
  EXPECT_FALSE(s.ok);
  EXPECT_TRUE(contains(s.message, "Timeout occurred")) << s.message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_FALSE(has_vip("node2"));
}

TEST_F(aws_netns, instance_role_credentials_and_an_expired_metadata_token) {
  // The node's interface is found through the metadata (its MAC maps to the ENI), and the
  // credentials are the instance role's, with a session token the fake checks in the signature.
  json imds = cloud_->state()["imds"];
  imds["macs"] = {{lab_->mac("node1"), eni1}};
  cloud_->set_state({{"imds", imds}});
  scoped_env role(cloud_->environment(true));

  auto r = make("node1", vip_config(eni1, vip, /*with_interface=*/false));
  const action_result s = r->start(ctx_for("node1"));
  ASSERT_TRUE(s.ok) << s.message;
  EXPECT_TRUE(has_vip("node1"));
  EXPECT_EQ(cloud_->count("api/token"), 1);

  cloud_->expire_imds_tokens();
  ASSERT_TRUE(r->stop(ctx_for("node1")).ok);
  const action_result again = r->start(ctx_for("node1"));
  ASSERT_TRUE(again.ok) << again.message;
  EXPECT_EQ(cloud_->count("api/token"), 2);  // one 401, one new token
  EXPECT_TRUE(has_vip("node1"));
}

TEST_F(aws_netns, the_elastic_ip_moves_between_enis_and_stop_releases_only_our_own) {
  auto e1 = make("node1", eip_config(eni1));
  const action_result s1 = e1->start(ctx_for("node1"));
  ASSERT_TRUE(s1.ok) << s1.message;
  EXPECT_TRUE(contains(s1.message, "198.51.100.7 associated with " + std::string(eni1)))
      << s1.message;
  auto m1 = watch(config::monitor_type::aws_eip, *e1, "node1");
  EXPECT_TRUE(m1->check(5s).ok);

  auto e2 = make("node2", eip_config(eni2));
  const action_result s2 = e2->start(ctx_for("node2"));
  ASSERT_TRUE(s2.ok) << s2.message;
  EXPECT_TRUE(contains(s2.message, "taken from " + std::string(eni1))) << s2.message;
  const check_result c1 = m1->check(5s);
  EXPECT_FALSE(c1.ok);
  EXPECT_TRUE(contains(c1.message, "associated with " + std::string(eni2) + " instead of " + eni1))
      << c1.message;

  // node1 stops after node2 took it: node2's association stays.
  cloud_->reset_calls();
  ASSERT_TRUE(e1->stop(ctx_for("node1")).ok);
  EXPECT_EQ(cloud_->count("DisassociateAddress"), 0);
  EXPECT_EQ(cloud_->state()["addresses"][0].value("network_interface_id", ""), eni2);

  const action_result st = e2->stop(ctx_for("node2"));
  ASSERT_TRUE(st.ok) << st.message;
  EXPECT_EQ(cloud_->count("DisassociateAddress"), 1);
  EXPECT_EQ(cloud_->state()["addresses"][0].value("network_interface_id", ""), "");
}

TEST_F(aws_netns, the_route53_record_follows_the_active_node_and_stop_deletes_only_our_own) {
  cloud_->set_state({{"insync_after_polls", 2}});
  auto d1 = make("node1", dns_config("10.0.1.10"));
  const action_result s1 = d1->start(ctx_for("node1"));
  ASSERT_TRUE(s1.ok) << s1.message;
  EXPECT_TRUE(contains(s1.message, "www.example.com. A (none) -> 10.0.1.10: change "))
      << s1.message;
  EXPECT_TRUE(contains(s1.message, "INSYNC after")) << s1.message;
  EXPECT_EQ(www_values(), std::vector<std::string>{"10.0.1.10"});
  EXPECT_EQ(cloud_->count("GetChange"), 3);  // two PENDING answers, then INSYNC
  auto m1 = watch(config::monitor_type::aws_dns, *d1, "node1");
  const check_result c1 = m1->check(5s);
  EXPECT_TRUE(c1.ok) << c1.message;

  // Throttled twice on the way: the failover still gets through.
  cloud_->fault({{"service", "route53"},
                 {"action", "ChangeResourceRecordSets"},
                 {"kind", "throttle"},
                 {"count", 2}});
  auto d2 = make("node2", dns_config("10.0.2.10"));
  const action_result s2 = d2->start(ctx_for("node2"));
  ASSERT_TRUE(s2.ok) << s2.message;
  EXPECT_EQ(www_values(), std::vector<std::string>{"10.0.2.10"});
  const check_result stale = m1->check(5s);
  EXPECT_FALSE(stale.ok);
  EXPECT_EQ(stale.message,
            "the record www.example.com. A points at 10.0.2.10 instead of 10.0.1.10");

  // node1 stops after node2 took the record: it stays.
  const action_result st1 = d1->stop(ctx_for("node1"));
  ASSERT_TRUE(st1.ok) << st1.message;
  EXPECT_EQ(st1.message, "record kept: it points at 10.0.2.10");
  EXPECT_EQ(www_values(), std::vector<std::string>{"10.0.2.10"});
  const action_result st2 = d2->stop(ctx_for("node2"));
  ASSERT_TRUE(st2.ok) << st2.message;
  EXPECT_TRUE(www_values().empty());
  EXPECT_TRUE(d2->stop(ctx_for("node2")).ok);  // nothing left to delete
}

TEST_F(aws_netns, route53_access_denied_is_reported_at_once) {
  cloud_->fault({{"service", "route53"}, {"action", "*"}, {"kind", "unauthorized"}, {"count", 5}});
  auto d = make("node1", dns_config("10.0.1.10"));
  const action_result s = d->start(ctx_for("node1"));
  EXPECT_FALSE(s.ok);
  EXPECT_TRUE(contains(s.message, "Route 53 zone Z0FAKE000000000000001: AccessDenied: User: "))
      << s.message;
  EXPECT_TRUE(contains(s.message, "request id ")) << s.message;
  EXPECT_EQ(cloud_->count("ListResourceRecordSets"), 1);
}

// Every AWS resource, not only aws_vip, against each fault of the issue: throttled twice then
// through, a missing permission (one call, a clear message), an endpoint that does not answer
// (bounded by the activation timeout), and instance-role credentials whose metadata token
// expired in between.
TEST_F(aws_netns, every_aws_resource_rides_out_throttling_and_reports_refusals_and_silence) {
  struct kind {
    const char* name;
    const char* write_action;  // the call that changes something
    int writes;                // how many of them one activation makes
    std::function<config::resource_config(int node)> config;
  };
  const kind kinds[] = {
      {"aws_vip", "ReplaceRoute", 2, [&](int n) { return vip_config(n == 1 ? eni1 : eni2); }},
      {"aws_eip", "AssociateAddress", 1, [&](int n) { return eip_config(n == 1 ? eni1 : eni2); }},
      {"aws_dns", "ChangeResourceRecordSets", 1,
       [&](int n) { return dns_config(n == 1 ? "10.0.1.10" : "10.0.2.10"); }},
  };
  int node = 1;
  for (const kind& k : kinds) {
    SCOPED_TRACE(k.name);
    const std::string service = std::string(k.name) == "aws_dns" ? "route53" : "ec2";
    // Throttled twice, then through.
    node = 3 - node;
    cloud_->reset_calls();
    cloud_->fault(
        {{"service", service}, {"action", k.write_action}, {"kind", "throttle"}, {"count", 2}});
    auto r = make("node" + std::to_string(node), k.config(node));
    const action_result ok = r->start(ctx_for("node" + std::to_string(node)));
    EXPECT_TRUE(ok.ok) << ok.message;
    EXPECT_EQ(cloud_->count(k.write_action), 2 + k.writes);  // two throttled, then through

    // Not authorized: one call, AWS's code and the request id.
    node = 3 - node;
    cloud_->reset_calls();
    cloud_->fault(
        {{"service", service}, {"action", k.write_action}, {"kind", "unauthorized"}, {"count", 5}});
    auto denied = make("node" + std::to_string(node), k.config(node));
    const action_result no = denied->start(ctx_for("node" + std::to_string(node)));
    EXPECT_FALSE(no.ok);
    EXPECT_TRUE(contains(no.message, "request id ")) << no.message;
    EXPECT_TRUE(contains(no.message, service == "ec2" ? "UnauthorizedOperation" : "AccessDenied"))
        << no.message;
    EXPECT_EQ(cloud_->count(k.write_action), 1);
    cloud_->clear_faults();

    // No answer: a failure within the activation timeout that says so.
    cloud_->fault({{"service", service},
                   {"action", "*"},
                   {"kind", "delay"},
                   {"delay_ms", 3000},
                   {"count", 10}});
    auto silent = make("node" + std::to_string(node), k.config(node));
    const auto t0 = std::chrono::steady_clock::now();
    const action_result late = silent->start(ctx_for("node" + std::to_string(node), 1200ms));
    EXPECT_FALSE(late.ok);
    EXPECT_TRUE(contains(late.message, "Timeout occurred")) << late.message;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
    cloud_->clear_faults();
  }
}

TEST_F(aws_netns, an_expired_metadata_token_does_not_stop_the_elastic_ip_or_the_record) {
  // Role credentials that expire in three minutes are fetched again at every call (five
  // minutes before expiry), so each call meets the metadata token the fake has expired.
  const std::time_t soon = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() +
                                                                std::chrono::minutes(3));
  std::tm tm{};
  ::gmtime_r(&soon, &tm);
  char expiration[32];
  std::strftime(expiration, sizeof expiration, "%Y-%m-%dT%H:%M:%SZ", &tm);
  json imds = cloud_->state()["imds"];
  imds["expiration"] = expiration;
  cloud_->set_state({{"imds", imds}});
  scoped_env role(cloud_->environment(true));

  auto e = make("node1", eip_config(eni1));
  auto d = make("node1", dns_config("10.0.1.10"));
  ASSERT_TRUE(e->start(ctx_for("node1")).ok);
  ASSERT_TRUE(d->start(ctx_for("node1")).ok);
  cloud_->expire_imds_tokens();
  const int tokens = cloud_->count("api/token");
  const action_result se = e->stop(ctx_for("node1"));
  EXPECT_TRUE(se.ok) << se.message;
  const action_result sd = d->stop(ctx_for("node1"));
  EXPECT_TRUE(sd.ok) << sd.message;
  EXPECT_GE(cloud_->count("api/token"), tokens + 2);  // one new token for each owner
  EXPECT_EQ(cloud_->state()["addresses"][0].value("network_interface_id", ""), "");
  EXPECT_TRUE(www_values().empty());
}

TEST_F(aws_netns, the_zone_monitor_reports_an_impaired_zone_with_its_message) {
  auto zone = [&](const std::string& name) {
    config::monitor_config mc;
    mc.name = "zone";
    mc.type = config::monitor_type::aws_az;
    mc.params.values["availability_zone"] = param_value{name};
    mc.params.values["endpoint"] = param_value{cloud_->endpoint()};
    monitor_env env;
    env.node = "node1";
    return make_monitor(mc, env);
  };
  EXPECT_TRUE(zone("us-east-1a")->check(5s).ok);
  const check_result b = zone("us-east-1b")->check(5s);
  EXPECT_FALSE(b.ok);
  EXPECT_FALSE(b.inconclusive);
  EXPECT_EQ(b.message, "availability zone us-east-1b is impaired: Power loss in one facility");
  const check_result x = zone("us-east-1x")->check(5s);
  EXPECT_FALSE(x.ok);
  EXPECT_TRUE(contains(x.message, "us-east-1x")) << x.message;
}

}  // namespace
}  // namespace tandem::ctl::groups
