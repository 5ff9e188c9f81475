// SPDX-License-Identifier: Apache-2.0
// Reading groups, resources and monitors; parameter tables per type; references and cycles.
#include "control/config/groups_config.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <functional>
#include <map>
#include <set>

#include "control/cluster/heartbeat_packet.h"
#include "control/config/cluster_config.h"
#include "control/config/units.h"
#include "control/config/yaml_util.h"

namespace tandem::ctl::config {

using std::chrono::milliseconds;

namespace {

constexpr std::array<std::pair<resource_type, std::string_view>, 9> resource_names = {{
    {resource_type::mirror, "mirror"},
    {resource_type::filesystem, "filesystem"},
    {resource_type::floating_ip, "floating_ip"},
    {resource_type::exec, "exec"},
    {resource_type::aws_vip, "aws_vip"},
    {resource_type::aws_eip, "aws_eip"},
    {resource_type::aws_dns, "aws_dns"},
    {resource_type::gcp_dns, "gcp_dns"},
    {resource_type::azure_dns, "azure_dns"},
}};

constexpr std::array<std::pair<monitor_type, std::string_view>, 13> monitor_names = {{
    {monitor_type::ip, "ip"},
    {monitor_type::nic_link, "nic_link"},
    {monitor_type::pid, "pid"},
    {monitor_type::script, "script"},
    {monitor_type::mirror_state, "mirror_state"},
    {monitor_type::mirror_connection, "mirror_connection"},
    {monitor_type::floating_ip, "floating_ip"},
    {monitor_type::aws_vip, "aws_vip"},
    {monitor_type::aws_eip, "aws_eip"},
    {monitor_type::aws_dns, "aws_dns"},
    {monitor_type::gcp_dns, "gcp_dns"},
    {monitor_type::azure_dns, "azure_dns"},
    {monitor_type::aws_az, "aws_az"},
}};

constexpr std::array<std::pair<final_action, std::string_view>, 4> action_names = {{
    {final_action::none, "none"},
    {final_action::stop_group, "stop_group"},
    {final_action::stop_cluster, "stop_cluster"},
    {final_action::fence, "fence"},
}};

template <class Table>
std::vector<std::string> names_of(const Table& t) {
  std::vector<std::string> v;
  for (const auto& [value, name] : t)
    v.emplace_back(name);
  return v;
}

template <class E, class Table>
std::optional<E> parse_enum(const cursor& c, const Table& t) {
  auto s = c.one_of(names_of(t));
  if (!s) return std::nullopt;
  for (const auto& [value, name] : t)
    if (name == *s) return value;
  return std::nullopt;
}

}  // namespace

std::string_view to_string(resource_type t) noexcept {
  for (const auto& [v, n] : resource_names)
    if (v == t) return n;
  return "?";
}

std::string_view to_string(monitor_type t) noexcept {
  for (const auto& [v, n] : monitor_names)
    if (v == t) return n;
  return "?";
}

std::string_view to_string(final_action a) noexcept {
  for (const auto& [v, n] : action_names)
    if (v == a) return n;
  return "?";
}

std::string_view to_string(failback_policy f) noexcept {
  return f == failback_policy::automatic ? "auto" : "manual";
}

std::string_view to_string(monitor_when w) noexcept {
  return w == monitor_when::active ? "active" : "always";
}

// ---- param_map
// ------------------------------------------------------------------------------------

const std::string* param_map::str(std::string_view key) const {
  auto it = values.find(key);
  return it == values.end() ? nullptr : std::get_if<std::string>(&it->second);
}

const std::vector<std::string>* param_map::list(std::string_view key) const {
  auto it = values.find(key);
  return it == values.end() ? nullptr : std::get_if<std::vector<std::string>>(&it->second);
}

std::optional<int64_t> param_map::integer(std::string_view key) const {
  auto it = values.find(key);
  if (it == values.end()) return std::nullopt;
  if (const auto* v = std::get_if<int64_t>(&it->second)) return *v;
  return std::nullopt;
}

std::optional<bool> param_map::flag(std::string_view key) const {
  auto it = values.find(key);
  if (it == values.end()) return std::nullopt;
  if (const auto* v = std::get_if<bool>(&it->second)) return *v;
  return std::nullopt;
}

std::optional<milliseconds> param_map::duration(std::string_view key) const {
  auto it = values.find(key);
  if (it == values.end()) return std::nullopt;
  if (const auto* v = std::get_if<milliseconds>(&it->second)) return *v;
  return std::nullopt;
}

namespace {

param_map merged(const param_map& common, const std::map<std::string, param_map>& per_node,
                 std::string_view node) {
  param_map out = common;
  auto it = per_node.find(std::string(node));
  if (it == per_node.end()) return out;
  for (const auto& [k, v] : it->second.values)
    out.values.insert_or_assign(k, v);
  for (const auto& [k, l] : it->second.locs)
    out.locs.insert_or_assign(k, l);
  return out;
}

}  // namespace

param_map resource_config::params_for(std::string_view node) const {
  return merged(params, per_node, node);
}

param_map monitor_config::params_for(std::string_view node) const {
  return merged(params, per_node, node);
}

const resource_config* group_config::find_resource(std::string_view n) const noexcept {
  for (const resource_config& r : resources)
    if (r.name == n) return &r;
  return nullptr;
}

std::vector<const resource_config*> group_config::start_order() const {
  std::vector<const resource_config*> order;
  std::set<std::string> done;
  // Repeatedly take the first resource (in file order) whose dependencies have all started.
  while (order.size() < resources.size()) {
    bool progressed = false;
    for (const resource_config& r : resources) {
      if (done.contains(r.name)) continue;
      const bool ready = std::all_of(r.depends_on.begin(), r.depends_on.end(), [&](const auto& d) {
        return done.contains(d) || find_resource(d) == nullptr;
      });
      if (!ready) continue;
      order.push_back(&r);
      done.insert(r.name);
      progressed = true;
      break;
    }
    if (!progressed) break;  // a cycle (refused by the loader) or duplicate names
  }
  return order;
}

// ---- parameter tables -------------------------------------------------------------------------

namespace {

enum class pk {
  string,       // any non-empty text
  command,      // a shell command line (run with /bin/sh -c)
  name,         // an object name
  volume,       // a mirrors.volumes name
  resource,     // a resource of the same group (of type ref)
  path,         // an absolute path
  ip,           // an IPv4 or IPv6 literal
  ipv4,         // an IPv4 literal
  ip_prefix,    // "10.0.0.10/24", "fd00::10/64" or an address alone
  url,          // http(s) URL
  dns_name,     // a DNS name
  duration,     // "200ms"
  integer,      // min..max
  boolean,      // true | false
  choice,       // one of choices
  ip_list,      // a non-empty list of IP literals
  string_list,  // a list of strings
};

struct param_spec {
  std::string_view name;
  pk kind;
  bool required = false;
  bool per_node = false;                  // may differ per node (per_node.<node>.<name>)
  std::optional<param_value> def = {};    // filled in when absent
  std::vector<std::string> choices = {};  // pk::choice
  int64_t min = 0, max = 0;               // pk::integer
  std::optional<resource_type> ref = {};  // pk::resource: the type it must have
  std::string_view doc = {};              // one line for docs and messages
};

using spec_table = std::vector<param_spec>;

const param_value yes = true;
const param_value ttl_default = int64_t{300};

std::vector<param_spec> cloud_common() {
  return {{"region",
           pk::string,
           false,
           true,
           {},
           {},
           0,
           0,
           {},
           "cloud region (default: this "
           "instance's)"},
          {"endpoint", pk::url, false, false, {}, {}, 0, 0, {}, "API endpoint override"}};
}

spec_table with_cloud(spec_table table) {
  for (param_spec& s : cloud_common())
    table.push_back(std::move(s));
  return table;
}

spec_table dns_table(std::initializer_list<param_spec> head) {
  spec_table t(head);
  t.push_back({"record_name", pk::dns_name, true, false, {}, {}, 0, 0, {}, "the record's name"});
  t.push_back({"address", pk::ip, true, true, {}, {}, 0, 0, {}, "this node's address"});
  t.push_back({"ttl", pk::integer, false, false, ttl_default, {}, 0, 2'147'483'647, {}, "seconds"});
  t.push_back({"delete_on_stop",
               pk::boolean,
               false,
               false,
               yes,
               {},
               0,
               0,
               {},
               "delete the record when the group stops"});
  t.push_back({"endpoint", pk::url, false, false, {}, {}, 0, 0, {}, "API endpoint override"});
  return t;
}

const spec_table& resource_specs(resource_type t) {
  static const spec_table mirror = {
      {"volume", pk::volume, true, false, {}, {}, 0, 0, {}, "a mirrors.volumes name"},
      {"frontend", pk::choice, false, true, param_value{std::string("kmod")}, {"kmod", "fuse"}},
  };
  static const spec_table filesystem = {
      {"mirror",
       pk::resource,
       false,
       false,
       {},
       {},
       0,
       0,
       resource_type::mirror,
       "mount this mirror resource's device"},
      {"device", pk::path, false, true, {}, {}, 0, 0, {}, "or mount this device"},
      {"mount_point", pk::path, true, true},
      {"fs_type", pk::name, false, false, param_value{std::string("ext4")}},
      {"options", pk::string, false, true, param_value{std::string("defaults")}},
      {"fsck", pk::boolean, false, false, yes},
      {"kill_users", pk::boolean, false, false, yes},
  };
  static const spec_table floating_ip = {
      {"address", pk::ip_prefix, true, false},
      {"interface", pk::string, false, true},
      {"announce_count", pk::integer, false, false, param_value{int64_t{3}}, {}, 0, 100},
      {"announce_interval", pk::duration, false, false, param_value{milliseconds(200)}},
      {"duplicate_check", pk::boolean, false, false, yes},
      {"duplicate_check_time",
       pk::duration,
       false,
       false,
       param_value{milliseconds(300)},
       {},
       0,
       0,
       {},
       "how long the duplicate-address check waits for an answer"},
  };
  static const spec_table exec = {
      {"start", pk::command, true, true},
      {"stop", pk::command, false, true},
      {"mode",
       pk::choice,
       false,
       false,
       param_value{std::string("sync")},
       {"sync", "async"},
       0,
       0,
       {},
       "sync: start runs to completion; async: start keeps running as the service"},
      {"user", pk::string, false, false},
      {"working_dir", pk::path, false, true},
  };
  static const spec_table aws_vip = with_cloud({
      {"address", pk::ipv4, true, false},
      {"vpc_id", pk::string, true, true},
      {"eni_id", pk::string, true, true},
      {"interface",
       pk::string,
       false,
       true,
       {},
       {},
       0,
       0,
       {},
       "where the VIP goes locally (default: the interface of eni_id)"},
  });
  static const spec_table aws_eip = with_cloud({
      {"allocation_id", pk::string, true, false},
      {"eni_id", pk::string, true, true},
  });
  static const spec_table aws_dns = [] {
    spec_table table = dns_table({{"hosted_zone_id", pk::string, true, false}});
    table.push_back({"region", pk::string, false, true});
    return table;
  }();
  static const spec_table gcp_dns = dns_table({
      {"project", pk::string, true, false},
      {"zone", pk::string, true, false},
  });
  static const spec_table azure_dns = dns_table({
      {"subscription_id", pk::string, true, false},
      {"resource_group", pk::string, true, false},
      {"zone", pk::string, true, false},
  });
  switch (t) {
    case resource_type::mirror:
      return mirror;
    case resource_type::filesystem:
      return filesystem;
    case resource_type::floating_ip:
      return floating_ip;
    case resource_type::exec:
      return exec;
    case resource_type::aws_vip:
      return aws_vip;
    case resource_type::aws_eip:
      return aws_eip;
    case resource_type::aws_dns:
      return aws_dns;
    case resource_type::gcp_dns:
      return gcp_dns;
    case resource_type::azure_dns:
      return azure_dns;
  }
  return exec;
}

spec_table resource_ref(resource_type t) {
  return {{"resource", pk::resource, true, false, {}, {}, 0, 0, t}};
}

const spec_table& monitor_specs(monitor_type t) {
  static const spec_table ip = {
      {"targets", pk::ip_list, true, true},
      {"mode", pk::choice, false, false, param_value{std::string("any")}, {"any", "all"}},
  };
  static const spec_table nic_link = {{"interface", pk::string, true, true}};
  static const spec_table pid = resource_ref(resource_type::exec);
  static const spec_table script = {
      {"path", pk::path, true, true},
      {"args", pk::string_list, false, true},
  };
  static const spec_table volume = {{"volume", pk::volume, true, false}};
  static const spec_table floating_ip = resource_ref(resource_type::floating_ip);
  static const spec_table aws_vip = resource_ref(resource_type::aws_vip);
  static const spec_table aws_eip = resource_ref(resource_type::aws_eip);
  static const spec_table aws_dns = resource_ref(resource_type::aws_dns);
  static const spec_table gcp_dns = resource_ref(resource_type::gcp_dns);
  static const spec_table azure_dns = resource_ref(resource_type::azure_dns);
  static const spec_table aws_az = with_cloud({{"availability_zone", pk::string, true, true}});
  switch (t) {
    case monitor_type::ip:
      return ip;
    case monitor_type::nic_link:
      return nic_link;
    case monitor_type::pid:
      return pid;
    case monitor_type::script:
      return script;
    case monitor_type::mirror_state:
    case monitor_type::mirror_connection:
      return volume;
    case monitor_type::floating_ip:
      return floating_ip;
    case monitor_type::aws_vip:
      return aws_vip;
    case monitor_type::aws_eip:
      return aws_eip;
    case monitor_type::aws_dns:
      return aws_dns;
    case monitor_type::gcp_dns:
      return gcp_dns;
    case monitor_type::azure_dns:
      return azure_dns;
    case monitor_type::aws_az:
      return aws_az;
  }
  return script;
}

const param_spec* find_spec(const spec_table& t, std::string_view name) {
  for (const param_spec& s : t)
    if (s.name == name) return &s;
  return nullptr;
}

bool is_dns_name(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  if (s.empty() || s.size() > 253) return false;
  size_t label = 0;
  for (const char c : s) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '*';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

std::optional<param_value> read_param(const cursor& c, const param_spec& s) {
  switch (s.kind) {
    case pk::string:
    case pk::command:
    case pk::volume:
      if (auto v = c.str()) return param_value{std::move(*v)};
      return std::nullopt;
    case pk::name:
    case pk::resource:
      if (auto v = read_name(c)) return param_value{std::move(*v)};
      return std::nullopt;
    case pk::path:
      if (auto v = read_path(c)) return param_value{std::move(*v)};
      return std::nullopt;
    case pk::ip:
      if (auto v = read_ip(c)) return param_value{std::move(*v)};
      return std::nullopt;
    case pk::ipv4: {
      auto v = read_ip(c);
      if (!v) return std::nullopt;
      if (is_ipv6_address(*v)) {
        c.error(in_quotes(*v) + " is IPv6; this needs an IPv4 address");
        return std::nullopt;
      }
      return param_value{std::move(*v)};
    }
    case pk::ip_prefix: {
      auto v = c.str();
      if (!v) return std::nullopt;
      const size_t slash = v->find('/');
      const std::string addr = v->substr(0, slash);
      bool ok = is_ip_address(addr);
      if (ok && slash != std::string::npos) {
        const std::string_view len = std::string_view(*v).substr(slash + 1);
        int n = -1;
        auto [p, ec] = std::from_chars(len.data(), len.data() + len.size(), n);
        const int max = is_ipv6_address(addr) ? 128 : 32;
        ok =
            ec == std::errc{} && p == len.data() + len.size() && !len.empty() && n >= 0 && n <= max;
      }
      if (!ok) {
        c.error(in_quotes(*v) +
                " is not an IP address with an optional prefix length "
                "(e.g. 10.0.0.10/24)");
        return std::nullopt;
      }
      return param_value{std::move(*v)};
    }
    case pk::url:
      if (auto v = read_url(c)) return param_value{std::move(*v)};
      return std::nullopt;
    case pk::dns_name: {
      auto v = c.str();
      if (!v) return std::nullopt;
      if (!is_dns_name(*v)) {
        c.error(in_quotes(*v) + " is not a DNS name");
        return std::nullopt;
      }
      return param_value{std::move(*v)};
    }
    case pk::duration:
      if (auto v = c.duration()) return param_value{*v};
      return std::nullopt;
    case pk::integer:
      if (auto v = c.integer(s.min, s.max)) return param_value{*v};
      return std::nullopt;
    case pk::boolean:
      if (auto v = c.boolean()) return param_value{*v};
      return std::nullopt;
    case pk::choice:
      if (auto v = c.one_of(s.choices)) return param_value{std::move(*v)};
      return std::nullopt;
    case pk::ip_list: {
      if (!c.expect_list()) return std::nullopt;
      std::vector<std::string> out;
      bool ok = true;
      for (const cursor& e : c.elements()) {
        if (auto v = read_ip(e)) {
          out.push_back(std::move(*v));
        } else {
          ok = false;
        }
      }
      if (!ok) return std::nullopt;
      if (out.empty()) {
        c.error("needs at least one address");
        return std::nullopt;
      }
      return param_value{std::move(out)};
    }
    case pk::string_list:
      if (auto v = c.str_list()) return param_value{std::move(*v)};
      return std::nullopt;
  }
  return std::nullopt;
}

// Reads a params (or one node's per_node) map against the type's table.
void read_params(const cursor& c, const spec_table& table, param_map& out, bool node_specific,
                 std::string_view type_name) {
  if (!c.expect_map()) return;
  std::vector<std::string> names;
  for (const param_spec& s : table)
    names.emplace_back(s.name);
  c.check_duplicate_keys();
  for (const map_entry& e : c.entries()) {
    const std::string& key = e.key;
    const cursor& value = e.value;
    const param_spec* s = find_spec(table, key);
    if (s == nullptr) {
      std::string msg =
          "unknown parameter " + in_quotes(key) + " for type " + std::string(type_name);
      const std::string hint = did_you_mean(key, names);
      msg += hint.empty() ? "; its parameters: " + join_words(names, ", ") : hint;
      c.context().diag.error(e.key_loc, msg);
      continue;
    }
    if (node_specific && !s->per_node) {
      value.error("parameter " + in_quotes(key) + " cannot differ per node; set it in params");
      continue;
    }
    out.locs.insert_or_assign(key, value.loc());
    if (out.values.contains(key)) continue;  // given twice: reported above
    if (auto v = read_param(value, *s)) out.values.emplace(key, std::move(*v));
  }
}

void fill_defaults(const spec_table& table, param_map& p) {
  for (const param_spec& s : table)
    if (s.def && !p.values.contains(s.name)) p.values.emplace(std::string(s.name), *s.def);
}

// per_node: { <node>: { <param>: value } }
void read_per_node(const cursor& c, const spec_table& table, std::map<std::string, param_map>& out,
                   field_locs& locs, std::string_view type_name) {
  if (!c.expect_map()) return;
  c.check_duplicate_keys();
  for (const map_entry& e : c.entries()) {
    const std::string& node = e.key;
    const cursor& value = e.value;
    if (!is_object_name(node)) {
      c.context().diag.error(e.key_loc, in_quotes(node) + " is not a node name");
      continue;
    }
    if (out.contains(node)) continue;
    locs.insert_or_assign("per_node." + node, value.loc());
    read_params(value, table, out[node], true, type_name);
  }
}

// The valid, distinct names of a list (the others are reported and left out, so later checks see
// what was meant rather than nothing).
std::optional<std::vector<std::string>> read_name_list(const cursor& c) {
  constexpr size_t max_names = 256;
  if (!c.expect_list()) return std::nullopt;
  std::vector<cursor> items = c.elements();
  if (items.size() > max_names) {
    c.error("has " + std::to_string(items.size()) + " names; at most " + std::to_string(max_names) +
            " are supported");
    return std::nullopt;
  }
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const cursor& e : items) {
    auto v = read_name(e);
    if (!v) continue;
    if (!seen.insert(*v).second) {
      e.error(in_quotes(*v) + " is listed twice");
      continue;
    }
    out.push_back(std::move(*v));
  }
  return out;
}

std::optional<int> read_count(const cursor& c) {
  auto v = c.integer(0, 100);
  if (!v) return std::nullopt;
  return static_cast<int>(*v);
}

// A node's heartbeat reports every group (control/cluster/heartbeat_packet.h).
constexpr size_t max_groups = cluster::max_groups;
constexpr size_t max_resources = 128;
constexpr size_t max_monitors = 512;

std::vector<cursor> limited(const cursor& list, size_t max, std::string_view what) {
  std::vector<cursor> items = list.elements();
  if (items.size() > max) {
    list.error("has " + std::to_string(items.size()) + " " + std::string(what) + "; at most " +
               std::to_string(max) + " are supported");
    items.erase(items.begin() + static_cast<std::ptrdiff_t>(max), items.end());
  }
  return items;
}

void read_resource(const cursor& c, resource_config& r) {
  r.loc = c.loc();
  if (!c.expect_map()) return;
  c.check_keys({"name", "type", "depends_on", "params", "per_node", "activation", "deactivation"});
  c.read("name", r.name, r.locs, read_name, true);
  const bool typed = c.read(
      "type", r.type, r.locs,
      [](const cursor& x) { return parse_enum<resource_type>(x, resource_names); }, true);
  if (!typed) r.locs.erase("type");  // later checks skip what depends on the type
  c.read("depends_on", r.depends_on, r.locs, read_name_list);
  if (typed) {
    const spec_table& table = resource_specs(r.type);
    const std::string_view tn = to_string(r.type);
    if (auto p = c.get("params")) {
      r.locs.insert_or_assign("params", p->loc());
      read_params(*p, table, r.params, false, tn);
    }
    fill_defaults(table, r.params);
    if (auto pn = c.get("per_node")) {
      r.locs.insert_or_assign("per_node", pn->loc());
      read_per_node(*pn, table, r.per_node, r.locs, tn);
    }
  }
  if (auto a = c.get("activation")) {
    r.activation.loc = a->loc();
    if (a->expect_map()) {
      a->check_keys({"timeout", "retries", "failovers", "final_action"});
      a->read("timeout", r.activation.timeout, r.activation.locs, &cursor::duration);
      a->read("retries", r.activation.retries, r.activation.locs, read_count);
      a->read("failovers", r.activation.failovers, r.activation.locs, read_count);
      a->read("final_action", r.activation.action, r.activation.locs,
              [](const cursor& x) { return parse_enum<final_action>(x, action_names); });
    }
  } else {
    r.activation.loc = r.loc;
  }
  if (auto d = c.get("deactivation")) {
    r.deactivation.loc = d->loc();
    if (d->expect_map()) {
      d->check_keys({"timeout", "retries", "final_action"});
      d->read("timeout", r.deactivation.timeout, r.deactivation.locs, &cursor::duration);
      d->read("retries", r.deactivation.retries, r.deactivation.locs, read_count);
      d->read(
          "final_action", r.deactivation.action, r.deactivation.locs,
          [](const cursor& x) -> std::optional<final_action> {
            static constexpr std::array<std::pair<final_action, std::string_view>, 3> allowed = {
                {{final_action::none, "none"},
                 {final_action::stop_cluster, "stop_cluster"},
                 {final_action::fence, "fence"}}};
            return parse_enum<final_action>(x, allowed);
          });
    }
  } else {
    r.deactivation.loc = r.loc;
  }
}

void read_group(const cursor& c, group_config& g) {
  g.loc = c.loc();
  if (!c.expect_map()) return;
  c.check_keys({"name", "nodes", "failback", "autostart", "resources"});
  c.read("name", g.name, g.locs, read_name, true);
  c.read("nodes", g.nodes, g.locs, read_name_list);
  c.read("failback", g.failback, g.locs, [](const cursor& x) -> std::optional<failback_policy> {
    auto s = x.one_of({"manual", "auto"});
    if (!s) return std::nullopt;
    return *s == "auto" ? failback_policy::automatic : failback_policy::manual;
  });
  c.read("autostart", g.autostart, g.locs, &cursor::boolean);
  if (auto rs = c.get("resources")) {
    g.locs.insert_or_assign("resources", rs->loc());
    if (rs->expect_list()) {
      for (const cursor& item : limited(*rs, max_resources, "resources"))
        read_resource(item, g.resources.emplace_back());
    }
  }
}

void read_monitor(const cursor& c, monitor_config& m) {
  m.loc = c.loc();
  m.recovery.loc = m.loc;
  if (!c.expect_map()) return;
  c.check_keys({"name", "type", "group", "when", "interval", "timeout", "retries", "params",
                "per_node", "recovery"});
  c.read("name", m.name, m.locs, read_name, true);
  const bool typed = c.read(
      "type", m.type, m.locs,
      [](const cursor& x) { return parse_enum<monitor_type>(x, monitor_names); }, true);
  if (!typed) m.locs.erase("type");
  c.read("group", m.group, m.locs, read_name);
  m.when = m.group.empty() ? monitor_when::always : monitor_when::active;
  c.read("when", m.when, m.locs, [](const cursor& x) -> std::optional<monitor_when> {
    auto s = x.one_of({"always", "active"});
    if (!s) return std::nullopt;
    return *s == "active" ? monitor_when::active : monitor_when::always;
  });
  c.read("interval", m.interval, m.locs, &cursor::duration);
  c.read("timeout", m.timeout, m.locs, &cursor::duration);
  c.read("retries", m.retries, m.locs, read_count);
  if (typed) {
    const spec_table& table = monitor_specs(m.type);
    const std::string_view tn = to_string(m.type);
    if (auto p = c.get("params")) {
      m.locs.insert_or_assign("params", p->loc());
      read_params(*p, table, m.params, false, tn);
    }
    fill_defaults(table, m.params);
    if (auto pn = c.get("per_node")) {
      m.locs.insert_or_assign("per_node", pn->loc());
      read_per_node(*pn, table, m.per_node, m.locs, tn);
    }
  }
  if (auto r = c.get("recovery")) {
    m.recovery.loc = r->loc();
    if (r->expect_map()) {
      r->check_keys({"resource", "restarts", "failovers", "final_action"});
      r->read("resource", m.recovery.resource, m.recovery.locs, read_name);
      r->read("restarts", m.recovery.restarts, m.recovery.locs, read_count);
      r->read("failovers", m.recovery.failovers, m.recovery.locs, read_count);
      r->read("final_action", m.recovery.action, m.recovery.locs,
              [](const cursor& x) { return parse_enum<final_action>(x, action_names); });
    }
  }
}

}  // namespace

void read_groups(const cursor& c, std::vector<group_config>& out) {
  if (!c.expect_list()) return;
  for (const cursor& item : limited(c, max_groups, "groups"))
    read_group(item, out.emplace_back());
}

void read_monitors(const cursor& c, std::vector<monitor_config>& out) {
  if (!c.expect_list()) return;
  for (const cursor& item : limited(c, max_monitors, "monitors"))
    read_monitor(item, out.emplace_back());
}

// ---- checks -----------------------------------------------------------------------------------

namespace {

struct checker {
  cluster_config& cfg;
  diagnostics& diag;
  std::vector<std::string> node_names;              // every named node
  std::vector<std::string> volume_names;            // every named volume
  std::map<std::string, std::string> volume_users;  // volume -> "group/resource"

  bool fence_command_on(const std::string& node) const {
    const node_config* n = cfg.find_node(node);
    if (n != nullptr && n->overrides.fence_command) return !n->overrides.fence_command->empty();
    return !cfg.quorum.on_loss.fence_command.empty();
  }

  void check_fence(final_action a, const std::vector<std::string>& nodes, const source_loc& at) {
    if (a != final_action::fence) return;
    std::vector<std::string> missing;
    for (const std::string& n : nodes)
      if (!fence_command_on(n)) missing.push_back(n);
    if (!missing.empty()) {
      diag.error(at,
                 "final_action fence needs quorum.on_loss.fence_command, which is not set "
                 "for " +
                     join_words(missing));
    }
  }

  void check_volume_ref(const std::string& volume, const source_loc& at) {
    if (std::find(volume_names.begin(), volume_names.end(), volume) != volume_names.end()) return;
    if (!cfg.mirrors.present) {
      diag.error(at, "unknown volume " + in_quotes(volume) + ": the file has no mirrors: section");
    } else {
      diag.error(at, "unknown volume " + in_quotes(volume) + did_you_mean(volume, volume_names));
    }
  }

  // Parameters that refer to other things, and required ones that may be given per node.
  void check_params(const spec_table& table, const param_map& params,
                    const std::map<std::string, param_map>& per_node,
                    const std::vector<std::string>& nodes, const group_config* group,
                    const source_loc& owner, const field_locs& owner_locs,
                    const std::string& owner_name, bool group_unknown = false) {
    const source_loc params_loc = loc_of(owner_locs, "params", owner);
    for (const param_spec& s : table) {
      // A required parameter that was given but invalid has been reported already.
      if (s.required && !params.has(s.name) && !params.locs.contains(s.name)) {
        if (!s.per_node) {
          diag.error(params_loc, "missing required parameter " + in_quotes(s.name));
        } else {
          std::vector<std::string> missing;
          for (const std::string& n : nodes) {
            auto it = per_node.find(n);
            if (it == per_node.end() || !it->second.has(s.name)) missing.push_back(n);
          }
          if (!missing.empty()) {
            diag.error(params_loc,
                       "missing required parameter " + in_quotes(s.name) + " for " +
                           (missing.size() == nodes.size() ? "every node"
                                                           : "node " + join_words(missing)) +
                           " (set it in params, or per node in per_node.<node>)");
          }
        }
      }
      const std::string* v = params.str(s.name);
      if (v == nullptr) continue;
      const source_loc at = loc_of(params.locs, s.name, params_loc);
      if (s.kind == pk::volume) check_volume_ref(*v, at);
      if (s.kind == pk::resource) {
        if (group == nullptr && group_unknown) continue;  // the unknown group was reported
        if (group == nullptr) {
          diag.error(at, owner_name + " refers to resource " + in_quotes(*v) +
                             ", so it needs a group: to find it in");
          continue;
        }
        const resource_config* r = group->find_resource(*v);
        if (r == nullptr) {
          std::vector<std::string> names;
          for (const resource_config& x : group->resources)
            names.push_back(x.name);
          diag.error(at, "group " + in_quotes(group->name) + " has no resource " + in_quotes(*v) +
                             did_you_mean(*v, names));
        } else if (s.ref && r->type != *s.ref) {
          diag.error(at, "resource " + in_quotes(*v) + " is of type " +
                             std::string(to_string(r->type)) + ", not " +
                             std::string(to_string(*s.ref)));
        }
      }
    }
    for (const auto& [node, p] : per_node) {
      const source_loc at = loc_of(owner_locs, "per_node." + node, owner);
      if (std::find(nodes.begin(), nodes.end(), node) == nodes.end()) {
        const bool exists =
            std::find(node_names.begin(), node_names.end(), node) != node_names.end();
        diag.error(at, exists ? "node " + in_quotes(node) + " is not one of the group's nodes (" +
                                    join_words(nodes, ", ") + ")"
                              : "unknown node " + in_quotes(node) + did_you_mean(node, node_names));
      }
      (void)p;
    }
  }

  void check_cycles(const group_config& g) {
    // Depth-first search; a resource met again while still on the path closes a cycle.
    enum class mark { fresh, on_path, done };
    std::map<std::string, mark> state;
    std::vector<const resource_config*> path;
    std::set<std::string> reported;
    std::function<void(const resource_config&)> visit = [&](const resource_config& r) {
      state[r.name] = mark::on_path;
      path.push_back(&r);
      for (const std::string& d : r.depends_on) {
        const resource_config* dep = g.find_resource(d);
        if (dep == nullptr || dep == &r) continue;
        const mark m = state.contains(d) ? state[d] : mark::fresh;
        if (m == mark::fresh) {
          visit(*dep);
        } else if (m == mark::on_path) {
          std::vector<std::string> cycle;
          auto start = std::find(path.begin(), path.end(), dep);
          for (auto it = start; it != path.end(); ++it)
            cycle.push_back((*it)->name);
          std::vector<std::string> key = cycle;
          std::sort(key.begin(), key.end());
          std::string k;
          for (const auto& s : key)
            k += s + ",";
          if (!reported.insert(k).second) continue;
          std::string text;
          for (const std::string& s : cycle)
            text += s + " -> ";
          text += dep->name;
          diag.error(loc_of(r.locs, "depends_on", r.loc), "dependency cycle: " + text);
        }
      }
      path.pop_back();
      state[r.name] = mark::done;
    };
    for (const resource_config& r : g.resources)
      if (!r.name.empty() && !state.contains(r.name)) visit(r);
  }

  void check_group(group_config& g, std::set<std::string>& group_names) {
    if (!g.name.empty() && !group_names.insert(g.name).second) {
      diag.error(loc_of(g.locs, "name", g.loc),
                 "group name " + in_quotes(g.name) + " is used twice");
    }
    if (!g.locs.contains("nodes")) {
      g.nodes = cfg.node_names_by_priority();
    } else {
      for (const std::string& n : g.nodes) {
        if (cfg.find_node(n) == nullptr) {
          diag.error(loc_of(g.locs, "nodes", g.loc),
                     "unknown node " + in_quotes(n) + did_you_mean(n, node_names));
        }
      }
      if (g.nodes.empty())
        diag.error(loc_of(g.locs, "nodes", g.loc), "a group needs a node to run on");
    }
    std::set<std::string> names;
    for (const resource_config& r : g.resources) {
      if (!r.name.empty() && !names.insert(r.name).second) {
        diag.error(
            loc_of(r.locs, "name", r.loc),
            "resource name " + in_quotes(r.name) + " is used twice in group " + in_quotes(g.name));
      }
    }
    std::vector<std::string> all(names.begin(), names.end());
    for (resource_config& r : g.resources) {
      const source_loc deps_at = loc_of(r.locs, "depends_on", r.loc);
      for (const std::string& d : r.depends_on) {
        if (d == r.name) {
          diag.error(deps_at, "resource " + in_quotes(r.name) + " depends on itself");
        } else if (g.find_resource(d) == nullptr) {
          diag.error(deps_at, "unknown resource " + in_quotes(d) + " in group " +
                                  in_quotes(g.name) + did_you_mean(d, all));
        }
      }
      if (!r.locs.contains("type")) continue;
      check_params(resource_specs(r.type), r.params, r.per_node, g.nodes, &g, r.loc, r.locs,
                   "resource " + in_quotes(r.name));
      const source_loc params_at = loc_of(r.locs, "params", r.loc);
      if (r.type == resource_type::filesystem) {
        const std::string* m = r.params.str("mirror");
        bool device_everywhere = r.params.has("device");
        if (!device_everywhere) {
          device_everywhere = !g.nodes.empty();
          for (const std::string& n : g.nodes) {
            auto it = r.per_node.find(n);
            if (it == r.per_node.end() || !it->second.has("device")) device_everywhere = false;
          }
        }
        const bool device_anywhere =
            r.params.has("device") ||
            std::any_of(r.per_node.begin(), r.per_node.end(),
                        [](const auto& kv) { return kv.second.has("device"); });
        if (m != nullptr && device_anywhere) {
          diag.error(params_at, "give either mirror or device, not both");
        } else if (m == nullptr && !device_everywhere) {
          diag.error(params_at, "needs a mirror (a mirror resource of the group) or a device");
        }
        if (m != nullptr && g.find_resource(*m) != nullptr &&
            std::find(r.depends_on.begin(), r.depends_on.end(), *m) == r.depends_on.end())
          r.depends_on.push_back(*m);  // mounting needs the mirror promoted first
      }
      if (r.type == resource_type::mirror) {
        const std::string* v = r.params.str("volume");
        if (v != nullptr) {
          const source_loc at = loc_of(r.params.locs, "volume", params_at);
          const std::string user = "group " + g.name + ", resource " + r.name;
          if (auto [it, fresh] = volume_users.emplace(*v, user); !fresh) {
            diag.error(at, "volume " + in_quotes(*v) + " is already used by " + it->second +
                               "; a volume belongs to one mirror resource");
          }
          if (const mirror_volume* vol = cfg.mirrors.find_volume(*v)) {
            for (const std::string& n : g.nodes) {
              if (cfg.find_node(n) != nullptr && vol->replica(n) == nullptr) {
                diag.error(at, "group " + in_quotes(g.name) + " may run on node " + in_quotes(n) +
                                   ", which holds no replica of volume " + in_quotes(*v));
              }
            }
          }
        }
      }
      check_fence(r.activation.action, g.nodes,
                  loc_of(r.activation.locs, "final_action", r.activation.loc));
      check_fence(r.deactivation.action, g.nodes,
                  loc_of(r.deactivation.locs, "final_action", r.deactivation.loc));
    }
    check_cycles(g);
  }

  void check_monitor(const monitor_config& m, std::set<std::string>& seen) {
    if (!m.name.empty() && !seen.insert(m.name).second) {
      diag.error(loc_of(m.locs, "name", m.loc),
                 "monitor name " + in_quotes(m.name) + " is used twice");
    }
    const group_config* g = nullptr;
    if (!m.group.empty()) {
      g = cfg.find_group(m.group);
      if (g == nullptr) {
        std::vector<std::string> names;
        for (const group_config& x : cfg.groups)
          names.push_back(x.name);
        diag.error(loc_of(m.locs, "group", m.loc),
                   "unknown group " + in_quotes(m.group) + did_you_mean(m.group, names));
      }
    } else if (m.when == monitor_when::active) {
      diag.error(loc_of(m.locs, "when", m.loc),
                 "when: active needs a group: (the monitor runs while that group is active)");
    }
    if (m.interval < milliseconds(100)) {
      diag.error(loc_of(m.locs, "interval", m.loc),
                 format_duration(m.interval) + " is too short: at least 100ms");
    }
    if (m.timeout < milliseconds(100)) {
      diag.error(loc_of(m.locs, "timeout", m.loc),
                 format_duration(m.timeout) + " is too short: at least 100ms");
    }
    const std::vector<std::string>& nodes = g != nullptr ? g->nodes : node_names;
    if (m.locs.contains("type")) {
      check_params(monitor_specs(m.type), m.params, m.per_node, nodes, g, m.loc, m.locs,
                   "monitor " + in_quotes(m.name), !m.group.empty() && g == nullptr);
    }
    const recovery_policy& r = m.recovery;
    if (!r.resource.empty()) {
      const source_loc at = loc_of(r.locs, "resource", r.loc);
      if (m.group.empty()) {
        diag.error(at, "recovery.resource needs the monitor's group:");
      } else if (g != nullptr && g->find_resource(r.resource) == nullptr) {
        std::vector<std::string> names;
        for (const resource_config& x : g->resources)
          names.push_back(x.name);
        diag.error(at, "group " + in_quotes(g->name) + " has no resource " + in_quotes(r.resource) +
                           did_you_mean(r.resource, names));
      }
    }
    if (m.group.empty() && r.action == final_action::stop_group)
      diag.error(loc_of(r.locs, "final_action", r.loc), "stop_group needs the monitor's group:");
    if (m.group.empty() && (r.locs.contains("restarts") || r.locs.contains("failovers"))) {
      diag.warning(loc_of(r.locs, r.locs.contains("restarts") ? "restarts" : "failovers", r.loc),
                   "ignored: without a group: only the final action applies");
    }
    check_fence(r.action, nodes, loc_of(r.locs, "final_action", r.loc));
  }
};

}  // namespace

void check_groups_and_monitors(cluster_config& cfg, diagnostics& diag) {
  checker ck{cfg, diag, {}, {}, {}};
  for (const node_config& n : cfg.nodes)
    if (!n.name.empty()) ck.node_names.push_back(n.name);
  for (const mirror_volume& v : cfg.mirrors.volumes)
    if (!v.name.empty()) ck.volume_names.push_back(v.name);
  std::set<std::string> group_names;
  std::map<uint16_t, std::string> group_ids;
  for (group_config& g : cfg.groups) {
    ck.check_group(g, group_names);
    // Heartbeats name groups by a 16-bit hash of the name: two names with one id cannot work.
    const uint16_t id = cluster::group_id_of(g.name);
    const auto [it, fresh] = group_ids.emplace(id, g.name);
    if (!fresh && it->second != g.name) {
      diag.error(loc_of(g.locs, "name", g.loc),
                 "group names " + in_quotes(it->second) + " and " + in_quotes(g.name) +
                     " have the same 16-bit wire id; rename one of them");
    }
  }
  std::set<std::string> seen_monitors;
  for (const monitor_config& m : cfg.monitors)
    ck.check_monitor(m, seen_monitors);
}

}  // namespace tandem::ctl::config
