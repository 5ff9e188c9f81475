// SPDX-License-Identifier: Apache-2.0
// CRC32C and AES-GCM (ipsec-mb, OpenSSL) throughput against a memcpy of the same size.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "dataplane/crypto/aead.h"
#include "dataplane/crypto/crc32c.h"
#include "perf/bench.h"

namespace tandem::perf {
namespace {

using namespace tandem::dp;

constexpr size_t frame_payload = 1408;  // what one frame carries at a 1500-byte MTU
constexpr unsigned burst = 32;          // frames per burst in the burst benchmarks

// Page-aligned source and destination buffers, so that no run depends on where malloc put them.
struct buffers {
  static constexpr size_t page = 4096;

  explicit buffers(size_t len) : size(len), storage(2 * round_up(len) + page) {
    const auto raw = reinterpret_cast<uintptr_t>(storage.data());
    uint8_t* base = storage.data() + ((page - raw % page) % page);
    in = {base, len};
    out = {base + round_up(len), len};
    for (size_t i = 0; i < len; ++i)
      in[i] = static_cast<uint8_t>(i * 13 + 7);
  }
  static size_t round_up(size_t n) { return (n + page - 1) / page * page; }

  size_t size;
  std::vector<uint8_t> storage;
  std::span<uint8_t> in;
  std::span<uint8_t> out;
};

// 32 bytes of AES-256 key, a nonce and a 16-byte header as the AAD, as the transport uses.
const uint8_t bench_key[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                               17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
const uint8_t bench_nonce[aead_nonce_size] = {0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 0, 0, 0, 0, 1};
const uint8_t bench_header[16] = {0x01, 0x10};

std::string memcpy_ceiling(size_t size) {
  return "ceiling/memcpy/" + std::to_string(size);
}

void account(benchmark::State& state, size_t bytes_per_iteration) {
  const auto n = static_cast<int64_t>(state.iterations());
  state.SetBytesProcessed(n * static_cast<int64_t>(bytes_per_iteration));
}

// The ceiling: nothing that reads every byte and writes a result of the same size beats a copy.
void bm_memcpy(benchmark::State& state) {
  buffers b(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(b.in.data());
    std::memcpy(b.out.data(), b.in.data(), b.size);
    benchmark::DoNotOptimize(b.out.data());
    benchmark::ClobberMemory();
  }
  account(state, b.size);
}

void bm_crc32c(benchmark::State& state) {
  buffers b(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(b.in.data());
    uint32_t crc = crc32c(b.in);
    benchmark::DoNotOptimize(crc);
  }
  account(state, b.size);
  set_ceiling(state, memcpy_ceiling(b.size));
}

void bm_seal(benchmark::State& state, aead_backend backend) {
  buffers b(static_cast<size_t>(state.range(0)));
  const auto a = make_aead(backend, bench_key);
  uint8_t tag[aead_tag_size];
  aead_op op{bench_nonce, bench_header, b.in, b.out.data(), tag, 0};
  for (auto _ : state) {
    benchmark::DoNotOptimize(b.in.data());
    a->seal_burst(&op, 1);
    benchmark::DoNotOptimize(op.result);
    benchmark::ClobberMemory();
  }
  if (op.result != 0) state.SkipWithError("seal failed");
  account(state, b.size);
  set_ceiling(state, memcpy_ceiling(b.size), a->implementation());
}

void bm_open(benchmark::State& state, aead_backend backend) {
  buffers b(static_cast<size_t>(state.range(0)));
  const auto a = make_aead(backend, bench_key);
  uint8_t tag[aead_tag_size];
  std::vector<uint8_t> ct(b.size);
  aead_op seal{bench_nonce, bench_header, b.in, ct.data(), tag, 0};
  a->seal_burst(&seal, 1);
  aead_op op{bench_nonce, bench_header, ct, b.out.data(), tag, 0};
  for (auto _ : state) {
    benchmark::DoNotOptimize(ct.data());
    a->open_burst(&op, 1);
    benchmark::DoNotOptimize(op.result);
    benchmark::ClobberMemory();
  }
  if (op.result != 0 || std::memcmp(b.out.data(), b.in.data(), b.size) != 0) {
    state.SkipWithError("open failed");
  }
  account(state, b.size);
  set_ceiling(state, memcpy_ceiling(b.size), a->implementation());
}

// The transport's pattern: a burst of 32 MTU-sized frames, sealed in place with one call.
void bm_seal_burst(benchmark::State& state, aead_backend backend) {
  const auto len = static_cast<size_t>(state.range(0));
  buffers b(len * burst);
  const auto a = make_aead(backend, bench_key);
  uint8_t tags[burst][aead_tag_size];
  aead_op ops[burst];
  for (auto _ : state) {
    for (unsigned i = 0; i < burst; ++i) {
      uint8_t* frame = b.in.data() + i * len;
      ops[i] = {bench_nonce, bench_header, {frame, len}, frame, tags[i], 0};
    }
    a->seal_burst(ops, burst);
    benchmark::DoNotOptimize(ops[burst - 1].result);
    benchmark::ClobberMemory();
  }
  account(state, len * burst);
  set_ceiling(state, memcpy_ceiling(len), a->implementation());
}

// Gbit/s of one result's bytes_per_second.
std::optional<double> gbps(const bench_result* r) {
  if (r == nullptr || !r->bytes_per_second) return std::nullopt;
  return *r->bytes_per_second * 8 / 1e9;
}

// The one-line comparison of the two backends: AES-256-GCM seal at 16 KiB.
[[maybe_unused]] const bool aead_summary_registered =
    register_summary([](const bench_results& results) {
      constexpr int64_t size = 16384;
      const auto mb = gbps(results.find("aead/seal/ipsecmb/" + std::to_string(size)));
      const auto ossl = gbps(results.find("aead/seal/openssl/" + std::to_string(size)));
      std::optional<double> ratio;
      if (mb && ossl && *ossl > 0) ratio = *mb / *ossl;
      return json_line("aead")
          .add_int("size", size)
          .add_number("ipsecmb_gbps", mb)
          .add_number("openssl_gbps", ossl)
          .add_number("ipsecmb_over_openssl", ratio)
          .str();
    });

void aead_sizes(benchmark::internal::Benchmark* b) {
  b->Arg(4096)->Arg(16384)->Arg(65536)->Arg(1 << 20);
}

// Ceilings first, so each JSON line can be printed as soon as its result is in.
BENCHMARK(bm_memcpy)
    ->Name("ceiling/memcpy")
    ->Arg(frame_payload)
    ->Arg(4096)
    ->Arg(16384)
    ->Arg(65536)
    ->Arg(1 << 20);
BENCHMARK(bm_crc32c)->Name("crc32c")->Arg(frame_payload)->Arg(4096)->Arg(65536)->Arg(1 << 20);
BENCHMARK_CAPTURE(bm_seal, ipsecmb, aead_backend::ipsecmb)
    ->Name("aead/seal/ipsecmb")
    ->Apply(aead_sizes);
BENCHMARK_CAPTURE(bm_seal, openssl, aead_backend::openssl)
    ->Name("aead/seal/openssl")
    ->Apply(aead_sizes);
BENCHMARK_CAPTURE(bm_open, ipsecmb, aead_backend::ipsecmb)
    ->Name("aead/open/ipsecmb")
    ->Apply(aead_sizes);
BENCHMARK_CAPTURE(bm_open, openssl, aead_backend::openssl)
    ->Name("aead/open/openssl")
    ->Apply(aead_sizes);
BENCHMARK_CAPTURE(bm_seal_burst, ipsecmb, aead_backend::ipsecmb)
    ->Name("aead/seal_burst32/ipsecmb")
    ->Arg(frame_payload);
BENCHMARK_CAPTURE(bm_seal_burst, openssl, aead_backend::openssl)
    ->Name("aead/seal_burst32/openssl")
    ->Arg(frame_payload);

}  // namespace
}  // namespace tandem::perf
