// SPDX-License-Identifier: Apache-2.0
// The mirror protocol codec: every message round-trips, sizes are exact, and the decoder refuses
// unknown types, stray flags, non-zero reserved bytes, bad enums, lengths and statuses.
#include "dataplane/mirror/protocol.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tandem::dp::mirror {
namespace {

std::vector<uint8_t> buf(size_t n = 64 * 1024) {
  return std::vector<uint8_t>(n, 0xee);
}

hello_msg sample_hello() {
  hello_msg h;
  h.node_id = 7;
  for (size_t i = 0; i < h.uuid.size(); ++i)
    h.uuid[i] = static_cast<uint8_t>(i * 17 + 1);
  h.volume_size = 1ULL << 40;
  h.block_size = 4096;
  h.bitmap_granularity = 65536;
  h.role = volume::role::primary;
  h.disk = volume::disk_state::up_to_date;
  h.flags = hf_crashed_primary | hf_auto_resync;
  h.gen = {0x1111, 0x2222, {0x3333, 0x4444}};
  h.dirty_bytes = 123456;
  h.recv_slots = 256;
  h.recv_pages = 1024;
  h.page_size = 16384;
  h.max_io = 1 << 20;
  h.primary_since = 1'700'000'000'123'456'789ULL;
  h.policy = split_brain_policy::discard_least_changes;
  return h;
}

TEST(mirror_protocol, hello_round_trip_and_exact_size) {
  auto b = buf();
  const hello_msg h = sample_hello();
  const int len = encode_hello(b, h);
  ASSERT_EQ(len, static_cast<int>(hello_len));
  message m;
  ASSERT_EQ(decode({b.data(), static_cast<size_t>(len)}, m), decode_status::ok);
  EXPECT_EQ(m.type, msg_type::hello);
  EXPECT_EQ(m.hello, h);
  // One byte more or less is refused.
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(len) + 1}, m), decode_status::bad_length);
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(len) - 1}, m), decode_status::bad_length);
  // Little-endian on the wire: the node id's low byte first (header 4, version 2, reserved 2).
  EXPECT_EQ(b[8], 7);
  EXPECT_EQ(b[9], 0);
}

TEST(mirror_protocol, hello_of_another_version_reports_it) {
  auto b = buf();
  hello_msg h = sample_hello();
  const int len = encode_hello(b, h);
  b[4] = 4;  // version 4
  message m;
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(len)}, m), decode_status::bad_version);
  EXPECT_EQ(m.type, msg_type::hello);
  EXPECT_EQ(m.hello.version, 4);
  // A future version may be longer: still reported as a version mismatch.
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(len) + 40}, m), decode_status::bad_version);
}

TEST(mirror_protocol, hello_field_checks) {
  auto b = buf();
  const int len = encode_hello(b, sample_hello());
  message m;
  auto with = [&](size_t at, uint8_t v) {
    auto c = b;
    c[at] = v;
    return decode({c.data(), static_cast<size_t>(len)}, m);
  };
  EXPECT_EQ(with(6, 1), decode_status::bad_reserved);    // reserved after version
  EXPECT_EQ(with(4 + 40, 2), decode_status::bad_field);  // role
  EXPECT_EQ(with(4 + 41, 4), decode_status::bad_field);  // disk state
  EXPECT_EQ(with(4 + 42, 1), decode_status::bad_reserved);
  EXPECT_EQ(with(4 + 45, 0x01), decode_status::bad_field);  // unknown hello flag (bit 8)
  EXPECT_EQ(with(4 + 112, 4), decode_status::bad_field);    // split-brain policy
  EXPECT_EQ(with(4 + 113, 1), decode_status::bad_reserved);
  EXPECT_EQ(with(4 + 119, 1), decode_status::bad_reserved);
  EXPECT_EQ(with(1, 1), decode_status::bad_flags);     // header flags
  EXPECT_EQ(with(2, 1), decode_status::bad_reserved);  // header reserved
}

TEST(mirror_protocol, io_messages_round_trip) {
  auto b = buf();
  for (msg_type t :
       {msg_type::write, msg_type::discard, msg_type::write_zeroes, msg_type::resync_data}) {
    io_msg io{0x1234567890ULL, 1ULL << 33, t == msg_type::write ? 65536u : 8192u,
              t == msg_type::write};
    const int len = encode_io(b, t, io);
    ASSERT_EQ(len, static_cast<int>(io_len));
    message m;
    ASSERT_EQ(decode({b.data(), io_len}, m), decode_status::ok) << to_string(t);
    EXPECT_EQ(m.type, t);
    EXPECT_EQ(m.io, io);
  }
}

TEST(mirror_protocol, io_message_checks) {
  auto b = buf();
  message m;
  io_msg io{1, 4096, 4096, false};
  // FUA only on writes.
  encode_io(b, msg_type::write, io);
  b[1] = msg_flag_fua;
  EXPECT_EQ(decode({b.data(), io_len}, m), decode_status::ok);
  EXPECT_TRUE(m.io.fua);
  encode_io(b, msg_type::discard, io);
  b[1] = msg_flag_fua;
  EXPECT_EQ(decode({b.data(), io_len}, m), decode_status::bad_flags);
  // Compressed data on resync_data and writes (with FUA too), never on data-less messages.
  encode_io(b, msg_type::resync_data, io);
  b[1] = msg_flag_compressed;
  EXPECT_EQ(decode({b.data(), io_len}, m), decode_status::ok);
  EXPECT_TRUE(m.io.compressed);
  encode_io(b, msg_type::write, io);
  b[1] = msg_flag_compressed | msg_flag_fua;
  EXPECT_EQ(decode({b.data(), io_len}, m), decode_status::ok);
  EXPECT_TRUE(m.io.compressed);
  EXPECT_TRUE(m.io.fua);
  io_msg both = io;
  both.fua = true;
  both.compressed = true;
  encode_io(b, msg_type::write, both);
  EXPECT_EQ(b[1], msg_flag_compressed | msg_flag_fua);
  encode_io(b, msg_type::write_zeroes, io);
  b[1] = msg_flag_compressed;
  EXPECT_EQ(decode({b.data(), io_len}, m), decode_status::bad_flags);
  // Zero length, data too long, overflowing range.
  io.length = 0;
  encode_io(b, msg_type::write, io);
  EXPECT_EQ(decode({b.data(), io_len}, m), decode_status::bad_field);
  io.length = max_data_len + 1;
  encode_io(b, msg_type::resync_data, io);
  EXPECT_EQ(decode({b.data(), io_len}, m), decode_status::bad_field);
  io.length = max_data_len + 1;  // fine for a discard
  encode_io(b, msg_type::discard, io);
  EXPECT_EQ(decode({b.data(), io_len}, m), decode_status::ok);
  io.length = max_zero_len + 1;
  encode_io(b, msg_type::write_zeroes, io);
  EXPECT_EQ(decode({b.data(), io_len}, m), decode_status::bad_field);
  io.offset = UINT64_MAX - 100;
  io.length = 4096;
  encode_io(b, msg_type::write, io);
  EXPECT_EQ(decode({b.data(), io_len}, m), decode_status::bad_field);
  // Truncated and padded.
  io = {1, 0, 4096, false};
  encode_io(b, msg_type::write, io);
  EXPECT_EQ(decode({b.data(), io_len - 1}, m), decode_status::too_short);
  EXPECT_EQ(decode({b.data(), io_len + 1}, m), decode_status::bad_length);
}

TEST(mirror_protocol, flush_ack_and_status_range) {
  auto b = buf();
  message m;
  ASSERT_EQ(encode_flush(b, 99), static_cast<int>(flush_len));
  ASSERT_EQ(decode({b.data(), flush_len}, m), decode_status::ok);
  EXPECT_EQ(m.type, msg_type::flush);
  EXPECT_EQ(m.seq, 99u);
  for (msg_type t : {msg_type::ack, msg_type::resync_ack}) {
    for (int status : {0, -EIO, -4095}) {
      const ack_msg a{77, status};
      ASSERT_EQ(encode_ack(b, t, a), static_cast<int>(ack_len));
      ASSERT_EQ(decode({b.data(), ack_len}, m), decode_status::ok);
      EXPECT_EQ(m.type, t);
      EXPECT_EQ(m.ack, a);
    }
    for (int status : {1, -4096}) {
      encode_ack(b, t, {1, status});
      EXPECT_EQ(decode({b.data(), ack_len}, m), decode_status::bad_field) << status;
    }
    encode_ack(b, t, {1, 0});
    b[ack_len - 1] = 1;  // reserved
    EXPECT_EQ(decode({b.data(), ack_len}, m), decode_status::bad_reserved);
  }
}

TEST(mirror_protocol, bitmap_messages) {
  auto b = buf();
  std::vector<uint8_t> words(3 * 8);
  for (size_t i = 0; i < words.size(); ++i)
    words[i] = static_cast<uint8_t>(i + 1);
  const int len = encode_bitmap(b, 512, words);
  ASSERT_EQ(len, static_cast<int>(bitmap_header_len + 24));
  message m;
  ASSERT_EQ(decode({b.data(), static_cast<size_t>(len)}, m), decode_status::ok);
  EXPECT_EQ(m.bitmap.first_word, 512u);
  EXPECT_EQ(m.bitmap.count, 3u);
  EXPECT_EQ(m.bitmap.word(0), 0x0807060504030201ULL);
  // The count must match the length.
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(len) - 8}, m), decode_status::bad_length);
  // count 0 and too many words are refused.
  auto c = b;
  c[12] = 0;
  EXPECT_EQ(decode({c.data(), bitmap_header_len}, m), decode_status::bad_field);
  std::vector<uint8_t> big((max_bitmap_words + 1) * 8, 0);
  auto bb = buf(bitmap_header_len + big.size());
  const int blen = encode_bitmap(bb, 0, big);
  EXPECT_EQ(decode({bb.data(), static_cast<size_t>(blen)}, m), decode_status::bad_field);
  // A first word that overflows.
  const int olen = encode_bitmap(b, UINT64_MAX - 1, words);
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(olen)}, m), decode_status::bad_field);

  ASSERT_EQ(encode_bitmap_done(b, 42), static_cast<int>(bitmap_done_len));
  ASSERT_EQ(decode({b.data(), bitmap_done_len}, m), decode_status::ok);
  EXPECT_EQ(m.dirty_bits, 42u);
}

TEST(mirror_protocol, state_gens_and_pause) {
  auto b = buf();
  message m;
  state_msg s{
      volume::role::secondary, volume::disk_state::outdated, hf_resync_in_progress, {5, 6, {7, 8}}};
  ASSERT_EQ(encode_state(b, s), static_cast<int>(state_len));
  ASSERT_EQ(decode({b.data(), state_len}, m), decode_status::ok);
  EXPECT_EQ(m.state, s);
  b[4] = 9;  // role
  EXPECT_EQ(decode({b.data(), state_len}, m), decode_status::bad_field);

  const volume::generation_ids g{1, 2, {3, 4}};
  for (msg_type t : {msg_type::resync_done, msg_type::resync_finished}) {
    ASSERT_EQ(encode_gens(b, t, g), static_cast<int>(gens_len));
    ASSERT_EQ(decode({b.data(), gens_len}, m), decode_status::ok);
    EXPECT_EQ(m.type, t);
    EXPECT_EQ(m.gen, g);
  }
  for (bool p : {true, false}) {
    ASSERT_EQ(encode_pause(b, p), static_cast<int>(pause_len));
    ASSERT_EQ(decode({b.data(), pause_len}, m), decode_status::ok);
    EXPECT_EQ(m.paused, p);
  }
  b[1] = 2;  // unknown pause flag
  EXPECT_EQ(decode({b.data(), pause_len}, m), decode_status::bad_flags);
}

TEST(mirror_protocol, unknown_types_and_short_input) {
  message m;
  const uint8_t zero[4] = {0, 0, 0, 0};
  EXPECT_EQ(decode({zero, 4}, m), decode_status::bad_type);
  const uint8_t high[4] = {msg_type_max + 1, 0, 0, 0};
  EXPECT_EQ(decode({high, 4}, m), decode_status::bad_type);
  EXPECT_EQ(decode({zero, 3}, m), decode_status::too_short);
  EXPECT_EQ(decode({}, m), decode_status::too_short);
}

TEST(mirror_protocol, encoders_refuse_small_buffers) {
  uint8_t small[8];
  EXPECT_EQ(encode_hello(small, sample_hello()), -ENOSPC);
  EXPECT_EQ(encode_io(small, msg_type::write, {}), -ENOSPC);
  EXPECT_EQ(encode_state(small, {}), -ENOSPC);
}

// The generic encoder reproduces every decoded message byte for byte (what the fuzz target
// checks on arbitrary input).
TEST(mirror_protocol, generic_encode_is_canonical) {
  std::vector<std::vector<uint8_t>> msgs;
  auto add = [&](auto&& enc) {
    auto b = buf();
    const int n = enc(std::span<uint8_t>(b));
    ASSERT_GT(n, 0);
    b.resize(static_cast<size_t>(n));
    msgs.push_back(b);
  };
  add([](std::span<uint8_t> o) { return encode_hello(o, sample_hello()); });
  add([](std::span<uint8_t> o) { return encode_io(o, msg_type::write, {1, 4096, 8192, true}); });
  add([](std::span<uint8_t> o) { return encode_io(o, msg_type::discard, {2, 0, 4096, false}); });
  add([](std::span<uint8_t> o) {
    io_msg m{5, 8192, 65536, false, true};
    return encode_io(o, msg_type::resync_data, m);
  });
  add([](std::span<uint8_t> o) { return encode_flush(o, 3); });
  add([](std::span<uint8_t> o) { return encode_ack(o, msg_type::ack, {4, -5}); });
  const std::vector<uint8_t> w(16, 0x5a);
  add([&](std::span<uint8_t> o) { return encode_bitmap(o, 9, w); });
  add([](std::span<uint8_t> o) { return encode_bitmap_done(o, 10); });
  add([](std::span<uint8_t> o) { return encode_state(o, {}); });
  add([](std::span<uint8_t> o) { return encode_gens(o, msg_type::resync_done, {1, 2, {3, 4}}); });
  add([](std::span<uint8_t> o) { return encode_pause(o, true); });
  const std::vector<uint8_t> dg(2 * digest_len, 0x33);
  add([&](std::span<uint8_t> o) { return encode_digest(o, 11, 8192, 8192, dg); });
  add([&](std::span<uint8_t> o) { return encode_digest(o, 14, 8192, 8192, dg, true); });
  const std::vector<uint8_t> mk = {0x02, 0, 0, 0, 0, 0, 0, 0};
  add([&](std::span<uint8_t> o) { return encode_digest_ack(o, 12, 0, 2, mk); });
  add([&](std::span<uint8_t> o) { return encode_digest_ack(o, 13, -5, 0, {}); });
  for (const auto& b : msgs) {
    message m;
    ASSERT_EQ(decode(b, m), decode_status::ok);
    std::vector<uint8_t> again(b.size() + 16);
    ASSERT_EQ(encode(again, m), static_cast<int>(b.size()));
    EXPECT_EQ(std::memcmp(again.data(), b.data(), b.size()), 0) << to_string(m.type);
  }
}

// The committed fuzz seeds were written by an independent encoder (a Python script following
// docs/mirror.md): every one decodes to what it was meant to say.
TEST(mirror_protocol, committed_seeds_decode) {
  std::map<std::string, std::vector<uint8_t>> seeds;
  for (const auto& e : std::filesystem::directory_iterator(TANDEM_MIRROR_CORPUS)) {
    std::ifstream f(e.path(), std::ios::binary);
    seeds[e.path().filename().string()] =
        std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  ASSERT_EQ(seeds.size(), 19u);
  message m;
  for (const auto& [name, bytes] : seeds) {
    const decode_status st = decode(bytes, m);
    if (name == "hello_v1") {
      EXPECT_EQ(st, decode_status::bad_version);
      EXPECT_EQ(m.hello.version, 1);
      continue;
    }
    ASSERT_EQ(st, decode_status::ok) << name;
    EXPECT_EQ(name.starts_with("write_") && name != "write_zeroes"
                  ? std::string("write")
                  : name.substr(0, name.find("_error")),
              to_string(m.type))
        << name;
  }
  ASSERT_EQ(decode(seeds["hello"], m), decode_status::ok);
  EXPECT_EQ(m.hello.node_id, 7u);
  EXPECT_EQ(m.hello.volume_size, 1ULL << 30);
  EXPECT_EQ(m.hello.role, volume::role::primary);
  EXPECT_EQ(m.hello.disk, volume::disk_state::up_to_date);
  EXPECT_EQ(m.hello.flags, hf_crashed_primary | hf_auto_resync);
  EXPECT_EQ(m.hello.gen.current, 0x1122334455667788ULL);
  EXPECT_EQ(m.hello.max_io, 1u << 20);
  EXPECT_EQ(m.hello.primary_since, 0x0102030405060708u);
  EXPECT_EQ(m.hello.policy, split_brain_policy::discard_younger_primary);
  ASSERT_EQ(decode(seeds["write_fua"], m), decode_status::ok);
  EXPECT_TRUE(m.io.fua);
  EXPECT_FALSE(m.io.compressed);
  EXPECT_EQ(m.io.offset, 8192u);
  ASSERT_EQ(decode(seeds["write_compressed_fua"], m), decode_status::ok);
  EXPECT_TRUE(m.io.fua);
  EXPECT_TRUE(m.io.compressed);
  EXPECT_EQ(m.io.offset, 16384u);
  EXPECT_EQ(m.io.length, 65536u);
  ASSERT_EQ(decode(seeds["ack_error"], m), decode_status::ok);
  EXPECT_EQ(m.ack.status, -5);
  ASSERT_EQ(decode(seeds["bitmap"], m), decode_status::ok);
  EXPECT_EQ(m.bitmap.word(1), 1ULL << 63);
  ASSERT_EQ(decode(seeds["resync_pause"], m), decode_status::ok);
  EXPECT_TRUE(m.paused);
  ASSERT_EQ(decode(seeds["resync_digest"], m), decode_status::ok);
  EXPECT_EQ(m.digest.offset, 65536u);
  EXPECT_EQ(m.digest.length, 3u * 4096 + 512);
  EXPECT_EQ(m.digest.digests.size(), 4u * digest_len);
  EXPECT_EQ(m.digest.digests[17], 7 * 17);
  ASSERT_EQ(decode(seeds["resync_digest_ack"], m), decode_status::ok);
  EXPECT_EQ(m.digest_ack.count, 4u);
  EXPECT_FALSE(m.digest_ack.differs(0));
  EXPECT_TRUE(m.digest_ack.differs(1));
  EXPECT_FALSE(m.digest_ack.differs(2));
  EXPECT_TRUE(m.digest_ack.differs(3));
  EXPECT_FALSE(m.digest_ack.differs(4));  // past count
  ASSERT_EQ(decode(seeds["resync_digest_ack_error"], m), decode_status::ok);
  EXPECT_EQ(m.digest_ack.status, -5);
  EXPECT_EQ(m.digest_ack.count, 0u);
}

TEST(mirror_protocol, digest_messages_round_trip_and_checks) {
  auto b = buf();
  std::vector<uint8_t> digests(3 * digest_len);
  for (size_t i = 0; i < digests.size(); ++i)
    digests[i] = static_cast<uint8_t>(i);
  const uint64_t length = 2 * digest_block + 512;
  int len = encode_digest(b, 77, 1 << 20, length, digests);
  ASSERT_EQ(len, static_cast<int>(digest_header_len + digests.size()));
  message m;
  ASSERT_EQ(decode({b.data(), static_cast<size_t>(len)}, m), decode_status::ok);
  EXPECT_EQ(m.type, msg_type::resync_digest);
  EXPECT_EQ(m.digest.seq, 77u);
  EXPECT_EQ(m.digest.offset, 1u << 20);
  EXPECT_EQ(m.digest.length, length);
  ASSERT_EQ(m.digest.digests.size(), digests.size());
  EXPECT_EQ(std::memcmp(m.digest.digests.data(), digests.data(), digests.size()), 0);
  EXPECT_FALSE(m.digest.verify);
  // An online verify's request carries flag 1; no other flag is defined.
  len = encode_digest(b, 77, 1 << 20, length, digests, true);
  ASSERT_EQ(decode({b.data(), static_cast<size_t>(len)}, m), decode_status::ok);
  EXPECT_TRUE(m.digest.verify);
  EXPECT_EQ(b[1], msg_flag_verify);
  b[1] = 2;
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(len)}, m), decode_status::bad_flags);
  len = encode_digest(b, 77, 1 << 20, length, digests);
  // Digests missing or extra, a count that does not match the length, a reserved word, a zero
  // or too long length.
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(len) - 1}, m), decode_status::bad_length);
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(len) + 1}, m), decode_status::bad_length);
  EXPECT_EQ(decode({b.data(), digest_header_len - 1}, m), decode_status::too_short);
  auto bad = b;
  bad[28] = 2;  // count 2 for 3 blocks
  EXPECT_EQ(decode({bad.data(), static_cast<size_t>(len)}, m), decode_status::bad_field);
  bad = b;
  bad[32] = 1;
  EXPECT_EQ(decode({bad.data(), static_cast<size_t>(len)}, m), decode_status::bad_reserved);
  len = encode_digest(b, 1, 0, uint64_t{max_digest_blocks} * digest_block + 1, {});
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(len)}, m), decode_status::bad_field);

  // The answer: 70 blocks, blocks 0, 64 and 69 differ.
  uint8_t mask[16] = {};
  mask[0] = 1;
  mask[8] = 1 | (1 << 5);
  len = encode_digest_ack(b, 78, 0, 70, mask);
  ASSERT_EQ(len, static_cast<int>(digest_ack_header_len + 16));
  ASSERT_EQ(decode({b.data(), static_cast<size_t>(len)}, m), decode_status::ok);
  EXPECT_EQ(m.digest_ack.seq, 78u);
  EXPECT_EQ(m.digest_ack.count, 70u);
  for (uint32_t i = 0; i < 72; ++i)
    EXPECT_EQ(m.digest_ack.differs(i), i == 0 || i == 64 || i == 69) << i;
  // A bit past the count has no meaning: refused, so that each answer has one encoding.
  mask[8] |= 1 << 6;
  len = encode_digest_ack(b, 78, 0, 70, mask);
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(len)}, m), decode_status::bad_field);
  // A mask of the wrong size, an error with a count, a positive status.
  len = encode_digest_ack(b, 78, 0, 70, {mask, 8});
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(len)}, m), decode_status::bad_length);
  len = encode_digest_ack(b, 78, -5, 1, {mask, 8});
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(len)}, m), decode_status::bad_field);
  len = encode_digest_ack(b, 78, 3, 0, {});
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(len)}, m), decode_status::bad_field);
  len = encode_digest_ack(b, 78, 0, 0, {});
  EXPECT_EQ(decode({b.data(), static_cast<size_t>(len)}, m), decode_status::bad_field);
  uint8_t small[8];
  EXPECT_EQ(encode_digest(small, 1, 0, 4096, {}), -ENOSPC);
  EXPECT_EQ(encode_digest_ack(small, 1, 0, 1, {mask, 8}), -ENOSPC);
}

}  // namespace
}  // namespace tandem::dp::mirror
