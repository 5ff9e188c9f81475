// SPDX-License-Identifier: Apache-2.0
// Heartbeat encoder / decoder, cluster id and name hashes, HMAC-SHA256 through OpenSSL's EVP_MAC.
#include "control/cluster/heartbeat_packet.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "dataplane/crypto/kdf.h"

namespace tandem::ctl::cluster {
namespace {

constexpr size_t header_size = sizeof(wire::header);
constexpr size_t status_offset = header_size;
constexpr size_t entries_offset = header_size + sizeof(wire::status);

[[noreturn]] void throw_openssl(const char* what) {
  ERR_clear_error();
  throw std::runtime_error(std::string("heartbeat: OpenSSL ") + what + " failed");
}

template <typename T>
void store(uint8_t* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i)
    p[i] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
}

template <typename T>
T load(const uint8_t* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i)
    v |= uint64_t{p[i]} << (8 * i);
  return static_cast<T>(v);
}

#define TANDEM_HB_AT(field) offsetof(wire::header, field)

bool valid_peer_state(uint8_t s) {
  return s <= static_cast<uint8_t>(peer_state::down);
}
bool valid_node_state(uint8_t s) {
  return s >= static_cast<uint8_t>(node_state::starting) &&
         s <= static_cast<uint8_t>(node_state::stopping);
}
bool valid_group_state(uint8_t s) {
  return s <= static_cast<uint8_t>(group_state::failed);
}
bool valid_intent(const group_report& g) {
  if (static_cast<uint8_t>(g.intent) > static_cast<uint8_t>(group_intent::move)) return false;
  if (g.intent == group_intent::none && (g.intent_seq != 0 || g.target != 0)) return false;
  if (g.intent != group_intent::move && g.target != 0) return false;
  return g.target < max_nodes;
}

// The rules decode enforces on an authentic packet, checked on what encode is given, so that
// decode(encode(x)) == x for every x encode accepts.
bool valid(const heartbeat& hb) {
  if ((hb.flags & ~known_flags) != 0) return false;
  if ((hb.flags & flag_echo) == 0 &&
      (hb.echo_incarnation != 0 || hb.echo_time_ns != 0 || hb.echo_hold_ns != 0)) {
    return false;
  }
  if (hb.sender >= max_nodes || hb.dest >= max_nodes || hb.link >= max_links) return false;
  const node_status& s = hb.status;
  if (!valid_node_state(static_cast<uint8_t>(s.state))) return false;
  if (s.node_count > max_nodes || s.group_count > max_groups) return false;
  for (size_t i = 0; i < s.node_count; ++i) {
    const node_report& n = s.nodes[i];
    if (n.node >= max_nodes || !valid_peer_state(static_cast<uint8_t>(n.state))) return false;
    if (i > 0 && n.node <= s.nodes[i - 1].node) return false;
  }
  for (size_t i = 0; i < s.group_count; ++i) {
    const group_report& g = s.groups[i];
    if (!valid_group_state(static_cast<uint8_t>(g.state)) || !valid_intent(g)) return false;
    if (i > 0 && g.group <= s.groups[i - 1].group) return false;
  }
  return true;
}

uint64_t sha256_prefix(std::string_view domain, std::string_view name, size_t bytes) {
  std::string input(domain);
  input.push_back('\0');
  input.append(name);
  uint8_t digest[32];
  unsigned int len = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
    throw_openssl("SHA-256");
  }
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i)
    v |= uint64_t{digest[i]} << (8 * i);
  return v;
}

}  // namespace

bool node_status::operator==(const node_status& o) const {
  if (state != o.state || quorum != o.quorum || config_digest != o.config_digest) return false;
  if (node_count != o.node_count || group_count != o.group_count) return false;
  for (size_t i = 0; i < node_count; ++i)
    if (nodes[i] != o.nodes[i]) return false;
  for (size_t i = 0; i < group_count; ++i)
    if (groups[i] != o.groups[i]) return false;
  return true;
}

std::string_view to_string(decode_result r) noexcept {
  switch (r) {
    case decode_result::ok:
      return "ok";
    case decode_result::too_short:
      return "too short";
    case decode_result::bad_magic:
      return "bad magic";
    case decode_result::bad_version:
      return "unsupported version";
    case decode_result::bad_length:
      return "length mismatch";
    case decode_result::wrong_cluster:
      return "wrong cluster id";
    case decode_result::bad_mac:
      return "authentication failed";
    case decode_result::malformed:
      return "malformed payload";
  }
  return "?";
}

std::string_view to_string(node_state s) noexcept {
  switch (s) {
    case node_state::starting:
      return "starting";
    case node_state::online:
      return "online";
    case node_state::leaving:
      return "leaving";
    case node_state::stopping:
      return "stopping";
  }
  return "?";
}

std::string_view to_string(peer_state s) noexcept {
  switch (s) {
    case peer_state::unknown:
      return "unknown";
    case peer_state::up:
      return "up";
    case peer_state::down:
      return "down";
  }
  return "?";
}

std::string_view to_string(group_state s) noexcept {
  switch (s) {
    case group_state::offline:
      return "offline";
    case group_state::starting:
      return "starting";
    case group_state::online:
      return "online";
    case group_state::stopping:
      return "stopping";
    case group_state::failed:
      return "failed";
  }
  return "?";
}

uint64_t cluster_id_of(std::string_view cluster_name) {
  return sha256_prefix("tandem cluster v1", cluster_name, 8);
}

uint32_t node_name_hash(std::string_view node_name) {
  return static_cast<uint32_t>(sha256_prefix("tandem node v1", node_name, 4));
}

uint16_t group_id_of(std::string_view group_name) {
  return static_cast<uint16_t>(sha256_prefix("tandem group v1", group_name, 2));
}

std::string_view to_string(group_intent i) noexcept {
  switch (i) {
    case group_intent::none:
      return "none";
    case group_intent::run:
      return "run";
    case group_intent::stop:
      return "stop";
    case group_intent::move:
      return "move";
  }
  return "?";
}

heartbeat_codec::heartbeat_codec(std::span<const uint8_t> cluster_secret, uint64_t cluster_id)
    : cluster_id_(cluster_id) {
  if (cluster_secret.size() < min_cluster_secret_size) {
    throw std::invalid_argument("heartbeat: the cluster secret has " +
                                std::to_string(cluster_secret.size()) + " bytes: at least " +
                                std::to_string(min_cluster_secret_size) + " are required");
  }
  std::array<uint8_t, heartbeat_kdf_label.size() + 8> info{};
  std::memcpy(info.data(), heartbeat_kdf_label.data(), heartbeat_kdf_label.size());
  store(info.data() + heartbeat_kdf_label.size(), cluster_id);
  std::array<uint8_t, heartbeat_mac_key_size> key{};
  dp::hkdf_sha256(cluster_secret, {}, info, key);

  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (hmac == nullptr) {
    dp::secure_wipe(key);
    throw_openssl("HMAC fetch");
  }
  mac_ = EVP_MAC_CTX_new(hmac);
  EVP_MAC_free(hmac);  // the context keeps its own reference
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  const bool ok = mac_ != nullptr && EVP_MAC_init(mac_, key.data(), key.size(), params) == 1;
  dp::secure_wipe(key);
  if (!ok) {
    release();
    throw_openssl("HMAC-SHA256 init");
  }
}

heartbeat_codec::~heartbeat_codec() {
  release();
}

heartbeat_codec::heartbeat_codec(heartbeat_codec&& o) noexcept
    : cluster_id_(o.cluster_id_), mac_(std::exchange(o.mac_, nullptr)) {}

heartbeat_codec& heartbeat_codec::operator=(heartbeat_codec&& o) noexcept {
  if (this != &o) {
    release();
    cluster_id_ = o.cluster_id_;
    mac_ = std::exchange(o.mac_, nullptr);
  }
  return *this;
}

void heartbeat_codec::release() noexcept {
  EVP_MAC_CTX_free(mac_);  // the provider wipes the key
  mac_ = nullptr;
}

void heartbeat_codec::mac(std::span<const uint8_t> bytes,
                          std::span<uint8_t, heartbeat_tag_size> tag) const {
  if (mac_ == nullptr) throw std::logic_error("heartbeat: codec used after move");
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(mac_);
  size_t len = 0;
  const bool ok = ctx != nullptr && EVP_MAC_update(ctx, bytes.data(), bytes.size()) == 1 &&
                  EVP_MAC_final(ctx, tag.data(), &len, tag.size()) == 1 && len == tag.size();
  EVP_MAC_CTX_free(ctx);
  if (!ok) throw_openssl("HMAC-SHA256");
}

int heartbeat_codec::encode(const heartbeat& hb, std::span<uint8_t> out) const {
  if (!valid(hb)) return -EINVAL;
  const size_t size = heartbeat_size(hb);
  if (out.size() < size) return -EMSGSIZE;
  uint8_t* p = out.data();
  std::memcpy(p, heartbeat_magic.data(), heartbeat_magic.size());
  p[TANDEM_HB_AT(version)] = heartbeat_version;
  p[TANDEM_HB_AT(flags)] = hb.flags;
  store(p + TANDEM_HB_AT(length), static_cast<uint16_t>(size));
  store(p + TANDEM_HB_AT(cluster_id), cluster_id_);
  store(p + TANDEM_HB_AT(incarnation), hb.incarnation);
  store(p + TANDEM_HB_AT(seq), hb.seq);
  store(p + TANDEM_HB_AT(sender_time_ns), hb.sender_time_ns);
  store(p + TANDEM_HB_AT(echo_incarnation), hb.echo_incarnation);
  store(p + TANDEM_HB_AT(echo_time_ns), hb.echo_time_ns);
  store(p + TANDEM_HB_AT(echo_hold_ns), hb.echo_hold_ns);
  store(p + TANDEM_HB_AT(sender_name_hash), hb.sender_name_hash);
  p[TANDEM_HB_AT(sender)] = hb.sender;
  p[TANDEM_HB_AT(dest)] = hb.dest;
  p[TANDEM_HB_AT(link)] = hb.link;
  p[TANDEM_HB_AT(reserved)] = 0;

  const node_status& s = hb.status;
  uint8_t* st = p + status_offset;
  st[offsetof(wire::status, state)] = static_cast<uint8_t>(s.state);
  st[offsetof(wire::status, flags)] = s.quorum ? status_quorum : 0;
  st[offsetof(wire::status, node_count)] = s.node_count;
  st[offsetof(wire::status, group_count)] = s.group_count;
  store(st + offsetof(wire::status, config_digest), s.config_digest);

  uint8_t* e = p + entries_offset;
  for (const node_report& n : s.peers()) {
    e[offsetof(wire::node_entry, node)] = n.node;
    e[offsetof(wire::node_entry, state)] = static_cast<uint8_t>(n.state);
    store(e + offsetof(wire::node_entry, links), n.links);
    e += sizeof(wire::node_entry);
  }
  for (const group_report& g : s.running()) {
    store(e + offsetof(wire::group_entry, group), g.group);
    e[offsetof(wire::group_entry, state)] = static_cast<uint8_t>(g.state);
    e[offsetof(wire::group_entry, failovers)] = g.failovers;
    e[offsetof(wire::group_entry, intent)] = static_cast<uint8_t>(g.intent);
    e[offsetof(wire::group_entry, target)] = g.target;
    store(e + offsetof(wire::group_entry, reserved), uint16_t{0});
    store(e + offsetof(wire::group_entry, intent_seq), g.intent_seq);
    e += sizeof(wire::group_entry);
  }
  const size_t body = size - heartbeat_tag_size;
  mac({p, body}, std::span<uint8_t, heartbeat_tag_size>(p + body, heartbeat_tag_size));
  return static_cast<int>(size);
}

decode_result heartbeat_codec::decode(std::span<const uint8_t> in, heartbeat& out) const {
  if (in.size() < min_heartbeat_size) return decode_result::too_short;
  const uint8_t* p = in.data();
  if (std::memcmp(p, heartbeat_magic.data(), heartbeat_magic.size()) != 0) {
    return decode_result::bad_magic;
  }
  if (p[TANDEM_HB_AT(version)] != heartbeat_version) return decode_result::bad_version;
  const size_t length = load<uint16_t>(p + TANDEM_HB_AT(length));
  if (length != in.size() || length > max_heartbeat_size) return decode_result::bad_length;

  heartbeat hb;
  hb.flags = p[TANDEM_HB_AT(flags)];
  hb.cluster_id = load<uint64_t>(p + TANDEM_HB_AT(cluster_id));
  hb.incarnation = load<uint64_t>(p + TANDEM_HB_AT(incarnation));
  hb.seq = load<uint64_t>(p + TANDEM_HB_AT(seq));
  hb.sender_time_ns = load<uint64_t>(p + TANDEM_HB_AT(sender_time_ns));
  hb.echo_incarnation = load<uint64_t>(p + TANDEM_HB_AT(echo_incarnation));
  hb.echo_time_ns = load<uint64_t>(p + TANDEM_HB_AT(echo_time_ns));
  hb.echo_hold_ns = load<uint64_t>(p + TANDEM_HB_AT(echo_hold_ns));
  hb.sender_name_hash = load<uint32_t>(p + TANDEM_HB_AT(sender_name_hash));
  hb.sender = p[TANDEM_HB_AT(sender)];
  hb.dest = p[TANDEM_HB_AT(dest)];
  hb.link = p[TANDEM_HB_AT(link)];
  if (hb.cluster_id != cluster_id_) {
    out = hb;
    return decode_result::wrong_cluster;
  }

  const size_t body = length - heartbeat_tag_size;
  std::array<uint8_t, heartbeat_tag_size> tag;
  mac({p, body}, tag);
  if (CRYPTO_memcmp(tag.data(), p + body, tag.size()) != 0) {
    out = hb;
    return decode_result::bad_mac;
  }

  // Authentic from here on: enforce every layout rule. A malformed packet still says who sent it.
  out = hb;
  if (p[TANDEM_HB_AT(reserved)] != 0) return decode_result::malformed;
  const uint8_t* st = p + status_offset;
  const uint8_t state = st[offsetof(wire::status, state)];
  const uint8_t sflags = st[offsetof(wire::status, flags)];
  const size_t node_count = st[offsetof(wire::status, node_count)];
  const size_t group_count = st[offsetof(wire::status, group_count)];
  if (!valid_node_state(state) || (sflags & ~known_status_flags) != 0 || node_count > max_nodes ||
      group_count > max_groups) {
    return decode_result::malformed;
  }
  if (heartbeat_fixed_size + node_count * sizeof(wire::node_entry) +
          group_count * sizeof(wire::group_entry) !=
      length) {
    return decode_result::malformed;
  }
  node_status& s = hb.status;
  s.state = static_cast<node_state>(state);
  s.quorum = (sflags & status_quorum) != 0;
  s.config_digest = load<uint32_t>(st + offsetof(wire::status, config_digest));
  s.node_count = static_cast<uint8_t>(node_count);
  s.group_count = static_cast<uint8_t>(group_count);
  const uint8_t* e = p + entries_offset;
  for (size_t i = 0; i < node_count; ++i, e += sizeof(wire::node_entry)) {
    const uint8_t pstate = e[offsetof(wire::node_entry, state)];
    if (!valid_peer_state(pstate)) return decode_result::malformed;
    s.nodes[i] = {e[offsetof(wire::node_entry, node)], static_cast<peer_state>(pstate),
                  load<uint16_t>(e + offsetof(wire::node_entry, links))};
  }
  for (size_t i = 0; i < group_count; ++i, e += sizeof(wire::group_entry)) {
    const uint8_t gstate = e[offsetof(wire::group_entry, state)];
    const uint8_t intent = e[offsetof(wire::group_entry, intent)];
    if (!valid_group_state(gstate) ||
        load<uint16_t>(e + offsetof(wire::group_entry, reserved)) != 0 ||
        intent > static_cast<uint8_t>(group_intent::move)) {
      return decode_result::malformed;
    }
    group_report& g = s.groups[i];
    g.group = load<uint16_t>(e + offsetof(wire::group_entry, group));
    g.state = static_cast<group_state>(gstate);
    g.failovers = e[offsetof(wire::group_entry, failovers)];
    g.intent = static_cast<group_intent>(intent);
    g.target = e[offsetof(wire::group_entry, target)];
    g.intent_seq = load<uint32_t>(e + offsetof(wire::group_entry, intent_seq));
  }
  if (!valid(hb)) return decode_result::malformed;
  out = hb;
  return decode_result::ok;
}

#undef TANDEM_HB_AT

}  // namespace tandem::ctl::cluster
