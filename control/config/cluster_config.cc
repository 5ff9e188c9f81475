// SPDX-License-Identifier: Apache-2.0
// Reading the cluster file's sections, the checks across them, and each node's effective view.
#include "control/config/cluster_config.h"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

#include "control/config/units.h"
#include "control/config/yaml_util.h"

namespace tandem::ctl::config {

using std::chrono::milliseconds;

std::string_view to_string(quorum_mode m) noexcept {
  switch (m) {
    case quorum_mode::majority:
      return "majority";
    case quorum_mode::witness:
      return "witness";
    case quorum_mode::etcd:
      return "etcd";
    case quorum_mode::none:
      return "none";
  }
  return "?";
}

std::string_view to_string(loss_action a) noexcept {
  return a == loss_action::fence ? "fence" : "stop_groups";
}

std::string_view to_string(tie_breaker t) noexcept {
  return t == tie_breaker::lowest_id ? "lowest_id" : "none";
}

std::string_view to_string(alert_severity s) noexcept {
  switch (s) {
    case alert_severity::info:
      return "info";
    case alert_severity::warning:
      return "warning";
    case alert_severity::error:
      return "error";
  }
  return "?";
}

bool node_overrides::empty() const noexcept {
  return !heartbeat_interval && !heartbeat_timeout && !ping && !http && !resolution_timeout &&
         !on_loss_action && !fence_command && !api_http_address && !api_http_port;
}

bool is_aws_region(std::string_view region) noexcept {
  // Words of a-z joined by '-', the last part a number: us-east-1, us-gov-west-1, cn-north-1.
  if (region.empty() || region.size() > 32) return false;
  size_t words = 0;
  size_t start = 0;
  while (true) {
    const size_t dash = region.find('-', start);
    const std::string_view part = region.substr(
        start, dash == std::string_view::npos ? std::string_view::npos : dash - start);
    if (part.empty()) return false;
    const bool last = dash == std::string_view::npos;
    const bool ok =
        last ? std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })
             : std::all_of(part.begin(), part.end(), [](char c) { return c >= 'a' && c <= 'z'; });
    if (!ok) return false;
    if (last) return words >= 2;
    ++words;
    start = dash + 1;
  }
}

std::string_view aws_partition_of(std::string_view region) noexcept {
  if (region.starts_with("cn-")) return "aws-cn";
  if (region.starts_with("us-gov-")) return "aws-us-gov";
  return "aws";
}

std::optional<sns_arn> parse_sns_arn(std::string_view arn, std::string* why) {
  auto fail = [&](std::string reason) -> std::optional<sns_arn> {
    if (why != nullptr) *why = std::move(reason);
    return std::nullopt;
  };
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i < 5; ++i) {
    const size_t colon = arn.find(':', start);
    if (colon == std::string_view::npos) break;
    parts.push_back(arn.substr(start, colon - start));
    start = colon + 1;
  }
  if (parts.size() != 5 || parts[0] != "arn")
    return fail("an SNS topic ARN has the form arn:aws:sns:<region>:<account>:<topic>");
  sns_arn a{std::string(parts[1]), std::string(parts[3]), std::string(parts[4]),
            std::string(arn.substr(start))};
  if (a.partition != "aws" && a.partition != "aws-cn" && a.partition != "aws-us-gov")
    return fail("partition " + in_quotes(a.partition) + " is not aws, aws-cn or aws-us-gov");
  if (parts[2] != "sns")
    return fail("service " + in_quotes(parts[2]) +
                " is not sns (an SNS topic ARN has the form "
                "arn:aws:sns:<region>:<account>:<topic>)");
  if (!is_aws_region(a.region))
    return fail("region " + in_quotes(a.region) + " is not an AWS region (such as us-east-1)");
  if (aws_partition_of(a.region) != a.partition)
    return fail("region " + a.region + " belongs to partition " +
                std::string(aws_partition_of(a.region)) + ", not " + a.partition);
  if (a.account.size() != 12 ||
      !std::all_of(a.account.begin(), a.account.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return fail("account " + in_quotes(a.account) + " is not a 12-digit AWS account id");
  std::string_view name = a.topic;
  if (name.ends_with(".fifo")) name.remove_suffix(5);
  const bool name_ok =
      !name.empty() && a.topic.size() <= 256 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
      });
  if (!name_ok)
    return fail("topic name " + in_quotes(a.topic) +
                " is not 1 to 256 of A-Z, a-z, 0-9, '_' and '-' (and \".fifo\" last for a FIFO "
                "topic)");
  return a;
}

const node_config* cluster_config::find_node(std::string_view n) const noexcept {
  for (const node_config& x : nodes)
    if (x.name == n) return &x;
  return nullptr;
}

const group_config* cluster_config::find_group(std::string_view n) const noexcept {
  for (const group_config& x : groups)
    if (x.name == n) return &x;
  return nullptr;
}

const monitor_config* cluster_config::find_monitor(std::string_view n) const noexcept {
  for (const monitor_config& x : monitors)
    if (x.name == n) return &x;
  return nullptr;
}

std::vector<std::string> cluster_config::node_names_by_priority() const {
  std::vector<const node_config*> sorted;
  for (const node_config& n : nodes)
    if (!n.name.empty()) sorted.push_back(&n);
  std::stable_sort(sorted.begin(), sorted.end(), [](const node_config* a, const node_config* b) {
    return a->priority < b->priority;
  });
  std::vector<std::string> out;
  out.reserve(sorted.size());
  for (const node_config* n : sorted)
    out.push_back(n->name);
  return out;
}

namespace {

constexpr size_t max_nodes = 32;  // node ids are 0..31 on the heartbeat wire
constexpr size_t max_interconnects = 8;
constexpr size_t max_webhooks = 32;
constexpr size_t max_sns_topics = 32;

std::optional<std::string> read_device(const cursor& c) {
  auto s = c.str();
  if (!s) return std::nullopt;
  const bool ok =
      s->size() < 16 && *s != "." && *s != ".." && std::none_of(s->begin(), s->end(), [](char ch) {
        return ch == '/' || ch == ':' || static_cast<unsigned char>(ch) <= 0x20;
      });
  if (!ok) {
    c.error(in_quotes(*s) +
            " is not a network interface name (at most 15 characters, no '/', ':' "
            "or spaces)");
    return std::nullopt;
  }
  return s;
}

std::optional<std::vector<std::string>> read_ip_list(const cursor& c) {
  if (!c.expect_list()) return std::nullopt;
  std::vector<std::string> out;
  bool ok = true;
  for (const cursor& e : c.elements()) {
    if (auto s = read_ip(e)) {
      out.push_back(std::move(*s));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::vector<std::string>> read_url_list(const cursor& c) {
  if (!c.expect_list()) return std::nullopt;
  std::vector<std::string> out;
  bool ok = true;
  for (const cursor& e : c.elements()) {
    if (auto s = read_url(e)) {
      out.push_back(std::move(*s));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<loss_action> read_loss_action(const cursor& c) {
  auto s = c.one_of({"stop_groups", "fence"});
  if (!s) return std::nullopt;
  return *s == "fence" ? loss_action::fence : loss_action::stop_groups;
}

// A map-valued key: records its location and returns it when it is a map (or empty).
std::optional<cursor> section(const cursor& parent, std::string_view key, field_locs& locs,
                              bool required = false) {
  std::optional<cursor> c = required ? parent.require(key) : parent.get(key);
  if (!c) return std::nullopt;
  locs.insert_or_assign(std::string(key), c->loc());
  if (!c->expect_map()) return std::nullopt;
  return c;
}

void read_heartbeat(const cursor& c, heartbeat_config& hb) {
  hb.loc = c.loc();
  c.check_keys({"interval", "timeout"});
  c.read("interval", hb.interval, hb.locs, &cursor::duration);
  c.read("timeout", hb.timeout, hb.locs, &cursor::duration);
}

void read_interconnect(const cursor& c, interconnect& ic) {
  ic.loc = c.loc();
  if (!c.expect_map()) return;
  c.check_keys({"address", "port", "device"});
  c.read("address", ic.address, ic.locs, read_ip, true);
  c.read("port", ic.port, ic.locs, read_port);
  c.read("device", ic.device, ic.locs, read_device);
}

void read_overrides(const cursor& c, node_overrides& o) {
  o.loc = c.loc();
  c.check_keys({"heartbeat", "quorum", "api"});
  if (auto hb = section(c, "heartbeat", o.locs)) {
    hb->check_keys({"interval", "timeout"});
    milliseconds v{};
    if (hb->read("interval", v, o.locs, &cursor::duration)) o.heartbeat_interval = v;
    if (hb->read("timeout", v, o.locs, &cursor::duration)) o.heartbeat_timeout = v;
  }
  if (auto q = section(c, "quorum", o.locs)) {
    q->check_keys({"partition_resolution", "on_loss"});
    if (auto pr = section(*q, "partition_resolution", o.locs)) {
      pr->check_keys({"ping", "http", "timeout"});
      std::vector<std::string> list;
      if (pr->read("ping", list, o.locs, read_ip_list)) o.ping = list;
      if (pr->read("http", list, o.locs, read_url_list)) o.http = list;
      milliseconds v{};
      if (pr->read("timeout", v, o.locs, &cursor::duration)) o.resolution_timeout = v;
    }
    if (auto ol = section(*q, "on_loss", o.locs)) {
      ol->check_keys({"action", "fence_command"});
      loss_action a{};
      if (ol->read("action", a, o.locs, read_loss_action)) o.on_loss_action = a;
      std::string cmd;
      if (ol->read("fence_command", cmd, o.locs, &cursor::str)) o.fence_command = cmd;
    }
  }
  if (auto api = section(c, "api", o.locs)) {
    api->check_keys({"http"});
    if (auto http = section(*api, "http", o.locs)) {
      http->check_keys({"address", "port"});
      std::string addr;
      if (http->read("address", addr, o.locs, read_ip)) o.api_http_address = addr;
      uint16_t port = 0;
      if (http->read("port", port, o.locs, read_port)) o.api_http_port = port;
    }
  }
}

void read_node(const cursor& c, node_config& n, size_t index) {
  n.loc = c.loc();
  n.priority = static_cast<int>(index) + 1;
  if (!c.expect_map()) return;
  c.check_keys({"name", "priority", "interconnects", "overrides"});
  c.read("name", n.name, n.locs, read_name, true);
  c.read("priority", n.priority, n.locs, [](const cursor& x) -> std::optional<int> {
    auto v = x.integer(1, 1000);
    if (!v) return std::nullopt;
    return static_cast<int>(*v);
  });
  if (auto ics = c.require("interconnects")) {
    n.locs.insert_or_assign("interconnects", ics->loc());
    if (ics->expect_list()) {
      std::vector<cursor> items = ics->elements();
      if (items.empty()) ics->error("a node needs at least one interconnect");
      if (items.size() > max_interconnects) {
        ics->error("has " + std::to_string(items.size()) + " interconnects; at most " +
                   std::to_string(max_interconnects) + " are supported");
        items.erase(items.begin() + static_cast<std::ptrdiff_t>(max_interconnects), items.end());
      }
      for (const cursor& item : items)
        read_interconnect(item, n.interconnects.emplace_back());
    }
  }
  if (auto o = section(c, "overrides", n.locs)) read_overrides(*o, n.overrides);
}

void read_witness(const cursor& c, witness_config& w) {
  w.loc = c.loc();
  c.check_keys({"url", "token_file", "lease", "renew"});
  c.read("url", w.url, w.locs, read_url, true);
  c.read("token_file", w.token_file, w.locs, read_path);
  c.read("lease", w.lease, w.locs, &cursor::duration);
  c.read("renew", w.renew, w.locs, &cursor::duration);
}

void read_etcd(const cursor& c, etcd_config& e) {
  e.loc = c.loc();
  c.check_keys({"endpoints", "key", "lease", "renew", "ca_file", "cert_file", "key_file"});
  c.read("endpoints", e.endpoints, e.locs, read_url_list, true);
  c.read("key", e.key, e.locs, &cursor::str);
  c.read("lease", e.lease, e.locs, &cursor::duration);
  c.read("renew", e.renew, e.locs, &cursor::duration);
  c.read("ca_file", e.ca_file, e.locs, read_path);
  c.read("cert_file", e.cert_file, e.locs, read_path);
  c.read("key_file", e.key_file, e.locs, read_path);
}

void read_quorum(const cursor& c, quorum_config& q) {
  q.loc = c.loc();
  c.check_keys({"mode", "tie_breaker", "stop_timeout", "witness", "etcd", "partition_resolution",
                "on_loss"});
  c.read("mode", q.mode, q.locs, [](const cursor& x) -> std::optional<quorum_mode> {
    auto s = x.one_of({"majority", "witness", "etcd", "none"});
    if (!s) return std::nullopt;
    if (*s == "witness") return quorum_mode::witness;
    if (*s == "etcd") return quorum_mode::etcd;
    if (*s == "none") return quorum_mode::none;
    return quorum_mode::majority;
  });
  c.read("tie_breaker", q.tie, q.locs, [](const cursor& x) -> std::optional<tie_breaker> {
    auto s = x.one_of({"none", "lowest_id"});
    if (!s) return std::nullopt;
    return *s == "lowest_id" ? tie_breaker::lowest_id : tie_breaker::none;
  });
  c.read("stop_timeout", q.stop_timeout, q.locs, &cursor::duration);
  if (auto w = section(c, "witness", q.locs)) read_witness(*w, q.witness);
  if (auto e = section(c, "etcd", q.locs)) read_etcd(*e, q.etcd);
  if (auto pr = section(c, "partition_resolution", q.locs)) {
    q.resolution.loc = pr->loc();
    pr->check_keys({"ping", "http", "timeout"});
    pr->read("ping", q.resolution.ping, q.resolution.locs, read_ip_list);
    pr->read("http", q.resolution.http, q.resolution.locs, read_url_list);
    pr->read("timeout", q.resolution.timeout, q.resolution.locs, &cursor::duration);
  }
  if (auto ol = section(c, "on_loss", q.locs)) {
    q.on_loss.loc = ol->loc();
    ol->check_keys({"action", "fence_command"});
    ol->read("action", q.on_loss.action, q.on_loss.locs, read_loss_action);
    ol->read("fence_command", q.on_loss.fence_command, q.on_loss.locs, &cursor::str);
  }
}

void read_api(const cursor& c, api_config& a) {
  a.loc = c.loc();
  c.check_keys({"socket", "http"});
  c.read("socket", a.socket, a.locs, read_path);
  if (auto http = section(c, "http", a.locs)) {
    a.http = true;
    http->check_keys({"address", "port", "token_file"});
    http->read("address", a.http_address, a.locs, read_ip);
    http->read("port", a.http_port, a.locs, read_port);
    http->read("token_file", a.token_file, a.locs, read_path);
  }
}

std::optional<alert_severity> read_severity(const cursor& x) {
  auto s = x.one_of({"info", "warning", "error"});
  if (!s) return std::nullopt;
  if (*s == "info") return alert_severity::info;
  if (*s == "error") return alert_severity::error;
  return alert_severity::warning;
}

std::optional<std::vector<std::string>> read_event_patterns(const cursor& x) {
  if (!x.expect_list()) return std::nullopt;
  std::vector<std::string> out;
  bool ok = true;
  for (const cursor& e : x.elements()) {
    auto s = e.str();
    if (!s) {
      ok = false;
      continue;
    }
    const bool valid = s->size() <= 64 && std::all_of(s->begin(), s->end(), [](char ch) {
                         return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                                ch == '.' || ch == '*';
                       });
    if (!valid) {
      e.error(in_quotes(*s) +
              " is not an event name or pattern (a-z, 0-9, '_', '.', "
              "'*', e.g. \"group.*\")");
      ok = false;
      continue;
    }
    out.push_back(std::move(*s));
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::string> read_region(const cursor& c) {
  auto s = c.str();
  if (!s) return std::nullopt;
  if (!is_aws_region(*s)) {
    c.error(in_quotes(*s) + " is not an AWS region (such as us-east-1 or eu-central-1)");
    return std::nullopt;
  }
  return s;
}

// A list of at most `limit` maps under `key`, each read by `one`.
template <class T, class Read>
void read_alert_list(const cursor& c, std::string_view key, const char* what, size_t limit,
                     std::vector<T>& out, field_locs& locs, Read one) {
  auto list = c.get(key);
  if (!list || !list->expect_list()) return;
  locs.insert_or_assign(std::string(key), list->loc());
  std::vector<cursor> items = list->elements();
  if (items.size() > limit) {
    list->error("has " + std::to_string(items.size()) + " " + what + "; at most " +
                std::to_string(limit) + " are supported");
    items.erase(items.begin() + static_cast<std::ptrdiff_t>(limit), items.end());
  }
  for (const cursor& item : items) {
    T& t = out.emplace_back();
    t.loc = item.loc();
    if (!item.expect_map()) continue;
    one(item, t);
  }
}

void read_sns_topic(const cursor& item, sns_topic_config& t) {
  item.check_keys({"topic_arn", "region", "endpoint", "severity", "events"});
  std::optional<sns_arn> arn;
  item.read(
      "topic_arn", t.topic_arn, t.locs,
      [&arn](const cursor& x) -> std::optional<std::string> {
        auto s = x.str();
        if (!s) return std::nullopt;
        std::string why;
        arn = parse_sns_arn(*s, &why);
        if (!arn) {
          x.error(in_quotes(*s) + " is not an SNS topic ARN: " + why);
          return std::nullopt;
        }
        return s;
      },
      true);
  const bool region_set = item.read("region", t.region, t.locs, read_region);
  item.read("endpoint", t.endpoint, t.locs, read_url);
  item.read("severity", t.min_severity, t.locs, read_severity);
  item.read("events", t.events, t.locs, read_event_patterns);
  if (!arn) return;
  if (!region_set) {
    t.region = arn->region;
  } else if (t.region != arn->region) {
    item.context().diag.warning(loc_of(t.locs, "region", t.loc),
                                "region " + t.region + " is not the topic's (" + arn->region +
                                    "): SNS publishes only to topics of the region it is "
                                    "called in");
  }
}

std::optional<std::string> read_metric_namespace(const cursor& c) {
  auto s = c.str();
  if (!s) return std::nullopt;
  const bool chars_ok = s->size() <= 255 && std::all_of(s->begin(), s->end(), [](char ch) {
                          return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                                 (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_' ||
                                 ch == '/' || ch == '#' || ch == ':' || ch == ' ';
                        });
  if (!chars_ok || s->find_first_not_of(' ') == std::string::npos) {
    c.error(in_quotes(*s) +
            " is not a CloudWatch namespace (1 to 255 of A-Z, a-z, 0-9, '.', '-', '_', '/', "
            "'#', ':' and spaces)");
    return std::nullopt;
  }
  if (s->starts_with("AWS/")) {
    c.error(in_quotes(*s) + ": namespaces starting with AWS/ are reserved for AWS services");
    return std::nullopt;
  }
  return s;
}

void read_cloudwatch(const cursor& c, cloudwatch_config& cw) {
  cw.present = true;
  cw.loc = c.loc();
  c.check_keys({"namespace", "region", "endpoint", "interval"});
  c.read("namespace", cw.metric_namespace, cw.locs, read_metric_namespace);
  c.read("region", cw.region, cw.locs, read_region);
  c.read("endpoint", cw.endpoint, cw.locs, read_url);
  if (c.read("interval", cw.interval, cw.locs, &cursor::duration) &&
      cw.interval < std::chrono::seconds(1)) {
    c.context().diag.error(loc_of(cw.locs, "interval", cw.loc),
                           format_duration(cw.interval) +
                               " is too short: CloudWatch metrics are sent at most every second "
                               "(interval is at least 1s)");
  }
}

void read_alerts(const cursor& c, alerts_config& al) {
  al.loc = c.loc();
  c.check_keys({"webhooks", "sns", "cloudwatch"});
  read_alert_list(c, "webhooks", "webhooks", max_webhooks, al.webhooks, al.locs,
                  [](const cursor& item, webhook_config& w) {
                    item.check_keys({"url", "severity", "events", "timeout", "token_file"});
                    item.read("url", w.url, w.locs, read_url, true);
                    item.read("severity", w.min_severity, w.locs, read_severity);
                    item.read("events", w.events, w.locs, read_event_patterns);
                    item.read("timeout", w.timeout, w.locs, &cursor::duration);
                    item.read("token_file", w.token_file, w.locs, read_path);
                  });
  read_alert_list(c, "sns", "SNS topics", max_sns_topics, al.sns, al.locs, read_sns_topic);
  if (auto cw = section(c, "cloudwatch", al.locs)) read_cloudwatch(*cw, al.cloudwatch);
}

void read_cluster(const cursor& root, cluster_config& cfg) {
  cfg.loc = root.loc();
  if (root.is_null()) {
    root.error("the file is empty: expected the cluster: and nodes: sections at least");
    return;
  }
  if (!root.expect_map()) return;
  root.check_keys({"version", "cluster", "nodes", "heartbeat", "quorum", "groups", "monitors",
                   "mirrors", "alerts", "api"});
  root.read("version", cfg.version, cfg.locs, [](const cursor& x) -> std::optional<int> {
    auto v = x.integer(1, 1);
    if (!v) return std::nullopt;
    return static_cast<int>(*v);
  });
  if (auto c = section(root, "cluster", cfg.locs, true)) {
    c->check_keys({"name", "secret_file"});
    c->read("name", cfg.name, cfg.locs, read_name, true);
    c->read("secret_file", cfg.secret_file, cfg.locs, read_path, true);
  }
  if (auto nodes = root.require("nodes")) {
    cfg.locs.insert_or_assign("nodes", nodes->loc());
    if (nodes->expect_list()) {
      std::vector<cursor> items = nodes->elements();
      if (items.empty()) nodes->error("the cluster needs at least one node");
      if (items.size() > max_nodes) {
        nodes->error("has " + std::to_string(items.size()) + " nodes; at most " +
                     std::to_string(max_nodes) + " are supported");
        items.erase(items.begin() + static_cast<std::ptrdiff_t>(max_nodes), items.end());
      }
      for (size_t i = 0; i < items.size(); ++i)
        read_node(items[i], cfg.nodes.emplace_back(), i);
    }
  }
  if (auto hb = section(root, "heartbeat", cfg.locs)) read_heartbeat(*hb, cfg.heartbeat);
  if (auto q = section(root, "quorum", cfg.locs)) read_quorum(*q, cfg.quorum);
  if (auto g = root.get("groups")) {
    cfg.locs.insert_or_assign("groups", g->loc());
    read_groups(*g, cfg.groups);
  }
  if (auto m = root.get("monitors")) {
    cfg.locs.insert_or_assign("monitors", m->loc());
    read_monitors(*m, cfg.monitors);
  }
  if (auto m = root.get("mirrors")) {
    cfg.locs.insert_or_assign("mirrors", m->loc());
    read_mirrors(*m, cfg.mirrors);
  }
  if (auto a = section(root, "alerts", cfg.locs)) read_alerts(*a, cfg.alerts);
  if (auto a = section(root, "api", cfg.locs)) read_api(*a, cfg.api);
}

// ---- checks across sections -------------------------------------------------------------------

// A value that may come from a node's override: the value and where it was written.
template <class T>
struct sourced {
  T value;
  source_loc loc;
  bool overridden;
};

sourced<milliseconds> hb_interval(const cluster_config& cfg, const node_config& n) {
  if (n.overrides.heartbeat_interval) {
    return {*n.overrides.heartbeat_interval, loc_of(n.overrides.locs, "interval", n.overrides.loc),
            true};
  }
  return {cfg.heartbeat.interval, loc_of(cfg.heartbeat.locs, "interval", cfg.heartbeat.loc), false};
}

sourced<milliseconds> hb_timeout(const cluster_config& cfg, const node_config& n) {
  if (n.overrides.heartbeat_timeout) {
    return {*n.overrides.heartbeat_timeout, loc_of(n.overrides.locs, "timeout", n.overrides.loc),
            true};
  }
  return {cfg.heartbeat.timeout, loc_of(cfg.heartbeat.locs, "timeout", cfg.heartbeat.loc), false};
}

std::string interval_too_short(milliseconds v, std::string_view who) {
  return format_duration(v) + " is too short" + std::string(who) +
         ": the heartbeat interval is at least " + format_duration(min_heartbeat_interval);
}

std::string timeout_too_short(milliseconds v, std::string_view who) {
  return format_duration(v) + " is too short" + std::string(who) +
         ": the heartbeat timeout is at least " + format_duration(min_heartbeat_timeout);
}

std::string timeout_not_twice(milliseconds t, milliseconds i, std::string_view who) {
  return "the heartbeat timeout (" + format_duration(t) + ")" + std::string(who) +
         " must be more than twice the interval (" + format_duration(i) +
         "), or a single lost heartbeat would declare a node dead";
}

void check_nodes(cluster_config& cfg, diagnostics& diag) {
  std::map<std::string, const node_config*> names;
  std::map<int, const node_config*> priorities;
  std::map<std::pair<std::string, uint16_t>, std::string> endpoints;
  const node_config* first_with_links = nullptr;
  for (const node_config& n : cfg.nodes) {
    if (!n.name.empty()) {
      if (auto [it, fresh] = names.emplace(n.name, &n); !fresh) {
        diag.error(loc_of(n.locs, "name", n.loc), "node name " + in_quotes(n.name) +
                                                      " is used twice (first on line " +
                                                      std::to_string(it->second->loc.line) + ")");
      }
    }
    if (auto [it, fresh] = priorities.emplace(n.priority, &n); !fresh) {
      diag.error(loc_of(n.locs, "priority", n.loc),
                 "priority " + std::to_string(n.priority) + " is already node " +
                     in_quotes(it->second->name) + "'s; priorities must be unique" +
                     (n.locs.contains("priority") ? "" : " (unset priorities follow list order)"));
    }
    for (const interconnect& ic : n.interconnects) {
      if (ic.address.empty()) continue;
      const auto key = std::make_pair(canonical_ip(ic.address), ic.port);
      if (auto [it, fresh] = endpoints.emplace(key, n.name); !fresh) {
        diag.error(loc_of(ic.locs, "address", ic.loc),
                   ic.address + " port " + std::to_string(ic.port) +
                       " is already an interconnect of node " + in_quotes(it->second));
      }
    }
    if (n.interconnects.empty()) continue;
    if (first_with_links == nullptr) {
      first_with_links = &n;
      continue;
    }
    const node_config& f = *first_with_links;
    if (n.interconnects.size() != f.interconnects.size()) {
      diag.error(loc_of(n.locs, "interconnects", n.loc),
                 "node " + in_quotes(n.name) + " has " + std::to_string(n.interconnects.size()) +
                     " interconnects and node " + in_quotes(f.name) + " has " +
                     std::to_string(f.interconnects.size()) +
                     ": interconnects are matched by position (the n-th of every node form link "
                     "n), so every node lists the same number");
      continue;
    }
    for (size_t i = 0; i < n.interconnects.size(); ++i) {
      const std::string& a = n.interconnects[i].address;
      const std::string& b = f.interconnects[i].address;
      if (a.empty() || b.empty()) continue;
      if (is_ipv6_address(a) != is_ipv6_address(b)) {
        diag.error(loc_of(n.interconnects[i].locs, "address", n.interconnects[i].loc),
                   "link " + std::to_string(i) + " is " + (is_ipv6_address(a) ? "IPv6" : "IPv4") +
                       " here but " + (is_ipv6_address(b) ? "IPv6" : "IPv4") + " on node " +
                       in_quotes(f.name) + "; both ends of a link use the same address family");
      }
    }
  }
  if (cfg.nodes.size() == 1 && !cfg.nodes.front().name.empty()) {
    diag.warning(loc_of(cfg.locs, "nodes", cfg.loc),
                 "a cluster of one node cannot fail over; add another node");
  }

  // Heartbeat timing: cluster-wide once, then each node whose overrides change it, then every
  // node's timeout against its peers' intervals.
  const heartbeat_config& hb = cfg.heartbeat;
  if (hb.interval < min_heartbeat_interval)
    diag.error(loc_of(hb.locs, "interval", hb.loc), interval_too_short(hb.interval, ""));
  if (hb.timeout < min_heartbeat_timeout) {
    diag.error(loc_of(hb.locs, "timeout", hb.loc), timeout_too_short(hb.timeout, ""));
  } else if (hb.timeout <= 2 * hb.interval) {
    diag.error(loc_of(hb.locs, "timeout", hb.loc), timeout_not_twice(hb.timeout, hb.interval, ""));
  }
  for (const node_config& n : cfg.nodes) {
    const auto i = hb_interval(cfg, n);
    const auto t = hb_timeout(cfg, n);
    if (!i.overridden && !t.overridden) continue;
    const std::string who = " on node " + n.name;
    if (i.overridden && i.value < min_heartbeat_interval)
      diag.error(i.loc, interval_too_short(i.value, who));
    if (t.overridden && t.value < min_heartbeat_timeout) {
      diag.error(t.loc, timeout_too_short(t.value, who));
    } else if (t.value >= min_heartbeat_timeout && t.value <= 2 * i.value) {
      diag.error(t.overridden ? t.loc : i.loc, timeout_not_twice(t.value, i.value, who));
    }
  }
  for (const node_config& n : cfg.nodes) {
    const auto t = hb_timeout(cfg, n);
    const auto own = hb_interval(cfg, n);
    for (const node_config& peer : cfg.nodes) {
      if (&peer == &n) continue;
      const auto pi = hb_interval(cfg, peer);
      if (pi.value == own.value || t.value > 2 * pi.value) continue;
      diag.error(pi.overridden ? pi.loc : t.loc,
                 "node " + in_quotes(n.name) + " declares a peer dead after " +
                     format_duration(t.value) + " but node " + in_quotes(peer.name) +
                     " sends heartbeats every " + format_duration(pi.value) +
                     ": every node's timeout must be more than twice every node's interval");
    }
  }
}

void check_quorum(cluster_config& cfg, diagnostics& diag) {
  quorum_config& q = cfg.quorum;
  const source_loc mode_loc = loc_of(q.locs, "mode", q.loc);
  auto check_lease = [&](milliseconds lease, milliseconds renew, const field_locs& locs,
                         const source_loc& at, std::string_view what) {
    if (lease < milliseconds(1000)) {
      diag.error(loc_of(locs, "lease", at), format_duration(lease) + " is too short: a " +
                                                std::string(what) + " lease is at least 1s");
    }
    if (renew < milliseconds(100)) {
      diag.error(loc_of(locs, "renew", at),
                 format_duration(renew) + " is too short: at least 100ms");
    } else if (2 * renew >= lease) {
      diag.error(loc_of(locs, locs.contains("renew") ? "renew" : "lease", at),
                 "renew (" + format_duration(renew) + ") must be less than half the lease (" +
                     format_duration(lease) +
                     "), so a node renews at least twice before its lease can expire");
    }
  };
  if (q.stop_timeout < milliseconds(1000) || q.stop_timeout > milliseconds(600'000)) {
    diag.error(loc_of(q.locs, "stop_timeout", q.loc),
               format_duration(q.stop_timeout) +
                   " is out of range: 1s .. 10m (the slowest group stop plus one heartbeat "
                   "interval)");
  }
  if (q.locs.contains("tie_breaker") && q.mode != quorum_mode::majority) {
    diag.warning(loc_of(q.locs, "tie_breaker", q.loc),
                 "ignored: quorum.mode is " + std::string(to_string(q.mode)));
  }
  if (q.mode == quorum_mode::witness) {
    if (!q.locs.contains("witness")) {
      diag.error(mode_loc, "mode witness needs a quorum.witness section with the witness url");
    } else {
      check_lease(q.witness.lease, q.witness.renew, q.witness.locs, q.witness.loc, "witness");
    }
  } else if (q.locs.contains("witness")) {
    diag.warning(loc_of(q.locs, "witness", q.loc),
                 "ignored: quorum.mode is " + std::string(to_string(q.mode)));
  }
  if (q.mode == quorum_mode::etcd) {
    if (!q.locs.contains("etcd")) {
      diag.error(mode_loc, "mode etcd needs a quorum.etcd section with the endpoints");
    } else {
      etcd_config& e = q.etcd;
      check_lease(e.lease, e.renew, e.locs, e.loc, "etcd");
      if (e.lease.count() % 1000 != 0) {
        diag.error(loc_of(e.locs, "lease", e.loc),
                   format_duration(e.lease) +
                       " is not a whole number of seconds, which etcd "
                       "lease TTLs are");
      }
      if (e.locs.contains("endpoints") && e.endpoints.empty())
        diag.error(loc_of(e.locs, "endpoints", e.loc), "needs at least one etcd endpoint");
      if (e.cert_file.empty() != e.key_file.empty()) {
        diag.error(loc_of(e.locs, e.cert_file.empty() ? "key_file" : "cert_file", e.loc),
                   "cert_file and key_file go together (TLS client authentication)");
      }
      if (e.key.empty() && !cfg.name.empty()) e.key = "/tandem/" + cfg.name + "/quorum";
    }
  } else if (q.locs.contains("etcd")) {
    diag.warning(loc_of(q.locs, "etcd", q.loc),
                 "ignored: quorum.mode is " + std::string(to_string(q.mode)));
  }
  size_t named = 0;
  for (const node_config& n : cfg.nodes)
    if (!n.name.empty()) ++named;
  // A mode that did not parse was reported; its default says nothing about the user's intent.
  const bool mode_invalid = std::any_of(diag.all().begin(), diag.all().end(), [&](const auto& d) {
    return d.level == severity::error && d.where.path == mode_loc.path;
  });
  if (!mode_invalid && q.mode == quorum_mode::majority && named == 2) {
    diag.warning(mode_loc,
                 "with two nodes a majority is both nodes: losing either stops every "
                 "group; use mode witness or etcd");
  }
  if (!mode_invalid && q.mode == quorum_mode::none && named >= 2) {
    diag.warning(mode_loc,
                 "without quorum a network partition can start a group on both sides "
                 "(reported as split brain)");
  }
  // Fencing needs a command on every node that would run it.
  for (const node_config& n : cfg.nodes) {
    const loss_action a = n.overrides.on_loss_action.value_or(q.on_loss.action);
    const std::string& cmd =
        n.overrides.fence_command ? *n.overrides.fence_command : q.on_loss.fence_command;
    if (a != loss_action::fence || !cmd.empty()) continue;
    const source_loc at = n.overrides.on_loss_action
                              ? loc_of(n.overrides.locs, "action", n.overrides.loc)
                              : loc_of(q.on_loss.locs, "action", q.on_loss.loc);
    diag.error(at, "action fence needs a fence_command (for node " + in_quotes(n.name) + ")");
    if (!n.overrides.on_loss_action) break;  // one message for the cluster-wide setting
  }
}

void check_api(const cluster_config& cfg, diagnostics& diag) {
  if (cfg.api.http && cfg.api.token_file.empty()) {
    diag.error(loc_of(cfg.api.locs, "http", cfg.api.loc),
               "the HTTP API needs a token_file (clients send it as a bearer token)");
  }
  for (const node_config& n : cfg.nodes) {
    if ((n.overrides.api_http_address || n.overrides.api_http_port) && !cfg.api.http) {
      diag.warning(loc_of(n.overrides.locs, "http", n.overrides.loc),
                   "ignored: the HTTP API is off (no api.http section)");
    }
  }
}

void check_mirrors_against_nodes(const cluster_config& cfg, diagnostics& diag) {
  if (!cfg.mirrors.present) return;
  std::vector<std::string> names;
  for (const node_config& n : cfg.nodes)
    if (!n.name.empty()) names.push_back(n.name);
  check_mirrors(cfg.mirrors, diag, &names);
  for (const mirror_volume& v : cfg.mirrors.volumes) {
    for (const mirror_replica& r : v.replicas) {
      const node_config* n = cfg.find_node(r.node);
      if (n == nullptr || r.address.empty()) continue;
      for (const interconnect& ic : n->interconnects) {
        if (canonical_ip(ic.address) == canonical_ip(r.address) && ic.port == r.port) {
          diag.error(loc_of(r.locs, "port", r.loc),
                     r.address + " port " + std::to_string(r.port) + " is also node " +
                         in_quotes(n->name) +
                         "'s heartbeat interconnect; the replicator needs its own port");
        }
      }
    }
  }
}

void check_cluster(cluster_config& cfg, diagnostics& diag) {
  check_nodes(cfg, diag);
  check_quorum(cfg, diag);
  check_api(cfg, diag);
  check_mirrors_against_nodes(cfg, diag);
  check_groups_and_monitors(cfg, diag);
}

}  // namespace

cluster_load_result parse_cluster_text(std::string_view text, const std::string& file_name) {
  cluster_load_result r{{}, diagnostics(file_name)};
  r.config.file = file_name;
  std::optional<YAML::Node> doc = parse_yaml(text, r.diag);
  if (doc) {
    read_context ctx{r.diag};
    try {
      cursor root(ctx, *doc, "", source_loc{1, 1, ""});
      read_cluster(root, r.config);
      if (!root.is_null() && root.is_map()) check_cluster(r.config, r.diag);
    } catch (const too_complex&) {
      r.diag.file_error("the document is too complex (more than " +
                        std::to_string(max_visited_nodes) + " values, counting aliases)");
    }
  }
  r.diag.finish();
  return r;
}

cluster_load_result parse_cluster_file(const std::string& path) {
  diagnostics d(path);
  std::optional<std::string> text = read_config_file(path, d);
  if (!text) {
    d.finish();
    cluster_load_result r{{}, std::move(d)};
    r.config.file = path;
    return r;
  }
  return parse_cluster_text(*text, path);
}

cluster_config load_cluster_file(const std::string& path) {
  cluster_load_result r = parse_cluster_file(path);
  if (!r.ok()) throw config_error(r.diag);
  return std::move(r.config);
}

cluster_config effective_config(const cluster_config& cfg, std::string_view node) {
  const node_config* n = cfg.find_node(node);
  if (n == nullptr) {
    std::vector<std::string> names;
    for (const node_config& x : cfg.nodes)
      names.push_back(x.name);
    throw std::invalid_argument("no node named " + in_quotes(node) + " in " + cfg.file +
                                " (nodes: " + join_words(names, ", ") + ")" +
                                did_you_mean(node, names));
  }
  cluster_config e = cfg;
  e.effective_node = std::string(node);
  const node_overrides& o = n->overrides;
  if (o.heartbeat_interval) e.heartbeat.interval = *o.heartbeat_interval;
  if (o.heartbeat_timeout) e.heartbeat.timeout = *o.heartbeat_timeout;
  if (o.ping) e.quorum.resolution.ping = *o.ping;
  if (o.http) e.quorum.resolution.http = *o.http;
  if (o.resolution_timeout) e.quorum.resolution.timeout = *o.resolution_timeout;
  if (o.on_loss_action) e.quorum.on_loss.action = *o.on_loss_action;
  if (o.fence_command) e.quorum.on_loss.fence_command = *o.fence_command;
  if (o.api_http_address) e.api.http_address = *o.api_http_address;
  if (o.api_http_port) e.api.http_port = *o.api_http_port;
  for (group_config& g : e.groups) {
    for (resource_config& r : g.resources) {
      r.params = r.params_for(node);
      r.per_node.clear();
    }
  }
  for (monitor_config& m : e.monitors) {
    m.params = m.params_for(node);
    m.per_node.clear();
  }
  return e;
}

}  // namespace tandem::ctl::config
