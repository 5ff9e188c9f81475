// SPDX-License-Identifier: Apache-2.0
// main() for tandem benchmarks: Google Benchmark's usual display plus one JSON line per result.
//
// Each line on stdout looks like
//   {"bench":"udp_frame/build_parse/1024","iterations":...,"real_ns":...,"cpu_ns":...,
//    "bytes_per_second":...,"items_per_second":...,"ceiling":"ceiling/memcpy/1024",
//    "ratio":0.42}
// where ratio = this result's bytes_per_second (or items_per_second) / its ceiling's. A result
// whose ceiling has not run yet is held back until the ceiling reports, and printed with
// "ratio":null at the end if it never does (e.g. filtered out by --benchmark_filter).
// After them come the lines of the summaries registered with register_summary (bench.h).
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "perf/bench.h"

namespace tandem::perf {

void set_ceiling(benchmark::State& state, std::string_view ceiling, std::string_view note) {
  std::string label(ceiling_label_prefix);
  label += ceiling;
  if (!note.empty()) {
    label += ' ';
    label += note;
  }
  state.SetLabel(label);
}

namespace {

using run = benchmark::BenchmarkReporter::Run;

std::optional<double> counter(const run& r, const char* name) {
  const auto it = r.counters.find(name);
  if (it == r.counters.end()) return std::nullopt;
  return it->second.value;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + '"';
}

std::string json_number(std::optional<double> v) {
  if (!v || !std::isfinite(*v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", *v);
  return buf;
}

using result = bench_result;

std::string result_key(std::string_view name, int64_t repetition) {
  std::string k(name);
  k += '#';
  k += std::to_string(repetition);
  return k;
}

std::vector<summary_fn>& summaries() {
  static std::vector<summary_fn> registered;
  return registered;
}

// Wraps the display reporter (console by default) and adds the JSON lines after its output.
class jsonl_reporter : public benchmark::BenchmarkReporter {
 public:
  explicit jsonl_reporter(benchmark::BenchmarkReporter* display) : display_(display) {}

  bool ReportContext(const Context& context) override { return display_->ReportContext(context); }

  void ReportRuns(const std::vector<run>& runs) override {
    display_->ReportRuns(runs);
    for (const run& r : runs)
      add(r);
    flush_ready(false);
  }

  void Finalize() override {
    display_->Finalize();
    flush_ready(true);
  }

  [[nodiscard]] bool any_error() const { return any_error_; }
  [[nodiscard]] const std::map<std::string, result>& measured() const { return measured_; }

 private:
  void add(const run& r) {
    result res;
    res.name = r.benchmark_name();
    res.repetition = r.repetition_index;
    if (r.run_type == run::RT_Aggregate) res.aggregate = r.aggregate_name;
    res.iterations = r.iterations;
    const double to_ns = 1e9 / benchmark::GetTimeUnitMultiplier(r.time_unit);
    res.real_ns = r.GetAdjustedRealTime() * to_ns;
    res.cpu_ns = r.GetAdjustedCPUTime() * to_ns;
    res.bytes_per_second = counter(r, "bytes_per_second");
    res.items_per_second = counter(r, "items_per_second");
    if (r.error_occurred) {
      res.error = r.error_message;
      any_error_ = true;
    }
    // The label carries the ceiling; aggregates inherit it from their family instance.
    const std::string instance = r.run_name.str();
    std::string_view label = r.report_label;
    if (label.starts_with(ceiling_label_prefix)) {
      label.remove_prefix(ceiling_label_prefix.size());
      const size_t space = label.find(' ');
      res.ceiling = std::string(label.substr(0, space));
      if (space != std::string_view::npos) res.note = std::string(label.substr(space + 1));
      ceiling_of_[instance] = res.ceiling;
    } else {
      res.note = std::string(label);
      if (const auto it = ceiling_of_.find(instance); it != ceiling_of_.end()) {
        res.ceiling = it->second;
      }
    }
    measured_[key(res.name, res.repetition)] = res;
    pending_.push_back(std::move(res));
  }

  static std::string key(const std::string& name, int64_t repetition) {
    return result_key(name, repetition);
  }

  // The ceiling's result matching `r`: same repetition, or the same aggregate of the ceiling.
  [[nodiscard]] const result* ceiling_for(const result& r) const {
    std::string name = r.ceiling;
    if (!r.aggregate.empty()) name += "_" + r.aggregate;
    const auto it = measured_.find(key(name, r.repetition));
    return it == measured_.end() ? nullptr : &it->second;
  }

  // Prints every pending result whose ceiling is known (or that has none); at the end, all.
  void flush_ready(bool final) {
    std::vector<result> still;
    for (result& r : pending_) {
      const result* c = r.ceiling.empty() ? nullptr : ceiling_for(r);
      if (!r.ceiling.empty() && c == nullptr && !final) {
        still.push_back(std::move(r));
        continue;
      }
      print(r, c);
    }
    pending_ = std::move(still);
    std::fflush(stdout);
  }

  static void print(const result& r, const result* c) {
    std::optional<double> ratio;
    const char* metric = nullptr;
    // Spread statistics have no meaningful ratio.
    const bool spread = r.aggregate == "stddev" || r.aggregate == "cv";
    if (c != nullptr && !spread && r.error.empty() && c->error.empty()) {
      if (r.bytes_per_second && c->bytes_per_second && *c->bytes_per_second > 0) {
        ratio = *r.bytes_per_second / *c->bytes_per_second;
        metric = "bytes_per_second";
      } else if (r.items_per_second && c->items_per_second && *c->items_per_second > 0) {
        ratio = *r.items_per_second / *c->items_per_second;
        metric = "items_per_second";
      }
    }
    std::string line = "{\"bench\":" + json_string(r.name);
    line += ",\"iterations\":" + std::to_string(r.iterations);
    line += ",\"real_ns\":" + json_number(r.real_ns);
    line += ",\"cpu_ns\":" + json_number(r.cpu_ns);
    line += ",\"bytes_per_second\":" + json_number(r.bytes_per_second);
    line += ",\"items_per_second\":" + json_number(r.items_per_second);
    line += ",\"ceiling\":" + (r.ceiling.empty() ? std::string("null") : json_string(r.ceiling));
    line += ",\"ratio\":" + json_number(ratio);
    if (metric != nullptr) line += ",\"ratio_of\":" + json_string(metric);
    if (!r.note.empty()) line += ",\"label\":" + json_string(r.note);
    if (!r.error.empty()) line += ",\"error\":" + json_string(r.error);
    line += "}\n";
    std::fputs(line.c_str(), stdout);
    if (!r.ceiling.empty() && c == nullptr) {
      std::fprintf(stderr, "tandem-bench: %s: ceiling %s was not measured in this run\n",
                   r.name.c_str(), r.ceiling.c_str());
    }
  }

  benchmark::BenchmarkReporter* display_;
  std::map<std::string, result> measured_;         // key(name, repetition) -> result
  std::map<std::string, std::string> ceiling_of_;  // family instance -> declared ceiling
  std::vector<result> pending_;
  bool any_error_ = false;
};

}  // namespace

const bench_result* bench_results::find(std::string_view name) const {
  std::string mean(name);
  mean += "_mean";
  for (const std::string& k : {result_key(mean, 0), result_key(name, 0)}) {
    const auto it = by_key_.find(k);
    if (it != by_key_.end() && it->second.error.empty()) return &it->second;
  }
  return nullptr;
}

json_line::json_line(std::string_view bench) : text_("{\"bench\":" + json_string(bench)) {}

json_line& json_line::add_string(std::string_view key, std::string_view value) {
  text_ += ',' + json_string(key) + ':' + json_string(value);
  return *this;
}

json_line& json_line::add_int(std::string_view key, int64_t value) {
  text_ += ',' + json_string(key) + ':' + std::to_string(value);
  return *this;
}

json_line& json_line::add_number(std::string_view key, std::optional<double> value) {
  text_ += ',' + json_string(key) + ':' + json_number(value);
  return *this;
}

std::string json_line::str() const {
  return text_ + '}';
}

bool register_summary(summary_fn fn) {
  summaries().push_back(std::move(fn));
  return true;
}

namespace {

void print_summaries(const std::map<std::string, bench_result>& measured) {
  if (measured.empty()) return;  // nothing ran (--benchmark_list_tests, empty filter)
  const bench_results results(measured);
  for (const summary_fn& fn : summaries()) {
    const std::string line = fn(results);
    if (!line.empty()) std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
}

}  // namespace
}  // namespace tandem::perf

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // The default display reporter honours --benchmark_format and --benchmark_color.
  tandem::perf::jsonl_reporter reporter(benchmark::CreateDefaultDisplayReporter());
  benchmark::RunSpecifiedBenchmarks(&reporter);
  tandem::perf::print_summaries(reporter.measured());
  benchmark::Shutdown();
  return reporter.any_error() ? 1 : 0;
}
