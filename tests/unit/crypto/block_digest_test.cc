// SPDX-License-Identifier: Apache-2.0
// Block digests: SHA-256 truncated to 16 bytes per block, the short last block, bad arguments.
#include "dataplane/crypto/block_digest.h"

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tandem::dp {
namespace {

std::string hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

TEST(block_digest, sha256_prefix_per_block_and_a_short_last_block) {
  block_digest d;
  // FIPS 180-2 examples: SHA-256("abc") and SHA-256("") (first 16 bytes).
  const std::string abc = "abc";
  uint8_t out[2 * block_digest_len] = {};
  ASSERT_EQ(d.digest_blocks({reinterpret_cast<const uint8_t*>(abc.data()), abc.size()}, 4096, out),
            1u);
  EXPECT_EQ(hex(out, block_digest_len), "ba7816bf8f01cfea414140de5dae2223");
  // Two blocks of 3: "abc" then "abc" again; 4: "abca" then "bc".
  const std::string twice = "abcabc";
  ASSERT_EQ(d.digest_blocks({reinterpret_cast<const uint8_t*>(twice.data()), twice.size()}, 3, out),
            2u);
  EXPECT_EQ(std::memcmp(out, out + block_digest_len, block_digest_len), 0);
  ASSERT_EQ(d.digest_blocks({reinterpret_cast<const uint8_t*>(twice.data()), twice.size()}, 4, out),
            2u);
  EXPECT_NE(std::memcmp(out, out + block_digest_len, block_digest_len), 0);
  // One byte changed in a 4 KiB block changes its digest only.
  std::vector<uint8_t> data(3 * 4096, 0x5a);
  std::vector<uint8_t> a(3 * block_digest_len), b(3 * block_digest_len);
  ASSERT_EQ(d.digest_blocks(data, 4096, a), 3u);
  data[4096 + 17] ^= 1;
  ASSERT_EQ(d.digest_blocks(data, 4096, b), 3u);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), block_digest_len), 0);
  EXPECT_NE(std::memcmp(a.data() + 16, b.data() + 16, block_digest_len), 0);
  EXPECT_EQ(std::memcmp(a.data() + 32, b.data() + 32, block_digest_len), 0);
}

TEST(block_digest, bad_arguments_write_nothing) {
  block_digest d;
  std::vector<uint8_t> data(8192, 1);
  std::vector<uint8_t> out(block_digest_len, 0xee);  // room for one digest, two needed
  EXPECT_EQ(d.digest_blocks(data, 4096, out), 0u);
  EXPECT_EQ(d.digest_blocks(data, 0, out), 0u);
  EXPECT_EQ(out[0], 0xee);
}

}  // namespace
}  // namespace tandem::dp
