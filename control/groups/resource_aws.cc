// SPDX-License-Identifier: Apache-2.0
// The AWS resources and monitors that move a service address through the EC2 API when there is
// no shared L2 segment (../shared/seeds/001 is the product guide they follow):
//   aws_vip  ReplaceRoute of <vip>/32 to this node's ENI in every route table of the VPC that
//            holds that destination, and the VIP on a local interface; monitor: both still so.
//   aws_eip  AssociateAddress of the Elastic IP with this node's ENI; DisassociateAddress on
//            stop; monitor: still associated with our ENI.
//   aws_az   monitor: DescribeAvailabilityZones says the node's zone is available.
// Each resource and monitor owns its own AWS client stack (HTTPS connection, credentials,
// metadata client), built at first use, so that a monitor's check never shares a connection
// with its resource's start on another thread.
#include <arpa/inet.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "control/cloud/aws_api.h"
#include "control/cloud/ec2.h"
#include "control/groups/monitor.h"
#include "control/groups/resource.h"
#include "netlink/rt_addr.h"
#include "netlink/rt_link.h"
#include "netlink/rt_socket.h"

namespace tandem::ctl::groups {

namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::string required(const config::param_map& p, const std::string& what, const char* key) {
  const std::string* v = p.str(key);
  if (v == nullptr || v->empty())
    throw std::runtime_error(what + ": parameter " + std::string(key) + " is missing");
  return *v;
}

std::string optional_str(const config::param_map& p, const char* key) {
  const std::string* v = p.str(key);
  return v != nullptr ? *v : std::string();
}

// Where a resource or monitor reaches EC2, and its lazily built client stack.
class ec2_access {
 public:
  ec2_access(std::string region, std::string endpoint)
      : region_(std::move(region)), endpoint_(std::move(endpoint)) {}

  cloud::ec2_client& client() {
    if (!ec2_) {
      cloud::aws_stack_options o;
      o.service = "ec2";
      o.region = region_;
      o.endpoint = endpoint_;
      stack_.emplace(cloud::make_aws_stack(o, cloud::aws_environment::process()));
      ec2_ = std::make_unique<cloud::ec2_client>(*stack_->api, stack_->service);
    }
    return *ec2_;
  }
  // The metadata client of the stack (client() first).
  cloud::imds_client* imds() { return stack_ ? stack_->imds.get() : nullptr; }

 private:
  std::string region_, endpoint_;
  std::optional<cloud::aws_stack> stack_;
  std::unique_ptr<cloud::ec2_client> ec2_;
};

std::optional<uint32_t> parse_ipv4(const std::string& s) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

// Whether `address` lies in the IPv4 block `cidr` ("10.0.0.0/16").
bool in_block(uint32_t address, const std::string& cidr) {
  const auto slash = cidr.find('/');
  if (slash == std::string::npos) return false;
  auto net = parse_ipv4(cidr.substr(0, slash));
  int len = 0;
  try {
    len = std::stoi(cidr.substr(slash + 1));
  } catch (const std::exception&) {
    return false;
  }
  if (!net || len < 0 || len > 32) return false;
  const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
  return (address & mask) == (*net & mask);
}

// A monitor's answer when the API call failed: the API not answering (network, timeout, still
// throttled or 5xx) says nothing about the address, so the check is inconclusive; a refusal
// (not authorized, not found) is a failure.
check_result api_failure(const std::string& what, const cloud::cloud_error& e) {
  check_result r{false, what + ": " + e.what()};
  r.inconclusive = e.unanswered();
  return r;
}

// Why a route for the VIP does not lead to our ENI, or "" when it does.
std::string route_problem(const cloud::ec2_route& r, const std::string& eni) {
  if (r.network_interface_id != eni) {
    std::string target = !r.network_interface_id.empty() ? r.network_interface_id
                         : !r.instance_id.empty()        ? r.instance_id
                         : !r.gateway_id.empty()         ? r.gateway_id
                                                         : std::string("no target");
    return "points at " + target;
  }
  if (!r.state.empty() && r.state != "active") return "is " + r.state;
  return {};
}

// ---------------------------------------------------------------------------------------------
// aws_vip

class aws_vip_resource final : public resource {
 public:
  aws_vip_resource(const config::resource_config& rc, const resource_env& env)
      : resource(rc.name),
        netns_(env.netns),
        access_(optional_str(rc.params_for(env.node), "region"),
                optional_str(rc.params_for(env.node), "endpoint")) {
    const config::param_map p = rc.params_for(env.node);
    const std::string what = "resource " + rc.name;
    address_ = required(p, what, "address");
    if (address_.find('/') != std::string::npos) address_ = address_.substr(0, address_.find('/'));
    if (!parse_ipv4(address_))
      throw std::runtime_error(what + ": address " + address_ + " is not an IPv4 address");
    vpc_id_ = required(p, what, "vpc_id");
    eni_id_ = required(p, what, "eni_id");
    interface_ = optional_str(p, "interface");
    region_ = optional_str(p, "region");
    endpoint_ = optional_str(p, "endpoint");
  }

  [[nodiscard]] config::resource_type type() const noexcept override {
    return config::resource_type::aws_vip;
  }

  [[nodiscard]] json describe() const override {
    const std::lock_guard lock(mu_);
    json j = {{"address", address_}, {"vpc_id", vpc_id_}, {"eni_id", eni_id_}};
    if (!active_if_.empty()) j["interface"] = active_if_;
    if (!tables_.empty()) j["route_tables"] = tables_;
    if (!last_request_id_.empty()) j["last_request_id"] = last_request_id_;
    return j;
  }

  // What the monitor needs to check the same thing with its own client.
  const std::string& address() const noexcept { return address_; }
  const std::string& vpc_id() const noexcept { return vpc_id_; }
  const std::string& eni_id() const noexcept { return eni_id_; }
  const std::string& region() const noexcept { return region_; }
  const std::string& endpoint() const noexcept { return endpoint_; }
  const std::string& netns() const noexcept { return netns_; }
  std::string active_interface() const {
    const std::lock_guard lock(mu_);
    return active_if_;
  }

 protected:
  action_result do_start(const action_context& ctx) override {
    const auto until = steady_clock::now() + ctx.timeout;
    const std::string cidr = address_ + "/32";
    try {
      cloud::ec2_client& ec2 = access_.client();
      // The seed's rule: a VIP inside the VPC's CIDR would be routed by the VPC's local route,
      // never by ours, so the address would silently not follow the active node.
      const cloud::ec2_vpc vpc = ec2.describe_vpc(vpc_id_, until);
      const uint32_t vip = *parse_ipv4(address_);
      for (const std::string& block : vpc.cidr_blocks)
        if (in_block(vip, block))
          return {false, "the VIP address " + address_ + " belongs to a VPC subnet (" + block +
                             " of " + vpc_id_ + "): choose an address outside the VPC CIDR"};

      const std::vector<cloud::ec2_route_table> tables = ec2.route_tables(vpc_id_, until);
      std::vector<std::string> held, switched;
      std::string request_id;
      for (const cloud::ec2_route_table& t : tables) {
        for (const cloud::ec2_route& r : t.routes) {
          if (r.destination_cidr != cidr) continue;
          held.push_back(t.route_table_id);
          if (route_problem(r, eni_id_).empty()) continue;
          request_id = ec2.replace_route(t.route_table_id, cidr, eni_id_, until);
          switched.push_back(t.route_table_id);
        }
      }
      if (held.empty())
        return {false, "no route table of " + vpc_id_ + " has a route for " + cidr +
                           ": add one (to any ENI of the cluster) in each table whose subnets "
                           "must reach the VIP"};

      const std::string ifname = local_interface(ec2);
      nl::socket sk = nl::socket::open(netns_);
      if (!nl::has_address(sk, ifname, address_)) nl::add_address(sk, ifname, cidr);
      {
        const std::lock_guard lock(mu_);
        active_if_ = ifname;
        tables_ = held;
        if (!request_id.empty()) last_request_id_ = request_id;
      }
      std::string detail =
          cidr + " routed to " + eni_id_ + " in " + std::to_string(held.size()) + " route table(s)";
      if (!switched.empty())
        detail +=
            ", switched " + std::to_string(switched.size()) + " (request id " + request_id + ")";
      else
        detail += ", already there";
      return {true, detail + "; address on " + ifname};
    } catch (const cloud::cloud_error& e) {
      return {false, e.what()};
    }
  }

  action_result do_stop(const action_context& /*ctx*/) override {
    // The route stays: the next active node replaces it, and a route to a stopped ENI is no
    // worse than none. Only the local address goes.
    std::string ifname = active_interface();
    nl::socket sk = nl::socket::open(netns_);
    if (ifname.empty()) {
      for (const nl::address_info& a : nl::addresses(sk))
        if (a.family == AF_INET && a.address == address_ && a.prefix_len == 32)
          for (const nl::link_info& l : nl::links(sk))
            if (l.index == a.ifindex) ifname = l.name;
    }
    if (!ifname.empty()) nl::remove_address(sk, ifname, address_ + "/32");
    const std::lock_guard lock(mu_);
    active_if_.clear();
    return {true, ""};
  }

 private:
  // The interface the VIP goes on: the configured one, else the one whose MAC the instance
  // metadata maps to our ENI.
  std::string local_interface(cloud::ec2_client& /*ec2*/) {
    if (!interface_.empty()) return interface_;
    cloud::imds_client* imds = access_.imds();
    if (imds == nullptr)
      throw std::runtime_error("parameter interface is not set and instance metadata is disabled");
    nl::socket sk = nl::socket::open(netns_);
    std::string tried;
    for (const nl::link_info& l : nl::links(sk)) {
      if (l.mac.empty() || l.name == "lo") continue;
      try {
        if (imds->get("meta-data/network/interfaces/macs/" + l.mac + "/interface-id") == eni_id_)
          return l.name;
      } catch (const std::exception& e) {
        tried = e.what();
      }
    }
    throw std::runtime_error(
        "no local interface carries " + eni_id_ + " according to the instance metadata" +
        (tried.empty() ? std::string() : " (" + tried + ")") + ": set parameter interface");
  }

  std::string netns_;
  ec2_access access_;
  std::string address_, vpc_id_, eni_id_, interface_, region_, endpoint_;
  mutable std::mutex mu_;
  std::string active_if_;
  std::vector<std::string> tables_;
  std::string last_request_id_;
};

class aws_vip_monitor final : public monitor {
 public:
  aws_vip_monitor(std::string name, std::string resource_name,
                  std::function<resource*(std::string_view)> find)
      : monitor(std::move(name)), resource_(std::move(resource_name)), find_(std::move(find)) {}

  config::monitor_type type() const noexcept override { return config::monitor_type::aws_vip; }

  check_result check(milliseconds timeout) override {
    resource* r = find_ ? find_(resource_) : nullptr;
    const auto* vip = dynamic_cast<const aws_vip_resource*>(r);
    if (vip == nullptr) return {false, "the group has no aws_vip resource " + resource_};
    const std::string ifname = vip->active_interface();
    if (ifname.empty()) return {false, "resource " + resource_ + " is not active"};
    {
      nl::socket sk = nl::socket::open(vip->netns());
      if (!nl::has_address(sk, ifname, vip->address()))
        return {false, "the VIP address " + vip->address() + " is no longer on " + ifname};
    }
    if (!access_) access_.emplace(vip->region(), vip->endpoint());
    const auto until = steady_clock::now() + timeout;
    const std::string cidr = vip->address() + "/32";
    try {
      int held = 0;
      for (const cloud::ec2_route_table& t : access_->client().route_tables(vip->vpc_id(), until))
        for (const cloud::ec2_route& route : t.routes) {
          if (route.destination_cidr != cidr) continue;
          ++held;
          if (std::string why = route_problem(route, vip->eni_id()); !why.empty())
            return {false, "the routing for VIP " + vip->address() + " was changed: route table " +
                               t.route_table_id + " " + why + " instead of " + vip->eni_id()};
        }
      if (held == 0)
        return {false, "the routing for VIP " + vip->address() +
                           " was changed: no route table of " + vip->vpc_id() +
                           " has a route for " + cidr + " any more"};
      return {true, ""};
    } catch (const cloud::cloud_error& e) {
      return api_failure("cannot read the route tables", e);
    }
  }

 private:
  std::string resource_;
  std::function<resource*(std::string_view)> find_;
  std::optional<ec2_access> access_;
};

// ---------------------------------------------------------------------------------------------
// aws_eip

class aws_eip_resource final : public resource {
 public:
  aws_eip_resource(const config::resource_config& rc, const resource_env& env)
      : resource(rc.name),
        access_(optional_str(rc.params_for(env.node), "region"),
                optional_str(rc.params_for(env.node), "endpoint")) {
    const config::param_map p = rc.params_for(env.node);
    const std::string what = "resource " + rc.name;
    allocation_id_ = required(p, what, "allocation_id");
    eni_id_ = required(p, what, "eni_id");
    region_ = optional_str(p, "region");
    endpoint_ = optional_str(p, "endpoint");
  }

  [[nodiscard]] config::resource_type type() const noexcept override {
    return config::resource_type::aws_eip;
  }

  [[nodiscard]] json describe() const override {
    const std::lock_guard lock(mu_);
    json j = {{"allocation_id", allocation_id_}, {"eni_id", eni_id_}};
    if (!public_ip_.empty()) j["public_ip"] = public_ip_;
    if (!association_id_.empty()) j["association_id"] = association_id_;
    return j;
  }

  const std::string& allocation_id() const noexcept { return allocation_id_; }
  const std::string& eni_id() const noexcept { return eni_id_; }
  const std::string& region() const noexcept { return region_; }
  const std::string& endpoint() const noexcept { return endpoint_; }
  bool active() const {
    const std::lock_guard lock(mu_);
    return active_;
  }

 protected:
  action_result do_start(const action_context& ctx) override {
    const auto until = steady_clock::now() + ctx.timeout;
    try {
      cloud::ec2_client& ec2 = access_.client();
      cloud::ec2_address a = ec2.describe_address(allocation_id_, until);
      std::string detail;
      if (a.network_interface_id == eni_id_ && !a.association_id.empty()) {
        detail = a.public_ip + " already associated with " + eni_id_;
      } else {
        const std::string from = a.network_interface_id;
        cloud::ec2_association as = ec2.associate_address(allocation_id_, eni_id_, until);
        a.association_id = as.association_id;
        detail = a.public_ip + " associated with " + eni_id_ +
                 (from.empty() ? std::string() : " (taken from " + from + ")") + ", request id " +
                 as.request_id;
      }
      const std::lock_guard lock(mu_);
      public_ip_ = a.public_ip;
      association_id_ = a.association_id;
      active_ = true;
      return {true, detail};
    } catch (const cloud::cloud_error& e) {
      return {false, e.what()};
    }
  }

  action_result do_stop(const action_context& ctx) override {
    const auto until = steady_clock::now() + ctx.timeout;
    {
      const std::lock_guard lock(mu_);
      active_ = false;
    }
    try {
      cloud::ec2_client& ec2 = access_.client();
      cloud::ec2_address a = ec2.describe_address(allocation_id_, until);
      // Only our own association goes: if another node took the address meanwhile, it is
      // theirs now.
      if (a.network_interface_id != eni_id_ || a.association_id.empty()) return {true, ""};
      const std::string request_id = ec2.disassociate_address(a.association_id, until);
      const std::lock_guard lock(mu_);
      association_id_.clear();
      return {true, a.public_ip + " disassociated from " + eni_id_ + ", request id " + request_id};
    } catch (const cloud::cloud_error& e) {
      // An association that is already gone is what stop wants.
      if (e.kind() == cloud::cloud_failure::not_found &&
          e.code().find("Association") != std::string::npos)
        return {true, ""};
      return {false, e.what()};
    }
  }

 private:
  ec2_access access_;
  std::string allocation_id_, eni_id_, region_, endpoint_;
  mutable std::mutex mu_;
  bool active_ = false;
  std::string public_ip_, association_id_;
};

class aws_eip_monitor final : public monitor {
 public:
  aws_eip_monitor(std::string name, std::string resource_name,
                  std::function<resource*(std::string_view)> find)
      : monitor(std::move(name)), resource_(std::move(resource_name)), find_(std::move(find)) {}

  config::monitor_type type() const noexcept override { return config::monitor_type::aws_eip; }

  check_result check(milliseconds timeout) override {
    resource* r = find_ ? find_(resource_) : nullptr;
    const auto* eip = dynamic_cast<const aws_eip_resource*>(r);
    if (eip == nullptr) return {false, "the group has no aws_eip resource " + resource_};
    if (!eip->active()) return {false, "resource " + resource_ + " is not active"};
    if (!access_) access_.emplace(eip->region(), eip->endpoint());
    try {
      cloud::ec2_address a =
          access_->client().describe_address(eip->allocation_id(), steady_clock::now() + timeout);
      if (a.network_interface_id != eip->eni_id())
        return {false,
                "the Elastic IP " + a.public_ip + " (" + eip->allocation_id() + ") is " +
                    (a.network_interface_id.empty() ? std::string("not associated")
                                                    : "associated with " + a.network_interface_id) +
                    " instead of " + eip->eni_id()};
      return {true, ""};
    } catch (const cloud::cloud_error& e) {
      return api_failure("cannot read the address", e);
    }
  }

 private:
  std::string resource_;
  std::function<resource*(std::string_view)> find_;
  std::optional<ec2_access> access_;
};

// ---------------------------------------------------------------------------------------------
// aws_az

class aws_az_monitor final : public monitor {
 public:
  aws_az_monitor(std::string name, std::string zone, std::string region, std::string endpoint)
      : monitor(std::move(name)),
        zone_(std::move(zone)),
        access_(std::move(region), std::move(endpoint)) {}

  config::monitor_type type() const noexcept override { return config::monitor_type::aws_az; }

  check_result check(milliseconds timeout) override {
    try {
      cloud::ec2_zone z = access_.client().describe_zone(zone_, steady_clock::now() + timeout);
      // "information" carries a notice but the zone works; impaired, unavailable and
      // constrained do not.
      if (z.state == "available" || z.state == "information") return {true, ""};
      std::string msg = "availability zone " + zone_ + " is " + z.state;
      for (const std::string& m : z.messages)
        msg += ": " + m;
      return {false, msg};
    } catch (const cloud::cloud_error& e) {
      return api_failure("cannot read the state of availability zone " + zone_, e);
    }
  }

 private:
  std::string zone_;
  ec2_access access_;
};

std::string resource_param(const config::monitor_config& mc, const monitor_env& env) {
  const config::param_map p = mc.params_for(env.node);
  const std::string* res = p.str("resource");
  if (res == nullptr || res->empty())
    throw std::runtime_error("monitor " + mc.name + ": parameter resource is missing");
  return *res;
}

}  // namespace

std::unique_ptr<resource> make_aws_vip_resource(const config::resource_config& rc,
                                                const resource_env& env) {
  return std::make_unique<aws_vip_resource>(rc, env);
}

std::unique_ptr<resource> make_aws_eip_resource(const config::resource_config& rc,
                                                const resource_env& env) {
  return std::make_unique<aws_eip_resource>(rc, env);
}

std::unique_ptr<monitor> make_aws_vip_monitor(const config::monitor_config& mc,
                                              const monitor_env& env) {
  return std::make_unique<aws_vip_monitor>(mc.name, resource_param(mc, env), env.find);
}

std::unique_ptr<monitor> make_aws_eip_monitor(const config::monitor_config& mc,
                                              const monitor_env& env) {
  return std::make_unique<aws_eip_monitor>(mc.name, resource_param(mc, env), env.find);
}

std::unique_ptr<monitor> make_aws_az_monitor(const config::monitor_config& mc,
                                             const monitor_env& env) {
  const config::param_map p = mc.params_for(env.node);
  return std::make_unique<aws_az_monitor>(mc.name,
                                          required(p, "monitor " + mc.name, "availability_zone"),
                                          optional_str(p, "region"), optional_str(p, "endpoint"));
}

}  // namespace tandem::ctl::groups
