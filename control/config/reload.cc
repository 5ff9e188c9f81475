// SPDX-License-Identifier: Apache-2.0
// The reload diff: a structural JSON diff keyed by names, classified by a table of key paths.
#include "control/config/reload.h"

#include <algorithm>
#include <set>

#include "control/config/config_json.h"

namespace tandem::ctl::config {

using json = nlohmann::ordered_json;

std::string_view to_string(change_kind k) noexcept {
  switch (k) {
    case change_kind::live:
      return "live";
    case change_kind::group_restart:
      return "group restart";
    case change_kind::daemon_restart:
      return "daemon restart";
  }
  return "?";
}

bool reload_plan::live_applicable() const noexcept {
  return std::none_of(changes.begin(), changes.end(),
                      [](const config_change& c) { return c.kind == change_kind::daemon_restart; });
}

std::vector<const config_change*> reload_plan::of_kind(change_kind k) const {
  std::vector<const config_change*> out;
  for (const config_change& c : changes)
    if (c.kind == k) out.push_back(&c);
  return out;
}

std::vector<std::string> reload_plan::groups_to_restart() const {
  std::vector<std::string> out;
  for (const config_change& c : changes) {
    if (c.kind != change_kind::group_restart || !c.path.starts_with("groups[")) continue;
    const size_t close = c.path.find(']');
    std::string g = c.path.substr(7, close - 7);
    if (std::find(out.begin(), out.end(), g) == out.end()) out.push_back(std::move(g));
  }
  return out;
}

namespace {

// A classification rule: a path pattern whose list keys are "*", matched as a prefix on whole
// segments. The first matching rule wins.
struct rule {
  std::string_view pattern;
  change_kind kind;
  change_kind kind_if_added;
  std::string_view reason;
};

constexpr change_kind live = change_kind::live;
constexpr change_kind group = change_kind::group_restart;
constexpr change_kind daemon = change_kind::daemon_restart;

constexpr rule rules[] = {
    {"version", daemon, daemon, "the file format version"},
    {"cluster", daemon, daemon,
     "the cluster name and secret identify the cluster to its peers; change "
     "them on every node and restart the cluster"},
    {"nodes[*].priority", live, live, "priorities only decide where groups start next"},
    {"nodes[*].overrides.heartbeat", live, live, "heartbeat timing is applied at once"},
    {"nodes[*].overrides.quorum", live, live,
     "partition resolution and loss actions are applied at once"},
    {"nodes[*].overrides.api", daemon, daemon, "the API listeners are opened at start-up"},
    {"nodes", daemon, daemon, "membership and interconnects change with a cluster restart"},
    {"heartbeat", live, live, "heartbeat timing is applied at once"},
    {"quorum.partition_resolution", live, live, "partition resolution targets are applied at once"},
    {"quorum.on_loss", live, live, "the loss action is applied at once"},
    {"quorum", daemon, daemon, "the quorum mechanism must not change under running groups"},
    {"groups[*].nodes", live, live, "placement applies to the next start or failover"},
    {"groups[*].failback", live, live, "the failback policy applies at once"},
    {"groups[*].autostart", live, live, "applies to the next cluster start"},
    {"groups[*].resources", group, group, "a group's resources change while the group is stopped"},
    {"groups[*]", group, live, "a removed group is stopped first"},
    {"monitors", live, live, "monitors are restarted with the new settings"},
    {"alerts", live, live, "alert targets are applied at once"},
    {"api", daemon, daemon, "the API listeners are opened at start-up"},
    {"mirrors.volumes[*].resync", live, live, "resync rates are applied at once"},
    {"mirrors.volumes[*]", daemon, live,
     "a volume's layout and replicas change with the volume "
     "detached: restart tandem-replicator"},
    {"mirrors", daemon, daemon,
     "the replication transport and control socket are set at start-up: "
     "restart tandem-replicator"},
};

// "groups[web].resources[db].params" -> "groups[*].resources[*].params"
std::string shape_of(std::string_view path) {
  std::string out;
  bool in_key = false;
  for (const char c : path) {
    if (c == '[') {
      in_key = true;
      out += "[*";
    } else if (c == ']') {
      in_key = false;
      out += ']';
    } else if (!in_key) {
      out += c;
    }
  }
  return out;
}

bool prefix_match(std::string_view shape, std::string_view pattern) {
  if (!shape.starts_with(pattern)) return false;
  if (shape.size() == pattern.size()) return true;
  const char next = shape[pattern.size()];
  return next == '.' || next == '[';
}

void classify(config_change& c, bool added) {
  const std::string shape = shape_of(c.path);
  for (const rule& r : rules) {
    if (!prefix_match(shape, r.pattern)) continue;
    c.kind = added ? r.kind_if_added : r.kind;
    c.reason = std::string(r.reason);
    return;
  }
  c.kind = change_kind::daemon_restart;
  c.reason = "not known to be applicable live";
}

std::string value_text(const json& j) {
  return j.is_string() ? j.get<std::string>() : j.dump();
}

// The key naming an entry of a list of objects ("name", or "node" for replicas), if any.
const char* list_key(const json& a, const json& b) {
  for (const char* k : {"name", "node"}) {
    auto named = [k](const json& arr) {
      return std::all_of(arr.begin(), arr.end(), [k](const json& e) {
        return e.is_object() && e.contains(k) && e[k].is_string();
      });
    };
    if (named(a) && named(b) && (!a.empty() || !b.empty())) return k;
  }
  return nullptr;
}

std::string join_path(const std::string& base, std::string_view key) {
  return base.empty() ? std::string(key) : base + "." + std::string(key);
}

void diff(const json* a, const json* b, const std::string& path, std::vector<config_change>& out);

void add_change(const json* a, const json* b, const std::string& path,
                std::vector<config_change>& out) {
  config_change c;
  c.path = path;
  if (a != nullptr) c.before = value_text(*a);
  if (b != nullptr) c.after = value_text(*b);
  classify(c, a == nullptr);
  out.push_back(std::move(c));
}

void diff(const json* a, const json* b, const std::string& path, std::vector<config_change>& out) {
  if (a == nullptr || b == nullptr) {
    // A map that appears or disappears is classified key by key (an override map added to a
    // node); a named list entry (a node, group, volume) is one change.
    const json* present = a != nullptr ? a : b;
    if (present->is_object() && !path.ends_with("]") && !present->empty()) {
      for (auto it = present->begin(); it != present->end(); ++it) {
        diff(a != nullptr ? &it.value() : nullptr, b != nullptr ? &it.value() : nullptr,
             join_path(path, it.key()), out);
      }
      return;
    }
    add_change(a, b, path, out);
    return;
  }
  if (*a == *b) return;
  if (a->is_object() && b->is_object()) {
    for (auto it = a->begin(); it != a->end(); ++it) {
      const json* other = b->contains(it.key()) ? &(*b)[it.key()] : nullptr;
      diff(&it.value(), other, join_path(path, it.key()), out);
    }
    for (auto it = b->begin(); it != b->end(); ++it)
      if (!a->contains(it.key())) diff(nullptr, &it.value(), join_path(path, it.key()), out);
    return;
  }
  if (a->is_array() && b->is_array()) {
    if (const char* key = list_key(*a, *b)) {
      auto find = [key](const json& arr, const std::string& name) -> const json* {
        for (const json& e : arr)
          if (e[key].get<std::string>() == name) return &e;
        return nullptr;
      };
      auto entry_path = [&path](const std::string& name) {
        std::string p = path;
        p.append("[").append(name).append("]");
        return p;
      };
      for (const json& e : *a) {
        const std::string name = e[key].get<std::string>();
        diff(&e, find(*b, name), entry_path(name), out);
      }
      for (const json& e : *b) {
        const std::string name = e[key].get<std::string>();
        if (find(*a, name) == nullptr) diff(nullptr, &e, entry_path(name), out);
      }
      return;
    }
    const bool objects =
        std::any_of(a->begin(), a->end(), [](const json& e) { return e.is_object(); }) ||
        std::any_of(b->begin(), b->end(), [](const json& e) { return e.is_object(); });
    if (objects) {
      const size_t n = std::max(a->size(), b->size());
      for (size_t i = 0; i < n; ++i) {
        diff(i < a->size() ? &(*a)[i] : nullptr, i < b->size() ? &(*b)[i] : nullptr,
             path + "[" + std::to_string(i) + "]", out);
      }
      return;
    }
  }
  add_change(a, b, path, out);  // scalars, lists of scalars, or a change of shape
}

}  // namespace

reload_plan diff_for_reload(const cluster_config& before, const cluster_config& after) {
  reload_plan plan;
  const json a = to_json(before);
  const json b = to_json(after);
  diff(&a, &b, "", plan.changes);
  return plan;
}

}  // namespace tandem::ctl::config
