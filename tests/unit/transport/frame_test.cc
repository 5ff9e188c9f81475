// SPDX-License-Identifier: Apache-2.0
// The transport frame codec: round trips of every type, and every way a frame is refused.
#include "dataplane/transport/frame.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include <gtest/gtest.h>

namespace tandem::dp::transport {
namespace {

std::vector<uint8_t> make_frame(frame_header h, const std::vector<uint8_t>& body,
                                const std::vector<uint8_t>& tag = {}) {
  std::vector<uint8_t> f(header_len + body.size() + tag.size());
  std::memcpy(f.data() + header_len, body.data(), body.size());
  if (!tag.empty()) std::memcpy(f.data() + header_len + body.size(), tag.data(), tag.size());
  h.body_len = static_cast<uint16_t>(body.size());
  EXPECT_EQ(finish_frame(f, h), static_cast<int>(f.size()));
  return f;
}

TEST(transport_frame, header_round_trip_and_golden_bytes) {
  frame_header h;
  h.type = frame_type::keepalive;
  h.conn_id = 0x01020304;
  h.pn = 0x1112131415161718ULL;
  std::vector<uint8_t> body(keepalive_body_len);
  ASSERT_EQ(encode_keepalive(body, {7, 9}), static_cast<int>(keepalive_body_len));
  const auto f = make_frame(h, body);
  const uint8_t golden[] = {0x54, 0x44, 1, 6, 0, 0, 0, 16, 1, 2, 3, 4};
  EXPECT_EQ(std::memcmp(f.data(), golden, sizeof golden), 0);
  EXPECT_EQ(f[16], 0x11);
  EXPECT_EQ(f[23], 0x18);
  decoded_frame d;
  ASSERT_EQ(decode_frame(f, d), decode_error::none);
  EXPECT_EQ(d.header.type, frame_type::keepalive);
  EXPECT_EQ(d.header.conn_id, 0x01020304u);
  EXPECT_EQ(d.header.pn, 0x1112131415161718ULL);
  EXPECT_TRUE(d.tag.empty());
  keepalive_body k;
  ASSERT_TRUE(decode_keepalive(d.body, k));
  EXPECT_EQ(k.sent_ns, 7u);
  EXPECT_EQ(k.echo_ns, 9u);
}

TEST(transport_frame, encrypted_frames_carry_a_tag_under_the_crc) {
  frame_header h;
  h.type = frame_type::data;
  h.flags = flag_encrypted;
  const std::vector<uint8_t> body(40, 0xab), tag(tag_len, 0xcd);
  auto f = make_frame(h, body, tag);
  decoded_frame d;
  ASSERT_EQ(decode_frame(f, d), decode_error::none);
  EXPECT_EQ(d.body.size(), 40u);
  ASSERT_EQ(d.tag.size(), tag_len);
  EXPECT_EQ(d.tag[0], 0xcd);
  uint8_t aad[header_len];
  frame_aad(f, aad);
  EXPECT_EQ(std::memcmp(aad, f.data(), 12), 0);
  EXPECT_EQ(aad[12] | aad[13] | aad[14] | aad[15], 0);  // the CRC is not part of the AAD
  EXPECT_EQ(std::memcmp(aad + 16, f.data() + 16, 8), 0);
  f.back() ^= 1;  // the tag is covered by the CRC too
  EXPECT_EQ(decode_frame(f, d), decode_error::bad_crc);
  f.back() ^= 1;
  f[20] ^= 1;  // and so is the header: a flipped packet number is caught
  EXPECT_EQ(decode_frame(f, d), decode_error::bad_crc);
}

TEST(transport_frame, every_refusal_has_its_reason) {
  frame_header h;
  h.type = frame_type::keepalive;
  std::vector<uint8_t> body(keepalive_body_len);
  ASSERT_GT(encode_keepalive(body, {}), 0);
  const auto good = make_frame(h, body);
  decoded_frame d;
  auto check = [&](std::vector<uint8_t> f, decode_error want) {
    EXPECT_EQ(decode_frame(f, d), want) << to_string(want);
  };
  check({}, decode_error::too_short);
  check({good.begin(), good.begin() + header_len - 1}, decode_error::too_short);
  check({good.begin(), good.end() - 1}, decode_error::too_short);
  auto longer = good;
  longer.push_back(0);
  check(longer, decode_error::bad_body);
  auto f = good;
  f[0] = 0;
  check(f, decode_error::bad_magic);
  f = good;
  f[2] = 2;
  check(f, decode_error::bad_version);
  f = good;
  f[3] = 0;
  check(f, decode_error::bad_type);
  f[3] = frame_type_max + 1;
  check(f, decode_error::bad_type);
  f = good;
  f[4] = 0x80;
  check(f, decode_error::bad_flags);
  f = good;
  f[5] = 1;
  check(f, decode_error::bad_flags);
  f = good;
  f[header_len] ^= 0x10;
  check(f, decode_error::bad_crc);
  EXPECT_EQ(to_string(decode_error::bad_crc), "bad_crc");
}

TEST(transport_frame, finish_refuses_small_buffers_and_oversized_frames) {
  frame_header h;
  h.body_len = 100;
  std::vector<uint8_t> small(header_len + 99);
  EXPECT_EQ(finish_frame(small, h), -ENOSPC);
  h.body_len = 65500;
  std::vector<uint8_t> big(header_len + 65500);
  EXPECT_EQ(finish_frame(big, h), -EMSGSIZE);
}

TEST(transport_frame, data_body_round_trip_and_bounds) {
  const std::vector<uint8_t> bytes = {1, 2, 3, 4, 5};
  std::vector<uint8_t> body(data_body_overhead + bytes.size());
  ASSERT_EQ(encode_data(body, {42, 7000, 1000, 995, bytes}), static_cast<int>(body.size()));
  data_body d;
  ASSERT_TRUE(decode_data(body, d));
  EXPECT_EQ(d.msg_id, 42u);
  EXPECT_EQ(d.stream_off, 7000u);
  EXPECT_EQ(d.msg_len, 1000u);
  EXPECT_EQ(d.offset, 995u);
  ASSERT_EQ(d.bytes.size(), 5u);
  EXPECT_EQ(d.bytes[4], 5);
  // Past the end of the message, offset past the end, empty segment of a non-empty message.
  ASSERT_GT(encode_data(body, {42, 0, 999, 995, bytes}), 0);
  EXPECT_FALSE(decode_data(body, d));
  ASSERT_GT(encode_data(body, {42, 0, 10, 11, {}}), 0);
  EXPECT_FALSE(decode_data(std::span<const uint8_t>(body).first(data_body_overhead), d));
  ASSERT_GT(encode_data(body, {42, 0, 10, 0, {}}), 0);
  EXPECT_FALSE(decode_data(std::span<const uint8_t>(body).first(data_body_overhead), d));
  // An empty message is one empty segment.
  ASSERT_GT(encode_data(body, {43, 0, 0, 0, {}}), 0);
  EXPECT_TRUE(decode_data(std::span<const uint8_t>(body).first(data_body_overhead), d));
  EXPECT_FALSE(decode_data(std::span<const uint8_t>(body).first(data_body_overhead - 1), d));
  std::vector<uint8_t> tiny(10);
  EXPECT_EQ(encode_data(tiny, {1, 0, 5, 0, bytes}), -ENOSPC);
}

TEST(transport_frame, ack_ranges_must_be_descending_disjoint_and_merged) {
  ack_body a;
  a.count = 3;
  a.window = 1 << 20;
  a.ack_delay_us = 25;
  a.delivered = 123456;
  a.ranges[0] = {90, 100};
  a.ranges[1] = {50, 80};
  a.ranges[2] = {0, 10};
  std::vector<uint8_t> body(ack_body_fixed + 16 * max_ack_ranges);
  const int len = encode_ack(body, a);
  ASSERT_EQ(len, static_cast<int>(ack_body_fixed + 3 * 16));
  ack_body b;
  ASSERT_TRUE(decode_ack(std::span<const uint8_t>(body).first(len), b));
  EXPECT_EQ(b.largest(), 100u);
  EXPECT_EQ(b.count, 3);
  EXPECT_EQ(b.ranges[1].first, 50u);
  EXPECT_EQ(b.window, 1u << 20);
  EXPECT_EQ(b.delivered, 123456u);
  EXPECT_EQ(b.ack_delay_us, 25u);
  auto refuse = [&](ack_body bad) {
    const int n = encode_ack(body, bad);
    ASSERT_GT(n, 0);
    EXPECT_FALSE(decode_ack(std::span<const uint8_t>(body).first(n), b));
  };
  ack_body adjacent = a;
  adjacent.ranges[1] = {50, 89};  // touches 90: should have been one range
  refuse(adjacent);
  ack_body ascending = a;
  ascending.ranges[2] = {95, 99};
  refuse(ascending);
  ack_body inverted = a;
  inverted.ranges[0] = {100, 90};
  refuse(inverted);
  ack_body none = a;
  none.count = 0;
  refuse(none);
  a.count = max_ack_ranges + 1;
  EXPECT_EQ(encode_ack(body, a), -EINVAL);
  EXPECT_FALSE(decode_ack(std::span<const uint8_t>(body).first(ack_body_fixed - 1), b));
}

TEST(transport_frame, hello_checks_its_fields) {
  hello_body h;
  h.sender_conn_id = 77;
  h.crypto = 1;
  h.key_bytes = 32;
  h.boot_id = 5;
  h.nonce[0] = 0xaa;
  h.proof[31] = 0xbb;
  std::vector<uint8_t> body(hello_body_len);
  ASSERT_EQ(encode_hello(body, h), static_cast<int>(hello_body_len));
  hello_body g;
  ASSERT_TRUE(decode_hello(body, g));
  EXPECT_EQ(g.sender_conn_id, 77u);
  EXPECT_EQ(g.key_bytes, 32);
  EXPECT_EQ(g.boot_id, 5u);
  EXPECT_EQ(g.nonce[0], 0xaa);
  EXPECT_EQ(g.proof[31], 0xbb);
  for (auto [crypto, bytes] : {std::pair{1, 20}, {0, 16}, {2, 16}, {1, 0}}) {
    hello_body bad = h;
    bad.crypto = static_cast<uint8_t>(crypto);
    bad.key_bytes = static_cast<uint8_t>(bytes);
    ASSERT_GT(encode_hello(body, bad), 0);
    EXPECT_FALSE(decode_hello(body, g)) << crypto << "/" << bytes;
  }
  hello_body zero_id = h;
  zero_id.sender_conn_id = 0;
  ASSERT_GT(encode_hello(body, zero_id), 0);
  EXPECT_FALSE(decode_hello(body, g));
  EXPECT_FALSE(decode_hello(std::span<const uint8_t>(body).first(hello_body_len - 1), g));
}

TEST(transport_frame, close_reasons) {
  std::vector<uint8_t> body(close_body_len);
  ASSERT_EQ(encode_close(body, close_reason::wrong_key), 4);
  close_reason r{};
  ASSERT_TRUE(decode_close(body, r));
  EXPECT_EQ(r, close_reason::wrong_key);
  EXPECT_EQ(to_string(r), "wrong key");
  body[1] = 0;
  EXPECT_FALSE(decode_close(body, r));
  body[1] = 7;
  EXPECT_FALSE(decode_close(body, r));
}

// The fuzz seeds were written by an independent CRC32C (tests/fuzz/corpus/transport_frame, see
// docs/transport.md): all but the deliberately broken one must decode.
TEST(transport_frame, independent_encoder_seeds_decode) {
  int decoded = 0;
  for (const auto& e : std::filesystem::directory_iterator(TANDEM_TRANSPORT_CORPUS)) {
    std::ifstream in(e.path(), std::ios::binary);
    const std::vector<uint8_t> f{std::istreambuf_iterator<char>(in), {}};
    decoded_frame d;
    const auto err = decode_frame(f, d);
    if (e.path().filename() == "bad_crc") {
      EXPECT_EQ(err, decode_error::bad_crc);
    } else {
      EXPECT_EQ(err, decode_error::none) << e.path() << ": " << to_string(err);
      ++decoded;
    }
  }
  EXPECT_GE(decoded, 12);
}

}  // namespace
}  // namespace tandem::dp::transport
