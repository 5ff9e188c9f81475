// SPDX-License-Identifier: Apache-2.0
// block_compressor / block_decompressor on ISA-L's one-shot (stateless) igzip calls.
#include "dataplane/compress/compressor.h"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <isa-l.h>

namespace tandem::dp {

static_assert(block_compressor::min_level == ISAL_DEF_MIN_LEVEL);
static_assert(block_compressor::max_level == ISAL_DEF_MAX_LEVEL);
static_assert(max_block == UINT32_MAX, "isal_zstream and inflate_state count in uint32_t");

std::string_view to_string(compression c) noexcept {
  switch (c) {
    case compression::none:
      return "none";
    case compression::igzip:
      return "igzip";
  }
  return "unknown";
}

std::optional<compression> parse_compression(std::string_view s) noexcept {
  if (s == "none") return compression::none;
  if (s == "igzip") return compression::igzip;
  return std::nullopt;
}

namespace {

// ISA-L's suggested level buffer per level. Level 0 needs none (its hash table lives in the
// stream); level 1 would fall back to a 64 KiB buffer inside the stream, which cuts its Huffman
// blocks shorter and costs ratio, so every level >= 1 gets its default.
size_t level_buf_size(int level) {
  switch (level) {
    case 1:
      return ISAL_DEF_LVL1_DEFAULT;
    case 2:
      return ISAL_DEF_LVL2_DEFAULT;
    case 3:
      return ISAL_DEF_LVL3_DEFAULT;
    default:
      return 0;
  }
}

}  // namespace

struct block_compressor::state {
  isal_zstream stream{};
  std::unique_ptr<uint8_t[]> level_buf;
  uint32_t level_buf_size = 0;
};

block_compressor::block_compressor(int level) : level_(level) {
  if (level < min_level || level > max_level) {
    throw std::invalid_argument("block_compressor: compression level " + std::to_string(level) +
                                " is outside " + std::to_string(min_level) + ".." +
                                std::to_string(max_level));
  }
  st_ = std::make_unique<state>();
  st_->level_buf_size = static_cast<uint32_t>(level_buf_size(level));
  if (st_->level_buf_size > 0) st_->level_buf = std::make_unique<uint8_t[]>(st_->level_buf_size);
}

block_compressor::~block_compressor() = default;
block_compressor::block_compressor(block_compressor&&) noexcept = default;
block_compressor& block_compressor::operator=(block_compressor&&) noexcept = default;

size_t block_compressor::compress(std::span<const uint8_t> in, std::span<uint8_t> out) noexcept {
  if (in.empty() || in.size() > max_block) return 0;
  isal_zstream& s = st_->stream;
  // The stateless init only resets the fields a one-shot call reads (no large memset); the
  // stateless call itself rebuilds the rest of the state, hash tables included.
  isal_deflate_stateless_init(&s);
  s.level = static_cast<uint32_t>(level_);
  s.level_buf = st_->level_buf.get();
  s.level_buf_size = st_->level_buf_size;
  s.gzip_flag = IGZIP_DEFLATE;  // raw DEFLATE: no header, no trailer
  s.hist_bits = 0;              // ISA-L's full 32 KiB window
  s.flush = NO_FLUSH;
  s.end_of_stream = 1;
  // ISA-L reads through a non-const pointer but never writes to the input.
  s.next_in = const_cast<uint8_t*>(in.data());
  s.avail_in = static_cast<uint32_t>(in.size());
  s.next_out = out.data();
  s.avail_out = static_cast<uint32_t>(out.size() < max_block ? out.size() : max_block);
  // STATELESS_OVERFLOW: neither the compressed stream nor ISA-L's stored-block fallback fits.
  if (isal_deflate_stateless(&s) != COMP_OK) return 0;
  // ISA-L falls back to stored blocks (in.size() + 5 bytes per 64 KiB) when DEFLATE does not
  // help, and a compressed stream may also come out no smaller: either way, send it raw.
  if (s.total_out >= in.size()) return 0;
  return s.total_out;
}

struct block_decompressor::state {
  inflate_state inflate{};
};

block_decompressor::block_decompressor() : st_(std::make_unique<state>()) {}
block_decompressor::~block_decompressor() = default;
block_decompressor::block_decompressor(block_decompressor&&) noexcept = default;
block_decompressor& block_decompressor::operator=(block_decompressor&&) noexcept = default;

long block_decompressor::decompress(std::span<const uint8_t> in, std::span<uint8_t> out) noexcept {
  if (in.size() > max_block || out.size() > max_block) return -EINVAL;
  if (in.empty()) return -EBADMSG;  // the shortest DEFLATE stream is 2 bytes (03 00)
  inflate_state& st = st_->inflate;
  isal_inflate_init(&st);  // field resets only; the tables are rebuilt per block header
  st.crc_flag = ISAL_DEFLATE;
  st.hist_bits = 0;
  st.next_in = const_cast<uint8_t*>(in.data());
  st.avail_in = static_cast<uint32_t>(in.size());
  st.next_out = out.data();
  st.avail_out = static_cast<uint32_t>(out.size());
  switch (isal_inflate_stateless(&st)) {
    case ISAL_DECOMP_OK:
      // The final block ended. ISA-L gives back the whole bytes it had buffered but not used,
      // so anything left is data after the stream: a framing error, not something to ignore.
      if (st.avail_in != 0) return -EBADMSG;
      return static_cast<long>(st.total_out);
    case ISAL_OUT_OVERFLOW:
      return -EMSGSIZE;
    default:
      // ISAL_END_INPUT (truncated), ISAL_INVALID_BLOCK / _SYMBOL / _LOOKBACK (corrupt), and
      // the wrapper and dictionary codes, which raw DEFLATE cannot produce.
      return -EBADMSG;
  }
}

long block_decompressor::decompress_exact(std::span<const uint8_t> in,
                                          std::span<uint8_t> out) noexcept {
  const long r = decompress(in, out);
  if (r == -EINVAL || r == static_cast<long>(out.size())) return r;
  return -EBADMSG;
}

}  // namespace tandem::dp
