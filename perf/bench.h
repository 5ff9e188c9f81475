// SPDX-License-Identifier: Apache-2.0
// Ceilings for tandem benchmarks: name the benchmark whose throughput bounds this one.
//
// tandem's benchmark main (bench_main.cc) prints one JSON line per result with the ratio of
// its throughput to its ceiling's, measured in the same run:
//
//   static void bm_copy(benchmark::State& state) { ... }         // "ceiling/memcpy/1024"
//   static void bm_build(benchmark::State& state) {
//     for (auto _ : state) { ... }
//     state.SetBytesProcessed(...);
//     tandem::perf::set_ceiling(state, "ceiling/memcpy/" + std::to_string(state.range(0)));
//   }
//
// The ratio compares bytes_per_second when both report it, else items_per_second. The ceiling
// travels in the run's label ("ceiling=<name>", shown in the console too), so call
// set_ceiling after the benchmark loop and instead of State::SetLabel.
#pragma once

#include <string_view>

#include <benchmark/benchmark.h>

namespace tandem::perf {

inline constexpr std::string_view ceiling_label_prefix = "ceiling=";

// Declares the benchmark (full name, as printed) that bounds this one; `note` is an optional
// free-text label kept after it.
void set_ceiling(benchmark::State& state, std::string_view ceiling, std::string_view note = {});

}  // namespace tandem::perf
