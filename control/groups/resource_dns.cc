// SPDX-License-Identifier: Apache-2.0
// DNS name control: the record <record_name> (A for an IPv4 address, AAAA for IPv6) points at
// this node's address while the group runs here. One resource and one monitor over a backend
// per provider, chosen by the resource's type:
//   aws_dns    Route 53: UPSERT, then GetChange until INSYNC (100 ms doubling to 1 s, not the
//              resource agents' 20 s poll); DELETE of the exact record on stop.
//   gcp_dns    Google Cloud DNS: one atomic change (the old record deleted exactly, ours added),
//              then changes.get until done; a change that lost a race is read again once.
//   azure_dns  Azure DNS: PUT of the record set with If-Match (or If-None-Match: *), so a
//              concurrent change is never overwritten blindly; DELETE with If-Match on stop.
// Stop deletes the record only when it still points at us (delete_on_stop, default true): if
// the next node already took it over, it is theirs. The monitor checks that the record exists
// with exactly our address; an API that does not answer makes it inconclusive.
#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/cloud/aws_api.h"
#include "control/cloud/bearer_api.h"
#include "control/cloud/cloud_json.h"
#include "control/cloud/route53.h"
#include "control/cloud/sigv4.h"
#include "control/groups/monitor.h"
#include "control/groups/resource.h"

namespace tandem::ctl::groups {

namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using deadline = cloud::rest_clock::time_point;

struct dns_record {
  std::string name;  // fully qualified, with the final dot
  std::string type;  // A | AAAA
  long long ttl = 0;
  std::vector<std::string> values;
  std::string version;  // Azure's etag; "" elsewhere
};

std::string values_text(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v)
    s += (s.empty() ? "" : ",") + x;
  return s.empty() ? std::string("nothing") : s;
}

class dns_backend {
 public:
  virtual ~dns_backend() = default;
  // The record `name`/`type`, or nullopt when there is none.
  virtual std::optional<dns_record> read(const std::string& name, const std::string& type,
                                         deadline until) = 0;
  // Makes the record exactly `want` in place of `current` and waits until the provider has
  // applied it. Returns a short detail (the change id and how long it took to apply).
  virtual std::string write(const std::optional<dns_record>& current, const dns_record& want,
                            deadline until) = 0;
  // Deletes `current` (as read). Returns a short detail.
  virtual std::string remove(const dns_record& current, deadline until) = 0;
  // "Route 53 zone Z123", "Cloud DNS zone p/z", "Azure DNS zone rg/example.com".
  [[nodiscard]] virtual std::string where() const = 0;
};

// ---- Route 53 ----

class route53_backend final : public dns_backend {
 public:
  route53_backend(std::string zone_id, std::string region, std::string endpoint)
      : zone_id_(std::move(zone_id)), region_(std::move(region)), endpoint_(std::move(endpoint)) {}

  std::optional<dns_record> read(const std::string& name, const std::string& type,
                                 deadline until) override {
    std::optional<cloud::r53_record_set> s = client().find(zone_id_, name, type, until);
    if (!s) return std::nullopt;
    return dns_record{cloud::normalize_dns_name(s->name), s->type, s->ttl.value_or(0), s->values,
                      ""};
  }

  std::string write(const std::optional<dns_record>& /*current*/, const dns_record& want,
                    deadline until) override {
    const auto t0 = std::chrono::steady_clock::now();
    const cloud::r53_change_info c = client().change(zone_id_, "UPSERT", to_r53(want), until);
    const int polls = c.status == "INSYNC" ? 0 : client().wait_insync(c.id, until);
    const auto ms = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
    return "change " + c.id + " INSYNC after " + std::to_string(ms.count()) + " ms (" +
           std::to_string(polls) + " polls)";
  }

  std::string remove(const dns_record& current, deadline until) override {
    // DELETE must name the record exactly as it is: name, type, TTL and every value.
    const cloud::r53_change_info c = client().change(zone_id_, "DELETE", to_r53(current), until);
    return "change " + c.id + " " + c.status;
  }

  std::string where() const override { return "Route 53 zone " + zone_id_; }

 private:
  static cloud::r53_record_set to_r53(const dns_record& r) {
    cloud::r53_record_set s;
    s.name = r.name;
    s.type = r.type;
    s.ttl = r.ttl;
    s.values = r.values;
    return s;
  }

  cloud::route53_client& client() {
    if (!r53_) {
      cloud::aws_environment env = cloud::aws_environment::process();
      // Route 53 is global: the region only picks the partition; without one anywhere the
      // commercial partition is meant.
      std::string region = region_;
      if (region.empty()) {
        try {
          region = cloud::resolve_region("", env, nullptr);
        } catch (const std::exception&) {
          region = "us-east-1";
        }
      }
      cloud::aws_stack_options o;
      o.service = "route53";
      o.region = region;
      o.endpoint = endpoint_;
      stack_.emplace(cloud::make_aws_stack(o, env));
      r53_ = std::make_unique<cloud::route53_client>(*stack_->api, stack_->service);
    }
    return *r53_;
  }

  std::string zone_id_, region_, endpoint_;
  std::optional<cloud::aws_stack> stack_;
  std::unique_ptr<cloud::route53_client> r53_;
};

// ---- Google Cloud DNS and Azure DNS share the bearer stack ----

class bearer_backend : public dns_backend {
 protected:
  explicit bearer_backend(cloud::bearer_provider p) : provider_(p) {}

  cloud::bearer_api& api() {
    if (!stack_)
      stack_.emplace(cloud::make_bearer_stack(provider_, "", cloud::aws_environment::process()));
    return *stack_->api;
  }

  [[noreturn]] static void json_error(std::string_view what, const cloud::api_reply& r,
                                      const cloud::cloud_json_error& e) {
    throw cloud::cloud_error(cloud::cloud_failure::malformed, r.status, "",
                             std::string(what) + ": " + e.what(), r.request_id, r.attempts);
  }

 private:
  cloud::bearer_provider provider_;
  std::optional<cloud::bearer_stack> stack_;
};

class gcp_backend final : public bearer_backend {
 public:
  gcp_backend(std::string project, std::string zone, std::string endpoint)
      : bearer_backend(cloud::bearer_provider::gcp),
        project_(std::move(project)),
        zone_(std::move(zone)),
        base_((endpoint.empty() ? std::string("https://dns.googleapis.com") : trimmed(endpoint)) +
              "/dns/v1/projects/" + cloud::uri_encode(project_) + "/managedZones/" +
              cloud::uri_encode(zone_)) {}

  std::optional<dns_record> read(const std::string& name, const std::string& type,
                                 deadline until) override {
    const cloud::api_reply r = api().call(
        "GET",
        base_ + "/rrsets?name=" + cloud::uri_encode(name) + "&type=" + cloud::uri_encode(type), "",
        "", {}, until);
    cloud::gcp_record_sets sets;
    try {
      sets = cloud::parse_gcp_record_sets(r.body);
    } catch (const cloud::cloud_json_error& e) {
      json_error("resourceRecordSets.list", r, e);
    }
    for (const cloud::gcp_record_set& s : sets.sets)
      if (cloud::normalize_dns_name(s.name) == name && s.type == type)
        return dns_record{name, s.type, s.ttl, s.rrdatas, ""};
    return std::nullopt;
  }

  std::string write(const std::optional<dns_record>& current, const dns_record& want,
                    deadline until) override {
    return apply(current, want, until);
  }

  std::string remove(const dns_record& current, deadline until) override {
    return apply(current, std::nullopt, until);
  }

  std::string where() const override { return "Cloud DNS zone " + project_ + "/" + zone_; }

 private:
  static std::string trimmed(std::string s) {
    while (!s.empty() && s.back() == '/')
      s.pop_back();
    return s;
  }
  static cloud::gcp_record_set to_gcp(const dns_record& r) {
    return {r.name, r.type, r.ttl, r.values};
  }

  // One atomic change; when it lost a race (409 alreadyExists, 412 conditionNotMet: the record
  // changed since it was read) the record is read again and the change made once more.
  std::string apply(std::optional<dns_record> current, const std::optional<dns_record>& want,
                    deadline until) {
    const std::string name = want ? want->name : current->name;
    const std::string type = want ? want->type : current->type;
    for (int round = 0;; ++round) {
      std::optional<cloud::gcp_record_set> del, add;
      if (current) del = to_gcp(*current);
      if (want) add = to_gcp(*want);
      if (!del && !add) return "nothing to change";
      const auto t0 = std::chrono::steady_clock::now();
      try {
        const cloud::api_reply r =
            api().call("POST", base_ + "/changes", cloud::gcp_change_body(del, add),
                       "application/json", {}, until);
        cloud::gcp_change c;
        try {
          c = cloud::parse_gcp_change(r.body);
        } catch (const cloud::cloud_json_error& e) {
          json_error("changes.create", r, e);
        }
        int polls = 0;
        milliseconds pause{100};
        while (c.status != "done") {
          if (std::chrono::steady_clock::now() + pause >= until)
            throw cloud::cloud_error(cloud::cloud_failure::timeout, 0, "",
                                     "change " + c.id + " still pending at the deadline", "",
                                     polls);
          std::this_thread::sleep_for(pause);
          pause = std::min<milliseconds>(pause * 2, milliseconds(1'000));
          const cloud::api_reply g =
              api().call("GET", base_ + "/changes/" + cloud::uri_encode(c.id), "", "", {}, until);
          ++polls;
          try {
            c = cloud::parse_gcp_change(g.body);
          } catch (const cloud::cloud_json_error& e) {
            json_error("changes.get", g, e);
          }
        }
        const auto ms =
            std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
        return "change " + c.id + " done after " + std::to_string(ms.count()) + " ms (" +
               std::to_string(polls) + " polls)";
      } catch (const cloud::cloud_error& e) {
        if (round > 0 || (e.http_status() != 409 && e.http_status() != 412)) throw;
        current = read(name, type, until);
        if (!want && !current) return "already gone";
      }
    }
  }

  std::string project_, zone_, base_;
};

// An Azure record set's name relative to its zone: "www" for www.example.com. in example.com,
// "@" for the apex. Throws std::runtime_error when the name is not in the zone.
std::string azure_relative_name(const std::string& fqdn, const std::string& zone_name) {
  const std::string zone = cloud::normalize_dns_name(zone_name);
  if (fqdn == zone) return "@";
  if (fqdn.size() > zone.size() &&
      fqdn.compare(fqdn.size() - zone.size(), zone.size(), zone) == 0 &&
      fqdn[fqdn.size() - zone.size() - 1] == '.')
    return fqdn.substr(0, fqdn.size() - zone.size() - 1);
  throw std::runtime_error("record_name " + fqdn + " is not in zone " + zone_name);
}

class azure_backend final : public bearer_backend {
 public:
  azure_backend(std::string subscription, std::string group, std::string zone, std::string endpoint)
      : bearer_backend(cloud::bearer_provider::azure),
        group_(std::move(group)),
        zone_(std::move(zone)),
        base_((endpoint.empty() ? std::string("https://management.azure.com") : trim(endpoint)) +
              "/subscriptions/" + cloud::uri_encode(subscription) + "/resourceGroups/" +
              cloud::uri_encode(group_) + "/providers/Microsoft.Network/dnsZones/" +
              cloud::uri_encode(zone_)) {}

  std::optional<dns_record> read(const std::string& name, const std::string& type,
                                 deadline until) override {
    try {
      const cloud::api_reply r = api().call("GET", url(name, type), "", "", {}, until);
      cloud::azure_record_set s;
      try {
        s = cloud::parse_azure_record_set(r.body, type);
      } catch (const cloud::cloud_json_error& e) {
        json_error("record set", r, e);
      }
      if (s.addresses.empty()) return std::nullopt;  // an empty set resolves to nothing
      return dns_record{name, type, s.ttl, s.addresses, s.etag};
    } catch (const cloud::cloud_error& e) {
      if (e.http_status() == 404) return std::nullopt;
      throw;
    }
  }

  std::string write(const std::optional<dns_record>& current, const dns_record& want,
                    deadline until) override {
    std::optional<dns_record> cur = current;
    for (int round = 0;; ++round) {
      // If-Match: only the record set we read is replaced; If-None-Match: * only creates.
      cloud::header_list cond = {cur && !cur->version.empty()
                                     ? cloud::header_list::value_type{"If-Match", cur->version}
                                     : cloud::header_list::value_type{"If-None-Match", "*"}};
      try {
        const cloud::api_reply r =
            api().call("PUT", url(want.name, want.type),
                       cloud::azure_record_set_body(want.type, want.ttl, want.values),
                       "application/json", cond, until);
        return "record set " + std::string(r.status == 201 ? "created" : "updated") +
               (r.request_id.empty() ? std::string() : ", request id " + r.request_id);
      } catch (const cloud::cloud_error& e) {
        if (round > 0 || e.http_status() != 412) throw;
        cur = read(want.name, want.type, until);
      } catch (const cloud::cloud_json_error& e) {
        throw cloud::cloud_error(cloud::cloud_failure::client, 0, "", e.what(), "", 0);
      }
    }
  }

  std::string remove(const dns_record& current, deadline until) override {
    cloud::header_list cond;
    if (!current.version.empty()) cond.emplace_back("If-Match", current.version);
    const cloud::api_reply r =
        api().call("DELETE", url(current.name, current.type), "", "", cond, until);
    return r.status == 204 ? "already gone" : "record set deleted";
  }

  std::string where() const override { return "Azure DNS zone " + group_ + "/" + zone_; }

 private:
  static std::string trim(std::string s) {
    while (!s.empty() && s.back() == '/')
      s.pop_back();
    return s;
  }

  std::string url(const std::string& fqdn, const std::string& type) const {
    return base_ + "/" + type + "/" + cloud::uri_encode(azure_relative_name(fqdn, zone_)) +
           "?api-version=2018-05-01";
  }

  std::string group_, zone_, base_;
};

// ---- the resource and its monitor ----

std::string param(const config::param_map& p, const char* key) {
  const std::string* v = p.str(key);
  return v != nullptr ? *v : std::string();
}

std::string required(const config::param_map& p, const std::string& what, const char* key) {
  std::string v = param(p, key);
  if (v.empty()) throw std::runtime_error(what + ": parameter " + std::string(key) + " is missing");
  return v;
}

struct dns_settings {
  config::resource_type type;
  std::string name;  // normalised
  std::string record_type;
  std::string address;
  long long ttl = 300;
  bool delete_on_stop = true;
};

std::unique_ptr<dns_backend> make_backend(config::resource_type type, const config::param_map& p,
                                          const std::string& what) {
  const std::string endpoint = param(p, "endpoint");
  switch (type) {
    case config::resource_type::aws_dns:
      return std::make_unique<route53_backend>(required(p, what, "hosted_zone_id"),
                                               param(p, "region"), endpoint);
    case config::resource_type::gcp_dns:
      return std::make_unique<gcp_backend>(required(p, what, "project"), required(p, what, "zone"),
                                           endpoint);
    case config::resource_type::azure_dns:
      return std::make_unique<azure_backend>(required(p, what, "subscription_id"),
                                             required(p, what, "resource_group"),
                                             required(p, what, "zone"), endpoint);
    default:
      break;
  }
  throw std::runtime_error(what + ": not a DNS resource type");
}

class dns_resource final : public resource {
 public:
  dns_resource(const config::resource_config& rc, const resource_env& env) : resource(rc.name) {
    const config::param_map p = rc.params_for(env.node);
    const std::string what = "resource " + rc.name;
    s_.type = rc.type;
    s_.name = cloud::normalize_dns_name(required(p, what, "record_name"));
    s_.address = required(p, what, "address");
    unsigned char buf[16];
    if (inet_pton(AF_INET, s_.address.c_str(), buf) == 1)
      s_.record_type = "A";
    else if (inet_pton(AF_INET6, s_.address.c_str(), buf) == 1)
      s_.record_type = "AAAA";
    else
      throw std::runtime_error(what + ": address " + s_.address + " is not an IP address");
    if (auto t = p.integer("ttl")) s_.ttl = *t;
    if (auto f = p.flag("delete_on_stop")) s_.delete_on_stop = *f;
    params_ = p;
    if (rc.type == config::resource_type::azure_dns) {
      try {
        (void)azure_relative_name(s_.name, required(p, what, "zone"));
      } catch (const std::runtime_error& e) {
        throw std::runtime_error(what + ": " + e.what());
      }
    }
    backend_ = make_backend(rc.type, p, what);
  }

  [[nodiscard]] config::resource_type type() const noexcept override { return s_.type; }

  [[nodiscard]] json describe() const override {
    const std::lock_guard lock(mu_);
    json j = {{"record", s_.name},
              {"type", s_.record_type},
              {"address", s_.address},
              {"ttl", s_.ttl},
              {"zone", backend_->where()}};
    if (!last_.empty()) j["last_change"] = last_;
    return j;
  }

  const dns_settings& settings() const noexcept { return s_; }
  const config::param_map& params() const noexcept { return params_; }
  bool active() const {
    const std::lock_guard lock(mu_);
    return active_;
  }

 protected:
  action_result do_start(const action_context& ctx) override {
    const deadline until = cloud::rest_clock::now() + ctx.timeout;
    try {
      const dns_record want{s_.name, s_.record_type, s_.ttl, {s_.address}, ""};
      const std::optional<dns_record> current = backend_->read(s_.name, s_.record_type, until);
      std::string detail;
      if (current && current->values == want.values && current->ttl == want.ttl) {
        detail = s_.name + " " + s_.record_type + " already " + s_.address;
      } else {
        detail = s_.name + " " + s_.record_type + " " +
                 (current ? values_text(current->values) : std::string("(none)")) + " -> " +
                 s_.address + ": " + backend_->write(current, want, until);
      }
      const std::lock_guard lock(mu_);
      active_ = true;
      last_ = detail;
      return {true, detail};
    } catch (const cloud::cloud_error& e) {
      return {false, backend_->where() + ": " + e.what()};
    }
  }

  action_result do_stop(const action_context& ctx) override {
    {
      const std::lock_guard lock(mu_);
      active_ = false;
    }
    if (!s_.delete_on_stop) return {true, "record kept (delete_on_stop is false)"};
    const deadline until = cloud::rest_clock::now() + ctx.timeout;
    try {
      const std::optional<dns_record> current = backend_->read(s_.name, s_.record_type, until);
      if (!current) return {true, ""};
      // Another node that took the group over owns the record now.
      if (current->values != std::vector<std::string>{s_.address})
        return {true, "record kept: it points at " + values_text(current->values)};
      const std::string detail = backend_->remove(*current, until);
      const std::lock_guard lock(mu_);
      last_ = s_.name + " deleted: " + detail;
      return {true, last_};
    } catch (const cloud::cloud_error& e) {
      return {false, backend_->where() + ": " + e.what()};
    }
  }

 private:
  dns_settings s_;
  config::param_map params_;
  std::unique_ptr<dns_backend> backend_;
  mutable std::mutex mu_;
  bool active_ = false;
  std::string last_;
};

class dns_monitor final : public monitor {
 public:
  dns_monitor(std::string name, config::monitor_type type, std::string resource_name,
              std::function<resource*(std::string_view)> find)
      : monitor(std::move(name)),
        type_(type),
        resource_(std::move(resource_name)),
        find_(std::move(find)) {}

  config::monitor_type type() const noexcept override { return type_; }

  check_result check(milliseconds timeout) override {
    resource* r = find_ ? find_(resource_) : nullptr;
    const auto* dns = dynamic_cast<const dns_resource*>(r);
    if (dns == nullptr) return {false, "the group has no DNS resource " + resource_};
    if (!dns->active()) return {false, "resource " + resource_ + " is not active"};
    const dns_settings& s = dns->settings();
    // The monitor's own backend: its calls never share a connection with the resource's.
    if (!backend_) backend_ = make_backend(s.type, dns->params(), "monitor " + name());
    try {
      const std::optional<dns_record> cur =
          backend_->read(s.name, s.record_type, cloud::rest_clock::now() + timeout);
      if (!cur)
        return {false, "the record " + s.name + " " + s.record_type + " does not exist in " +
                           backend_->where()};
      if (cur->values != std::vector<std::string>{s.address})
        return {false, "the record " + s.name + " " + s.record_type + " points at " +
                           values_text(cur->values) + " instead of " + s.address};
      return {true, ""};
    } catch (const cloud::cloud_error& e) {
      check_result res{false,
                       "cannot read " + s.name + " in " + backend_->where() + ": " + e.what()};
      res.inconclusive = e.unanswered();
      return res;
    }
  }

 private:
  config::monitor_type type_;
  std::string resource_;
  std::function<resource*(std::string_view)> find_;
  std::unique_ptr<dns_backend> backend_;
};

}  // namespace

std::unique_ptr<resource> make_dns_resource(const config::resource_config& rc,
                                            const resource_env& env) {
  return std::make_unique<dns_resource>(rc, env);
}

std::unique_ptr<monitor> make_dns_monitor(const config::monitor_config& mc,
                                          const monitor_env& env) {
  const config::param_map p = mc.params_for(env.node);
  const std::string* res = p.str("resource");
  if (res == nullptr || res->empty())
    throw std::runtime_error("monitor " + mc.name + ": parameter resource is missing");
  return std::make_unique<dns_monitor>(mc.name, mc.type, *res, env.find);
}

}  // namespace tandem::ctl::groups
