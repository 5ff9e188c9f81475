// SPDX-License-Identifier: Apache-2.0
// Block compression for the mirror engine's async and resync traffic: raw DEFLATE by ISA-L igzip.
//
// One block in, one raw DEFLATE stream (RFC 1951, no gzip or zlib wrapper, no checksum) out.
// The library does no framing: the caller records whether a block went compressed and its
// uncompressed length, and the transport's CRC32C / AEAD protects the bytes on the wire.
//
//   block_compressor comp(1);                    // per owner thread; allocates here only
//   std::vector<uint8_t> wire(block_compressor::compress_bound(block.size()));
//   size_t n = comp.compress(block, wire);       // 0: send `block` raw
//   ...
//   block_decompressor decomp;
//   long r = decomp.decompress_exact({wire.data(), n}, dest);  // dest.size() == block size
//
// Both classes are hot-path objects: no allocation, lock or exception after construction, and
// not thread-safe (each keeps ISA-L's working state), so each belongs to one thread. Neither
// keeps a pointer into the caller's buffers after a call returns. Blocks up to max_block bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

namespace tandem::dp {

// How a block travels. The numeric values are fixed: they may be stored or sent.
enum class compression : uint8_t {
  none = 0,   // as is
  igzip = 1,  // raw DEFLATE (RFC 1951) made by ISA-L igzip; any DEFLATE decoder reads it
};

// "none", "igzip" ("unknown" for a value outside the enum).
[[nodiscard]] std::string_view to_string(compression c) noexcept;
// The inverse of to_string: exactly "none" or "igzip" (lower case), nullopt otherwise.
[[nodiscard]] std::optional<compression> parse_compression(std::string_view s) noexcept;

// ISA-L counts bytes in 32 bits: neither direction handles a larger block or stream.
inline constexpr size_t max_block = UINT32_MAX;

class block_compressor {
 public:
  static constexpr int min_level = 0;      // fastest: one static Huffman table
  static constexpr int max_level = 3;      // best ratio ISA-L offers, slowest
  static constexpr int default_level = 1;  // dynamic Huffman tables per block

  // Allocates ISA-L's stream state and the level's working buffer (about 80 KiB, plus 0, 276,
  // 324 or 340 KiB for levels 0..3). A level outside min_level..max_level throws
  // std::invalid_argument, the only exception this class throws.
  explicit block_compressor(int level = default_level);
  ~block_compressor();
  block_compressor(block_compressor&&) noexcept;  // the moved-from object can only be destroyed
  block_compressor& operator=(block_compressor&&) noexcept;  // or assigned to
  block_compressor(const block_compressor&) = delete;
  block_compressor& operator=(const block_compressor&) = delete;

  // Compresses `in` into `out` as one raw DEFLATE stream and returns its size, which is always
  // smaller than in.size(). Returns 0 (send the block raw) when DEFLATE does not make the block
  // smaller, when `in` is empty or larger than max_block, and when the stream does not fit in
  // `out`. Never writes past out.size(); after a 0 `out` holds garbage. The stream may differ
  // with out.size() when it is tight: ISA-L takes its shortcut for runs of zero or 0xFF bytes
  // only when it has room for it. Any non-zero result decodes to `in`.
  [[nodiscard]] size_t compress(std::span<const uint8_t> in, std::span<uint8_t> out) noexcept;

  // An out.size() with which compress() never fails for lack of room, so a 0 means the block
  // does not compress. ISA-L stores what it cannot compress as stored blocks (5 bytes of header
  // per 65535 bytes), and its 64-bit bit buffer wants a few bytes beyond the stream's end before
  // it will finish one, which the 64 bytes at the end cover.
  [[nodiscard]] static constexpr size_t compress_bound(size_t n) noexcept {
    const size_t stored_blocks = n == 0 ? 1 : (n + 65534) / 65535;
    return n + 5 * stored_blocks + 64;
  }

  [[nodiscard]] int level() const noexcept { return level_; }

 private:
  struct state;  // ISA-L's stream and level buffer, so that its headers stay in compressor.cc
  std::unique_ptr<state> st_;
  int level_;
};

class block_decompressor {
 public:
  block_decompressor();  // allocates ISA-L's inflate state (about 85 KiB)
  ~block_decompressor();
  block_decompressor(block_decompressor&&) noexcept;  // the moved-from object can only be
  block_decompressor& operator=(block_decompressor&&) noexcept;  // destroyed or assigned to
  block_decompressor(const block_decompressor&) = delete;
  block_decompressor& operator=(const block_decompressor&) = delete;

  // Decodes the raw DEFLATE stream `in`, which must end with its final block and hold nothing
  // after it, into `out`. Returns the number of bytes written, or:
  //   -EBADMSG   the stream is corrupt, truncated, empty, or followed by extra bytes;
  //   -EMSGSIZE  it decodes to more than out.size() bytes (the rest of it is not checked);
  //   -EINVAL    in.size() or out.size() is larger than max_block.
  // Never writes past out.size() nor reads past in.size(); after an error `out` holds garbage.
  [[nodiscard]] long decompress(std::span<const uint8_t> in, std::span<uint8_t> out) noexcept;

  // The same for a block whose size the caller knows: returns out.size() when the stream
  // decodes to exactly out.size() bytes, -EINVAL as above, and -EBADMSG for anything else
  // (including a stream that decodes to fewer or more bytes).
  [[nodiscard]] long decompress_exact(std::span<const uint8_t> in, std::span<uint8_t> out) noexcept;

 private:
  struct state;  // ISA-L's inflate_state
  std::unique_ptr<state> st_;
};

}  // namespace tandem::dp
