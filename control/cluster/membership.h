// SPDX-License-Identifier: Apache-2.0
// Membership and failure detection: which nodes and interconnects are alive, from heartbeats.
//
// Pure logic with an injected clock: no sockets, no threads, no timers. The daemon drives it:
//
//   every interval:   m.begin_round(); for each peer and link: send(m.build(peer, link, now))
//   on a datagram:    m.receive(bytes, link it arrived on, now, "10.0.0.2:29002")
//   on a timer:       m.tick(now)          (arm it at m.next_deadline(), or every interval)
//
// Rules (docs/heartbeat.md has the reasoning):
// - A packet counts only if it authenticates, names this cluster, this node as destination and
//   the interconnect it arrived on, comes from a configured node whose name hash matches, and
//   is fresh (replay_guard). Everything else is dropped, counted, and reported (rate-limited).
// - A new incarnation of a sender is admitted only once one of its packets echoes THIS node's
//   incarnation: proof it was made after this node started, so captured packets of a dead node
//   cannot make it look alive to a node that just restarted. Until then it is `pending`.
// - Link (node, i) is down once nothing admitted arrived on it for `timeout`; a node is down
//   once all its links are down. One link down while another is up is a warning.
// - Contract: a node whose last heartbeat arrived at T is declared down by the first tick at or
//   after T + timeout, i.e. no later than T + timeout + the tick period (exactly at
//   T + timeout when the daemon ticks at next_deadline()).
// - The first admitted heartbeat after down brings the node back (rejoin).
// - A node whose admitted heartbeat reports state `leaving` has stopped its groups and is going
//   away (`tandemctl cluster stop`, SIGTERM): it is down at once, without waiting for the
//   timeout, and stays down until it reports another state.
// Not thread-safe: one owner (the daemon's heartbeat strand).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "control/cluster/event.h"
#include "control/cluster/heartbeat_packet.h"
#include "control/cluster/replay_guard.h"

namespace tandem::ctl::cluster {

inline constexpr std::string_view heartbeat_module = "heartbeat";

// Event ids of the "heartbeat" module (docs/heartbeat.md has the messages).
namespace heartbeat_events {
inline constexpr uint32_t node_up = 1;            // info: joined, or rejoined after being down
inline constexpr uint32_t node_down = 2;          // error: no heartbeat on any interconnect
inline constexpr uint32_t link_up = 3;            // info: an interconnect recovered
inline constexpr uint32_t link_down = 4;          // warning: one interconnect lost, node still up
inline constexpr uint32_t node_restarted = 5;     // warning: new incarnation while up
inline constexpr uint32_t delay = 6;              // warning: gap above the delay-warning threshold
inline constexpr uint32_t config_differs = 7;     // warning: peer reports another config digest
inline constexpr uint32_t node_left = 8;          // info: the node announced a clean stop
inline constexpr uint32_t rejected_auth = 10;     // error: bad MAC (wrong cluster secret?)
inline constexpr uint32_t rejected_cluster = 11;  // warning: another cluster's id
inline constexpr uint32_t rejected_node = 12;     // error: unknown node, name or id clash
inline constexpr uint32_t rejected_version = 13;  // error: other protocol version
inline constexpr uint32_t rejected_malformed = 14;    // warning: not a valid heartbeat
inline constexpr uint32_t rejected_misdirected = 15;  // warning: wrong destination or link
inline constexpr uint32_t rejected_replay = 16;       // warning: duplicate or old packet
}  // namespace heartbeat_events

inline constexpr uint16_t all_links = 0xffff;

struct node_config {
  uint8_t id = 0;  // < max_nodes, unique
  std::string name;
  uint16_t links = all_links;  // interconnects this node has an address on (bit i: link i)
};

struct membership_config {
  uint8_t self = 0;                     // this node's id
  std::vector<node_config> nodes;       // every node of the cluster, this one included
  std::vector<std::string> link_names;  // one per interconnect, index = link id (1..max_links)
  std::chrono::nanoseconds interval = std::chrono::seconds(1);  // heartbeat period
  std::chrono::nanoseconds timeout = std::chrono::seconds(10);  // silence that means down
  unsigned delay_warning_percent = 80;  // warn when a gap reaches this % of timeout; 100: never
  std::chrono::nanoseconds reject_event_interval = std::chrono::seconds(60);  // per kind+link
};

// What this node reports about itself in every heartbeat.
struct local_status {
  node_state state = node_state::starting;
  bool quorum = false;
  uint32_t config_digest = 0;  // 0: none; peers reporting a different non-zero one get a warning
  std::vector<group_report> groups;  // any order, unique ids, at most max_groups
};

struct heartbeat_counters {
  uint64_t accepted = 0;           // admitted: proves liveness
  uint64_t pending = 0;            // authentic and fresh, incarnation not proven yet (no echo)
  uint64_t dropped_auth = 0;       // bad MAC
  uint64_t dropped_replay = 0;     // duplicate, too old, or an old incarnation
  uint64_t dropped_malformed = 0;  // too short, bad magic / version / length, malformed payload
  uint64_t dropped_foreign = 0;    // other cluster, unknown node, wrong destination or link
  bool operator==(const heartbeat_counters&) const = default;
};

enum class receive_result : uint8_t {
  accepted,
  pending,
  dropped_auth,
  dropped_replay,
  dropped_malformed,
  dropped_foreign,
};

[[nodiscard]] std::string_view to_string(receive_result r) noexcept;

enum class link_state : uint8_t { unknown, up, down };

[[nodiscard]] std::string_view to_string(link_state s) noexcept;

struct link_view {
  link_state state = link_state::unknown;
  std::optional<std::chrono::steady_clock::time_point> last_rx;  // last admitted heartbeat
  std::optional<std::chrono::nanoseconds> rtt;                   // smoothed round trip
};

struct node_view {
  uint8_t id = 0;
  std::string name;
  bool self = false;
  peer_state state = peer_state::unknown;  // self: always up
  bool pending = false;                    // authentic heartbeats, incarnation not proven yet
  uint16_t links = 0;                      // interconnects shared with this node
  std::array<link_view, max_links> link{};
  uint64_t incarnation = 0;  // the admitted one (self: ours); 0 before any
  uint64_t seq = 0;          // last admitted seq (self: current round)
  std::optional<std::chrono::steady_clock::time_point> last_rx;
  std::optional<node_status> reported;  // what the node last said (self: what we send)
  std::optional<std::chrono::steady_clock::time_point> reported_at;
  heartbeat_counters counters;  // packets claiming to come from this node
};

// A fresh incarnation for a starting daemon: CLOCK_REALTIME in ns, but at least previous + 1
// (pass the value persisted by the previous run, so a clock stepped back cannot make a restart
// look like an old, refused incarnation).
[[nodiscard]] uint64_t new_incarnation(uint64_t previous = 0);

class membership {
 public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;

  // Validates `cfg` (ids, names, links, timing: timeout >= 2 * interval) and throws
  // std::invalid_argument naming the problem. `now` starts the clock for nodes never heard of:
  // they are declared down at now + timeout. `incarnation` must be non-zero.
  membership(membership_config cfg, heartbeat_codec codec, uint64_t incarnation, time_point now,
             event_sink sink);

  // --- sending ---
  void set_local_status(const local_status& s);  // throws std::invalid_argument on bad groups
  void begin_round() noexcept { ++seq_; }        // once per interval, before the builds
  // The heartbeat for `dest` on `link` (configured, not self, shared link), echoing what this
  // node last saw of dest there. Throws std::invalid_argument for a bad dest or link.
  [[nodiscard]] heartbeat make_heartbeat(uint8_t dest, uint8_t link, time_point now) const;
  // make_heartbeat, encoded into `out` (max_heartbeat_size is always enough): size or -errno.
  [[nodiscard]] int build(uint8_t dest, uint8_t link, time_point now, std::span<uint8_t> out) const;

  // --- receiving ---
  // One datagram that arrived on interconnect `link` (throws std::invalid_argument if `link` is
  // not configured). `from` (e.g. the source address) only goes into event messages.
  receive_result receive(std::span<const uint8_t> datagram, uint8_t link, time_point now,
                         std::string_view from = {});

  // --- time ---
  // A reloaded configuration's heartbeat timing (the same checks as the constructor; throws
  // std::invalid_argument and keeps the old timing). Deadlines follow the new timeout at once.
  void set_timing(std::chrono::nanoseconds interval, std::chrono::nanoseconds timeout);
  void tick(time_point now);
  // The earliest time at which tick() would change something, if any.
  [[nodiscard]] std::optional<time_point> next_deadline() const;

  // --- views ---
  [[nodiscard]] peer_state state_of(uint8_t node) const;  // self: up; unconfigured: unknown
  [[nodiscard]] size_t up_count() const;                  // nodes up, this one included
  [[nodiscard]] std::vector<node_view> view() const;      // every node, in configuration order
  [[nodiscard]] const heartbeat_counters& node_counters(uint8_t node) const;
  [[nodiscard]] const heartbeat_counters& link_counters(uint8_t link) const;
  // Packets that named no configured node (another cluster, unknown id, unreadable).
  [[nodiscard]] const heartbeat_counters& unattributed_counters() const noexcept {
    return unattributed_;
  }
  [[nodiscard]] uint64_t incarnation() const noexcept { return incarnation_; }
  [[nodiscard]] uint64_t seq() const noexcept { return seq_; }
  [[nodiscard]] const membership_config& config() const noexcept { return cfg_; }

 private:
  struct link_rt {
    link_state state = link_state::unknown;
    time_point since{};  // last admitted packet, or when absence started to count
    std::optional<time_point> last_rx;
    std::optional<std::chrono::nanoseconds> srtt;
    bool have_echo = false;  // echo_ts / echo_rx hold dest's last packet on this link
    uint64_t echo_ts = 0;
    time_point echo_rx{};
  };

  struct peer {
    bool configured = false;
    std::string name;
    uint32_t name_hash = 0;
    uint16_t shared = 0;  // links this node and we both have
    peer_state state = peer_state::unknown;
    time_point since{};  // unknown: when the wait started
    replay_guard guard;
    bool admitted = false;
    bool ever_up = false;
    uint64_t admitted_incarnation = 0;
    uint64_t last_seq = 0;
    std::optional<time_point> last_rx;
    std::optional<time_point> last_pending;
    bool delay_warned = false;
    bool digest_warned = false;
    std::array<link_rt, max_links> links{};
    std::optional<node_status> reported;
    std::optional<time_point> reported_at;
    heartbeat_counters counters;
  };

  void emit(uint32_t id, severity level, std::string message, time_point now,
            std::optional<uint8_t> node, std::optional<uint8_t> link) const;
  void emit_limited(uint32_t id, severity level, std::string message, time_point now,
                    std::optional<uint8_t> node, uint8_t link);
  receive_result count(receive_result why, heartbeat_counters* node, uint8_t link);
  receive_result admit(peer& p, uint8_t id, const heartbeat& hb, uint8_t link, time_point now);
  [[nodiscard]] node_status own_status() const;
  [[nodiscard]] std::string node_label(uint8_t id) const;
  [[nodiscard]] std::optional<std::chrono::nanoseconds> delay_threshold() const;

  membership_config cfg_;
  heartbeat_codec codec_;
  uint64_t incarnation_;
  uint64_t seq_ = 0;
  uint16_t link_mask_ = 0;  // bits of the configured links
  event_sink sink_;
  local_status local_;
  std::array<peer, max_nodes> nodes_{};
  std::array<heartbeat_counters, max_links> link_counters_{};
  heartbeat_counters unattributed_;
  std::map<uint32_t, time_point> reject_events_;  // (event id, link, node) -> last raised
};

}  // namespace tandem::ctl::cluster
