// SPDX-License-Identifier: Apache-2.0
// The mirror protocol, version 3: the messages two volume engines exchange over one transport
// connection. Every message is one transport message with a fixed little-endian layout; the
// decoder is strict (exact sizes, known flags, zero reserved fields), and each value has exactly
// one encoding. docs/mirror.md has the table.
//
//   0     1      2          4
//   +-----+------+----------+----------------------
//   |type |flags |reserved 0| body (fixed per type)
//   +-----+------+----------+----------------------
//
// A write's or resync_data's payload travels as the NEXT transport message, raw (no header), so
// the sender can hand the application's buffer to connection::send_ref() without a copy.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/volume/metadata.h"

namespace tandem::dp::mirror {

// 2: resync_digest / resync_digest_ack (checksum-driven resync).
// 3: write messages may carry msg_flag_compressed (an async primary's queue, compression: igzip).
inline constexpr uint16_t protocol_version = 3;
inline constexpr size_t msg_header_len = 4;

enum class msg_type : uint8_t {
  hello = 1,             // both, first message of a session: identity, state, limits
  write = 2,             // primary -> secondary; the data follows as the next message
  discard = 3,           // primary -> secondary
  write_zeroes = 4,      // primary -> secondary
  flush = 5,             // primary -> secondary: flush everything applied before it
  ack = 6,               // secondary -> primary: a write/discard/write_zeroes/flush finished
  bitmap = 7,            // both, at resync start: a run of dirty-bitmap words
  bitmap_done = 8,       // both: the sender's bitmap is complete
  resync_data = 9,       // sync source -> target; the data follows as the next message
  resync_ack = 10,       // target -> source
  state = 11,            // both: role / disk state / generation ids changed
  resync_done = 12,      // source -> target: every dirty chunk acked; carries the source's ids
  resync_finished = 13,  // target -> source: the target committed UpToDate; its new ids
  resync_pause = 14,     // both: the sender paused (flag set) or resumed the resync
  // Checksum-driven resync: the source sends the digests of a chunk's 4 KiB blocks instead of
  // the chunk; the target answers which blocks differ, and only those follow as resync_data.
  resync_digest = 15,      // sync source -> target
  resync_digest_ack = 16,  // target -> source
};
inline constexpr uint8_t msg_type_max = 16;
[[nodiscard]] const char* to_string(msg_type t) noexcept;

// Flags in the header byte.
inline constexpr uint8_t msg_flag_fua = 1u << 0;     // write: durable on the peer when acked
inline constexpr uint8_t msg_flag_paused = 1u << 0;  // resync_pause: paused (else resumed)
// resync_digest: an online verify's request (the target answers and changes nothing).
inline constexpr uint8_t msg_flag_verify = 1u << 0;
// resync_data, write: the data message is a raw DEFLATE stream (dataplane/compress) of `length`
// bytes.
inline constexpr uint8_t msg_flag_compressed = 1u << 1;

// hello / state flags.
inline constexpr uint32_t hf_crashed_primary = 1u << 0;  // metadata flag_crashed_primary
inline constexpr uint32_t hf_resync_in_progress = 1u << 1;
inline constexpr uint32_t hf_auto_resync = 1u << 2;       // may start a resync without an operator
inline constexpr uint32_t hf_want_resync = 1u << 3;       // the operator asked for the resync now
inline constexpr uint32_t hf_want_full_source = 1u << 4;  // the operator asked for a full resync
                                                          // with this node as the source
// state only: the sender is leaving (a planned disconnect) and every write it acknowledged is
// durable, so the primary need not mark the extents written since its last peer flush.
inline constexpr uint32_t hf_leaving = 1u << 5;
// hello only: the operator asked to discard this node's changes in a split brain (it becomes
// the target of a resync from the peer).
inline constexpr uint32_t hf_discard_my_data = 1u << 7;
// The sender wants checksum-driven resyncs (its resync.checksum option, or the operator's
// request): a source uses them when either side says so.
inline constexpr uint32_t hf_checksum_resync = 1u << 6;
inline constexpr uint32_t hf_known = hf_crashed_primary | hf_resync_in_progress | hf_auto_resync |
                                     hf_want_resync | hf_want_full_source | hf_leaving |
                                     hf_checksum_resync | hf_discard_my_data;

// Largest payload of one write / resync_data the decoder accepts (engines use less: the peer's
// advertised max_io).
inline constexpr uint32_t max_data_len = 16u << 20;
// Largest discard / write_zeroes range.
inline constexpr uint64_t max_zero_len = 1ULL << 40;
// Words (64 bits each) in one bitmap message: 1 .. this.
inline constexpr uint32_t max_bitmap_words = 4096;
// Checksum resync: one digest per digest_block bytes of a chunk (the last block may be shorter),
// digest_len bytes each, at most max_digest_blocks per message.
inline constexpr uint32_t digest_block = 4096;
inline constexpr size_t digest_len = 16;
inline constexpr uint32_t max_digest_blocks = 1024;
[[nodiscard]] constexpr uint32_t digest_blocks(uint64_t length) noexcept {
  return static_cast<uint32_t>((length + digest_block - 1) / digest_block);
}

// What two nodes do with a split brain they detect (both must be configured alike).
enum class split_brain_policy : uint8_t {
  disconnect = 0,               // nothing is resynced; the operator decides
  discard_zero_changes = 1,     // a side without changes since the split takes the other's
  discard_younger_primary = 2,  // the side that became primary last loses its changes
  discard_least_changes = 3,    // the side with fewer changed bytes loses them
};
inline constexpr uint8_t split_brain_policy_max = 3;
[[nodiscard]] const char* to_string(split_brain_policy p) noexcept;

struct hello_msg {
  uint16_t version = protocol_version;
  uint32_t node_id = 0;
  std::array<uint8_t, 16> uuid{};
  uint64_t volume_size = 0;
  uint32_t block_size = 0;
  uint32_t bitmap_granularity = 0;
  volume::role role = volume::role::secondary;
  volume::disk_state disk = volume::disk_state::inconsistent;
  uint32_t flags = 0;  // hf_*
  volume::generation_ids gen;
  uint64_t dirty_bytes = 0;  // informational: bytes the sender's bitmap marks
  // What the sender can hold as a receiver: requests in flight, 16 KiB pages of data, and the
  // largest write it takes.
  uint32_t recv_slots = 0;
  uint32_t recv_pages = 0;
  uint32_t page_size = 0;
  uint32_t max_io = 0;
  uint64_t primary_since = 0;  // metadata primary_since (CLOCK_REALTIME ns; 0: never)
  split_brain_policy policy = split_brain_policy::disconnect;
  bool operator==(const hello_msg&) const = default;
};

// write, discard, write_zeroes, resync_data.
struct io_msg {
  uint64_t seq = 0;
  uint64_t offset = 0;
  uint64_t length = 0;  // write/resync_data: 1 .. max_data_len; discard/zeroes: 1 .. max_zero_len
  bool fua = false;     // write only
  bool compressed = false;  // resync_data, write: the data travels compressed
  bool operator==(const io_msg&) const = default;
};

// ack, resync_ack.
struct ack_msg {
  uint64_t seq = 0;
  int32_t status = 0;  // 0, or a negative errno (-4095 .. -1)
  bool operator==(const ack_msg&) const = default;
};

struct bitmap_msg {
  uint64_t first_word = 0;
  uint32_t count = 0;              // 1 .. max_bitmap_words
  std::span<const uint8_t> words;  // count * 8 bytes, little-endian words (a view, decode only)
  [[nodiscard]] uint64_t word(uint32_t i) const noexcept;
};

// state (and the ids of resync_done / resync_finished).
struct state_msg {
  volume::role role = volume::role::secondary;
  volume::disk_state disk = volume::disk_state::inconsistent;
  uint32_t flags = 0;  // hf_*
  volume::generation_ids gen;
  bool operator==(const state_msg&) const = default;
};

// resync_digest: the source's digests of [offset, offset + length).
struct digest_msg {
  uint64_t seq = 0;
  uint64_t offset = 0;
  uint64_t length = 0;               // 1 .. max_digest_blocks * digest_block
  std::span<const uint8_t> digests;  // digest_blocks(length) * digest_len bytes (a view)
  bool verify = false;               // msg_flag_verify
};

// resync_digest_ack: which blocks of the chunk named by `seq` differ on the target (bit i of
// the little-endian words: block i). A failed read on the target has status < 0 and no mask.
struct digest_ack_msg {
  uint64_t seq = 0;
  int32_t status = 0;
  uint32_t count = 0;             // blocks: 1 .. max_digest_blocks (0 with a status < 0)
  std::span<const uint8_t> mask;  // (count + 63) / 64 words of 8 bytes (a view)
  [[nodiscard]] bool differs(uint32_t block) const noexcept;
};

// One decoded message. Only the member named by `type` is meaningful.
struct message {
  msg_type type = msg_type::hello;
  hello_msg hello;             // hello
  io_msg io;                   // write, discard, write_zeroes, resync_data
  uint64_t seq = 0;            // flush
  ack_msg ack;                 // ack, resync_ack
  bitmap_msg bitmap;           // bitmap
  uint64_t dirty_bits = 0;     // bitmap_done: bits the sender's bitmap holds
  state_msg state;             // state
  volume::generation_ids gen;  // resync_done, resync_finished
  bool paused = false;         // resync_pause
  digest_msg digest;           // resync_digest
  digest_ack_msg digest_ack;   // resync_digest_ack
};

enum class decode_status : uint8_t {
  ok,
  too_short,     // shorter than the header or the type's body
  bad_type,      // unknown type
  bad_flags,     // a flag bit this type does not define
  bad_reserved,  // a reserved field is not zero
  bad_length,    // not exactly the type's size
  bad_version,   // a hello of another protocol version (message::hello.version is set)
  bad_field,     // a field out of range (enum, length, status, overflow)
};
[[nodiscard]] const char* to_string(decode_status s) noexcept;

// Decodes one message. Pure; `out.bitmap.words` points into `in`.
[[nodiscard]] decode_status decode(std::span<const uint8_t> in, message& out) noexcept;

// Encoders: write the message into `out` and return its length, or -ENOSPC when `out` is too
// small. Encoders do not validate (the engine builds only valid messages); the unit tests and
// the fuzz target check that decode(encode(m)) == m.
inline constexpr size_t hello_len = msg_header_len + 120;
inline constexpr size_t io_len = msg_header_len + 24;
inline constexpr size_t flush_len = msg_header_len + 8;
inline constexpr size_t ack_len = msg_header_len + 16;
inline constexpr size_t bitmap_header_len = msg_header_len + 16;
inline constexpr size_t bitmap_done_len = msg_header_len + 8;
inline constexpr size_t state_len = msg_header_len + 40;
inline constexpr size_t gens_len = msg_header_len + 32;
inline constexpr size_t pause_len = msg_header_len;
inline constexpr size_t digest_header_len = msg_header_len + 32;
inline constexpr size_t digest_ack_header_len = msg_header_len + 16;
inline constexpr size_t max_digest_len = digest_header_len + size_t{max_digest_blocks} * digest_len;
inline constexpr size_t max_control_len = hello_len;  // every message but bitmap fits in this

int encode_hello(std::span<uint8_t> out, const hello_msg& m) noexcept;
// type: write, discard, write_zeroes or resync_data.
int encode_io(std::span<uint8_t> out, msg_type type, const io_msg& m) noexcept;
int encode_flush(std::span<uint8_t> out, uint64_t seq) noexcept;
// type: ack or resync_ack.
int encode_ack(std::span<uint8_t> out, msg_type type, const ack_msg& m) noexcept;
// `le_words`: 1 .. max_bitmap_words little-endian 64-bit words (8 bytes each), i.e. exactly the
// layout of the on-disk bitmap pages (dirty_bitmap::page_bytes), which are sent as they are.
int encode_bitmap(std::span<uint8_t> out, uint64_t first_word,
                  std::span<const uint8_t> le_words) noexcept;
int encode_bitmap_done(std::span<uint8_t> out, uint64_t dirty_bits) noexcept;
int encode_state(std::span<uint8_t> out, const state_msg& m) noexcept;
// type: resync_done or resync_finished.
int encode_gens(std::span<uint8_t> out, msg_type type, const volume::generation_ids& g) noexcept;
int encode_pause(std::span<uint8_t> out, bool paused) noexcept;
// `digests`: digest_blocks(length) * digest_len bytes.
int encode_digest(std::span<uint8_t> out, uint64_t seq, uint64_t offset, uint64_t length,
                  std::span<const uint8_t> digests, bool verify = false) noexcept;
// `mask`: (count + 63) / 64 little-endian words (8 bytes each); empty with a status < 0.
int encode_digest_ack(std::span<uint8_t> out, uint64_t seq, int32_t status, uint32_t count,
                      std::span<const uint8_t> mask) noexcept;
// Re-encodes any decoded message (the fuzz target's canonical-encoding check).
int encode(std::span<uint8_t> out, const message& m) noexcept;

}  // namespace tandem::dp::mirror
