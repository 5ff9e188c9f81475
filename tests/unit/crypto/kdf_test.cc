// SPDX-License-Identifier: Apache-2.0
// kdf (dataplane/crypto/kdf.h): HKDF-SHA256 RFC 5869 vectors, session keys, GCM nonces.
#include "dataplane/crypto/kdf.h"

#include <array>
#include <cerrno>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/crypto/aead.h"
#include "tests/unit/crypto/test_util.h"

namespace tandem::dp {
namespace {

using test::from_hex;
using test::to_hex;

std::vector<uint8_t> range(unsigned first, unsigned last) {
  std::vector<uint8_t> v;
  for (unsigned i = first; i <= last; ++i)
    v.push_back(static_cast<uint8_t>(i));
  return v;
}

std::vector<uint8_t> hkdf(std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
                          std::span<const uint8_t> info, size_t len) {
  std::vector<uint8_t> out(len);
  hkdf_sha256(ikm, salt, info, out);
  return out;
}

std::span<const uint8_t> text(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// RFC 5869 appendix A.1: basic test case with SHA-256.
TEST(hkdf_sha256, rfc5869_case_1) {
  const std::vector<uint8_t> ikm(22, 0x0b);
  EXPECT_EQ(to_hex(hkdf(ikm, range(0x00, 0x0c), range(0xf0, 0xf9), 42)),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
            "34007208d5b887185865");
}

// A.2: longer inputs and outputs.
TEST(hkdf_sha256, rfc5869_case_2) {
  EXPECT_EQ(to_hex(hkdf(range(0x00, 0x4f), range(0x60, 0xaf), range(0xb0, 0xff), 82)),
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
            "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
            "cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

// A.3: zero-length salt and info.
TEST(hkdf_sha256, rfc5869_case_3) {
  const std::vector<uint8_t> ikm(22, 0x0b);
  EXPECT_EQ(to_hex(hkdf(ikm, {}, {}, 42)),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
            "9d201395faa4b61a96c8");
  // An empty salt is the same as HashLen zero bytes.
  const std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(hkdf(ikm, zeros, {}, 42), hkdf(ikm, {}, {}, 42));
}

TEST(hkdf_sha256, output_size_limits) {
  const std::vector<uint8_t> ikm(16, 1);
  EXPECT_NO_THROW(hkdf(ikm, {}, {}, size_t{255} * 32));
  EXPECT_THROW(hkdf(ikm, {}, {}, size_t{255} * 32 + 1), std::runtime_error);
  EXPECT_THROW(hkdf(ikm, {}, {}, 0), std::runtime_error);
}

std::array<uint8_t, handshake_nonce_size> nonce(uint8_t seed) {
  std::array<uint8_t, handshake_nonce_size> n{};
  for (size_t i = 0; i < n.size(); ++i)
    n[i] = static_cast<uint8_t>(static_cast<size_t>(seed) * 31 + i);
  return n;
}

bool same(const direction_keys& a, const direction_keys& b) {
  return to_hex(a.key()) == to_hex(b.key()) && a.salt == b.salt;
}

TEST(session_keys, mirrored_between_roles) {
  for (const size_t len : {16u, 24u, 32u}) {
    const std::vector<uint8_t> psk(len, 0x5a);
    const auto ni = nonce(1);
    const auto nr = nonce(2);
    const session_keys i = derive_session_keys(psk, ni, nr, handshake_role::initiator);
    const session_keys r = derive_session_keys(psk, ni, nr, handshake_role::responder);
    EXPECT_EQ(i.tx.key_size, len);
    EXPECT_EQ(i.rx.key().size(), len);
    EXPECT_TRUE(same(i.tx, r.rx));
    EXPECT_TRUE(same(i.rx, r.tx));
    EXPECT_FALSE(same(i.tx, i.rx));
    EXPECT_NE(to_hex(i.tx.key()), to_hex(psk)) << "the static key is never used directly";
  }
}

TEST(session_keys, follow_the_documented_labels) {
  const std::vector<uint8_t> psk = from_hex("000102030405060708090a0b0c0d0e0f");
  const auto ni = nonce(3);
  const auto nr = nonce(4);
  std::vector<uint8_t> salt(ni.begin(), ni.end());
  salt.insert(salt.end(), nr.begin(), nr.end());
  const session_keys i = derive_session_keys(psk, ni, nr, handshake_role::initiator);
  EXPECT_EQ(to_hex(i.tx.key()), to_hex(hkdf(psk, salt, text("tandem v1 i2r key"), 16)));
  EXPECT_EQ(to_hex(i.rx.key()), to_hex(hkdf(psk, salt, text("tandem v1 r2i key"), 16)));
  EXPECT_EQ(to_hex(i.tx.salt), to_hex(hkdf(psk, salt, text("tandem v1 i2r salt"), 4)));
  EXPECT_EQ(to_hex(i.rx.salt), to_hex(hkdf(psk, salt, text("tandem v1 r2i salt"), 4)));
}

TEST(session_keys, differ_for_other_nonces_or_keys) {
  const std::vector<uint8_t> psk(32, 7);
  const session_keys base = derive_session_keys(psk, nonce(1), nonce(2), handshake_role::initiator);
  const session_keys new_i =
      derive_session_keys(psk, nonce(9), nonce(2), handshake_role::initiator);
  const session_keys new_r =
      derive_session_keys(psk, nonce(1), nonce(9), handshake_role::initiator);
  const session_keys swapped =
      derive_session_keys(psk, nonce(2), nonce(1), handshake_role::initiator);
  std::vector<uint8_t> other_psk = psk;
  other_psk[31] ^= 1;
  const session_keys other =
      derive_session_keys(other_psk, nonce(1), nonce(2), handshake_role::initiator);
  for (const session_keys* k : {&new_i, &new_r, &swapped, &other}) {
    EXPECT_NE(to_hex(k->tx.key()), to_hex(base.tx.key()));
    EXPECT_NE(to_hex(k->rx.key()), to_hex(base.rx.key()));
    EXPECT_NE(to_hex(k->tx.salt), to_hex(base.tx.salt));
  }
}

TEST(session_keys, random_nonces_give_fresh_keys) {
  const std::vector<uint8_t> psk(32, 9);
  std::array<uint8_t, handshake_nonce_size> a{}, b{}, c{}, d{};
  random_bytes(a);
  random_bytes(b);
  random_bytes(c);
  random_bytes(d);
  EXPECT_NE(a, b);
  const session_keys s1 = derive_session_keys(psk, a, b, handshake_role::initiator);
  const session_keys s2 = derive_session_keys(psk, c, d, handshake_role::initiator);
  EXPECT_NE(to_hex(s1.tx.key()), to_hex(s2.tx.key()));
}

TEST(session_keys, refuse_bad_static_key_sizes) {
  for (const size_t len : {0u, 15u, 20u, 33u}) {
    const std::vector<uint8_t> psk(len, 1);
    EXPECT_THROW((void)derive_session_keys(psk, nonce(1), nonce(2), handshake_role::initiator),
                 std::runtime_error);
  }
}

TEST(gcm_nonce, salt_then_big_endian_packet_number) {
  const std::array<uint8_t, gcm_salt_size> salt = {0xde, 0xad, 0xbe, 0xef};
  std::array<uint8_t, aead_nonce_size> out{};
  make_gcm_nonce(salt, 0x0102030405060708ull, out);
  EXPECT_EQ(to_hex(out), "deadbeef0102030405060708");
  make_gcm_nonce(salt, 0, out);
  EXPECT_EQ(to_hex(out), "deadbeef0000000000000000");
  make_gcm_nonce(salt, ~0ull, out);
  EXPECT_EQ(to_hex(out), "deadbeefffffffffffffffff");
}

// What the transport does: each side seals with its tx keys, the other opens with its rx keys.
TEST(session_keys, end_to_end_with_aead) {
  const std::vector<uint8_t> psk(32, 0x33);
  std::array<uint8_t, handshake_nonce_size> ni{}, nr{};
  random_bytes(ni);
  random_bytes(nr);
  const session_keys i = derive_session_keys(psk, ni, nr, handshake_role::initiator);
  const session_keys r = derive_session_keys(psk, ni, nr, handshake_role::responder);
  auto i_tx = make_aead(best_aead_backend(), i.tx.key());
  auto r_rx = make_aead(aead_backend::openssl, r.rx.key());
  auto r_tx = make_aead(best_aead_backend(), r.tx.key());

  const std::vector<uint8_t> header = from_hex("0100000000000007");
  std::vector<uint8_t> msg(1000, 0x42);
  std::array<uint8_t, aead_tag_size> tag{};
  std::array<uint8_t, aead_nonce_size> n{};
  make_gcm_nonce(i.tx.salt, 7, n);
  ASSERT_EQ(i_tx->seal(n, header, msg, msg, tag), 0);

  std::vector<uint8_t> out(msg.size());
  std::array<uint8_t, aead_nonce_size> rn{};
  make_gcm_nonce(r.rx.salt, 7, rn);
  ASSERT_EQ(r_rx->open(rn, header, msg, out, tag), 0);
  EXPECT_EQ(out, std::vector<uint8_t>(1000, 0x42));
  // The responder's own tx key cannot open what the initiator sent (distinct directions).
  make_gcm_nonce(r.tx.salt, 7, rn);
  EXPECT_EQ(r_tx->open(rn, header, msg, out, tag), -EBADMSG);
}

}  // namespace
}  // namespace tandem::dp
