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
//
// Summaries: a benchmark binary may register callbacks that run once after all benchmarks,
// with every result of the run by name, and print one extra JSON line each, e.g. a comparison
// of two implementations:
//
//   static const bool registered = tandem::perf::register_summary([](const bench_results& r) {
//     const bench_result* a = r.find("impl_a/16384");
//     const bench_result* b = r.find("impl_b/16384");
//     return json_line("compare").add_int("size", 16384).add_number("a_over_b", ratio(a, b)).str();
//   });
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <benchmark/benchmark.h>

namespace tandem::perf {

inline constexpr std::string_view ceiling_label_prefix = "ceiling=";

// Declares the benchmark (full name, as printed) that bounds this one; `note` is an optional
// free-text label kept after it.
void set_ceiling(benchmark::State& state, std::string_view ceiling, std::string_view note = {});

// One result as the JSON lines report it.
struct bench_result {
  std::string name;  // benchmark_name(): family/args[_aggregate]
  int64_t repetition = 0;
  std::string aggregate;  // "", "mean", "median", "stddev", "cv"
  int64_t iterations = 0;
  double real_ns = 0;
  double cpu_ns = 0;
  std::optional<double> bytes_per_second;
  std::optional<double> items_per_second;
  std::string ceiling;  // empty when none was declared
  std::string note;
  std::string error;  // non-empty when the benchmark skipped with an error
};

// The results of the run, for summaries.
class bench_results {
 public:
  // Keyed by name + '#' + repetition index.
  explicit bench_results(const std::map<std::string, bench_result>& by_key) : by_key_(by_key) {}

  // The result of the benchmark `name` (full name as printed, arguments included): its "_mean"
  // aggregate when --benchmark_repetitions produced one, else its first repetition. nullptr when
  // it did not run (filtered out) or ended in an error.
  [[nodiscard]] const bench_result* find(std::string_view name) const;

 private:
  const std::map<std::string, bench_result>& by_key_;
};

// A flat JSON object on one line, built key by key: {"bench":"<bench>","k":v,...}.
class json_line {
 public:
  explicit json_line(std::string_view bench);
  json_line& add_string(std::string_view key, std::string_view value);
  json_line& add_int(std::string_view key, int64_t value);
  // null when absent or not finite.
  json_line& add_number(std::string_view key, std::optional<double> value);
  // The object, closed, without a newline.
  [[nodiscard]] std::string str() const;

 private:
  std::string text_;
};

// Called once after all benchmarks ran; returns one JSON line (without newline) for stdout, or
// an empty string to print nothing.
using summary_fn = std::function<std::string(const bench_results&)>;

// Registers a summary; returns true, so that it can initialise a namespace-scope constant.
// Summaries print in registration order, after every result's line.
bool register_summary(summary_fn fn);

}  // namespace tandem::perf
