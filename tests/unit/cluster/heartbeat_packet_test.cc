// SPDX-License-Identifier: Apache-2.0
// heartbeat_packet (control/cluster/heartbeat_packet.h): layout, round trips, every decode
// verdict, tampering, and the MAC against OpenSSL's one-shot HMAC() as an independent oracle.
#include "control/cluster/heartbeat_packet.h"

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/sha.h>

namespace tandem::ctl::cluster {
namespace {

std::vector<uint8_t> bytes_of(std::string_view s) {
  return {s.begin(), s.end()};
}

const std::vector<uint8_t> secret = bytes_of("correct horse battery staple 42");
const uint64_t cluster = cluster_id_of("alpha");

template <typename T>
T le(const std::vector<uint8_t>& b, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i)
    v |= uint64_t{b.at(at + i)} << (8 * i);
  return static_cast<T>(v);
}

template <typename T>
void put_le(std::vector<uint8_t>& b, size_t at, T v) {
  for (size_t i = 0; i < sizeof(T); ++i)
    b.at(at + i) = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
}

heartbeat sample(uint8_t nodes = 3, uint8_t groups = 2) {
  heartbeat hb;
  hb.flags = flag_echo;
  hb.incarnation = 0x1122334455667788;
  hb.seq = 4242;
  hb.sender_time_ns = 1'000'000'123;
  hb.echo_incarnation = 0x0102030405060708;
  hb.echo_time_ns = 999'000'000;
  hb.echo_hold_ns = 250'000;
  hb.sender_name_hash = node_name_hash("node-b");
  hb.sender = 1;
  hb.dest = 2;
  hb.link = 1;
  hb.status.state = node_state::online;
  hb.status.quorum = true;
  hb.status.config_digest = 0xdeadbeef;
  for (uint8_t i = 0; i < nodes; ++i) {
    hb.status.nodes[i] = {i, i % 2 == 0 ? peer_state::up : peer_state::down,
                          static_cast<uint16_t>(0x8001 >> (i % 16))};
  }
  hb.status.node_count = nodes;
  for (uint8_t i = 0; i < groups; ++i)
    hb.status.groups[i] = {static_cast<uint16_t>(7 + 300 * i), group_state::online};
  if (groups > 0) {
    // The first group carries a move intent and a failover count.
    hb.status.groups[0].failovers = 1;
    hb.status.groups[0].intent = group_intent::move;
    hb.status.groups[0].target = 2;
    hb.status.groups[0].intent_seq = 0x01020309;
  }
  hb.status.group_count = groups;
  return hb;
}

std::vector<uint8_t> encode(const heartbeat_codec& c, const heartbeat& hb) {
  std::vector<uint8_t> out(max_heartbeat_size);
  const int n = c.encode(hb, out);
  EXPECT_GT(n, 0);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

// Re-signs `b` after a test edited it, so the decoder gets past the MAC to the layout rules.
void resign(const heartbeat_codec& c, std::vector<uint8_t>& b) {
  const size_t body = b.size() - heartbeat_tag_size;
  c.mac({b.data(), body}, std::span<uint8_t, heartbeat_tag_size>(b.data() + body, 32));
}

decode_result decode(const heartbeat_codec& c, const std::vector<uint8_t>& b) {
  heartbeat out;
  return c.decode(b, out);
}

TEST(heartbeat_packet, round_trip) {
  const heartbeat_codec c(secret, cluster);
  for (const heartbeat& hb : {sample(), sample(0, 0), sample(max_nodes, max_groups)}) {
    const std::vector<uint8_t> b = encode(c, hb);
    EXPECT_EQ(b.size(), heartbeat_size(hb));
    heartbeat back;
    ASSERT_EQ(c.decode(b, back), decode_result::ok);
    heartbeat expect = hb;
    expect.cluster_id = cluster;
    EXPECT_EQ(back, expect);
    EXPECT_EQ(encode(c, back), b);  // one encoding per value
  }
  EXPECT_EQ(encode(c, sample(0, 0)).size(), min_heartbeat_size);
  EXPECT_EQ(encode(c, sample(max_nodes, max_groups)).size(), max_heartbeat_size);
}

TEST(heartbeat_packet, round_trip_without_echo) {
  const heartbeat_codec c(secret, cluster);
  heartbeat hb = sample();
  hb.flags = 0;
  hb.echo_incarnation = hb.echo_time_ns = hb.echo_hold_ns = 0;
  hb.status.quorum = false;
  heartbeat back;
  ASSERT_EQ(c.decode(encode(c, hb), back), decode_result::ok);
  EXPECT_EQ(back.flags, 0);
  EXPECT_FALSE(back.status.quorum);
}

// The documented wire layout, byte by byte.
TEST(heartbeat_packet, layout_is_little_endian_at_documented_offsets) {
  const heartbeat_codec c(secret, cluster);
  const heartbeat hb = sample();
  const std::vector<uint8_t> b = encode(c, hb);
  ASSERT_EQ(b.size(), 72u + 8 + 3 * 4 + 2 * 12 + 32);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "TDHB");
  EXPECT_EQ(b[4], 2);
  EXPECT_EQ(b[5], flag_echo);
  EXPECT_EQ(le<uint16_t>(b, 6), b.size());
  EXPECT_EQ(le<uint64_t>(b, 8), cluster);
  EXPECT_EQ(le<uint64_t>(b, 16), hb.incarnation);
  EXPECT_EQ(b[16], 0x88);  // little-endian
  EXPECT_EQ(le<uint64_t>(b, 24), hb.seq);
  EXPECT_EQ(le<uint64_t>(b, 32), hb.sender_time_ns);
  EXPECT_EQ(le<uint64_t>(b, 40), hb.echo_incarnation);
  EXPECT_EQ(le<uint64_t>(b, 48), hb.echo_time_ns);
  EXPECT_EQ(le<uint64_t>(b, 56), hb.echo_hold_ns);
  EXPECT_EQ(le<uint32_t>(b, 64), hb.sender_name_hash);
  EXPECT_EQ(b[68], 1);  // sender
  EXPECT_EQ(b[69], 2);  // dest
  EXPECT_EQ(b[70], 1);  // link
  EXPECT_EQ(b[71], 0);  // reserved
  EXPECT_EQ(b[72], static_cast<uint8_t>(node_state::online));
  EXPECT_EQ(b[73], status_quorum);
  EXPECT_EQ(b[74], 3);  // node count
  EXPECT_EQ(b[75], 2);  // group count
  EXPECT_EQ(le<uint32_t>(b, 76), 0xdeadbeefu);
  EXPECT_EQ(b[80], 0);  // node 0 ...
  EXPECT_EQ(b[81], static_cast<uint8_t>(peer_state::up));
  EXPECT_EQ(le<uint16_t>(b, 82), 0x8001);
  EXPECT_EQ(b[84], 1);  // node 1
  EXPECT_EQ(b[85], static_cast<uint8_t>(peer_state::down));
  EXPECT_EQ(le<uint16_t>(b, 92), 7);  // group 7 after three node entries
  EXPECT_EQ(b[94], static_cast<uint8_t>(group_state::online));
  EXPECT_EQ(b[95], 1);  // failovers
  EXPECT_EQ(b[96], static_cast<uint8_t>(group_intent::move));
  EXPECT_EQ(b[97], 2);                           // target node
  EXPECT_EQ(le<uint16_t>(b, 98), 0);             // reserved
  EXPECT_EQ(le<uint32_t>(b, 100), 0x01020309u);  // intent seq
  EXPECT_EQ(le<uint16_t>(b, 104), 307);          // the next group entry, 12 bytes on
}

// The tag is HMAC-SHA256 over everything before it, keyed with HKDF-SHA256(secret, no salt,
// label || cluster id LE): recomputed here with other OpenSSL APIs (EVP_PKEY_HKDF, HMAC()).
TEST(heartbeat_packet, mac_matches_independent_hkdf_and_hmac) {
  const heartbeat_codec c(secret, cluster);
  const std::vector<uint8_t> b = encode(c, sample());

  std::vector<uint8_t> info = bytes_of("tandem v1 heartbeat hmac-sha256");
  for (int i = 0; i < 8; ++i)
    info.push_back(static_cast<uint8_t>(cluster >> (8 * i)));
  std::array<uint8_t, 32> key{};
  size_t key_len = key.size();
  const std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> kctx(
      EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr), EVP_PKEY_CTX_free);
  ASSERT_TRUE(kctx);
  ASSERT_EQ(EVP_PKEY_derive_init(kctx.get()), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_hkdf_md(kctx.get(), EVP_sha256()), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set1_hkdf_key(kctx.get(), secret.data(), static_cast<int>(secret.size())),
            1);
  ASSERT_EQ(EVP_PKEY_CTX_add1_hkdf_info(kctx.get(), info.data(), static_cast<int>(info.size())), 1);
  ASSERT_EQ(EVP_PKEY_derive(kctx.get(), key.data(), &key_len), 1);
  ASSERT_EQ(key_len, 32u);

  std::array<uint8_t, 32> tag{};
  unsigned int tag_len = 0;
  const size_t body = b.size() - heartbeat_tag_size;
  ASSERT_NE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), b.data(), body, tag.data(),
                 &tag_len),
            nullptr);
  ASSERT_EQ(tag_len, 32u);
  EXPECT_EQ(std::memcmp(tag.data(), b.data() + body, 32), 0);

  std::array<uint8_t, 32> via_api{};
  c.mac({b.data(), body}, via_api);
  EXPECT_EQ(via_api, tag);
}

TEST(heartbeat_packet, cluster_id_and_name_hash_are_sha256_prefixes) {
  const auto oracle = [](std::string_view domain, std::string_view name) {
    std::string in(domain);
    in.push_back('\0');
    in.append(name);
    std::array<uint8_t, SHA256_DIGEST_LENGTH> d{};
    SHA256(reinterpret_cast<const uint8_t*>(in.data()), in.size(), d.data());
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= uint64_t{d[i]} << (8 * i);
    return v;
  };
  EXPECT_EQ(cluster_id_of("alpha"), oracle("tandem cluster v1", "alpha"));
  EXPECT_EQ(node_name_hash("node-b"), static_cast<uint32_t>(oracle("tandem node v1", "node-b")));
  EXPECT_NE(cluster_id_of("alpha"), cluster_id_of("beta"));
  EXPECT_NE(node_name_hash("node-a"), node_name_hash("node-b"));
  EXPECT_EQ(group_id_of("web"), static_cast<uint16_t>(oracle("tandem group v1", "web")));
  EXPECT_NE(group_id_of("web"), group_id_of("db"));
}

TEST(heartbeat_packet, short_secret_is_refused) {
  EXPECT_THROW(heartbeat_codec(bytes_of("fifteen bytes!!"), cluster), std::invalid_argument);
  EXPECT_NO_THROW(heartbeat_codec(bytes_of("sixteen bytes!!!"), cluster));
}

TEST(heartbeat_packet, too_short) {
  const heartbeat_codec c(secret, cluster);
  std::vector<uint8_t> b = encode(c, sample(0, 0));
  EXPECT_EQ(decode(c, {}), decode_result::too_short);
  b.pop_back();
  EXPECT_EQ(decode(c, b), decode_result::too_short);
}

TEST(heartbeat_packet, bad_magic_and_version) {
  const heartbeat_codec c(secret, cluster);
  std::vector<uint8_t> b = encode(c, sample());
  b[0] = 'X';
  EXPECT_EQ(decode(c, b), decode_result::bad_magic);
  b = encode(c, sample());
  b[4] = 3;
  EXPECT_EQ(decode(c, b), decode_result::bad_version);
  b[4] = 0;
  EXPECT_EQ(decode(c, b), decode_result::bad_version);
}

TEST(heartbeat_packet, bad_length) {
  const heartbeat_codec c(secret, cluster);
  std::vector<uint8_t> b = encode(c, sample());
  b.push_back(0);  // trailing byte: datagram longer than the length field
  EXPECT_EQ(decode(c, b), decode_result::bad_length);
  b = encode(c, sample());
  put_le<uint16_t>(b, 6, static_cast<uint16_t>(b.size() - 4));
  EXPECT_EQ(decode(c, b), decode_result::bad_length);
  // Consistent length field, but above the maximum.
  std::vector<uint8_t> big = encode(c, sample(max_nodes, max_groups));
  big.resize(max_heartbeat_size + 4);
  put_le<uint16_t>(big, 6, static_cast<uint16_t>(big.size()));
  EXPECT_EQ(decode(c, big), decode_result::bad_length);
}

TEST(heartbeat_packet, wrong_cluster_reports_the_claimed_header) {
  const heartbeat_codec ours(secret, cluster);
  const heartbeat_codec theirs(secret, cluster_id_of("beta"));
  heartbeat out;
  EXPECT_EQ(ours.decode(encode(theirs, sample()), out), decode_result::wrong_cluster);
  EXPECT_EQ(out.cluster_id, cluster_id_of("beta"));
  EXPECT_EQ(out.sender, 1);
}

TEST(heartbeat_packet, wrong_secret_is_bad_mac) {
  const heartbeat_codec ours(secret, cluster);
  const heartbeat_codec other(bytes_of("another secret, same cluster"), cluster);
  heartbeat out;
  EXPECT_EQ(ours.decode(encode(other, sample()), out), decode_result::bad_mac);
  EXPECT_EQ(out.sender, 1);  // unauthenticated, but says who the sender claims to be
  EXPECT_EQ(out.sender_name_hash, node_name_hash("node-b"));
  EXPECT_EQ(out.status.node_count, 0);  // the payload is never parsed
}

// Flipping any bit anywhere is refused; past the fields checked before the MAC it is bad_mac.
TEST(heartbeat_packet, any_tampered_byte_is_refused) {
  const heartbeat_codec c(secret, cluster);
  const std::vector<uint8_t> good = encode(c, sample(max_nodes, 5));
  ASSERT_EQ(decode(c, good), decode_result::ok);
  const size_t checked_before_mac = 16;  // magic, version, length, cluster id (not flags)
  for (size_t i = 0; i < good.size(); ++i) {
    for (const uint8_t bit : {0x01, 0x80}) {
      std::vector<uint8_t> b = good;
      b[i] ^= bit;
      const decode_result r = decode(c, b);
      EXPECT_NE(r, decode_result::ok) << "byte " << i;
      if (i >= checked_before_mac || i == 5) {
        EXPECT_EQ(r, decode_result::bad_mac) << "byte " << i;
      }
    }
  }
}

// Authentic packets that break a layout rule: each edit is re-signed so only the rule fails.
TEST(heartbeat_packet, malformed_authentic_packets) {
  const heartbeat_codec c(secret, cluster);
  const std::vector<uint8_t> good = encode(c, sample());
  struct edit_case {
    const char* what;
    size_t at;
    uint8_t value;
  };
  const edit_case cases[] = {
      {"unknown header flag", 5, 0x03},
      {"reserved header byte", 71, 1},
      {"sender id out of range", 68, max_nodes},
      {"dest id out of range", 69, 200},
      {"link out of range", 70, max_links},
      {"node state 0", 72, 0},
      {"node state 5", 72, 5},
      {"unknown status flag", 73, 0x02},
      {"node count past the packet", 74, 4},
      {"node count above the maximum", 74, 40},
      {"group count past the packet", 75, 3},
      {"node entry id out of range", 80, max_nodes},
      {"node entry ids not increasing", 84, 0},
      {"peer state 3", 81, 3},
      {"group state 5", 94, 5},
      {"group intent 4", 96, 4},
      {"group reserved bytes", 98, 1},
      {"target without a move intent", 109, 1},
      {"intent seq without an intent", 112, 1},
      {"move target out of range", 97, max_nodes},
      {"group ids not increasing", 104, 7},
  };
  for (const edit_case& e : cases) {
    std::vector<uint8_t> b = good;
    b.at(e.at) = e.value;
    if (e.at == 104) b.at(105) = 0;
    resign(c, b);
    heartbeat out;
    EXPECT_EQ(c.decode(b, out), decode_result::malformed) << e.what;
    EXPECT_EQ(out.sender, b[68]) << e.what;  // an authentic malformed packet names its sender
  }
  // Echo fields without flag_echo.
  std::vector<uint8_t> b = good;
  b[5] = 0;
  resign(c, b);
  EXPECT_EQ(decode(c, b), decode_result::malformed);
  put_le<uint64_t>(b, 40, 0);
  put_le<uint64_t>(b, 48, 0);
  put_le<uint64_t>(b, 56, 0);
  resign(c, b);
  EXPECT_EQ(decode(c, b), decode_result::ok);
}

TEST(heartbeat_packet, encode_refuses_what_decode_would_refuse) {
  const heartbeat_codec c(secret, cluster);
  std::vector<uint8_t> out(max_heartbeat_size);
  heartbeat hb = sample();
  hb.status.nodes[1].node = 0;  // not increasing
  EXPECT_EQ(c.encode(hb, out), -EINVAL);
  hb = sample();
  hb.flags = 0;  // echo fields set without the flag
  EXPECT_EQ(c.encode(hb, out), -EINVAL);
  hb = sample();
  hb.status.node_count = max_nodes + 1;
  EXPECT_EQ(c.encode(hb, out), -EINVAL);
  hb = sample();
  hb.link = max_links;
  EXPECT_EQ(c.encode(hb, out), -EINVAL);
  hb = sample();
  hb.status.groups[1].group = hb.status.groups[0].group;
  EXPECT_EQ(c.encode(hb, out), -EINVAL);
  hb = sample();
  hb.status.state = static_cast<node_state>(9);
  EXPECT_EQ(c.encode(hb, out), -EINVAL);
  hb = sample();
  std::vector<uint8_t> small(heartbeat_size(hb) - 1);
  EXPECT_EQ(c.encode(hb, small), -EMSGSIZE);
}

TEST(heartbeat_packet, codec_moves) {
  heartbeat_codec a(secret, cluster);
  const std::vector<uint8_t> b = encode(a, sample());
  heartbeat_codec moved(std::move(a));
  EXPECT_EQ(decode(moved, b), decode_result::ok);
  heartbeat_codec other(bytes_of("yet another cluster secret"), cluster_id_of("x"));
  other = std::move(moved);
  EXPECT_EQ(other.cluster_id(), cluster);
  EXPECT_EQ(decode(other, b), decode_result::ok);
}

TEST(heartbeat_packet, names) {
  EXPECT_EQ(to_string(decode_result::bad_mac), "authentication failed");
  EXPECT_EQ(to_string(node_state::leaving), "leaving");
  EXPECT_EQ(to_string(peer_state::down), "down");
  EXPECT_EQ(to_string(group_state::failed), "failed");
  EXPECT_EQ(to_string(group_intent::move), "move");
  EXPECT_EQ(to_string(group_intent::none), "none");
}

}  // namespace
}  // namespace tandem::ctl::cluster
