// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the volume metadata tests: a temp directory, file bytes, small parameters.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "dataplane/volume/metadata.h"
#include "tests/support/temp_dir.h"

namespace tandem::dp::volume::test {

// A fresh directory under the temp dir, removed with everything in it when destroyed.
struct temp_dir : tandem::test::temp_dir {
  temp_dir() : tandem::test::temp_dir("tandem-volmeta") {}
};

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

// Overwrites bytes at `offset` in an existing file.
inline void patch_bytes(const std::string& path, uint64_t offset, const std::vector<uint8_t>& b) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) throw std::runtime_error("cannot patch " + path);
}

// Inverts the byte at `offset`: a corruption that always changes the file, whatever random
// content (a uuid, a generation id) the byte held.
inline void flip_byte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  c = static_cast<char>(~c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(c);
  if (!f) throw std::runtime_error("cannot flip a byte of " + path);
}

// Small parameters that keep files tiny: 64 KiB chunks, 4 MiB extents, 8 slots, 4 records.
inline format_params small_params() {
  format_params p;
  p.block_size = 4096;
  p.bitmap_granularity = 64u << 10;
  p.al_extent_size = 4u << 20;
  p.al_slots = 8;
  p.al_ring_records = 4;
  return p;
}

inline constexpr uint64_t mib = uint64_t{1} << 20;

// The fuzz target's compact image format (tests/fuzz/volume_meta_fuzz.cc): each 4 KiB block of
// the metadata is stored as its first 512 bytes; the rest of the block must be zero.
inline constexpr size_t compact_chunk = 512;
inline std::vector<uint8_t> compact_image(const std::vector<uint8_t>& image) {
  std::vector<uint8_t> out;
  for (size_t at = 0; at < image.size(); at += meta_block_size) {
    for (size_t i = compact_chunk; i < meta_block_size && at + i < image.size(); ++i) {
      if (image[at + i] != 0) throw std::runtime_error("block tail not zero: cannot compact");
    }
    const size_t n = std::min(compact_chunk, image.size() - at);
    out.insert(out.end(), image.begin() + static_cast<std::ptrdiff_t>(at),
               image.begin() + static_cast<std::ptrdiff_t>(at + n));
  }
  return out;
}
inline std::vector<uint8_t> expand_image(const std::vector<uint8_t>& compact) {
  const size_t blocks = (compact.size() + compact_chunk - 1) / compact_chunk;
  std::vector<uint8_t> image(blocks * meta_block_size, 0);
  for (size_t b = 0; b < blocks; ++b) {
    const size_t n = std::min(compact_chunk, compact.size() - b * compact_chunk);
    std::copy_n(compact.begin() + static_cast<std::ptrdiff_t>(b * compact_chunk), n,
                image.begin() + static_cast<std::ptrdiff_t>(b * meta_block_size));
  }
  return image;
}

}  // namespace tandem::dp::volume::test
