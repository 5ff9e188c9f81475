// SPDX-License-Identifier: Apache-2.0
// crc32c (dataplane/crypto/crc32c.h): RFC 3720 vectors, chaining, a bitwise reference.
#include "dataplane/crypto/crc32c.h"

#include <cstdint>
#include <random>
#include <span>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace tandem::dp {
namespace {

// The textbook bit-at-a-time CRC32C, as the oracle.
uint32_t reference_crc32c(std::span<const uint8_t> data, uint32_t crc = 0) {
  uint32_t reg = ~crc;
  for (const uint8_t b : data) {
    reg ^= b;
    for (int i = 0; i < 8; ++i)
      reg = (reg >> 1) ^ (0x82F63B78u & (0u - (reg & 1u)));
  }
  return ~reg;
}

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// RFC 3720 appendix B.4 (also RFC 7143 A.4).
TEST(crc32c, rfc3720_vectors) {
  std::vector<uint8_t> buf(32, 0x00);
  EXPECT_EQ(crc32c(buf), 0x8A9136AAu);
  buf.assign(32, 0xFF);
  EXPECT_EQ(crc32c(buf), 0x62A8AB43u);
  for (size_t i = 0; i < 32; ++i)
    buf[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c(buf), 0x46DD794Eu);
  for (size_t i = 0; i < 32; ++i)
    buf[i] = static_cast<uint8_t>(31 - i);
  EXPECT_EQ(crc32c(buf), 0x113FDB5Cu);

  // An iSCSI SCSI Read (10) command PDU.
  const uint8_t read_cmd[48] = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
      0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  };
  EXPECT_EQ(crc32c(read_cmd), 0xD9963A56u);
}

TEST(crc32c, check_value_and_empty) {
  EXPECT_EQ(crc32c(bytes("123456789")), 0xE3069283u);  // the catalogue's check value
  EXPECT_EQ(crc32c({}), 0u);
  EXPECT_EQ(crc32c({}, 0x12345678u), 0x12345678u);
  EXPECT_EQ(crc32c(bytes("a")), reference_crc32c(bytes("a")));
}

TEST(crc32c, chains_at_every_split) {
  std::vector<uint8_t> data(600);
  std::mt19937 rng(7);
  for (auto& b : data)
    b = static_cast<uint8_t>(rng());
  const std::span<const uint8_t> all(data);
  const uint32_t whole = crc32c(all);
  EXPECT_EQ(whole, reference_crc32c(all));
  for (size_t split = 0; split <= data.size(); ++split) {
    ASSERT_EQ(crc32c(all.subspan(split), crc32c(all.first(split))), whole) << "split " << split;
  }
  // Three pieces.
  EXPECT_EQ(crc32c(all.subspan(400), crc32c(all.subspan(17, 383), crc32c(all.first(17)))), whole);
}

TEST(crc32c, matches_reference_on_random_lengths_and_alignments) {
  std::mt19937 rng(42);
  std::vector<uint8_t> data(70000 + 64);
  for (auto& b : data)
    b = static_cast<uint8_t>(rng());
  std::uniform_int_distribution<size_t> len_dist(0, 70000);
  for (int i = 0; i < 60; ++i) {
    const size_t offset = rng() % 64;
    const size_t len = i < 40 ? static_cast<size_t>(i) : len_dist(rng);
    const std::span<const uint8_t> s(data.data() + offset, len);
    const uint32_t seed = i % 3 == 0 ? 0 : static_cast<uint32_t>(rng());
    ASSERT_EQ(crc32c(s, seed), reference_crc32c(s, seed)) << "len " << len << " offset " << offset;
  }
}

TEST(crc32c, one_mebibyte) {
  std::vector<uint8_t> data(1 << 20);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<uint8_t>(i * 2654435761u >> 24);
  EXPECT_EQ(crc32c(data), reference_crc32c(data));
}

}  // namespace
}  // namespace tandem::dp
