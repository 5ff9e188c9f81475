// SPDX-License-Identifier: Apache-2.0
// UDP frame build / parse throughput against a memcpy of the same frame (dataplane/net).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "dataplane/net/headers.h"
#include "perf/bench.h"

namespace tandem::perf {
namespace {

using namespace tandem::dp;

const udp_endpoint node_a{{{0x02, 0, 0, 0, 0, 0x01}}, ipv4_addr::from_octets(10, 0, 0, 1), 4791};
const udp_endpoint node_b{{{0x02, 0, 0, 0, 0, 0x02}}, ipv4_addr::from_octets(10, 0, 0, 2), 7000};

// The payload, the built frame and a scratch frame, each on its own 4 KiB page at a 128-byte
// headroom like a DPDK mbuf's data, so that no run depends on where malloc put a buffer (a
// frame straddling a page boundary costs several times the copy being measured).
struct fixture {
  static constexpr size_t page = 4096;
  static constexpr size_t headroom = 128;

  explicit fixture(size_t payload_len) : storage((1 + 3 * pages(payload_len)) * page) {
    const auto raw = reinterpret_cast<uintptr_t>(storage.data());
    uint8_t* base = storage.data() + ((page - raw % page) % page);
    const size_t stride = pages(payload_len) * page;
    payload = {base + headroom, payload_len};
    frame = {base + stride + headroom, udp_frame_overhead + payload_len};
    out = {base + 2 * stride + headroom, frame.size()};
    for (size_t i = 0; i < payload.size(); ++i)
      payload[i] = static_cast<uint8_t>(i * 13 + 7);
    if (build_udp_frame(frame, node_a, node_b, payload) < 0) std::abort();
  }
  static size_t pages(size_t payload_len) {
    return (headroom + udp_frame_overhead + payload_len + page - 1) / page;
  }

  std::vector<uint8_t> storage;  // backs the three spans below
  std::span<uint8_t> payload;
  std::span<uint8_t> frame;  // the built frame
  std::span<uint8_t> out;    // scratch of the same size
};

void account(benchmark::State& state, const fixture& f, bool with_ceiling = true) {
  const auto n = static_cast<int64_t>(state.iterations());
  state.SetBytesProcessed(n * static_cast<int64_t>(f.frame.size()));
  state.SetItemsProcessed(n);
  if (with_ceiling) set_ceiling(state, "ceiling/memcpy/" + std::to_string(state.range(0)));
}

// The ceiling: copying the frame is the least any build or parse of it must cost.
void bm_memcpy(benchmark::State& state) {
  fixture f(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.frame.data());
    std::memcpy(f.out.data(), f.frame.data(), f.frame.size());
    benchmark::DoNotOptimize(f.out.data());
    benchmark::ClobberMemory();
  }
  account(state, f, false);
}

// Headers plus payload copy plus UDP checksum over the payload.
void bm_build(benchmark::State& state) {
  fixture f(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.payload.data());
    const int n = build_udp_frame(f.out, node_a, node_b, f.payload);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
  account(state, f);
}

// Classification plus IPv4 and UDP checksum verification.
void bm_parse(benchmark::State& state) {
  fixture f(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.frame.data());
    parse_result r = parse_frame(f.frame);
    benchmark::DoNotOptimize(r);
  }
  account(state, f);
}

// The send path of one host followed by the receive path of the other.
void bm_build_parse(benchmark::State& state) {
  fixture f(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.payload.data());
    const int n = build_udp_frame(f.out, node_a, node_b, f.payload);
    parse_result r = parse_frame(std::span<const uint8_t>(f.out).first(static_cast<size_t>(n)));
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
  }
  if (!parse_frame(f.out).is_udp()) state.SkipWithError("built frame does not parse");
  account(state, f);
}

void sizes(benchmark::internal::Benchmark* b) {
  b->Arg(64)->Arg(1024)->Arg(1472);
}

// Ceilings first, so each JSON line can be printed as soon as its result is in.
BENCHMARK(bm_memcpy)->Name("ceiling/memcpy")->Apply(sizes);
BENCHMARK(bm_build)->Name("udp_frame/build")->Apply(sizes);
BENCHMARK(bm_parse)->Name("udp_frame/parse")->Apply(sizes);
BENCHMARK(bm_build_parse)->Name("udp_frame/build_parse")->Apply(sizes);

}  // namespace
}  // namespace tandem::perf
