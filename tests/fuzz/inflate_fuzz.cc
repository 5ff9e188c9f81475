// SPDX-License-Identifier: Apache-2.0
// Fuzz target for dataplane/compress: block_decompressor on any bytes into a fixed 64 KiB
// output, and short inputs round-tripped through block_compressor.
//
// Beyond "no sanitizer report" it checks that a result is one of the documented ones; that no
// call writes past its `out` (guard bytes follow every output span) or reads past its `in` (the
// input ends where an inaccessible page begins: ISA-L is not built with ASan, so only the page
// catches its reads); that a stream which decodes gives the same bytes again through the exact
// variant, needs all of them (one byte less is -EMSGSIZE) and survives re-compression; and that
// what the compressor makes of a short input is smaller and decodes back to it at every level.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "dataplane/compress/compressor.h"

namespace tandem::fuzz {
namespace {

using namespace tandem::dp;

constexpr size_t out_size = size_t{64} * 1024;  // the fixed decode target, a typical mirror block
constexpr size_t round_trip_max =
    size_t{16} * 1024;  // inputs up to this size also go through compress
constexpr size_t guard_size = 64;
constexpr uint8_t guard_byte = 0xA5;

[[noreturn]] void fail(const char* what, size_t size) {
  std::fprintf(stderr, "fuzz_inflate: invariant broken: %s (input of %zu bytes)\n", what, size);
  std::abort();
}

#define TANDEM_FUZZ_CHECK(cond, size) \
  do {                                \
    if (!(cond)) fail(#cond, size);   \
  } while (0)

// A static area whose spans are cut from its end, so guard_size guard bytes always follow them.
template <size_t Capacity>
class guarded_area {
 public:
  guarded_area() { std::memset(buf_ + Capacity, guard_byte, guard_size); }
  std::span<uint8_t> tail(size_t n) { return {buf_ + Capacity - n, n}; }
  [[nodiscard]] bool intact() const {
    return std::all_of(buf_ + Capacity, buf_ + Capacity + guard_size,
                       [](uint8_t b) { return b == guard_byte; });
  }

 private:
  uint8_t buf_[Capacity + guard_size];
};

// Inputs are copied to the end of readable memory, right before a PROT_NONE page.
class page_tail {
 public:
  static constexpr size_t capacity = size_t{1024} * 1024;
  page_tail() {
    const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* p =
        mmap(nullptr, capacity + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || mprotect(static_cast<uint8_t*>(p) + capacity, page, PROT_NONE) != 0) {
      std::perror("fuzz_inflate: mmap");
      std::abort();
    }
    end_ = static_cast<uint8_t*>(p) + capacity;
  }
  // Inputs too large for the area are used where they are (ASan still sees their end there).
  std::span<const uint8_t> place(const uint8_t* data, size_t size) {
    if (size > capacity) return {data, size};
    uint8_t* dst = end_ - size;
    if (size > 0) std::memcpy(dst, data, size);
    return {dst, size};
  }

 private:
  uint8_t* end_ = nullptr;
};

struct fixture {
  block_decompressor decomp;
  block_compressor comp[4] = {block_compressor(0), block_compressor(1), block_compressor(2),
                              block_compressor(3)};
  page_tail input;
  guarded_area<out_size> out;
  guarded_area<out_size> again;
  guarded_area<block_compressor::compress_bound(out_size)> packed;
};

fixture& the_fixture() {
  static auto* f = new fixture;  // built once, never destroyed: no teardown-order issues
  return *f;
}

// Re-compresses decoded (or original) bytes at `level` and checks the stream decodes back.
void round_trip(fixture& f, std::span<const uint8_t> plain, int level, size_t size) {
  const std::span<uint8_t> z = f.packed.tail(block_compressor::compress_bound(plain.size()));
  const size_t c = f.comp[level].compress(plain, z);
  TANDEM_FUZZ_CHECK(f.packed.intact(), size);
  if (c == 0) return;  // did not shrink: sent raw
  TANDEM_FUZZ_CHECK(c < plain.size(), size);
  const std::span<const uint8_t> stream = f.input.place(z.data(), c);
  const std::span<uint8_t> back = f.again.tail(plain.size());
  TANDEM_FUZZ_CHECK(f.decomp.decompress_exact(stream, back) == static_cast<long>(plain.size()),
                    size);
  TANDEM_FUZZ_CHECK(std::equal(plain.begin(), plain.end(), back.begin()), size);
  TANDEM_FUZZ_CHECK(f.again.intact(), size);
  // One byte less room than that stream: nothing written past the room, and either 0 or
  // another, smaller stream that also decodes back (ISA-L takes its shortcut for runs of zero
  // or 0xFF bytes only when it has room for it, and the regular path can come out shorter).
  const std::span<uint8_t> tight = f.packed.tail(c - 1);
  const size_t t = f.comp[level].compress(plain, tight);
  TANDEM_FUZZ_CHECK(f.packed.intact(), size);
  TANDEM_FUZZ_CHECK(t < c, size);
  if (t > 0) {
    const std::span<const uint8_t> smaller = f.input.place(tight.data(), t);
    TANDEM_FUZZ_CHECK(f.decomp.decompress_exact(smaller, back) == static_cast<long>(plain.size()),
                      size);
    TANDEM_FUZZ_CHECK(std::equal(plain.begin(), plain.end(), back.begin()), size);
  }
}

}  // namespace
}  // namespace tandem::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tandem::fuzz;
  fixture& f = the_fixture();
  const std::span<const uint8_t> in = f.input.place(data, size);
  const std::span<uint8_t> out = f.out.tail(out_size);

  const long r = f.decomp.decompress(in, out);
  TANDEM_FUZZ_CHECK(r == -EBADMSG || r == -EMSGSIZE || (r >= 0 && r <= long{out_size}), size);
  TANDEM_FUZZ_CHECK(f.out.intact(), size);

  if (r >= 0) {
    const auto n = static_cast<size_t>(r);
    // Decoding is deterministic, and the exact variant agrees when told the size.
    const std::span<uint8_t> exact = f.again.tail(n);
    TANDEM_FUZZ_CHECK(f.decomp.decompress_exact(in, exact) == r, size);
    TANDEM_FUZZ_CHECK(std::equal(exact.begin(), exact.end(), out.begin()), size);
    TANDEM_FUZZ_CHECK(f.again.intact(), size);
    if (n > 0) {
      TANDEM_FUZZ_CHECK(f.decomp.decompress(in, f.again.tail(n - 1)) == -EMSGSIZE, size);
      TANDEM_FUZZ_CHECK(f.decomp.decompress_exact(in, f.again.tail(n - 1)) == -EBADMSG, size);
      TANDEM_FUZZ_CHECK(f.again.intact(), size);
    }
    if (n < out_size)
      TANDEM_FUZZ_CHECK(f.decomp.decompress_exact(in, f.again.tail(n + 1)) == -EBADMSG, size);
    // What was decoded compresses and decodes back (the level picked by the input's length).
    round_trip(f, {out.data(), n}, static_cast<int>(size % 4), size);
  } else {
    TANDEM_FUZZ_CHECK(f.decomp.decompress_exact(in, out) == -EBADMSG, size);
    TANDEM_FUZZ_CHECK(f.out.intact(), size);
  }

  // Short inputs also go the other way: compress them as a block, at every level.
  if (size <= round_trip_max) {
    // A copy: round_trip places its streams where `in` was.
    const std::span<uint8_t> plain = f.out.tail(size);
    if (size > 0) std::memcpy(plain.data(), data, size);
    for (int level = 0; level < 4; ++level)
      round_trip(f, plain, level, size);
  }
  return 0;
}
