// SPDX-License-Identifier: Apache-2.0
// Writing the configuration structs back out as JSON and YAML.
#include "control/config/config_json.h"

#include <algorithm>

#include <yaml-cpp/yaml.h>

#include "control/config/units.h"

namespace tandem::ctl::config {

using json = nlohmann::ordered_json;

namespace {

std::string dur(std::chrono::milliseconds d) {
  return format_duration(d);
}

void put_if(json& j, const char* key, const std::string& v) {
  if (!v.empty()) j[key] = v;
}

json strings(const std::vector<std::string>& v) {
  json a = json::array();
  for (const std::string& s : v)
    a.push_back(s);
  return a;
}

json params_json(const param_map& p) {
  json j = json::object();
  for (const auto& entry : p.values) {
    const std::string& k = entry.first;  // not a structured binding: clang 14 cannot capture one
    const param_value& v = entry.second;
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::chrono::milliseconds>) {
            j[k] = dur(x);
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            j[k] = strings(x);
          } else {
            j[k] = x;
          }
        },
        v);
  }
  return j;
}

json per_node_json(const std::map<std::string, param_map>& per_node) {
  json j = json::object();
  for (const auto& [node, p] : per_node)
    j[node] = params_json(p);
  return j;
}

json overrides_json(const node_overrides& o) {
  json j = json::object();
  if (o.heartbeat_interval) j["heartbeat"]["interval"] = dur(*o.heartbeat_interval);
  if (o.heartbeat_timeout) j["heartbeat"]["timeout"] = dur(*o.heartbeat_timeout);
  if (o.ping) j["quorum"]["partition_resolution"]["ping"] = strings(*o.ping);
  if (o.http) j["quorum"]["partition_resolution"]["http"] = strings(*o.http);
  if (o.resolution_timeout)
    j["quorum"]["partition_resolution"]["timeout"] = dur(*o.resolution_timeout);
  if (o.on_loss_action) j["quorum"]["on_loss"]["action"] = to_string(*o.on_loss_action);
  if (o.fence_command) j["quorum"]["on_loss"]["fence_command"] = *o.fence_command;
  if (o.api_http_address) j["api"]["http"]["address"] = *o.api_http_address;
  if (o.api_http_port) j["api"]["http"]["port"] = *o.api_http_port;
  return j;
}

json resource_json(const resource_config& r) {
  json j;
  j["name"] = r.name;
  j["type"] = to_string(r.type);
  j["depends_on"] = strings(r.depends_on);
  j["params"] = params_json(r.params);
  if (!r.per_node.empty()) j["per_node"] = per_node_json(r.per_node);
  j["activation"] = {{"timeout", dur(r.activation.timeout)},
                     {"retries", r.activation.retries},
                     {"failovers", r.activation.failovers},
                     {"final_action", to_string(r.activation.action)}};
  j["deactivation"] = {{"timeout", dur(r.deactivation.timeout)},
                       {"retries", r.deactivation.retries},
                       {"final_action", to_string(r.deactivation.action)}};
  return j;
}

json group_json(const group_config& g) {
  json j;
  j["name"] = g.name;
  j["nodes"] = strings(g.nodes);
  j["failback"] = to_string(g.failback);
  j["autostart"] = g.autostart;
  j["resources"] = json::array();
  for (const resource_config& r : g.resources)
    j["resources"].push_back(resource_json(r));
  return j;
}

json monitor_json(const monitor_config& m) {
  json j;
  j["name"] = m.name;
  j["type"] = to_string(m.type);
  if (!m.group.empty()) j["group"] = m.group;
  j["when"] = to_string(m.when);
  j["interval"] = dur(m.interval);
  j["timeout"] = dur(m.timeout);
  j["retries"] = m.retries;
  j["params"] = params_json(m.params);
  if (!m.per_node.empty()) j["per_node"] = per_node_json(m.per_node);
  json r;
  if (!m.recovery.resource.empty()) r["resource"] = m.recovery.resource;
  r["restarts"] = m.recovery.restarts;
  r["failovers"] = m.recovery.failovers;
  r["final_action"] = to_string(m.recovery.action);
  j["recovery"] = r;
  return j;
}

}  // namespace

json to_json(const mirrors_config& m) {
  json j;
  const mirror_transport& t = m.transport;
  json tj;
  tj["port"] = to_string(t.port);
  if (!t.eal_args.empty() || t.port == mirror_port::dpdk)
    tj["dpdk"] = {{"eal_args", strings(t.eal_args)}};
  put_if(tj, "key_file", t.key_file);
  tj["keepalive"] = dur(t.keepalive);
  tj["dead_peer"] = dur(t.dead_peer);
  tj["rate_limit"] = format_rate(t.rate_limit);
  tj["buffer"] = format_size(t.buffer);
  j["transport"] = tj;
  j["volumes"] = json::array();
  for (const mirror_volume& v : m.volumes) {
    json vj;
    vj["name"] = v.name;
    vj["data"] = v.data;
    vj["meta"] = v.meta;
    if (v.size != 0) vj["size"] = format_size(v.size);
    vj["block_size"] = v.block_size;
    vj["mode"] = to_string(v.mode);
    vj["bitmap_granularity"] = format_size(v.bitmap_granularity);
    vj["split_brain"] = v.split_brain;
    vj["compression"] = v.compression;
    vj["async"] = {{"queue", format_size(v.async_queue)}};
    put_if(vj["async"], "history", v.async_history);
    if (v.mode == mirror_mode::async)
      vj["async"]["history_size"] = format_size(v.async_history_size);
    vj["activity_log"] = {{"extent", format_size(v.al_extent)}, {"slots", v.al_slots}};
    if (v.lcore) vj["lcore"] = *v.lcore;
    vj["resync"] = {{"rate", format_rate(v.resync_rate)},
                    {"min_rate", format_rate(v.resync_min_rate)},
                    {"checksum", v.resync_checksum}};
    vj["replicas"] = json::array();
    for (const mirror_replica& r : v.replicas) {
      json rj;
      rj["node"] = r.node;
      rj["address"] = r.address;
      rj["port"] = r.port;
      put_if(rj, "history", r.history);
      put_if(rj, "data", r.data);
      put_if(rj, "meta", r.meta);
      put_if(rj, "dpdk_device", r.dpdk_device);
      if (t.port == mirror_port::dpdk) rj["mtu"] = r.mtu;
      vj["replicas"].push_back(rj);
    }
    j["volumes"].push_back(vj);
  }
  j["control_socket"] = m.control_socket;
  put_if(j, "fuse_mount", m.fuse_mount);
  if (m.kernel_devices) j["kernel_devices"] = true;
  j["lcores"] = m.lcores;
  if (!m.lcore_cpus.empty()) j["lcore_cpus"] = m.lcore_cpus;
  return j;
}

json to_json(const cluster_config& cfg) {
  json j;
  j["version"] = cfg.version;
  j["cluster"] = {{"name", cfg.name}, {"secret_file", cfg.secret_file}};
  j["nodes"] = json::array();
  for (const node_config& n : cfg.nodes) {
    json nj;
    nj["name"] = n.name;
    nj["priority"] = n.priority;
    nj["interconnects"] = json::array();
    for (const interconnect& ic : n.interconnects) {
      json ij;
      ij["address"] = ic.address;
      ij["port"] = ic.port;
      put_if(ij, "device", ic.device);
      nj["interconnects"].push_back(ij);
    }
    if (!n.overrides.empty()) nj["overrides"] = overrides_json(n.overrides);
    j["nodes"].push_back(nj);
  }
  j["heartbeat"] = {{"interval", dur(cfg.heartbeat.interval)},
                    {"timeout", dur(cfg.heartbeat.timeout)}};
  const quorum_config& q = cfg.quorum;
  json qj;
  qj["mode"] = to_string(q.mode);
  qj["tie_breaker"] = to_string(q.tie);
  qj["stop_timeout"] = dur(q.stop_timeout);
  if (q.mode == quorum_mode::witness || q.locs.contains("witness")) {
    qj["witness"] = {
        {"url", q.witness.url}, {"lease", dur(q.witness.lease)}, {"renew", dur(q.witness.renew)}};
    if (!q.witness.token_file.empty()) qj["witness"]["token_file"] = q.witness.token_file;
  }
  if (q.mode == quorum_mode::etcd || q.locs.contains("etcd")) {
    json ej;
    ej["endpoints"] = strings(q.etcd.endpoints);
    put_if(ej, "key", q.etcd.key);
    ej["lease"] = dur(q.etcd.lease);
    ej["renew"] = dur(q.etcd.renew);
    put_if(ej, "ca_file", q.etcd.ca_file);
    put_if(ej, "cert_file", q.etcd.cert_file);
    put_if(ej, "key_file", q.etcd.key_file);
    qj["etcd"] = ej;
  }
  qj["partition_resolution"] = {{"ping", strings(q.resolution.ping)},
                                {"http", strings(q.resolution.http)},
                                {"timeout", dur(q.resolution.timeout)}};
  json oj;
  oj["action"] = to_string(q.on_loss.action);
  put_if(oj, "fence_command", q.on_loss.fence_command);
  qj["on_loss"] = oj;
  j["quorum"] = qj;
  j["groups"] = json::array();
  for (const group_config& g : cfg.groups)
    j["groups"].push_back(group_json(g));
  j["monitors"] = json::array();
  for (const monitor_config& m : cfg.monitors)
    j["monitors"].push_back(monitor_json(m));
  if (cfg.mirrors.present) j["mirrors"] = to_json(cfg.mirrors);
  json hooks = json::array();
  for (const webhook_config& w : cfg.alerts.webhooks) {
    json wj;
    wj["url"] = w.url;
    wj["severity"] = to_string(w.min_severity);
    wj["events"] = strings(w.events);
    wj["timeout"] = dur(w.timeout);
    put_if(wj, "token_file", w.token_file);
    hooks.push_back(wj);
  }
  json topics = json::array();
  for (const sns_topic_config& t : cfg.alerts.sns) {
    json tj;
    tj["topic_arn"] = t.topic_arn;
    tj["region"] = t.region;
    put_if(tj, "endpoint", t.endpoint);
    tj["severity"] = to_string(t.min_severity);
    tj["events"] = strings(t.events);
    topics.push_back(tj);
  }
  j["alerts"] = {{"webhooks", hooks}, {"sns", topics}};
  if (cfg.alerts.cloudwatch.present) {
    const cloudwatch_config& cw = cfg.alerts.cloudwatch;
    json cj;
    cj["namespace"] = cw.metric_namespace;
    put_if(cj, "region", cw.region);
    put_if(cj, "endpoint", cw.endpoint);
    cj["interval"] = dur(cw.interval);
    j["alerts"]["cloudwatch"] = cj;
  }
  json aj;
  aj["socket"] = cfg.api.socket;
  if (cfg.api.http) {
    json hj;
    hj["address"] = cfg.api.http_address;
    hj["port"] = cfg.api.http_port;
    put_if(hj, "token_file", cfg.api.token_file);
    aj["http"] = hj;
  }
  j["api"] = aj;
  return j;
}

json to_json(const diagnostic& d) {
  json j;
  j["severity"] = to_string(d.level);
  j["file"] = d.file;
  j["line"] = d.where.line;
  j["column"] = d.where.column;
  j["path"] = d.where.path;
  j["message"] = d.message;
  j["text"] = d.to_string();
  return j;
}

namespace {

void emit(YAML::Emitter& out, const json& j) {
  if (j.is_object()) {
    if (j.empty()) {
      out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
      return;
    }
    out << YAML::BeginMap;
    for (auto it = j.begin(); it != j.end(); ++it) {
      out << YAML::Key << it.key() << YAML::Value;
      emit(out, it.value());
    }
    out << YAML::EndMap;
  } else if (j.is_array()) {
    const bool scalars =
        std::all_of(j.begin(), j.end(), [](const json& e) { return e.is_primitive(); });
    if (scalars) out << YAML::Flow;
    out << YAML::BeginSeq;
    for (const json& e : j)
      emit(out, e);
    out << YAML::EndSeq;
  } else if (j.is_string()) {
    const std::string s = j.get<std::string>();
    // Text a YAML reader would take for "no value" stays text.
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
      out << YAML::DoubleQuoted;
    out << s;
  } else if (j.is_boolean()) {
    out << (j.get<bool>() ? "true" : "false");
  } else if (j.is_number_integer()) {
    out << j.dump();
  } else if (j.is_null()) {
    out << YAML::Null;
  } else {
    out << j.dump();
  }
}

}  // namespace

std::string to_yaml(const json& j) {
  YAML::Emitter out;
  out.SetIndent(2);
  emit(out, j);
  std::string s = out.c_str();
  if (s.empty() || s.back() != '\n') s += '\n';
  return s;
}

}  // namespace tandem::ctl::config
