// SPDX-License-Identifier: Apache-2.0
// The cloud-routing benchmark: how long tandem's AWS resources take to move a service address
// through the API, against what a shell agent does with Debian's `aws` CLI, measured in the same
// run against the same fake endpoints (tests/cloud/fake_aws.py on loopback, every signature
// checked by botocore).
//
//   vip   from activation to "route switched": the aws_vip resource's start (DescribeVpcs,
//         DescribeRouteTables, ReplaceRoute in both tables that hold the VIP, the address on the
//         node's interface in a lab namespace), with a fresh resource each trial, so its TLS
//         handshake and credential lookup are counted. Baseline: `aws ec2 describe-route-tables`
//         then `aws ec2 replace-route` for each table, as aws-vpc-move-ip does (without its
//         `sleep 1` between tables).
//   dns   from activation to "record INSYNC": the aws_dns resource's start
//         (ListResourceRecordSets, UPSERT, GetChange until INSYNC). Baseline: `aws route53
//         change-resource-record-sets` then `aws route53 get-change` until INSYNC, polled back to
//         back (aws-vpc-route53 sleeps 20 s between polls; that is not counted here).
// The fake answers INSYNC on the second GetChange, for both.
//
// One JSON line per variant and one with the ratios (tandem / CLI, lower is better):
//   {"bench":"cloud","variant":"tandem_vip","trials":10,"p50_ms":..,"p99_ms":..,"api_calls":..}
//   {"bench":"cloud","baseline":"awscli","ratio_vip":..,"ratio_dns":..}
// TANDEM_BENCH_TRIALS (default 10) sets the rounds. The exit status is non-zero only when a
// trial fails functionally, never because of a time.
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/exec/process.h"
#include "control/groups/resource.h"
#include "tests/lab/fake_aws.h"
#include "tests/lab/netns.h"

namespace {

using namespace std::chrono_literals;
using namespace tandem;
using json = nlohmann::ordered_json;
using steady = std::chrono::steady_clock;
using ctl::config::param_value;

constexpr const char* vpc = "vpc-0fake0000000000001";
constexpr const char* enis[2] = {"eni-0aaaaaaaaaaaaaaaa", "eni-0bbbbbbbbbbbbbbbb"};
constexpr const char* tables[2] = {"rtb-0public000000000001", "rtb-0private00000000002"};
constexpr const char* zone = "Z0FAKE000000000000001";

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

double round2(double x) {
  return std::round(x * 100) / 100;
}

double ms_since(steady::time_point t0) {
  return std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

struct variant {
  explicit variant(std::string n) : name(std::move(n)) {}
  std::string name;
  std::vector<double> ms;
  int calls = 0;  // API calls the fake answered, over all trials
};

class bench {
 public:
  bench() : lab_(lab::cluster_options(2, 0, false)) {
    json state = lab::fake_aws::default_state();
    state["insync_after_polls"] = 1;
    lab::fake_aws_options o;
    o.state = state;
    cloud_ = std::make_unique<lab::fake_aws>(o);
    for (const auto& [name, value] : cloud_->environment(false)) {
      ::setenv(name.c_str(), value.c_str(), 1);
      cli_env_.push_back(name + "=" + value);
    }
    // The CLI's own defaults, as an agent runs it: no pager, JSON out, no retries beyond the
    // standard mode's (the fake does not throttle here).
    cli_env_.push_back("AWS_PAGER=");
    cli_env_.push_back("AWS_DEFAULT_OUTPUT=json");
  }

  // One aws_vip activation on node i (0 or 1): the route moves to its ENI.
  void tandem_vip(variant& v) {
    const int i = 1 - route_at_;
    route_at_ = i;
    ctl::config::resource_config rc;
    rc.name = "vip";
    rc.type = ctl::config::resource_type::aws_vip;
    rc.params.values["address"] = param_value{std::string("10.200.0.10")};
    rc.params.values["vpc_id"] = param_value{std::string(vpc)};
    rc.params.values["eni_id"] = param_value{std::string(enis[i])};
    rc.params.values["interface"] = param_value{std::string("eth0")};
    rc.params.values["endpoint"] = param_value{cloud_->endpoint()};
    ctl::groups::resource_env env;
    env.node = node(i);
    env.netns = lab_.netns(node(i));
    auto r = ctl::groups::make_resource(rc, env);
    cloud_->reset_calls();
    const auto t0 = steady::now();
    const ctl::groups::action_result res = r->start(ctx(i));
    const double ms = ms_since(t0);
    if (!res.ok) throw std::runtime_error("aws_vip start on " + node(i) + ": " + res.message);
    v.calls += static_cast<int>(cloud_->calls().size());
    v.ms.push_back(ms);
    check_route(i);
    if (!r->stop(ctx(i)).ok) throw std::runtime_error("aws_vip stop on " + node(i));
  }

  // What aws-vpc-move-ip does: describe the tables, then replace the route in each.
  void cli_vip(variant& v) {
    const int i = 1 - route_at_;
    route_at_ = i;
    cloud_->reset_calls();
    const auto t0 = steady::now();
    aws({"ec2", "describe-route-tables", "--filters", std::string("Name=vpc-id,Values=") + vpc});
    for (const char* t : tables)
      aws({"ec2", "replace-route", "--route-table-id", t, "--destination-cidr-block",
           "10.200.0.10/32", "--network-interface-id", enis[i]});
    v.ms.push_back(ms_since(t0));
    v.calls += static_cast<int>(cloud_->calls().size());
    check_route(i);
  }

  void tandem_dns(variant& v) {
    const int i = 1 - record_at_;
    record_at_ = i;
    ctl::config::resource_config rc;
    rc.name = "dns";
    rc.type = ctl::config::resource_type::aws_dns;
    rc.params.values["hosted_zone_id"] = param_value{std::string(zone)};
    rc.params.values["record_name"] = param_value{std::string("www.example.com")};
    rc.params.values["address"] = param_value{address(i)};
    rc.params.values["ttl"] = param_value{int64_t{10}};
    rc.params.values["delete_on_stop"] = param_value{false};
    rc.params.values["endpoint"] = param_value{cloud_->endpoint()};
    ctl::groups::resource_env env;
    env.node = node(i);
    auto r = ctl::groups::make_resource(rc, env);
    cloud_->reset_calls();
    const auto t0 = steady::now();
    const ctl::groups::action_result res = r->start(ctx(i));
    const double ms = ms_since(t0);
    if (!res.ok) throw std::runtime_error("aws_dns start on " + node(i) + ": " + res.message);
    v.ms.push_back(ms);
    v.calls += static_cast<int>(cloud_->calls().size());
    check_record(i);
  }

  // What aws-vpc-route53 does: UPSERT, then get-change until INSYNC (here without its sleep).
  void cli_dns(variant& v) {
    const int i = 1 - record_at_;
    record_at_ = i;
    json record = json::object();
    record["Name"] = "www.example.com.";
    record["Type"] = "A";
    record["TTL"] = 10;
    record["ResourceRecords"] = json::array();
    record["ResourceRecords"].push_back(json::object({{"Value", address(i)}}));
    json change_entry = json::object();
    change_entry["Action"] = "UPSERT";
    change_entry["ResourceRecordSet"] = record;
    json batch = json::object();
    batch["Changes"] = json::array();
    batch["Changes"].push_back(change_entry);
    cloud_->reset_calls();
    const auto t0 = steady::now();
    const json change =
        json::parse(aws({"route53", "change-resource-record-sets", "--hosted-zone-id", zone,
                         "--change-batch", batch.dump()}));
    std::string id = change["ChangeInfo"]["Id"];
    for (int polls = 0;; ++polls) {
      if (polls > 50) throw std::runtime_error("aws route53 get-change: never INSYNC");
      const json st = json::parse(aws({"route53", "get-change", "--id", id}));
      if (st["ChangeInfo"]["Status"] == "INSYNC") break;
    }
    v.ms.push_back(ms_since(t0));
    v.calls += static_cast<int>(cloud_->calls().size());
    check_record(i);
  }

 private:
  static std::string node(int i) { return "node" + std::to_string(i + 1); }
  static std::string address(int i) { return "10.0." + std::to_string(i + 1) + ".10"; }

  static ctl::groups::action_context ctx(int i) {
    ctl::groups::action_context c;
    c.cluster = "bench";
    c.node = node(i);
    c.group = "api";
    c.resource = "r";
    c.event = "failover";
    c.timeout = 30s;
    return c;
  }

  std::string aws(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/aws", "--endpoint-url", cloud_->endpoint()};
    argv.insert(argv.end(), args.begin(), args.end());
    const ctl::run_result r = ctl::run(argv, 60s, {}, cli_env_);
    if (!r.status.ok())
      throw std::runtime_error("aws " + args[0] + " " + args[1] + ": " + r.output);
    return r.output;
  }

  void check_route(int i) {
    const json st = cloud_->state();
    for (const json& t : st["route_tables"])
      for (const json& r : t["routes"])
        if (r.value("destination_cidr", "") == "10.200.0.10/32" &&
            r.value("network_interface_id", "") != enis[i])
          throw std::runtime_error("the route of " + t["route_table_id"].get<std::string>() +
                                   " did not move to " + enis[i]);
  }

  void check_record(int i) {
    const json st = cloud_->state();
    for (const json& r : st["hosted_zones"][zone]["records"])
      if (r.value("name", "") == "www.example.com." && r["values"] == json::array({address(i)}))
        return;
    throw std::runtime_error("www.example.com. does not point at " + address(i));
  }

  lab::lab lab_;
  std::unique_ptr<lab::fake_aws> cloud_;
  // Which node the route and the record point at now: every trial moves them to the other one,
  // so each variant does a real switch.
  int route_at_ = 0;
  int record_at_ = 0;
  std::vector<std::string> cli_env_;
};

}  // namespace

int main() {
  try {
    int trials = 10;
    if (const char* t = ::getenv("TANDEM_BENCH_TRIALS")) trials = std::max(1, std::atoi(t));
    bench b;
    variant tv("tandem_vip"), cv("awscli_vip"), td("tandem_dns"), cd("awscli_dns");
    // A first, untimed round warms the fake (and the page cache for the CLI).
    {
      variant warm("warm");
      b.tandem_vip(warm);
      b.cli_vip(warm);
      b.tandem_dns(warm);
      b.cli_dns(warm);
    }
    // Interleaved, the order alternating, so that drift in the machine's load hits both.
    for (int round = 0; round < trials; ++round) {
      if (round % 2 == 0) {
        b.tandem_vip(tv);
        b.cli_vip(cv);
        b.tandem_dns(td);
        b.cli_dns(cd);
      } else {
        b.cli_vip(cv);
        b.tandem_vip(tv);
        b.cli_dns(cd);
        b.tandem_dns(td);
      }
    }
    for (const variant* v : {&tv, &cv, &td, &cd}) {
      const json out = {{"bench", "cloud"},
                        {"variant", v->name},
                        {"trials", v->ms.size()},
                        {"p50_ms", round2(percentile(v->ms, 0.5))},
                        {"p99_ms", round2(percentile(v->ms, 0.99))},
                        {"api_calls", v->calls / std::max<int>(1, static_cast<int>(v->ms.size()))}};
      std::printf("%s\n", out.dump().c_str());
    }
    const auto ratio = [](const variant& a, const variant& base) {
      const double den = percentile(base.ms, 0.5);
      return den > 0 ? std::round(percentile(a.ms, 0.5) / den * 1000) / 1000 : 0.0;
    };
    const json ratios = {{"bench", "cloud"},
                         {"baseline", "awscli"},
                         {"ratio_vip", ratio(tv, cv)},
                         {"ratio_dns", ratio(td, cd)}};
    std::printf("%s\n", ratios.dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cloud: %s\n", e.what());
    return 1;
  }
}
