// SPDX-License-Identifier: Apache-2.0
// Membership: heartbeat admission, per-link and per-node failure detection, the merged view.
#include "control/cluster/membership.h"

#include <time.h>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <utility>

namespace tandem::ctl::cluster {
namespace {

using std::chrono::nanoseconds;

uint64_t ns_of(std::chrono::steady_clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count());
}

std::string ms(nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

std::string hex(uint64_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 60; shift >= 0; shift -= 4)
    s.push_back(digits[(v >> shift) & 0xf]);
  return s;
}

[[noreturn]] void config_error(const std::string& what) {
  throw std::invalid_argument("heartbeat configuration: " + what);
}

constexpr const char* unproven_hint =
    "; heartbeats of a new run of it arrive but do not acknowledge this node, so it does not "
    "hear this node (one-way interconnects?)";

bool has(uint16_t mask, size_t bit) {
  return ((mask >> bit) & 1) != 0;
}

}  // namespace

std::string_view to_string(receive_result r) noexcept {
  switch (r) {
    case receive_result::accepted:
      return "accepted";
    case receive_result::pending:
      return "pending";
    case receive_result::dropped_auth:
      return "dropped (authentication)";
    case receive_result::dropped_replay:
      return "dropped (replay)";
    case receive_result::dropped_malformed:
      return "dropped (malformed)";
    case receive_result::dropped_foreign:
      return "dropped (foreign)";
  }
  return "?";
}

std::string_view to_string(link_state s) noexcept {
  switch (s) {
    case link_state::unknown:
      return "unknown";
    case link_state::up:
      return "up";
    case link_state::down:
      return "down";
  }
  return "?";
}

uint64_t new_incarnation(uint64_t previous) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  const uint64_t now =
      static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
  return std::max(now, previous + 1);
}

membership::membership(membership_config cfg, heartbeat_codec codec, uint64_t incarnation,
                       time_point now, event_sink sink)
    : cfg_(std::move(cfg)),
      codec_(std::move(codec)),
      incarnation_(incarnation),
      sink_(std::move(sink)) {
  if (incarnation_ == 0) config_error("the incarnation must not be zero");
  if (cfg_.link_names.empty() || cfg_.link_names.size() > max_links) {
    config_error(std::to_string(cfg_.link_names.size()) + " interconnects: expected 1 to " +
                 std::to_string(max_links));
  }
  link_mask_ = static_cast<uint16_t>((uint32_t{1} << cfg_.link_names.size()) - 1);
  if (cfg_.interval <= nanoseconds::zero()) config_error("the interval must be positive");
  if (cfg_.timeout < 2 * cfg_.interval) {
    config_error("timeout " + ms(cfg_.timeout) + " is less than twice the interval " +
                 ms(cfg_.interval));
  }
  if (cfg_.delay_warning_percent > 100) config_error("delay_warning_percent above 100");
  std::set<std::string> names;
  const node_config* self = nullptr;
  for (const node_config& n : cfg_.nodes) {
    if (n.id >= max_nodes) {
      config_error("node '" + n.name + "' has id " + std::to_string(n.id) + ": ids go up to " +
                   std::to_string(max_nodes - 1));
    }
    if (n.name.empty()) config_error("node id " + std::to_string(n.id) + " has no name");
    if (nodes_[n.id].configured) config_error("node id " + std::to_string(n.id) + " used twice");
    if (!names.insert(n.name).second) config_error("node name '" + n.name + "' used twice");
    peer& p = nodes_[n.id];
    p.configured = true;
    p.name = n.name;
    p.name_hash = node_name_hash(n.name);
    p.since = now;
    if (n.id == cfg_.self) self = &n;
  }
  if (self == nullptr)
    config_error("this node's id " + std::to_string(cfg_.self) + " is not listed");
  const uint16_t self_links = self->links & link_mask_;
  if (self_links == 0) config_error("this node '" + self->name + "' is on no interconnect");
  for (const node_config& n : cfg_.nodes) {
    peer& p = nodes_[n.id];
    p.shared = static_cast<uint16_t>(n.links & self_links);
    if (n.id != cfg_.self && p.shared == 0) {
      config_error("node '" + n.name + "' shares no interconnect with this node '" + self->name +
                   "'");
    }
    for (link_rt& l : p.links)
      l.since = now;
  }
}

std::string membership::node_label(uint8_t id) const {
  if (id < max_nodes && nodes_[id].configured) return "node " + nodes_[id].name;
  return "node id " + std::to_string(id);
}

std::optional<nanoseconds> membership::delay_threshold() const {
  if (cfg_.delay_warning_percent >= 100) return std::nullopt;
  return cfg_.timeout * cfg_.delay_warning_percent / 100;
}

void membership::emit(uint32_t id, severity level, std::string message, time_point now,
                      std::optional<uint8_t> node, std::optional<uint8_t> link) const {
  if (!sink_) return;
  sink_(event{id, level, heartbeat_module, std::move(message), now, node, link});
}

void membership::emit_limited(uint32_t id, severity level, std::string message, time_point now,
                              std::optional<uint8_t> node, uint8_t link) {
  const uint32_t key = id << 16 | uint32_t{link} << 8 | node.value_or(0xff);
  const auto it = reject_events_.find(key);
  if (it != reject_events_.end() && now - it->second < cfg_.reject_event_interval) return;
  reject_events_[key] = now;
  emit(id, level, std::move(message), now, node, link);
}

void membership::set_local_status(const local_status& s) {
  if (s.groups.size() > max_groups) {
    throw std::invalid_argument("heartbeat: " + std::to_string(s.groups.size()) +
                                " groups, at most " + std::to_string(max_groups));
  }
  local_status copy = s;
  std::sort(copy.groups.begin(), copy.groups.end(),
            [](const group_report& a, const group_report& b) { return a.group < b.group; });
  for (size_t i = 1; i < copy.groups.size(); ++i) {
    if (copy.groups[i].group == copy.groups[i - 1].group) {
      throw std::invalid_argument("heartbeat: group id " + std::to_string(copy.groups[i].group) +
                                  " listed twice");
    }
  }
  local_ = std::move(copy);
}

node_status membership::own_status() const {
  node_status s;
  s.state = local_.state;
  s.quorum = local_.quorum;
  s.config_digest = local_.config_digest;
  for (size_t id = 0; id < max_nodes; ++id) {
    const peer& p = nodes_[id];
    if (!p.configured) continue;
    node_report& r = s.nodes[s.node_count++];
    r.node = static_cast<uint8_t>(id);
    if (id == cfg_.self) {
      r.state = peer_state::up;
      r.links = p.shared;
      continue;
    }
    r.state = p.state;
    for (size_t l = 0; l < max_links; ++l)
      if (p.links[l].state == link_state::up) r.links |= static_cast<uint16_t>(1u << l);
  }
  for (const group_report& g : local_.groups)
    s.groups[s.group_count++] = g;
  return s;
}

heartbeat membership::make_heartbeat(uint8_t dest, uint8_t link, time_point now) const {
  if (dest >= max_nodes || !nodes_[dest].configured || dest == cfg_.self) {
    throw std::invalid_argument("heartbeat: no peer with id " + std::to_string(dest));
  }
  const peer& d = nodes_[dest];
  if (link >= max_links || !has(d.shared, link)) {
    throw std::invalid_argument("heartbeat: " + node_label(dest) + " is not on interconnect " +
                                std::to_string(link));
  }
  heartbeat hb;
  hb.incarnation = incarnation_;
  hb.seq = seq_;
  hb.sender_time_ns = ns_of(now);
  hb.sender_name_hash = nodes_[cfg_.self].name_hash;
  hb.sender = cfg_.self;
  hb.dest = dest;
  hb.link = link;
  if (!d.guard.empty()) {
    hb.flags |= flag_echo;
    hb.echo_incarnation = d.guard.incarnation();
    const link_rt& l = d.links[link];
    if (l.have_echo) {
      hb.echo_time_ns = l.echo_ts;
      hb.echo_hold_ns =
          static_cast<uint64_t>(std::max(nanoseconds::zero(), now - l.echo_rx).count());
    }
  }
  hb.status = own_status();
  return hb;
}

int membership::build(uint8_t dest, uint8_t link, time_point now, std::span<uint8_t> out) const {
  return codec_.encode(make_heartbeat(dest, link, now), out);
}

receive_result membership::count(receive_result why, heartbeat_counters* node, uint8_t link) {
  for (heartbeat_counters* c : {node ? node : &unattributed_, &link_counters_[link]}) {
    switch (why) {
      case receive_result::accepted:
        ++c->accepted;
        break;
      case receive_result::pending:
        ++c->pending;
        break;
      case receive_result::dropped_auth:
        ++c->dropped_auth;
        break;
      case receive_result::dropped_replay:
        ++c->dropped_replay;
        break;
      case receive_result::dropped_malformed:
        ++c->dropped_malformed;
        break;
      case receive_result::dropped_foreign:
        ++c->dropped_foreign;
        break;
    }
  }
  return why;
}

receive_result membership::receive(std::span<const uint8_t> datagram, uint8_t link, time_point now,
                                   std::string_view from_addr) {
  if (link >= cfg_.link_names.size()) {
    throw std::invalid_argument("heartbeat: datagram on unconfigured interconnect " +
                                std::to_string(link));
  }
  const std::string& lname = cfg_.link_names[link];
  const std::string from = from_addr.empty() ? std::string() : " from " + std::string(from_addr);
  const std::string where = " on interconnect " + lname + from;
  heartbeat hb;
  const decode_result r = codec_.decode(datagram, hb);
  // For the results that fill the header: the claimed sender, if it is one of ours.
  const bool claims_peer = hb.sender < max_nodes && nodes_[hb.sender].configured;
  switch (r) {
    case decode_result::ok:
      break;
    case decode_result::too_short:
    case decode_result::bad_magic:
    case decode_result::bad_length:
      emit_limited(heartbeat_events::rejected_malformed, severity::warning,
                   "invalid heartbeat" + where + " (" + std::string(to_string(r)) + ", " +
                       std::to_string(datagram.size()) + " bytes) dropped",
                   now, std::nullopt, link);
      return count(receive_result::dropped_malformed, nullptr, link);
    case decode_result::bad_version:
      emit_limited(heartbeat_events::rejected_version, severity::error,
                   "heartbeat" + where + " speaks protocol version " +
                       std::to_string(datagram[offsetof(wire::header, version)]) +
                       ", this node version " + std::to_string(heartbeat_version) +
                       ": sender not admitted",
                   now, std::nullopt, link);
      return count(receive_result::dropped_malformed, nullptr, link);
    case decode_result::wrong_cluster:
      emit_limited(heartbeat_events::rejected_cluster, severity::warning,
                   "heartbeat" + where + " belongs to another cluster (id " + hex(hb.cluster_id) +
                       ", this cluster " + hex(codec_.cluster_id()) + "): sender not admitted",
                   now, std::nullopt, link);
      return count(receive_result::dropped_foreign, nullptr, link);
    case decode_result::bad_mac:
      emit_limited(heartbeat_events::rejected_auth, severity::error,
                   "heartbeat claiming to be from " + node_label(hb.sender) + where +
                       " failed authentication (wrong cluster secret, or altered in transit): "
                       "not admitted",
                   now, claims_peer ? std::optional<uint8_t>(hb.sender) : std::nullopt, link);
      return count(receive_result::dropped_auth,
                   claims_peer ? &nodes_[hb.sender].counters : nullptr, link);
    case decode_result::malformed:
      emit_limited(heartbeat_events::rejected_malformed, severity::warning,
                   "malformed heartbeat from " + node_label(hb.sender) + where + " dropped", now,
                   claims_peer ? std::optional<uint8_t>(hb.sender) : std::nullopt, link);
      return count(receive_result::dropped_malformed,
                   claims_peer ? &nodes_[hb.sender].counters : nullptr, link);
  }

  const uint8_t id = hb.sender;
  if (!claims_peer) {
    emit_limited(heartbeat_events::rejected_node, severity::error,
                 "heartbeat" + where + " from node id " + std::to_string(id) +
                     ", which is not in this node's configuration: not admitted",
                 now, std::nullopt, link);
    return count(receive_result::dropped_foreign, nullptr, link);
  }
  peer& p = nodes_[id];
  if (p.name_hash != hb.sender_name_hash) {
    emit_limited(heartbeat_events::rejected_node, severity::error,
                 "heartbeat" + where + " from node id " + std::to_string(id) +
                     " under another name than '" + p.name +
                     "' (the nodes' configurations differ): not admitted",
                 now, id, link);
    return count(receive_result::dropped_foreign, &p.counters, link);
  }
  if (id == cfg_.self) {
    if (hb.incarnation == incarnation_) {
      emit_limited(heartbeat_events::rejected_misdirected, severity::warning,
                   "this node's own heartbeat came back" + where, now, id, link);
    } else {
      emit_limited(heartbeat_events::rejected_node, severity::error,
                   "another node" + where + " runs with this node's id " + std::to_string(id) +
                       " and name '" + p.name + "': not admitted",
                   now, id, link);
    }
    return count(receive_result::dropped_foreign, &p.counters, link);
  }
  if (hb.dest != cfg_.self) {
    emit_limited(heartbeat_events::rejected_misdirected, severity::warning,
                 "heartbeat from " + node_label(id) + where + " is addressed to " +
                     node_label(hb.dest) + ": dropped (check the interconnect addresses)",
                 now, id, link);
    return count(receive_result::dropped_foreign, &p.counters, link);
  }
  if (hb.link != link || !has(p.shared, link)) {
    emit_limited(heartbeat_events::rejected_misdirected, severity::warning,
                 "heartbeat from " + node_label(id) + where + " was sent on interconnect " +
                     std::to_string(hb.link) + ": dropped (check the interconnect addresses)",
                 now, id, link);
    return count(receive_result::dropped_foreign, &p.counters, link);
  }
  const replay_guard::verdict v = p.guard.check(hb.incarnation, hb.seq, link);
  if (v != replay_guard::verdict::fresh && v != replay_guard::verdict::new_incarnation) {
    emit_limited(heartbeat_events::rejected_replay, severity::warning,
                 "replayed heartbeat from " + node_label(id) + where + " (incarnation " +
                     hex(hb.incarnation) + ", seq " + std::to_string(hb.seq) + ") dropped",
                 now, id, link);
    return count(receive_result::dropped_replay, &p.counters, link);
  }
  if (v == replay_guard::verdict::new_incarnation || p.guard.empty()) {
    for (link_rt& l : p.links)
      l.have_echo = false;  // timestamps of an earlier run are meaningless now
  }
  p.guard.commit(hb.incarnation, hb.seq, link);
  link_rt& l = p.links[link];
  l.have_echo = true;
  l.echo_ts = hb.sender_time_ns;
  l.echo_rx = now;

  if (!p.admitted || hb.incarnation != p.admitted_incarnation) {
    const bool proven = (hb.flags & flag_echo) != 0 && hb.echo_incarnation == incarnation_;
    if (!proven) {
      p.last_pending = now;
      return count(receive_result::pending, &p.counters, link);
    }
    if (p.admitted && p.state == peer_state::up) {
      emit(heartbeat_events::node_restarted, severity::warning,
           node_label(id) + " restarted (new incarnation " + hex(hb.incarnation) +
               "): whatever it was running has stopped",
           now, id, std::nullopt);
    }
    p.admitted = true;
    p.admitted_incarnation = hb.incarnation;
  }
  return admit(p, id, hb, link, now);
}

receive_result membership::admit(peer& p, uint8_t id, const heartbeat& hb, uint8_t link,
                                 time_point now) {
  link_rt& l = p.links[link];
  const uint64_t now_ns = ns_of(now);
  if ((hb.flags & flag_echo) != 0 && hb.echo_time_ns != 0 && hb.echo_time_ns <= now_ns &&
      now_ns - hb.echo_time_ns >= hb.echo_hold_ns) {
    const nanoseconds sample(static_cast<int64_t>(now_ns - hb.echo_time_ns - hb.echo_hold_ns));
    l.srtt = l.srtt ? (*l.srtt * 7 + sample) / 8 : sample;
  }

  if (const auto threshold = delay_threshold(); threshold && p.state == peer_state::up &&
                                                p.last_rx && !p.delay_warned &&
                                                now - *p.last_rx >= *threshold) {
    emit(heartbeat_events::delay, severity::warning,
         "heartbeat from " + node_label(id) + " delayed: " + ms(now - *p.last_rx) +
             " since the previous one (warning at " + ms(*threshold) + ", timeout " +
             ms(cfg_.timeout) + ")",
         now, id, link);
  }
  p.delay_warned = false;
  p.last_rx = now;
  p.last_seq = hb.seq;

  if (hb.status.state == node_state::leaving) {
    p.reported = hb.status;
    p.reported_at = now;
    l.last_rx = now;
    if (p.state != peer_state::down) {
      p.state = peer_state::down;
      for (link_rt& x : p.links)
        x.state = link_state::down;
      emit(heartbeat_events::node_left, severity::info,
           node_label(id) + " left the cluster (it announced a clean stop on interconnect " +
               cfg_.link_names[link] + ")",
           now, id, link);
    }
    return count(receive_result::accepted, &p.counters, link);
  }

  const link_state before = l.state;
  l.state = link_state::up;
  l.since = now;
  l.last_rx = now;
  if (p.state != peer_state::up) {
    const bool rejoin = p.ever_up;
    p.state = peer_state::up;
    p.ever_up = true;
    for (size_t i = 0; i < max_links; ++i) {
      if (i == link || !has(p.shared, i)) continue;
      p.links[i].state = link_state::unknown;  // each gets a full timeout to come up
      p.links[i].since = now;
    }
    emit(heartbeat_events::node_up, severity::info,
         node_label(id) + (rejoin ? " rejoined the cluster" : " joined the cluster") +
             " (heartbeat on interconnect " + cfg_.link_names[link] + ")",
         now, id, link);
  } else if (before == link_state::down) {
    emit(heartbeat_events::link_up, severity::info,
         "interconnect " + cfg_.link_names[link] + " to " + node_label(id) + " is up again", now,
         id, link);
  }

  p.reported = hb.status;
  p.reported_at = now;
  const uint32_t theirs = hb.status.config_digest;
  const uint32_t ours = local_.config_digest;
  if (theirs != 0 && ours != 0 && theirs != ours) {
    if (!p.digest_warned) {
      emit(heartbeat_events::config_differs, severity::warning,
           node_label(id) + " runs another configuration (digest " + hex(theirs) + ", this node " +
               hex(ours) + ")",
           now, id, std::nullopt);
      p.digest_warned = true;
    }
  } else {
    p.digest_warned = false;
  }
  return count(receive_result::accepted, &p.counters, link);
}

void membership::set_timing(nanoseconds interval, nanoseconds timeout) {
  if (interval <= nanoseconds::zero())
    throw std::invalid_argument("membership: the interval must be positive");
  if (timeout < 2 * interval) {
    throw std::invalid_argument("membership: timeout " + ms(timeout) +
                                " is less than twice the interval " + ms(interval));
  }
  cfg_.interval = interval;
  cfg_.timeout = timeout;
}

void membership::tick(time_point now) {
  const auto threshold = delay_threshold();
  for (size_t i = 0; i < max_nodes; ++i) {
    peer& p = nodes_[i];
    const uint8_t id = static_cast<uint8_t>(i);
    if (!p.configured || id == cfg_.self) continue;
    if (p.state == peer_state::unknown) {
      if (now - p.since < cfg_.timeout) continue;
      p.state = peer_state::down;
      for (link_rt& l : p.links)
        l.state = link_state::down;
      std::string why = node_label(id) + " is down: no heartbeat since this node started (" +
                        ms(cfg_.timeout) + ")";
      if (p.last_pending) why += unproven_hint;
      emit(heartbeat_events::node_down, severity::error, std::move(why), now, id, std::nullopt);
      continue;
    }
    if (p.state != peer_state::up) continue;
    uint16_t went_down = 0;
    uint16_t still_up = 0;
    for (size_t li = 0; li < max_links; ++li) {
      if (!has(p.shared, li)) continue;
      link_rt& l = p.links[li];
      if (l.state == link_state::down) continue;
      if (now - l.since >= cfg_.timeout) {
        went_down |= static_cast<uint16_t>(1u << li);
      } else if (l.state == link_state::up) {
        still_up |= static_cast<uint16_t>(1u << li);
      }
    }
    if (still_up == 0 && went_down != 0) {
      for (link_rt& l : p.links)
        l.state = link_state::down;
      p.state = peer_state::down;
      p.delay_warned = false;
      std::string why =
          node_label(id) + " is down: no heartbeat on any interconnect for " + ms(cfg_.timeout);
      if (p.last_rx) why += " (last one " + ms(now - *p.last_rx) + " ago)";
      if (p.last_pending && p.last_rx && *p.last_pending > *p.last_rx) why += unproven_hint;
      emit(heartbeat_events::node_down, severity::error, std::move(why), now, id, std::nullopt);
      continue;
    }
    for (size_t li = 0; li < max_links; ++li) {
      if (!has(went_down, li)) continue;
      link_rt& l = p.links[li];
      const bool never = l.state == link_state::unknown;
      l.state = link_state::down;
      emit(heartbeat_events::link_down, severity::warning,
           "interconnect " + cfg_.link_names[li] + " to " + node_label(id) +
               (never ? " has not come up within " + ms(cfg_.timeout)
                      : " is down: no heartbeat for " + ms(now - l.since)) +
               "; the node is still reachable over another interconnect",
           now, id, static_cast<uint8_t>(li));
    }
    if (threshold && !p.delay_warned && p.last_rx && now - *p.last_rx >= *threshold) {
      p.delay_warned = true;
      emit(heartbeat_events::delay, severity::warning,
           "heartbeat from " + node_label(id) + " delayed: none for " + ms(now - *p.last_rx) +
               " (warning at " + ms(*threshold) + ", timeout " + ms(cfg_.timeout) + ")",
           now, id, std::nullopt);
    }
  }
}

std::optional<membership::time_point> membership::next_deadline() const {
  std::optional<time_point> best;
  const auto consider = [&best](time_point t) {
    if (!best || t < *best) best = t;
  };
  const auto threshold = delay_threshold();
  for (size_t i = 0; i < max_nodes; ++i) {
    const peer& p = nodes_[i];
    if (!p.configured || i == cfg_.self) continue;
    if (p.state == peer_state::unknown) {
      consider(p.since + cfg_.timeout);
    } else if (p.state == peer_state::up) {
      for (size_t li = 0; li < max_links; ++li) {
        if (has(p.shared, li) && p.links[li].state != link_state::down) {
          consider(p.links[li].since + cfg_.timeout);
        }
      }
      if (threshold && !p.delay_warned && p.last_rx) consider(*p.last_rx + *threshold);
    }
  }
  return best;
}

peer_state membership::state_of(uint8_t node) const {
  if (node >= max_nodes || !nodes_[node].configured) return peer_state::unknown;
  if (node == cfg_.self) return peer_state::up;
  return nodes_[node].state;
}

size_t membership::up_count() const {
  size_t n = 0;
  for (size_t i = 0; i < max_nodes; ++i)
    if (state_of(static_cast<uint8_t>(i)) == peer_state::up) ++n;
  return n;
}

std::vector<node_view> membership::view() const {
  std::vector<node_view> out;
  out.reserve(cfg_.nodes.size());
  for (const node_config& n : cfg_.nodes) {
    const peer& p = nodes_[n.id];
    node_view v;
    v.id = n.id;
    v.name = p.name;
    v.self = n.id == cfg_.self;
    v.links = p.shared;
    v.counters = p.counters;
    if (v.self) {
      v.state = peer_state::up;
      v.incarnation = incarnation_;
      v.seq = seq_;
      v.reported = own_status();
      for (size_t li = 0; li < max_links; ++li)
        if (has(p.shared, li)) v.link[li].state = link_state::up;
    } else {
      v.state = p.state;
      v.pending =
          !p.guard.empty() && (!p.admitted || p.guard.incarnation() != p.admitted_incarnation);
      v.incarnation = p.admitted ? p.admitted_incarnation : 0;
      v.seq = p.last_seq;
      v.last_rx = p.last_rx;
      v.reported = p.reported;
      v.reported_at = p.reported_at;
      for (size_t li = 0; li < max_links; ++li) {
        v.link[li].state = has(p.shared, li) ? p.links[li].state : link_state::unknown;
        v.link[li].last_rx = p.links[li].last_rx;
        v.link[li].rtt = p.links[li].srtt;
      }
    }
    out.push_back(std::move(v));
  }
  return out;
}

const heartbeat_counters& membership::node_counters(uint8_t node) const {
  if (node >= max_nodes || !nodes_[node].configured) {
    throw std::invalid_argument("heartbeat: no node with id " + std::to_string(node));
  }
  return nodes_[node].counters;
}

const heartbeat_counters& membership::link_counters(uint8_t link) const {
  if (link >= cfg_.link_names.size()) {
    throw std::invalid_argument("heartbeat: no interconnect " + std::to_string(link));
  }
  return link_counters_[link];
}

}  // namespace tandem::ctl::cluster
