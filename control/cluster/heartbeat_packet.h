// SPDX-License-Identifier: Apache-2.0
// The heartbeat datagram, version 2: fixed little-endian layout, HMAC-SHA256 tag, strict decoder.
//
// One UDP datagram per (destination node, interconnect) per heartbeat interval:
//
//   header (72 bytes) | status (8) | node entries (4 x node_count) | group entries (12 x
//   group_count) | tag (32)
//
// Every multi-byte field is little-endian. The `wire_*` structs below pin the layout with
// static_asserts (natural alignment, no padding); encode and decode copy field by field at those
// offsets and never reinterpret the buffer. The tag is the full 32-byte HMAC-SHA256, keyed with
// a key derived by HKDF-SHA256 from the cluster secret and bound to the cluster id, over every
// byte before it. docs/heartbeat.md has the table, the key schedule and the decoder's rules.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

struct evp_mac_ctx_st;  // OpenSSL's EVP_MAC_CTX, kept out of tandem headers

namespace tandem::ctl::cluster {

inline constexpr std::array<uint8_t, 4> heartbeat_magic = {'T', 'D', 'H', 'B'};
inline constexpr uint8_t heartbeat_version = 2;  // 2: group entries carry intents
inline constexpr size_t max_nodes = 32;          // node ids 0..31
inline constexpr size_t max_links = 16;          // interconnect indexes 0..15 (a 16-bit mask)
inline constexpr size_t max_groups = 64;         // failover groups one node reports
inline constexpr size_t heartbeat_tag_size = 32;
inline constexpr size_t heartbeat_mac_key_size = 32;
inline constexpr size_t min_cluster_secret_size = 16;

// What a node says about itself.
enum class node_state : uint8_t { starting = 1, online = 2, leaving = 3, stopping = 4 };
// What a node thinks of another node.
enum class peer_state : uint8_t { unknown = 0, up = 1, down = 2 };
// A failover group as the node running it sees it.
enum class group_state : uint8_t {
  offline = 0,
  starting = 1,
  online = 2,
  stopping = 3,
  failed = 4
};
// What the operator last asked of a group, relayed by every node (last writer wins on
// (intent_seq, intent, target)): the cluster-wide record of `tandemctl group start|stop|move`.
enum class group_intent : uint8_t {
  none = 0,  // no command yet: the group's autostart setting decides
  run = 1,   // run it (where the placement rule says)
  stop = 2,  // run it nowhere
  move = 3,  // run it on `target`
};

// Header flags.
inline constexpr uint8_t flag_echo = 0x01;  // echo_* carry what the sender last saw of dest
inline constexpr uint8_t known_flags = flag_echo;
// Status flags.
inline constexpr uint8_t status_quorum = 0x01;  // the sender holds quorum
inline constexpr uint8_t known_status_flags = status_quorum;

// The wire layout. Documentation and static_asserts only: see the top of this file.
namespace wire {

struct header {
  uint8_t magic[4];           // "TDHB"
  uint8_t version;            // heartbeat_version
  uint8_t flags;              // flag_*; unknown bits must be zero
  uint16_t length;            // the whole datagram, tag included
  uint64_t cluster_id;        // cluster_id_of(cluster name)
  uint64_t incarnation;       // the sender daemon's run; strictly greater after a restart
  uint64_t seq;               // per incarnation, one per round, the same on every link
  uint64_t sender_time_ns;    // sender's steady clock when it built this packet
  uint64_t echo_incarnation;  // dest's incarnation as the sender last saw it (flag_echo)
  uint64_t echo_time_ns;      // sender_time_ns of dest's last packet on this link, 0: none
  uint64_t echo_hold_ns;      // how long the sender held that timestamp before this packet
  uint32_t sender_name_hash;  // node_name_hash(sender's configured name)
  uint8_t sender;             // sender's node id
  uint8_t dest;               // receiver's node id
  uint8_t link;               // interconnect index the packet is sent on
  uint8_t reserved;           // zero
};

struct status {
  uint8_t state;           // node_state
  uint8_t flags;           // status_*; unknown bits must be zero
  uint8_t node_count;      // entries that follow, <= max_nodes
  uint8_t group_count;     // group entries after the node entries, <= max_groups
  uint32_t config_digest;  // the sender's configuration digest, 0: not given
};

struct node_entry {
  uint8_t node;    // node id, strictly increasing across entries
  uint8_t state;   // peer_state
  uint16_t links;  // bit i: the sender hears this node on interconnect i
};

struct group_entry {
  uint16_t group;       // group id (group_id_of(name)), strictly increasing across entries
  uint8_t state;        // group_state on the sender
  uint8_t failovers;    // failovers of the group's current episode the sender knows of
  uint8_t intent;       // group_intent; none: intent_seq and target are zero
  uint8_t target;       // node id of a move intent, else zero
  uint16_t reserved;    // zero
  uint32_t intent_seq;  // the intent's sequence number (higher wins)
};

static_assert(sizeof(header) == 72 && alignof(header) == 8);
static_assert(offsetof(header, version) == 4 && offsetof(header, flags) == 5);
static_assert(offsetof(header, length) == 6 && offsetof(header, cluster_id) == 8);
static_assert(offsetof(header, incarnation) == 16 && offsetof(header, seq) == 24);
static_assert(offsetof(header, sender_time_ns) == 32 && offsetof(header, echo_incarnation) == 40);
static_assert(offsetof(header, echo_time_ns) == 48 && offsetof(header, echo_hold_ns) == 56);
static_assert(offsetof(header, sender_name_hash) == 64 && offsetof(header, sender) == 68);
static_assert(offsetof(header, dest) == 69 && offsetof(header, link) == 70);
static_assert(offsetof(header, reserved) == 71);
static_assert(sizeof(status) == 8 && offsetof(status, config_digest) == 4);
static_assert(sizeof(node_entry) == 4 && offsetof(node_entry, links) == 2);
static_assert(sizeof(group_entry) == 12 && offsetof(group_entry, state) == 2);
static_assert(offsetof(group_entry, failovers) == 3 && offsetof(group_entry, intent) == 4);
static_assert(offsetof(group_entry, target) == 5 && offsetof(group_entry, reserved) == 6);
static_assert(offsetof(group_entry, intent_seq) == 8);

}  // namespace wire

inline constexpr size_t heartbeat_fixed_size =
    sizeof(wire::header) + sizeof(wire::status) + heartbeat_tag_size;
inline constexpr size_t min_heartbeat_size = heartbeat_fixed_size;
inline constexpr size_t max_heartbeat_size = heartbeat_fixed_size +
                                             max_nodes * sizeof(wire::node_entry) +
                                             max_groups * sizeof(wire::group_entry);
static_assert(min_heartbeat_size == 112 && max_heartbeat_size == 1008);
static_assert(max_heartbeat_size <= 1200, "a heartbeat must fit in one unfragmented datagram");
static_assert(max_nodes <= 255 && max_groups <= 255, "counts are one byte");
static_assert(max_links <= 16, "link masks are 16 bits");

struct node_report {
  uint8_t node = 0;
  peer_state state = peer_state::unknown;
  uint16_t links = 0;
  bool operator==(const node_report&) const = default;
};

struct group_report {
  uint16_t group = 0;
  group_state state = group_state::offline;
  uint8_t failovers = 0;
  group_intent intent = group_intent::none;
  uint8_t target = 0;
  uint32_t intent_seq = 0;
  bool operator==(const group_report&) const = default;
};

// The sender's view: itself, every node it knows of, the groups it runs. Fixed capacity, so
// decoding never allocates.
struct node_status {
  node_state state = node_state::starting;
  bool quorum = false;
  uint32_t config_digest = 0;
  uint8_t node_count = 0;
  uint8_t group_count = 0;
  std::array<node_report, max_nodes> nodes{};
  std::array<group_report, max_groups> groups{};

  [[nodiscard]] std::span<const node_report> peers() const { return {nodes.data(), node_count}; }
  [[nodiscard]] std::span<const group_report> running() const {
    return {groups.data(), group_count};
  }
  bool operator==(const node_status& o) const;
};

struct heartbeat {
  uint8_t flags = 0;
  uint64_t cluster_id = 0;  // filled by decode; encode writes the codec's own id
  uint64_t incarnation = 0;
  uint64_t seq = 0;
  uint64_t sender_time_ns = 0;
  uint64_t echo_incarnation = 0;  // these three must be zero without flag_echo
  uint64_t echo_time_ns = 0;
  uint64_t echo_hold_ns = 0;
  uint32_t sender_name_hash = 0;
  uint8_t sender = 0;
  uint8_t dest = 0;
  uint8_t link = 0;
  node_status status;

  bool operator==(const heartbeat&) const = default;
};

// The encoded size of `hb` (counts taken as given).
[[nodiscard]] constexpr size_t heartbeat_size(const heartbeat& hb) noexcept {
  return heartbeat_fixed_size + size_t{hb.status.node_count} * sizeof(wire::node_entry) +
         size_t{hb.status.group_count} * sizeof(wire::group_entry);
}

// Decoder verdicts, in the order they are checked.
enum class decode_result : uint8_t {
  ok,
  too_short,      // fewer than min_heartbeat_size bytes
  bad_magic,      // not a tandem heartbeat
  bad_version,    // another protocol version
  bad_length,     // length field differs from the datagram size, or above the maximum
  wrong_cluster,  // authentic or not, it names another cluster id
  bad_mac,        // tag mismatch: wrong cluster secret, or the packet was altered
  malformed,      // authentic but breaks a layout rule (counts, order, reserved bits)
};

[[nodiscard]] std::string_view to_string(decode_result r) noexcept;
[[nodiscard]] std::string_view to_string(node_state s) noexcept;
[[nodiscard]] std::string_view to_string(peer_state s) noexcept;
[[nodiscard]] std::string_view to_string(group_state s) noexcept;
[[nodiscard]] std::string_view to_string(group_intent i) noexcept;

// A failover group's 16-bit id on the wire: the first 2 bytes of
// SHA-256("tandem group v1\0" || name), little-endian. Stable across reloads and file order; the
// configuration loader refuses two groups whose ids collide.
[[nodiscard]] uint16_t group_id_of(std::string_view group_name);

// The 64-bit cluster id: the first 8 bytes of SHA-256("tandem cluster v1\0" || name), read
// little-endian. Not a secret: it only keeps two clusters on one network apart.
[[nodiscard]] uint64_t cluster_id_of(std::string_view cluster_name);

// The node name hash a sender puts in every packet, so a receiver whose configuration maps the
// id to another name refuses it: the first 4 bytes of SHA-256("tandem node v1\0" || name), LE.
[[nodiscard]] uint32_t node_name_hash(std::string_view node_name);

// The info string of the MAC key derivation: "tandem v1 heartbeat hmac-sha256" followed by the
// cluster id as 8 little-endian bytes (exposed for the known-answer test and docs).
inline constexpr std::string_view heartbeat_kdf_label = "tandem v1 heartbeat hmac-sha256";

// Encoder and decoder bound to one cluster id and one key. The key is
//   HKDF-SHA256(IKM = cluster secret, salt = none, info = heartbeat_kdf_label || cluster id LE)
// 32 bytes, wiped on destruction. Not thread-safe: one owner (the daemon's heartbeat strand).
class heartbeat_codec {
 public:
  // Throws std::invalid_argument when the secret is shorter than min_cluster_secret_size, and
  // std::runtime_error when OpenSSL cannot set up HMAC-SHA256.
  heartbeat_codec(std::span<const uint8_t> cluster_secret, uint64_t cluster_id);
  ~heartbeat_codec();
  heartbeat_codec(heartbeat_codec&& o) noexcept;
  heartbeat_codec& operator=(heartbeat_codec&& o) noexcept;
  heartbeat_codec(const heartbeat_codec&) = delete;
  heartbeat_codec& operator=(const heartbeat_codec&) = delete;

  [[nodiscard]] uint64_t cluster_id() const noexcept { return cluster_id_; }

  // Writes `hb` (with this codec's cluster id) and its tag into `out`. Returns the size, or
  // -EINVAL when `hb` breaks a rule decode enforces (ids, counts, order, states, flags),
  // -EMSGSIZE when `out` is too small. Throws std::runtime_error only if OpenSSL fails.
  [[nodiscard]] int encode(const heartbeat& hb, std::span<uint8_t> out) const;

  // Checks `in` in the order of decode_result and fills `out`. When the result is wrong_cluster
  // or bad_mac, the header fields of `out` are filled but UNAUTHENTICATED (useful to say which
  // node a refused packet claims to come from); for malformed they are filled and authentic.
  // In those three cases the status is left empty; for the earlier results `out` is untouched.
  // Never throws except if OpenSSL fails.
  [[nodiscard]] decode_result decode(std::span<const uint8_t> in, heartbeat& out) const;

  // HMAC-SHA256 of `bytes` with this codec's key (the fuzzer signs arbitrary packets with it).
  void mac(std::span<const uint8_t> bytes, std::span<uint8_t, heartbeat_tag_size> tag) const;

 private:
  void release() noexcept;

  uint64_t cluster_id_ = 0;
  evp_mac_ctx_st* mac_ = nullptr;  // initialised with the key once, duplicated per packet
};

}  // namespace tandem::ctl::cluster
