// SPDX-License-Identifier: Apache-2.0
// The transport's wire format, version 1: encoding and checked decoding of frames and bodies.
#include "dataplane/transport/frame.h"

#include <cerrno>
#include <cstring>

#include "dataplane/crypto/crc32c.h"
#include "dataplane/net/byte_order.h"

namespace tandem::dp::transport {
namespace {

void store_be64(uint8_t* p, uint64_t v) noexcept {
  store_be32(p, static_cast<uint32_t>(v >> 32));
  store_be32(p + 4, static_cast<uint32_t>(v));
}

uint64_t load_be64(const uint8_t* p) noexcept {
  return (static_cast<uint64_t>(load_be32(p)) << 32) | load_be32(p + 4);
}

}  // namespace

std::string_view to_string(decode_error e) noexcept {
  switch (e) {
    case decode_error::none:
      return "none";
    case decode_error::too_short:
      return "too_short";
    case decode_error::bad_magic:
      return "bad_magic";
    case decode_error::bad_version:
      return "bad_version";
    case decode_error::bad_type:
      return "bad_type";
    case decode_error::bad_flags:
      return "bad_flags";
    case decode_error::bad_crc:
      return "bad_crc";
    case decode_error::bad_body:
      return "bad_body";
  }
  return "unknown";
}

std::string_view to_string(close_reason r) noexcept {
  switch (r) {
    case close_reason::shutdown:
      return "shutdown";
    case close_reason::wrong_key:
      return "wrong key";
    case close_reason::crypto_required:
      return "encryption required";
    case close_reason::crypto_mismatch:
      return "key sizes differ";
    case close_reason::dead_peer:
      return "dead peer";
    case close_reason::protocol:
      return "protocol error";
  }
  return "unknown";
}

int write_header(std::span<uint8_t> out, const frame_header& h) noexcept {
  const size_t total = header_len + h.body_len + (h.encrypted() ? tag_len : 0);
  if (out.size() < total) return -ENOSPC;
  if (total > 65507) return -EMSGSIZE;  // one UDP datagram
  uint8_t* p = out.data();
  store_be16(p, frame_magic);
  p[2] = frame_version;
  p[3] = static_cast<uint8_t>(h.type);
  p[4] = h.flags;
  p[5] = 0;
  store_be16(p + 6, h.body_len);
  store_be32(p + 8, h.conn_id);
  store_be32(p + 12, 0);
  store_be64(p + 16, h.pn);
  return static_cast<int>(total);
}

namespace {
// CRC32C of the whole frame with its CRC field taken as zero.
uint32_t frame_crc(std::span<const uint8_t> frame) noexcept {
  static constexpr uint8_t zero[4] = {};
  uint32_t crc = crc32c(frame.first(12));
  crc = crc32c(zero, crc);
  return crc32c(frame.subspan(16), crc);
}
}  // namespace

void seal_crc(std::span<uint8_t> frame) noexcept {
  store_be32(frame.data() + 12, frame_crc(frame));
}

int finish_frame(std::span<uint8_t> out, const frame_header& h) noexcept {
  const int total = write_header(out, h);
  if (total > 0) seal_crc(out.first(static_cast<size_t>(total)));
  return total;
}

decode_error decode_frame(std::span<const uint8_t> frame, decoded_frame& out) noexcept {
  if (frame.size() < header_len) return decode_error::too_short;
  const uint8_t* p = frame.data();
  if (load_be16(p) != frame_magic) return decode_error::bad_magic;
  if (p[2] != frame_version) return decode_error::bad_version;
  if (p[3] == 0 || p[3] > frame_type_max) return decode_error::bad_type;
  if ((p[4] & ~flags_known) != 0 || p[5] != 0) return decode_error::bad_flags;
  frame_header& h = out.header;
  h.type = static_cast<frame_type>(p[3]);
  h.flags = p[4];
  h.body_len = load_be16(p + 6);
  h.conn_id = load_be32(p + 8);
  h.crc = load_be32(p + 12);
  h.pn = load_be64(p + 16);
  const size_t total = header_len + h.body_len + (h.encrypted() ? tag_len : 0);
  if (frame.size() < total) return decode_error::too_short;
  if (frame.size() > total) return decode_error::bad_body;
  if (frame_crc(frame) != h.crc) return decode_error::bad_crc;
  out.body = frame.subspan(header_len, h.body_len);
  out.tag =
      h.encrypted() ? frame.subspan(header_len + h.body_len, tag_len) : std::span<const uint8_t>{};
  return decode_error::none;
}

int encode_data(std::span<uint8_t> out, const data_body& d) noexcept {
  const size_t len = data_body_overhead + d.bytes.size();
  if (out.size() < len) return -ENOSPC;
  store_be64(out.data(), d.msg_id);
  store_be64(out.data() + 8, d.stream_off);
  store_be32(out.data() + 16, d.msg_len);
  store_be32(out.data() + 20, d.offset);
  if (!d.bytes.empty() && d.bytes.data() != out.data() + data_body_overhead) {
    std::memmove(out.data() + data_body_overhead, d.bytes.data(), d.bytes.size());
  }
  return static_cast<int>(len);
}

bool decode_data(std::span<const uint8_t> body, data_body& d) noexcept {
  if (body.size() < data_body_overhead) return false;
  d.msg_id = load_be64(body.data());
  d.stream_off = load_be64(body.data() + 8);
  d.msg_len = load_be32(body.data() + 16);
  d.offset = load_be32(body.data() + 20);
  d.bytes = body.subspan(data_body_overhead);
  if (d.offset > d.msg_len || d.bytes.size() > d.msg_len - d.offset) return false;
  if (d.bytes.empty() && d.msg_len != 0) return false;
  return true;
}

int encode_ack(std::span<uint8_t> out, const ack_body& a) noexcept {
  if (a.count > max_ack_ranges) return -EINVAL;
  const size_t len = ack_body_fixed + size_t{a.count} * 16;
  if (out.size() < len) return -ENOSPC;
  uint8_t* p = out.data();
  store_be64(p, a.largest());
  store_be64(p + 8, a.delivered);
  store_be32(p + 16, a.ack_delay_us);
  store_be32(p + 20, a.window);
  store_be16(p + 24, a.count);
  store_be16(p + 26, 0);
  for (uint16_t i = 0; i < a.count; ++i) {
    store_be64(p + ack_body_fixed + i * 16, a.ranges[i].first);
    store_be64(p + ack_body_fixed + 8 + i * 16, a.ranges[i].last);
  }
  return static_cast<int>(len);
}

bool decode_ack(std::span<const uint8_t> body, ack_body& a) noexcept {
  if (body.size() < ack_body_fixed) return false;
  const uint8_t* p = body.data();
  const uint64_t largest = load_be64(p);
  a.delivered = load_be64(p + 8);
  a.ack_delay_us = load_be32(p + 16);
  a.window = load_be32(p + 20);
  a.count = load_be16(p + 24);
  if (load_be16(p + 26) != 0) return false;
  if (a.count == 0 || a.count > max_ack_ranges) return false;
  if (body.size() != ack_body_fixed + size_t{a.count} * 16) return false;
  for (uint16_t i = 0; i < a.count; ++i) {
    a.ranges[i].first = load_be64(p + ack_body_fixed + i * 16);
    a.ranges[i].last = load_be64(p + ack_body_fixed + 8 + i * 16);
    if (a.ranges[i].first > a.ranges[i].last) return false;
    // Descending, disjoint and not adjacent (adjacent ranges would have been merged).
    if (i > 0 && a.ranges[i].last + 1 >= a.ranges[i - 1].first) return false;
  }
  return a.ranges[0].last == largest;
}

int encode_hello(std::span<uint8_t> out, const hello_body& h) noexcept {
  if (out.size() < hello_body_len) return -ENOSPC;
  uint8_t* p = out.data();
  store_be32(p, h.sender_conn_id);
  p[4] = h.crypto;
  p[5] = h.key_bytes;
  store_be16(p + 6, 0);
  store_be64(p + 8, h.boot_id);
  std::memcpy(p + 16, h.nonce, nonce_len);
  std::memcpy(p + 16 + nonce_len, h.proof, proof_len);
  return static_cast<int>(hello_body_len);
}

bool decode_hello(std::span<const uint8_t> body, hello_body& h) noexcept {
  if (body.size() != hello_body_len) return false;
  const uint8_t* p = body.data();
  h.sender_conn_id = load_be32(p);
  h.crypto = p[4];
  h.key_bytes = p[5];
  if (load_be16(p + 6) != 0 || h.sender_conn_id == 0) return false;
  if (h.crypto > 1) return false;
  if (h.crypto == 0 ? h.key_bytes != 0
                    : (h.key_bytes != 16 && h.key_bytes != 24 && h.key_bytes != 32)) {
    return false;
  }
  h.boot_id = load_be64(p + 8);
  std::memcpy(h.nonce, p + 16, nonce_len);
  std::memcpy(h.proof, p + 16 + nonce_len, proof_len);
  return true;
}

int encode_keepalive(std::span<uint8_t> out, const keepalive_body& k) noexcept {
  if (out.size() < keepalive_body_len) return -ENOSPC;
  store_be64(out.data(), k.sent_ns);
  store_be64(out.data() + 8, k.echo_ns);
  return static_cast<int>(keepalive_body_len);
}

bool decode_keepalive(std::span<const uint8_t> body, keepalive_body& k) noexcept {
  if (body.size() != keepalive_body_len) return false;
  k.sent_ns = load_be64(body.data());
  k.echo_ns = load_be64(body.data() + 8);
  return true;
}

int encode_close(std::span<uint8_t> out, close_reason r) noexcept {
  if (out.size() < close_body_len) return -ENOSPC;
  store_be16(out.data(), static_cast<uint16_t>(r));
  store_be16(out.data() + 2, 0);
  return static_cast<int>(close_body_len);
}

bool decode_close(std::span<const uint8_t> body, close_reason& r) noexcept {
  if (body.size() != close_body_len || load_be16(body.data() + 2) != 0) return false;
  const uint16_t v = load_be16(body.data());
  if (v < 1 || v > 6) return false;
  r = static_cast<close_reason>(v);
  return true;
}

}  // namespace tandem::dp::transport
