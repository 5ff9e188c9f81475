// SPDX-License-Identifier: Apache-2.0
// Reading and checking the `mirrors:` section, and the replicator's file loaders.
#include "control/config/mirrors_config.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <tuple>

#include "control/config/cluster_config.h"
#include "control/config/units.h"
#include "control/config/yaml_util.h"

namespace tandem::ctl::config {

std::string_view to_string(mirror_port p) noexcept {
  return p == mirror_port::dpdk ? "dpdk" : "socket";
}

std::string_view to_string(mirror_mode m) noexcept {
  return m == mirror_mode::async ? "async" : "sync";
}

const mirror_replica* mirror_volume::replica(std::string_view node) const noexcept {
  for (const mirror_replica& r : replicas)
    if (r.node == node) return &r;
  return nullptr;
}

const std::string& mirror_volume::data_on(std::string_view node) const noexcept {
  const mirror_replica* r = replica(node);
  return r != nullptr && !r->data.empty() ? r->data : data;
}

const std::string& mirror_volume::meta_on(std::string_view node) const noexcept {
  const mirror_replica* r = replica(node);
  return r != nullptr && !r->meta.empty() ? r->meta : meta;
}

const std::string& mirror_volume::history_on(std::string_view node) const noexcept {
  const mirror_replica* r = replica(node);
  return r != nullptr && !r->history.empty() ? r->history : async_history;
}

const mirror_volume* mirrors_config::find_volume(std::string_view name) const noexcept {
  for (const mirror_volume& v : volumes)
    if (v.name == name) return &v;
  return nullptr;
}

namespace {

constexpr size_t max_volumes = 256;
constexpr size_t max_replicas = 16;

bool is_volume_name(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

bool is_power_of_two(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

std::optional<std::string> read_volume_name(const cursor& c) {
  auto s = c.str();
  if (!s) return std::nullopt;
  if (!is_volume_name(*s)) {
    c.error(in_quotes(*s) + " is not a valid volume name: 1 to 32 of a-z, 0-9, '_' and '-'");
    return std::nullopt;
  }
  return s;
}

void read_transport(const cursor& c, mirror_transport& t) {
  t.loc = c.loc();
  if (!c.expect_map()) return;
  c.check_keys({"port", "dpdk", "key_file", "keepalive", "dead_peer", "rate_limit", "buffer"});
  std::string port;
  if (c.read("port", port, t.locs, [](const cursor& x) { return x.one_of({"socket", "dpdk"}); }))
    t.port = port == "dpdk" ? mirror_port::dpdk : mirror_port::socket;
  if (auto d = c.get("dpdk")) {
    t.locs.insert_or_assign("dpdk", d->loc());
    if (d->expect_map()) {
      d->check_keys({"eal_args"});
      d->read("eal_args", t.eal_args, t.locs, &cursor::str_list);
    }
  }
  c.read("key_file", t.key_file, t.locs, read_path);
  c.read("keepalive", t.keepalive, t.locs, &cursor::duration);
  c.read("dead_peer", t.dead_peer, t.locs, &cursor::duration);
  c.read("rate_limit", t.rate_limit, t.locs, &cursor::rate);
  c.read("buffer", t.buffer, t.locs, [](const cursor& x) -> std::optional<uint64_t> {
    auto s = x.size();
    if (!s) return std::nullopt;
    if (*s < (2u << 20) || *s > (1u << 30)) {
      x.error(format_size(*s) + " is outside 2MiB..1GiB (each ring holds whole messages of up " +
              "to 1MiB)");
      return std::nullopt;
    }
    return s;
  });
}

void read_replica(const cursor& c, mirror_replica& r) {
  r.loc = c.loc();
  if (!c.expect_map()) return;
  c.check_keys({"node", "address", "port", "data", "meta", "history", "dpdk_device", "mtu"});
  c.read("node", r.node, r.locs, read_name, true);
  c.read("address", r.address, r.locs, read_ip, true);
  c.read("port", r.port, r.locs, read_port);
  c.read("data", r.data, r.locs, read_path);
  c.read("history", r.history, r.locs, read_path);
  c.read("meta", r.meta, r.locs, read_path);
  c.read("dpdk_device", r.dpdk_device, r.locs, [](const cursor& x) -> std::optional<std::string> {
    auto s = x.str();
    if (!s) return std::nullopt;
    if (s->empty() || s->front() == ',' || s->find_first_of(" \t\n") != std::string::npos) {
      x.error(in_quotes(*s) +
              " is not a DPDK device: a vdev spec (net_memif0,role=server,socket=PATH) or a PCI "
              "address, without spaces");
      return std::nullopt;
    }
    return s;
  });
  c.read("mtu", r.mtu, r.locs, [](const cursor& x) -> std::optional<uint32_t> {
    auto s = x.integer(576, 9000);
    if (!s) return std::nullopt;
    return static_cast<uint32_t>(*s);
  });
}

void read_volume(const cursor& c, mirror_volume& v) {
  v.loc = c.loc();
  if (!c.expect_map()) return;
  c.check_keys({"name", "data", "meta", "size", "block_size", "mode", "bitmap_granularity",
                "activity_log", "resync", "split_brain", "compression", "async", "lcore",
                "replicas"});
  c.read("name", v.name, v.locs, read_volume_name, true);
  c.read("data", v.data, v.locs, read_path, true);
  c.read("meta", v.meta, v.locs, read_path, true);
  c.read("size", v.size, v.locs, &cursor::size);
  c.read("block_size", v.block_size, v.locs, [](const cursor& x) -> std::optional<uint32_t> {
    auto s = x.size();
    if (!s) return std::nullopt;
    if (*s != 512 && *s != 4096) {
      x.error(format_size(*s) + " is not a supported block size: 512 or 4096");
      return std::nullopt;
    }
    return static_cast<uint32_t>(*s);
  });
  c.read("compression", v.compression, v.locs, [](const cursor& x) {
    return x.one_of({"none", "igzip"});
  });
  c.read("split_brain", v.split_brain, v.locs, [](const cursor& x) {
    return x.one_of(
        {"disconnect", "discard-zero-changes", "discard-younger-primary", "discard-least-changes"});
  });
  std::string mode;
  if (c.read("mode", mode, v.locs, [](const cursor& x) { return x.one_of({"sync", "async"}); }))
    v.mode = mode == "async" ? mirror_mode::async : mirror_mode::sync;
  c.read("bitmap_granularity", v.bitmap_granularity, v.locs,
         [](const cursor& x) -> std::optional<uint64_t> {
           auto s = x.size();
           if (!s) return std::nullopt;
           if (!is_power_of_two(*s) || *s < (4u << 10) || *s > (16u << 20)) {
             x.error(in_quotes(x.node().Scalar()) +
                     " is not a power of two from 4KiB to 16MiB (e.g. 64KiB)");
             return std::nullopt;
           }
           return s;
         });
  if (auto al = c.get("activity_log")) {
    v.locs.insert_or_assign("activity_log", al->loc());
    if (al->expect_map()) {
      al->check_keys({"extent", "slots"});
      al->read("extent", v.al_extent, v.locs, [](const cursor& x) -> std::optional<uint64_t> {
        auto s = x.size();
        if (!s) return std::nullopt;
        if (!is_power_of_two(*s) || *s < (64u << 10) || *s > (1u << 30)) {
          x.error(in_quotes(x.node().Scalar()) +
                  " is not a power of two from 64KiB to 1GiB (e.g. 4MiB)");
          return std::nullopt;
        }
        return s;
      });
      al->read("slots", v.al_slots, v.locs, [](const cursor& x) -> std::optional<uint32_t> {
        auto n = x.integer(1, 1012);  // one 4 KiB activity-log record lists at most 1012
        if (!n) return std::nullopt;
        return static_cast<uint32_t>(*n);
      });
    }
  }
  if (auto rs = c.get("resync")) {
    v.locs.insert_or_assign("resync", rs->loc());
    if (rs->expect_map()) {
      rs->check_keys({"rate", "min_rate", "checksum"});
      rs->read("rate", v.resync_rate, v.locs, &cursor::rate);
      rs->read("min_rate", v.resync_min_rate, v.locs, &cursor::rate);
      rs->read("checksum", v.resync_checksum, v.locs, &cursor::boolean);
    }
  }
  if (auto aq = c.get("async")) {
    v.locs.insert_or_assign("async", aq->loc());
    if (aq->expect_map()) {
      aq->check_keys({"queue", "history", "history_size"});
      aq->read("history", v.async_history, v.locs, read_path);
      aq->read("history_size", v.async_history_size, v.locs,
               [](const cursor& x) -> std::optional<uint64_t> {
                 auto s = x.size();
                 if (!s) return std::nullopt;
                 if (*s < (2u << 20) || *s > (16ull << 40) || *s % 4096 != 0) {
                   x.error(format_size(*s) + " is outside 2MiB..16TiB or not a multiple of " +
                           "4KiB (the history holds whole writes of up to 1MiB, in 4KiB blocks)");
                   return std::nullopt;
                 }
                 return s;
               });
      aq->read("queue", v.async_queue, v.locs, [](const cursor& x) -> std::optional<uint64_t> {
        auto s = x.size();
        if (!s) return std::nullopt;
        if (*s < (2u << 20) || *s > (64ull << 30)) {
          x.error(format_size(*s) + " is outside 2MiB..64GiB (the queue holds whole writes of " +
                  "up to 1MiB)");
          return std::nullopt;
        }
        return s;
      });
    }
  }
  // The range against mirrors.lcores is checked in check_mirrors (the key may come later).
  c.read("lcore", v.lcore, v.locs, [](const cursor& x) -> std::optional<uint32_t> {
    auto n = x.integer(0, max_mirror_lcores - 1);
    if (!n) return std::nullopt;
    return static_cast<uint32_t>(*n);
  });
  if (auto reps = c.require("replicas")) {
    v.locs.insert_or_assign("replicas", reps->loc());
    if (reps->expect_list()) {
      std::vector<cursor> items = reps->elements();
      if (items.size() > max_replicas) {
        reps->error("has " + std::to_string(items.size()) + " replicas; at most " +
                    std::to_string(max_replicas) + " are supported");
        items.erase(items.begin() + static_cast<std::ptrdiff_t>(max_replicas), items.end());
      }
      for (const cursor& item : items)
        read_replica(item, v.replicas.emplace_back());
    }
  }
}

// Keys that only a cluster file has at its top level.
const std::vector<std::string>& cluster_only_keys() {
  static const std::vector<std::string> keys = {"cluster", "nodes",    "heartbeat", "quorum",
                                                "groups",  "monitors", "alerts",    "api"};
  return keys;
}

}  // namespace

void read_mirrors(const cursor& c, mirrors_config& out) {
  out.present = true;
  out.loc = c.loc();
  if (!c.expect_map()) return;
  c.check_keys({"transport", "volumes", "control_socket", "fuse_mount", "kernel_devices", "lcores",
                "lcore_cpus"});
  if (auto t = c.get("transport")) {
    out.locs.insert_or_assign("transport", t->loc());
    read_transport(*t, out.transport);
  } else {
    out.transport.loc = loc_of(out.locs, "transport", out.loc);
  }
  c.read("control_socket", out.control_socket, out.locs, read_path);
  c.read("fuse_mount", out.fuse_mount, out.locs, read_path);
  c.read("kernel_devices", out.kernel_devices, out.locs, &cursor::boolean);
  c.read("lcores", out.lcores, out.locs, [](const cursor& x) -> std::optional<uint32_t> {
    auto n = x.integer(1, max_mirror_lcores);
    if (!n) return std::nullopt;
    return static_cast<uint32_t>(*n);
  });
  if (auto cpus = c.get("lcore_cpus")) {
    out.locs.insert_or_assign("lcore_cpus", cpus->loc());
    if (cpus->expect_list()) {
      const std::vector<cursor> items = cpus->elements();
      if (items.empty()) cpus->error("lists no CPU: leave the key out to run the lcores unpinned");
      for (const cursor& item : items) {
        if (auto n = item.integer(0, max_mirror_cpu)) out.lcore_cpus.push_back(uint32_t(*n));
      }
    }
  }
  if (auto vols = c.get("volumes")) {
    out.locs.insert_or_assign("volumes", vols->loc());
    if (vols->expect_list()) {
      std::vector<cursor> items = vols->elements();
      if (items.size() > max_volumes) {
        vols->error("has " + std::to_string(items.size()) + " volumes; at most " +
                    std::to_string(max_volumes) + " are supported");
        items.erase(items.begin() + static_cast<std::ptrdiff_t>(max_volumes), items.end());
      }
      for (const cursor& item : items)
        read_volume(item, out.volumes.emplace_back());
    }
  }
}

void check_mirrors(const mirrors_config& m, diagnostics& diag,
                   const std::vector<std::string>* node_names) {
  const mirror_transport& t = m.transport;
  if (t.keepalive < std::chrono::milliseconds(10)) {
    diag.error(loc_of(t.locs, "keepalive", t.loc),
               format_duration(t.keepalive) + " is too short: at least 10ms");
  }
  if (t.dead_peer <= 2 * t.keepalive) {
    diag.error(loc_of(t.locs, "dead_peer", t.loc),
               format_duration(t.dead_peer) + " must be more than twice keepalive (" +
                   format_duration(t.keepalive) + "), or one lost keepalive drops the link");
  }
  if (t.port == mirror_port::socket && t.locs.contains("dpdk"))
    diag.warning(loc_of(t.locs, "dpdk", t.loc), "ignored: transport.port is socket");
  if (m.lcore_cpus.size() > m.lcores) {
    diag.warning(loc_of(m.locs, "lcore_cpus", m.loc),
                 "lists " + std::to_string(m.lcore_cpus.size()) + " CPUs for " +
                     std::to_string(m.lcores) + " lcore" + (m.lcores == 1 ? "" : "s") +
                     " (mirrors.lcores): only the first " + std::to_string(m.lcores) + " are used");
  }

  std::map<std::string, const mirror_volume*> names;
  // (node, path) -> (volume, description), for data and meta paths used twice on one node.
  std::map<std::pair<std::string, std::string>, std::pair<const mirror_volume*, std::string>> paths;
  // (address, port) -> "node in volume" for replica endpoints used twice.
  std::map<std::pair<std::string, uint16_t>, std::string> endpoints;
  // (node, ethdev name) -> "volume v" for DPDK devices used twice on one node.
  std::map<std::pair<std::string, std::string>, std::string> devices;
  for (const mirror_volume& v : m.volumes) {
    const source_loc& vl = v.loc;
    if (!v.name.empty()) {
      if (auto [it, fresh] = names.emplace(v.name, &v); !fresh) {
        diag.error(loc_of(v.locs, "name", vl), "volume name " + in_quotes(v.name) +
                                                   " is used twice (first on line " +
                                                   std::to_string(it->second->loc.line) + ")");
      }
    }
    if (!v.data.empty() && v.data == v.meta) {
      diag.error(loc_of(v.locs, "meta", vl),
                 "the metadata must not be the data device itself (" + v.data + ")");
    }
    if (v.size != 0 && v.size % v.block_size != 0) {
      diag.error(loc_of(v.locs, "size", vl), format_size(v.size) +
                                                 " is not a multiple of the block size (" +
                                                 std::to_string(v.block_size) + ")");
    }
    if (v.al_extent < v.bitmap_granularity) {
      diag.error(loc_of(v.locs, v.locs.contains("extent") ? "extent" : "bitmap_granularity", vl),
                 "the activity log extent (" + format_size(v.al_extent) +
                     ") must be at least the bitmap granularity (" +
                     format_size(v.bitmap_granularity) + ")");
    }
    if (v.resync_rate != 0 && v.resync_min_rate > v.resync_rate) {
      diag.error(loc_of(v.locs, v.locs.contains("min_rate") ? "min_rate" : "rate", vl),
                 "min_rate (" + format_rate(v.resync_min_rate) + ") exceeds rate (" +
                     format_rate(v.resync_rate) + ")");
    }
    if (v.lcore && *v.lcore >= m.lcores) {
      diag.error(loc_of(v.locs, "lcore", vl),
                 "volume " + in_quotes(v.name) + " is placed on lcore " + std::to_string(*v.lcore) +
                     ", but mirrors.lcores is " + std::to_string(m.lcores) +
                     (m.lcores == 1 ? std::string(" (only lcore 0)")
                                    : " (lcores 0 to " + std::to_string(m.lcores - 1) + ")"));
    }
    if (v.mode != mirror_mode::async) {
      // A history file serves only an async primary's queue: a sync volume naming one is a
      // mistake worth saying (the mode, or the history, is not what the operator thinks).
      if (!v.async_history.empty()) {
        diag.error(loc_of(v.locs, "history", vl),
                   "a history file is for mode: async (volume " + in_quotes(v.name) + " is sync)");
      }
      for (const mirror_replica& r : v.replicas) {
        if (!r.history.empty()) {
          diag.error(
              loc_of(r.locs, "history", r.loc),
              "a history file is for mode: async (volume " + in_quotes(v.name) + " is sync)");
        }
      }
    }
    if (v.locs.contains("replicas") && v.replicas.size() < 2) {
      diag.error(loc_of(v.locs, "replicas", vl),
                 "a mirrored volume needs at least 2 replicas, found " +
                     std::to_string(v.replicas.size()));
    }
    std::set<std::string> seen_nodes;
    for (const mirror_replica& r : v.replicas) {
      if (r.node.empty()) continue;
      if (!seen_nodes.insert(r.node).second) {
        diag.error(loc_of(r.locs, "node", r.loc),
                   "node " + in_quotes(r.node) + " holds volume " + in_quotes(v.name) + " twice");
        continue;
      }
      if (node_names != nullptr &&
          std::find(node_names->begin(), node_names->end(), r.node) == node_names->end()) {
        diag.error(loc_of(r.locs, "node", r.loc),
                   "unknown node " + in_quotes(r.node) + did_you_mean(r.node, *node_names));
      }
      if (t.port == mirror_port::dpdk && !r.locs.contains("dpdk_device")) {
        diag.error(r.loc, "node " + in_quotes(r.node) + " of volume " + in_quotes(v.name) +
                              " needs a dpdk_device: transport.port is dpdk");
      } else if (t.port == mirror_port::socket) {
        for (const char* key : {"dpdk_device", "mtu"}) {
          if (r.locs.contains(key)) {
            diag.warning(loc_of(r.locs, key, r.loc), "ignored: transport.port is socket");
          }
        }
      }
      if (!r.dpdk_device.empty()) {
        const std::string dev = r.dpdk_device.substr(0, r.dpdk_device.find(','));
        if (dev.rfind("net_memif", 0) == 0) {
          // DPDK 22.11's memif receiver mishandles frames chained over several descriptors.
          uint64_t bsize = 2048;
          if (const size_t at = r.dpdk_device.find(",bsize="); at != std::string::npos) {
            bsize = std::strtoull(r.dpdk_device.c_str() + at + 7, nullptr, 10);
          }
          if (r.mtu + 14 > bsize) {
            diag.error(loc_of(r.locs, "mtu", r.loc),
                       "mtu " + std::to_string(r.mtu) + " needs memif buffers of at least " +
                           std::to_string(r.mtu + 14) + " bytes (this device's bsize is " +
                           std::to_string(bsize) +
                           "): add ,bsize=" + std::to_string((r.mtu + 14 + 1023) / 1024 * 1024) +
                           " to dpdk_device on both nodes, or lower the mtu");
          }
        }
        const std::string who = "volume " + v.name;
        if (auto [it, fresh] = devices.emplace(std::make_pair(r.node, dev), who); !fresh) {
          diag.error(loc_of(r.locs, "dpdk_device", r.loc),
                     "device " + dev + " on node " + r.node + " is already used by " + it->second +
                         "; every volume needs its own DPDK device");
        }
      }
      if (!r.address.empty()) {
        const auto key = std::make_pair(canonical_ip(r.address), r.port);
        const std::string who =
            "node " + r.node + " of " + (v.name.empty() ? v.loc.path : "volume " + v.name);
        if (auto [it, fresh] = endpoints.emplace(key, who); !fresh) {
          diag.error(loc_of(r.locs, "port", r.loc),
                     r.address + " port " + std::to_string(r.port) + " is already used by " +
                         it->second + "; every replica needs its own address and port");
        }
      }
      for (const auto& [what, path] :
           {std::pair<std::string_view, std::string>{"data", v.data_on(r.node)},
            {"meta", v.meta_on(r.node)},
            {"history", v.history_on(r.node)}}) {
        if (path.empty()) continue;
        const std::string user = "volume " + v.name + " (" + std::string(what) + ")";
        if (auto [it, fresh] =
                paths.emplace(std::make_pair(r.node, path), std::make_pair(&v, user));
            !fresh && (it->second.first != &v || it->second.second != user)) {
          diag.error(
              r.locs.contains(what) ? r.locs.at(std::string(what)) : loc_of(v.locs, what, vl),
              path + " on node " + r.node + " is already used by " + it->second.second);
        }
      }
    }
  }
}

// ---- loaders ----------------------------------------------------------------------------------

mirrors_load_result parse_mirrors_text(std::string_view text, const std::string& file_name) {
  mirrors_load_result out{{}, diagnostics(file_name)};
  std::optional<YAML::Node> doc = parse_yaml(text, out.diag);
  if (!doc) {
    out.diag.finish();
    return out;
  }
  bool is_cluster = false;
  if (doc->IsMap()) {
    for (auto it = doc->begin(); it != doc->end(); ++it) {
      if (it->first.IsScalar()) {
        const auto& keys = cluster_only_keys();
        if (std::find(keys.begin(), keys.end(), it->first.Scalar()) != keys.end())
          is_cluster = true;
      }
    }
  }
  if (is_cluster) {
    cluster_load_result c = parse_cluster_text(text, file_name);
    out.config = std::move(c.config.mirrors);
    out.diag = std::move(c.diag);
    if (out.diag.ok() && !out.config.present) {
      out.diag.file_error("the cluster file has no mirrors: section");
      out.diag.finish();
    }
    return out;
  }
  read_context ctx{out.diag};
  try {
    cursor root(ctx, *doc, "", source_loc{1, 1, ""});
    if (root.is_null()) {
      out.diag.file_error("the file is empty: expected a mirrors: section");
    } else if (root.expect_map()) {
      root.check_keys({"version", "mirrors"});
      if (auto v = root.get("version")) (void)v->integer(1, 1);
      if (auto mc = root.require("mirrors")) {
        read_mirrors(*mc, out.config);
        check_mirrors(out.config, out.diag, nullptr);
      }
    }
  } catch (const too_complex&) {
    out.diag.file_error("the document is too complex (more than " +
                        std::to_string(max_visited_nodes) + " values, counting aliases)");
  }
  out.diag.finish();
  return out;
}

mirrors_load_result parse_mirrors_file(const std::string& path) {
  diagnostics d(path);
  std::optional<std::string> text = read_config_file(path, d);
  if (!text) {
    d.finish();
    return {{}, std::move(d)};
  }
  return parse_mirrors_text(*text, path);
}

mirrors_config load_mirrors_file(const std::string& path) {
  mirrors_load_result r = parse_mirrors_file(path);
  if (!r.ok()) throw config_error(r.diag);
  return std::move(r.config);
}

}  // namespace tandem::ctl::config
