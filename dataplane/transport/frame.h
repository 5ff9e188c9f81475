// SPDX-License-Identifier: Apache-2.0
// The transport's wire format, version 1: one frame per UDP datagram, a fixed header, a body
// whose layout depends on the frame type, and (when the session is encrypted) a GCM tag.
//
//  0      2  3    4     5    6         8         12        16                 24
//  +------+--+----+-----+----+---------+---------+---------+------------------+
//  |magic |v |type|flags|rsvd|body_len |conn_id  |crc32c   |packet number     | body | tag?
//  +------+--+----+-----+----+---------+---------+---------+------------------+
//
// All fields are big-endian. crc32c covers the whole frame as it is on the wire, its own field
// taken as zero: the header too (a flipped packet number must never be acked as another
// packet), and the ciphertext and tag when encrypted, so a cleartext CRC never reveals anything
// about the plaintext; with encryption the header is the GCM additional data and the nonce is the
// session's salt followed by the packet number (frame_aad zeroes the CRC field, which is only
// known after sealing). Packet numbers are never reused within a
// session: a retransmitted segment travels in a new packet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace tandem::dp::transport {

inline constexpr uint16_t frame_magic = 0x5444;  // "TD"
inline constexpr uint8_t frame_version = 1;
inline constexpr size_t header_len = 24;
inline constexpr size_t tag_len = 16;

enum class frame_type : uint8_t {
  hello = 1,      // initiator -> responder: start a session
  hello_ack = 2,  // responder -> initiator
  confirm = 3,    // initiator -> responder: proves the initiator derived the same keys
  data = 4,       // a segment of a message
  ack = 5,        // selective acknowledgement of packet numbers
  keepalive = 6,  // liveness and RTT when idle
  close = 7,      // orderly end of a session
};
inline constexpr uint8_t frame_type_max = 7;

inline constexpr uint8_t flag_encrypted = 0x01;
inline constexpr uint8_t flags_known = flag_encrypted;

struct frame_header {
  frame_type type = frame_type::data;
  uint8_t flags = 0;
  uint16_t body_len = 0;  // body bytes on the wire, tag excluded
  uint32_t conn_id = 0;   // the receiver's connection id (0 in hello)
  uint32_t crc = 0;       // crc32c of the whole frame, this field taken as zero
  uint64_t pn = 0;        // packet number of this direction
  bool encrypted() const { return (flags & flag_encrypted) != 0; }
};

enum class decode_error : uint8_t {
  none,
  too_short,  // shorter than the header, or than header + body_len (+ tag)
  bad_magic,
  bad_version,
  bad_type,
  bad_flags,  // unknown flag bits or a non-zero reserved byte
  bad_crc,
  bad_body,  // the type's body does not parse (wrong size, bad field)
};
std::string_view to_string(decode_error e) noexcept;

// Writes the header into out[0..24) with a zero CRC field and returns the frame's total length
// (header + body_len (+ tag)), or -ENOSPC / -EMSGSIZE. The caller puts the body (and seals it,
// with frame_aad() as the additional data) and then calls seal_crc().
int write_header(std::span<uint8_t> out, const frame_header& h) noexcept;
// Computes the CRC over the whole frame (its CRC field taken as zero) and stores it.
void seal_crc(std::span<uint8_t> frame) noexcept;
// write_header + seal_crc, for frames whose body is already in place and not encrypted.
int finish_frame(std::span<uint8_t> out, const frame_header& h) noexcept;

// Parses and checks the header and CRC of a received frame. On success `body` is the body (and
// `tag` the tag when encrypted), both views into `frame`; trailing bytes beyond them are an
// error (bad_body), since UDP carries exact lengths.
struct decoded_frame {
  frame_header header;
  std::span<const uint8_t> body;
  std::span<const uint8_t> tag;
};
decode_error decode_frame(std::span<const uint8_t> frame, decoded_frame& out) noexcept;

// The additional authenticated data of an encrypted frame: its 24 header bytes with the CRC
// field zeroed (the CRC is computed over the sealed body, after the AEAD has run).
inline void frame_aad(std::span<const uint8_t> frame, uint8_t (&aad)[header_len]) noexcept {
  for (size_t i = 0; i < header_len; ++i)
    aad[i] = (i >= 12 && i < 16) ? 0 : frame[i];
}

// ---- Bodies ------------------------------------------------------------------------------
// encode_* return the body length written or -ENOSPC; decode_* return false when the body does
// not have the type's layout.

// data: one segment of a message. Messages follow each other in one byte stream per direction;
// stream_off is where this message starts in it, so the receiver can place the segment in its
// reassembly ring without knowing the messages before it.
//   u64 msg_id | u64 stream_off | u32 msg_len | u32 offset | segment bytes
inline constexpr size_t data_body_overhead = 24;
struct data_body {
  uint64_t msg_id = 0;
  uint64_t stream_off = 0;
  uint32_t msg_len = 0;
  uint32_t offset = 0;
  std::span<const uint8_t> bytes;
};
int encode_data(std::span<uint8_t> out, const data_body& d) noexcept;
// Also checks offset + bytes <= msg_len and that an empty segment only occurs for an empty
// message.
bool decode_data(std::span<const uint8_t> body, data_body& d) noexcept;

// ack: ranges of received packet numbers, highest first, each [first, last] inclusive and
// strictly below the previous range with a gap; and flow control: the receiver has delivered
// the stream up to `delivered` and can take `window` bytes beyond it.
//   u64 largest | u64 delivered | u32 ack_delay_us | u32 window | u16 count | u16 reserved |
//   count * (u64 first, u64 last)
inline constexpr size_t max_ack_ranges = 32;
inline constexpr size_t ack_body_fixed = 28;
struct pn_range {
  uint64_t first = 0;
  uint64_t last = 0;
};
struct ack_body {
  uint64_t delivered = 0;
  uint32_t ack_delay_us = 0;
  uint32_t window = 0;
  uint16_t count = 0;
  pn_range ranges[max_ack_ranges];
  uint64_t largest() const { return count ? ranges[0].last : 0; }
};
int encode_ack(std::span<uint8_t> out, const ack_body& a) noexcept;
bool decode_ack(std::span<const uint8_t> body, ack_body& a) noexcept;

// hello / hello_ack / confirm.
//   u32 sender_conn_id | u8 crypto (0 none, 1 aes-gcm) | u8 key_bits/8 | u16 reserved |
//   u64 boot_id | 32-byte nonce | 32-byte proof (zero in hello)
inline constexpr size_t nonce_len = 32;
inline constexpr size_t proof_len = 32;
inline constexpr size_t hello_body_len = 16 + nonce_len + proof_len;
struct hello_body {
  uint32_t sender_conn_id = 0;
  uint8_t crypto = 0;
  uint8_t key_bytes = 0;  // 16, 24, 32; 0 without crypto
  uint64_t boot_id = 0;
  uint8_t nonce[nonce_len] = {};
  uint8_t proof[proof_len] = {};
};
int encode_hello(std::span<uint8_t> out, const hello_body& h) noexcept;
bool decode_hello(std::span<const uint8_t> body, hello_body& h) noexcept;

// keepalive: u64 sender timestamp (ns); echoed in the reply's second field for RTT.
//   u64 sent_ns | u64 echo_ns
inline constexpr size_t keepalive_body_len = 16;
struct keepalive_body {
  uint64_t sent_ns = 0;
  uint64_t echo_ns = 0;
};
int encode_keepalive(std::span<uint8_t> out, const keepalive_body& k) noexcept;
bool decode_keepalive(std::span<const uint8_t> body, keepalive_body& k) noexcept;

// close: why the sender ends the session.
//   u16 reason | u16 reserved
enum class close_reason : uint16_t {
  shutdown = 1,         // orderly stop
  wrong_key = 2,        // the handshake proof did not verify
  crypto_required = 3,  // this side requires encryption and the peer offered none
  crypto_mismatch = 4,  // key sizes differ
  dead_peer = 5,        // nothing heard for the dead-peer timeout
  protocol = 6,         // an unexpected frame
};
inline constexpr size_t close_body_len = 4;
int encode_close(std::span<uint8_t> out, close_reason r) noexcept;
bool decode_close(std::span<const uint8_t> body, close_reason& r) noexcept;
std::string_view to_string(close_reason r) noexcept;

}  // namespace tandem::dp::transport
