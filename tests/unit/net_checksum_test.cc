// SPDX-License-Identifier: Apache-2.0
// Tests for dataplane/net/checksum.h: known answers and a bytewise reference on every length.
#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/net/checksum.h"
#include "tests/oracle/checksum.h"

namespace tandem::dp {
namespace {

uint16_t reference_checksum(std::span<const uint8_t> b) {
  return oracle::rfc1071_checksum(b);
}

TEST(checksum, classic_ipv4_header) {
  // The worked example: 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7.
  std::vector<uint8_t> h = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                            0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(ipv4_checksum(h), 0) << "an intact header sums to zero";
  h[10] = 0;
  h[11] = 0;
  EXPECT_EQ(ipv4_checksum(h), 0xb861);
}

TEST(checksum, rfc1071_example) {
  // RFC 1071 §3: 0001 f203 f4f5 f6f7 sums to ddf2, whose complement is 220d.
  const std::vector<uint8_t> b = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(checksum_add(b), 0xddf2U);
  EXPECT_EQ(ipv4_checksum(b), 0x220d);
}

TEST(checksum, edge_values) {
  EXPECT_EQ(ipv4_checksum({}), 0xffff);
  const std::vector<uint8_t> one = {0x01};
  EXPECT_EQ(ipv4_checksum(one), 0xfeff) << "an odd byte is the high half of a word";
  const std::vector<uint8_t> ones(64, 0xff);
  EXPECT_EQ(checksum_add(ones), 0xffffU);
  EXPECT_EQ(ipv4_checksum(ones), 0x0000);
  EXPECT_EQ(checksum_finish(0x1fffe), 0x0000);
  EXPECT_EQ(checksum_add16(0xffff, 1), 1U);
  EXPECT_EQ(udp_checksum_for_wire(0), 0xffff);
  EXPECT_EQ(udp_checksum_for_wire(0x1234), 0x1234);
}

TEST(checksum, matches_reference_at_every_length_and_alignment) {
  std::vector<uint8_t> buf(300 + 8);
  uint32_t x = 12345;
  for (auto& b : buf) {
    x = x * 1103515245 + 12345;
    b = static_cast<uint8_t>(x >> 16);
  }
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t len = 0; len <= 300; ++len) {
      const std::vector<uint8_t> ref(buf.begin() + static_cast<ptrdiff_t>(offset),
                                     buf.begin() + static_cast<ptrdiff_t>(offset + len));
      const std::span<const uint8_t> view(buf.data() + offset, len);
      ASSERT_EQ(ipv4_checksum(view), reference_checksum(ref)) << offset << "+" << len;
    }
  }
}

TEST(checksum, copy_copies_and_sums_like_add) {
  std::vector<uint8_t> src(200);
  for (size_t i = 0; i < src.size(); ++i)
    src[i] = static_cast<uint8_t>(i * 37 + 11);
  for (size_t offset = 0; offset < 4; ++offset) {
    for (size_t len = 0; len + offset <= src.size(); ++len) {
      const std::span<const uint8_t> in(src.data() + offset, len);
      std::vector<uint8_t> dst(len + 8, 0xee);
      const uint32_t s = checksum_copy(dst.data() + 3, in, 0x1234);
      ASSERT_EQ(s, checksum_add(in, 0x1234)) << offset << "+" << len;
      ASSERT_TRUE(std::equal(in.begin(), in.end(), dst.begin() + 3)) << offset << "+" << len;
      ASSERT_EQ(dst[2], 0xee);
      ASSERT_EQ(dst[3 + len], 0xee);
    }
  }
}

TEST(checksum, chunks_at_even_offsets_compose) {
  std::vector<uint8_t> b(257);
  for (size_t i = 0; i < b.size(); ++i)
    b[i] = static_cast<uint8_t>(i * 7 + 3);
  const std::span<const uint8_t> all(b);
  for (size_t cut = 0; cut <= b.size(); cut += 2) {
    const uint32_t s = checksum_add(all.subspan(cut), checksum_add(all.first(cut)));
    ASSERT_EQ(checksum_finish(s), ipv4_checksum(all)) << cut;
  }
}

TEST(checksum, udp_known_answer) {
  // 10.0.0.1:4791 -> 10.0.0.2:7000 "hello, tandem", computed independently: 0x266c.
  const std::vector<uint8_t> hdr = {0x12, 0xb7, 0x1b, 0x58, 0x00, 0x15, 0x00, 0x00};
  const std::string_view text = "hello, tandem";
  const std::vector<uint8_t> payload(text.begin(), text.end());
  const auto src = ipv4_addr::from_octets(10, 0, 0, 1);
  const auto dst = ipv4_addr::from_octets(10, 0, 0, 2);
  EXPECT_EQ(udp4_checksum(src, dst, 21, hdr, payload), 0x266c);
  std::vector<uint8_t> with = hdr;
  with[6] = 0x26;
  with[7] = 0x6c;
  EXPECT_EQ(udp4_checksum(src, dst, 21, with, payload), 0);
}

}  // namespace
}  // namespace tandem::dp
