// SPDX-License-Identifier: Apache-2.0
// The mirror protocol codec: fixed little-endian layouts, a strict decoder, one encoding per value.
#include "dataplane/mirror/protocol.h"

#include <cerrno>
#include <cstring>

namespace tandem::dp::mirror {
namespace {

uint16_t ld16(const uint8_t* p) noexcept {
  return static_cast<uint16_t>(p[0] | (static_cast<unsigned>(p[1]) << 8));
}
uint32_t ld32(const uint8_t* p) noexcept {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t ld64(const uint8_t* p) noexcept {
  return static_cast<uint64_t>(ld32(p)) | (static_cast<uint64_t>(ld32(p + 4)) << 32);
}
void st16(uint8_t* p, uint16_t v) noexcept {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void st32(uint8_t* p, uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void st64(uint8_t* p, uint64_t v) noexcept {
  st32(p, static_cast<uint32_t>(v));
  st32(p + 4, static_cast<uint32_t>(v >> 32));
}

void put_header(uint8_t* p, msg_type t, uint8_t flags) noexcept {
  p[0] = static_cast<uint8_t>(t);
  p[1] = flags;
  p[2] = 0;
  p[3] = 0;
}

void put_gens(uint8_t* p, const volume::generation_ids& g) noexcept {
  st64(p, g.current);
  st64(p + 8, g.bitmap);
  st64(p + 16, g.history[0]);
  st64(p + 24, g.history[1]);
}
void get_gens(const uint8_t* p, volume::generation_ids& g) noexcept {
  g.current = ld64(p);
  g.bitmap = ld64(p + 8);
  g.history[0] = ld64(p + 16);
  g.history[1] = ld64(p + 24);
}

bool valid_role(uint8_t r) noexcept {
  return r <= static_cast<uint8_t>(volume::role::primary);
}
bool valid_disk(uint8_t d) noexcept {
  return d <= static_cast<uint8_t>(volume::disk_state::up_to_date);
}

// Flags each type may carry.
uint8_t allowed_flags(msg_type t) noexcept {
  switch (t) {
    case msg_type::write:
      return msg_flag_fua | msg_flag_compressed;
    case msg_type::resync_pause:
      return msg_flag_paused;
    case msg_type::resync_digest:
      return msg_flag_verify;
    case msg_type::resync_data:
      return msg_flag_compressed;
    default:
      return 0;
  }
}

decode_status decode_hello(const uint8_t* b, size_t n, hello_msg& h) noexcept {
  if (n < 4) return decode_status::too_short;
  h.version = ld16(b);
  if (h.version != protocol_version) return decode_status::bad_version;
  if (n != hello_len - msg_header_len) return decode_status::bad_length;
  if (ld16(b + 2) != 0) return decode_status::bad_reserved;
  h.node_id = ld32(b + 4);
  std::memcpy(h.uuid.data(), b + 8, 16);
  h.volume_size = ld64(b + 24);
  h.block_size = ld32(b + 32);
  h.bitmap_granularity = ld32(b + 36);
  if (!valid_role(b[40]) || !valid_disk(b[41])) return decode_status::bad_field;
  h.role = static_cast<volume::role>(b[40]);
  h.disk = static_cast<volume::disk_state>(b[41]);
  if (ld16(b + 42) != 0) return decode_status::bad_reserved;
  h.flags = ld32(b + 44);
  if ((h.flags & ~hf_known) != 0) return decode_status::bad_field;
  get_gens(b + 48, h.gen);
  h.dirty_bytes = ld64(b + 80);
  h.recv_slots = ld32(b + 88);
  h.recv_pages = ld32(b + 92);
  h.page_size = ld32(b + 96);
  h.max_io = ld32(b + 100);
  h.primary_since = ld64(b + 104);
  if (b[112] > split_brain_policy_max) return decode_status::bad_field;
  h.policy = static_cast<split_brain_policy>(b[112]);
  if (b[113] != 0 || ld16(b + 114) != 0 || ld32(b + 116) != 0) return decode_status::bad_reserved;
  return decode_status::ok;
}

}  // namespace

const char* to_string(msg_type t) noexcept {
  switch (t) {
    case msg_type::hello:
      return "hello";
    case msg_type::write:
      return "write";
    case msg_type::discard:
      return "discard";
    case msg_type::write_zeroes:
      return "write_zeroes";
    case msg_type::flush:
      return "flush";
    case msg_type::ack:
      return "ack";
    case msg_type::bitmap:
      return "bitmap";
    case msg_type::bitmap_done:
      return "bitmap_done";
    case msg_type::resync_data:
      return "resync_data";
    case msg_type::resync_ack:
      return "resync_ack";
    case msg_type::state:
      return "state";
    case msg_type::resync_done:
      return "resync_done";
    case msg_type::resync_finished:
      return "resync_finished";
    case msg_type::resync_pause:
      return "resync_pause";
    case msg_type::resync_digest:
      return "resync_digest";
    case msg_type::resync_digest_ack:
      return "resync_digest_ack";
  }
  return "unknown";
}

const char* to_string(split_brain_policy p) noexcept {
  switch (p) {
    case split_brain_policy::disconnect:
      return "disconnect";
    case split_brain_policy::discard_zero_changes:
      return "discard-zero-changes";
    case split_brain_policy::discard_younger_primary:
      return "discard-younger-primary";
    case split_brain_policy::discard_least_changes:
      return "discard-least-changes";
  }
  return "unknown";
}

const char* to_string(decode_status s) noexcept {
  switch (s) {
    case decode_status::ok:
      return "ok";
    case decode_status::too_short:
      return "too short";
    case decode_status::bad_type:
      return "unknown message type";
    case decode_status::bad_flags:
      return "unknown flags";
    case decode_status::bad_reserved:
      return "non-zero reserved field";
    case decode_status::bad_length:
      return "wrong length";
    case decode_status::bad_version:
      return "unsupported protocol version";
    case decode_status::bad_field:
      return "invalid field";
  }
  return "unknown";
}

uint64_t bitmap_msg::word(uint32_t i) const noexcept {
  return ld64(words.data() + 8 * size_t{i});
}

bool digest_ack_msg::differs(uint32_t block) const noexcept {
  return block < count && ((mask[block / 8] >> (block % 8)) & 1) != 0;
}

decode_status decode(std::span<const uint8_t> in, message& out) noexcept {
  if (in.size() < msg_header_len) return decode_status::too_short;
  const uint8_t* p = in.data();
  if (p[0] == 0 || p[0] > msg_type_max) return decode_status::bad_type;
  const auto t = static_cast<msg_type>(p[0]);
  out.type = t;
  if ((p[1] & ~allowed_flags(t)) != 0) return decode_status::bad_flags;
  if (ld16(p + 2) != 0) return decode_status::bad_reserved;
  const uint8_t* b = p + msg_header_len;
  const size_t n = in.size() - msg_header_len;
  auto exact = [&](size_t len) {
    return in.size() < len ? decode_status::too_short
                           : (in.size() != len ? decode_status::bad_length : decode_status::ok);
  };
  decode_status st = decode_status::ok;
  switch (t) {
    case msg_type::hello:
      return decode_hello(b, n, out.hello);
    case msg_type::write:
    case msg_type::discard:
    case msg_type::write_zeroes:
    case msg_type::resync_data: {
      if ((st = exact(io_len)) != decode_status::ok) return st;
      io_msg& m = out.io;
      m.seq = ld64(b);
      m.offset = ld64(b + 8);
      m.length = ld64(b + 16);
      m.fua = (p[1] & msg_flag_fua) != 0 && t == msg_type::write;
      m.compressed =
          (p[1] & msg_flag_compressed) != 0 && (t == msg_type::resync_data || t == msg_type::write);
      const bool data = t == msg_type::write || t == msg_type::resync_data;
      const uint64_t limit = data ? max_data_len : max_zero_len;
      if (m.length == 0 || m.length > limit || m.offset > UINT64_MAX - m.length) {
        return decode_status::bad_field;
      }
      return decode_status::ok;
    }
    case msg_type::flush:
      if ((st = exact(flush_len)) != decode_status::ok) return st;
      out.seq = ld64(b);
      return decode_status::ok;
    case msg_type::ack:
    case msg_type::resync_ack: {
      if ((st = exact(ack_len)) != decode_status::ok) return st;
      out.ack.seq = ld64(b);
      out.ack.status = static_cast<int32_t>(ld32(b + 8));
      if (ld32(b + 12) != 0) return decode_status::bad_reserved;
      if (out.ack.status > 0 || out.ack.status < -4095) return decode_status::bad_field;
      return decode_status::ok;
    }
    case msg_type::bitmap: {
      if (in.size() < bitmap_header_len) return decode_status::too_short;
      bitmap_msg& m = out.bitmap;
      m.first_word = ld64(b);
      m.count = ld32(b + 8);
      if (ld32(b + 12) != 0) return decode_status::bad_reserved;
      if (m.count == 0 || m.count > max_bitmap_words) return decode_status::bad_field;
      if (m.first_word > UINT64_MAX - m.count) return decode_status::bad_field;
      if (n != 16 + size_t{m.count} * 8) return decode_status::bad_length;
      m.words = {b + 16, size_t{m.count} * 8};
      return decode_status::ok;
    }
    case msg_type::bitmap_done:
      if ((st = exact(bitmap_done_len)) != decode_status::ok) return st;
      out.dirty_bits = ld64(b);
      return decode_status::ok;
    case msg_type::state: {
      if ((st = exact(state_len)) != decode_status::ok) return st;
      state_msg& m = out.state;
      if (!valid_role(b[0]) || !valid_disk(b[1])) return decode_status::bad_field;
      m.role = static_cast<volume::role>(b[0]);
      m.disk = static_cast<volume::disk_state>(b[1]);
      if (ld16(b + 2) != 0) return decode_status::bad_reserved;
      m.flags = ld32(b + 4);
      if ((m.flags & ~hf_known) != 0) return decode_status::bad_field;
      get_gens(b + 8, m.gen);
      return decode_status::ok;
    }
    case msg_type::resync_done:
    case msg_type::resync_finished:
      if ((st = exact(gens_len)) != decode_status::ok) return st;
      get_gens(b, out.gen);
      return decode_status::ok;
    case msg_type::resync_pause:
      if ((st = exact(pause_len)) != decode_status::ok) return st;
      out.paused = (p[1] & msg_flag_paused) != 0;
      return decode_status::ok;
    case msg_type::resync_digest: {
      if (in.size() < digest_header_len) return decode_status::too_short;
      digest_msg& m = out.digest;
      m.seq = ld64(b);
      m.offset = ld64(b + 8);
      m.length = ld64(b + 16);
      const uint32_t count = ld32(b + 24);
      if (ld32(b + 28) != 0) return decode_status::bad_reserved;
      if (m.length == 0 || m.length > uint64_t{max_digest_blocks} * digest_block ||
          m.offset > UINT64_MAX - m.length || count != digest_blocks(m.length)) {
        return decode_status::bad_field;
      }
      if (n != 32 + size_t{count} * digest_len) return decode_status::bad_length;
      m.digests = {b + 32, size_t{count} * digest_len};
      m.verify = (p[1] & msg_flag_verify) != 0;
      return decode_status::ok;
    }
    case msg_type::resync_digest_ack: {
      if (in.size() < digest_ack_header_len) return decode_status::too_short;
      digest_ack_msg& m = out.digest_ack;
      m.seq = ld64(b);
      m.status = static_cast<int32_t>(ld32(b + 8));
      m.count = ld32(b + 12);
      if (m.status > 0 || m.status < -4095) return decode_status::bad_field;
      if (m.status < 0 ? m.count != 0 : (m.count == 0 || m.count > max_digest_blocks)) {
        return decode_status::bad_field;
      }
      const size_t words = (size_t{m.count} + 63) / 64;
      if (n != 16 + words * 8) return decode_status::bad_length;
      m.mask = {b + 16, words * 8};
      // One encoding: no bits past `count`.
      if (m.count % 64 != 0 && (ld64(b + 16 + (words - 1) * 8) >> (m.count % 64)) != 0) {
        return decode_status::bad_field;
      }
      return decode_status::ok;
    }
  }
  return decode_status::bad_type;
}

int encode_hello(std::span<uint8_t> out, const hello_msg& h) noexcept {
  if (out.size() < hello_len) return -ENOSPC;
  uint8_t* p = out.data();
  put_header(p, msg_type::hello, 0);
  uint8_t* b = p + msg_header_len;
  st16(b, h.version);
  st16(b + 2, 0);
  st32(b + 4, h.node_id);
  std::memcpy(b + 8, h.uuid.data(), 16);
  st64(b + 24, h.volume_size);
  st32(b + 32, h.block_size);
  st32(b + 36, h.bitmap_granularity);
  b[40] = static_cast<uint8_t>(h.role);
  b[41] = static_cast<uint8_t>(h.disk);
  st16(b + 42, 0);
  st32(b + 44, h.flags);
  put_gens(b + 48, h.gen);
  st64(b + 80, h.dirty_bytes);
  st32(b + 88, h.recv_slots);
  st32(b + 92, h.recv_pages);
  st32(b + 96, h.page_size);
  st32(b + 100, h.max_io);
  st64(b + 104, h.primary_since);
  b[112] = static_cast<uint8_t>(h.policy);
  b[113] = 0;
  st16(b + 114, 0);
  st32(b + 116, 0);
  return static_cast<int>(hello_len);
}

int encode_io(std::span<uint8_t> out, msg_type type, const io_msg& m) noexcept {
  if (out.size() < io_len) return -ENOSPC;
  uint8_t* p = out.data();
  const bool data = type == msg_type::write || type == msg_type::resync_data;
  put_header(p, type,
             static_cast<uint8_t>((type == msg_type::write && m.fua ? msg_flag_fua : 0) |
                                  (data && m.compressed ? msg_flag_compressed : 0)));
  st64(p + 4, m.seq);
  st64(p + 12, m.offset);
  st64(p + 20, m.length);
  return static_cast<int>(io_len);
}

int encode_flush(std::span<uint8_t> out, uint64_t seq) noexcept {
  if (out.size() < flush_len) return -ENOSPC;
  put_header(out.data(), msg_type::flush, 0);
  st64(out.data() + 4, seq);
  return static_cast<int>(flush_len);
}

int encode_ack(std::span<uint8_t> out, msg_type type, const ack_msg& m) noexcept {
  if (out.size() < ack_len) return -ENOSPC;
  uint8_t* p = out.data();
  put_header(p, type, 0);
  st64(p + 4, m.seq);
  st32(p + 12, static_cast<uint32_t>(m.status));
  st32(p + 16, 0);
  return static_cast<int>(ack_len);
}

int encode_bitmap(std::span<uint8_t> out, uint64_t first_word,
                  std::span<const uint8_t> le_words) noexcept {
  const size_t len = bitmap_header_len + le_words.size();
  if (out.size() < len) return -ENOSPC;
  uint8_t* p = out.data();
  put_header(p, msg_type::bitmap, 0);
  st64(p + 4, first_word);
  st32(p + 12, static_cast<uint32_t>(le_words.size() / 8));
  st32(p + 16, 0);
  if (!le_words.empty()) std::memcpy(p + bitmap_header_len, le_words.data(), le_words.size());
  return static_cast<int>(len);
}

int encode_bitmap_done(std::span<uint8_t> out, uint64_t dirty_bits) noexcept {
  if (out.size() < bitmap_done_len) return -ENOSPC;
  put_header(out.data(), msg_type::bitmap_done, 0);
  st64(out.data() + 4, dirty_bits);
  return static_cast<int>(bitmap_done_len);
}

int encode_state(std::span<uint8_t> out, const state_msg& m) noexcept {
  if (out.size() < state_len) return -ENOSPC;
  uint8_t* p = out.data();
  put_header(p, msg_type::state, 0);
  p[4] = static_cast<uint8_t>(m.role);
  p[5] = static_cast<uint8_t>(m.disk);
  st16(p + 6, 0);
  st32(p + 8, m.flags);
  put_gens(p + 12, m.gen);
  return static_cast<int>(state_len);
}

int encode_gens(std::span<uint8_t> out, msg_type type, const volume::generation_ids& g) noexcept {
  if (out.size() < gens_len) return -ENOSPC;
  put_header(out.data(), type, 0);
  put_gens(out.data() + 4, g);
  return static_cast<int>(gens_len);
}

int encode_pause(std::span<uint8_t> out, bool paused) noexcept {
  if (out.size() < pause_len) return -ENOSPC;
  put_header(out.data(), msg_type::resync_pause, paused ? msg_flag_paused : 0);
  return static_cast<int>(pause_len);
}

int encode_digest(std::span<uint8_t> out, uint64_t seq, uint64_t offset, uint64_t length,
                  std::span<const uint8_t> digests, bool verify) noexcept {
  const size_t len = digest_header_len + digests.size();
  if (out.size() < len) return -ENOSPC;
  uint8_t* p = out.data();
  put_header(p, msg_type::resync_digest, verify ? msg_flag_verify : 0);
  st64(p + 4, seq);
  st64(p + 12, offset);
  st64(p + 20, length);
  st32(p + 28, static_cast<uint32_t>(digests.size() / digest_len));
  st32(p + 32, 0);
  if (!digests.empty()) std::memcpy(p + digest_header_len, digests.data(), digests.size());
  return static_cast<int>(len);
}

int encode_digest_ack(std::span<uint8_t> out, uint64_t seq, int32_t status, uint32_t count,
                      std::span<const uint8_t> mask) noexcept {
  const size_t len = digest_ack_header_len + mask.size();
  if (out.size() < len) return -ENOSPC;
  uint8_t* p = out.data();
  put_header(p, msg_type::resync_digest_ack, 0);
  st64(p + 4, seq);
  st32(p + 12, static_cast<uint32_t>(status));
  st32(p + 16, count);
  if (!mask.empty()) std::memcpy(p + digest_ack_header_len, mask.data(), mask.size());
  return static_cast<int>(len);
}

int encode(std::span<uint8_t> out, const message& m) noexcept {
  switch (m.type) {
    case msg_type::hello:
      return encode_hello(out, m.hello);
    case msg_type::write:
    case msg_type::discard:
    case msg_type::write_zeroes:
    case msg_type::resync_data:
      return encode_io(out, m.type, m.io);
    case msg_type::flush:
      return encode_flush(out, m.seq);
    case msg_type::ack:
    case msg_type::resync_ack:
      return encode_ack(out, m.type, m.ack);
    case msg_type::bitmap:
      return encode_bitmap(out, m.bitmap.first_word, m.bitmap.words);
    case msg_type::bitmap_done:
      return encode_bitmap_done(out, m.dirty_bits);
    case msg_type::state:
      return encode_state(out, m.state);
    case msg_type::resync_done:
    case msg_type::resync_finished:
      return encode_gens(out, m.type, m.gen);
    case msg_type::resync_pause:
      return encode_pause(out, m.paused);
    case msg_type::resync_digest:
      return encode_digest(out, m.digest.seq, m.digest.offset, m.digest.length, m.digest.digests,
                           m.digest.verify);
    case msg_type::resync_digest_ack:
      return encode_digest_ack(out, m.digest_ack.seq, m.digest_ack.status, m.digest_ack.count,
                               m.digest_ack.mask);
  }
  return -EINVAL;
}

}  // namespace tandem::dp::mirror
