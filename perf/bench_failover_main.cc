// SPDX-License-Identifier: Apache-2.0
// The failover benchmark, detection phase: tandemd on three lab hosts (two interconnects each)
// with 200 ms / 1 s heartbeats. Each trial kills node3's daemon with SIGKILL and measures, from
// the kill to the `heartbeat.node_down` event each survivor raised (wall-clock times: the
// namespaces share the clock), how long the cluster took to agree it is gone (the later of the
// two survivors), then restarts node3 and waits for it to rejoin. One JSON line:
//
//   {"bench":"failover","phase":"detect","trials":20,"p50_ms":..,"p95_ms":..,"max_ms":..,
//    "min_ms":..,"interval_ms":200,"timeout_ms":1000,"bound_ms":1200,"ratio_p95_to_bound":..}
//
// The ceiling is the contract: a silent node is down by timeout + one interval after the kill
// (its last heartbeat left at most one interval before it). TANDEM_BENCH_TRIALS (default 20),
// TANDEM_BENCH_HEARTBEAT ("200ms/1s") change the run.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/lab/tandemd_cluster.h"

namespace {

using namespace tandem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using sys_clock = std::chrono::system_clock;

// "2026-11-23T17:53:29.574Z" -> time point; nullopt when malformed.
std::optional<sys_clock::time_point> parse_rfc3339_ms(const std::string& s) {
  tm t{};
  int ms = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &t.tm_year, &t.tm_mon, &t.tm_mday,
                  &t.tm_hour, &t.tm_min, &t.tm_sec, &ms) != 7) {
    return std::nullopt;
  }
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  return sys_clock::from_time_t(::timegm(&t)) + std::chrono::milliseconds(ms);
}

long long parse_ms(const std::string& s) {
  if (s.ends_with("ms")) return std::atoll(s.c_str());
  if (s.ends_with("s")) return static_cast<long long>(std::atof(s.c_str()) * 1000);
  return std::atoll(s.c_str());
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const double idx = p * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(idx);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (idx - static_cast<double>(lo));
}

// When observer `i` raised node_down about node3 after `since`.
std::optional<sys_clock::time_point> down_event(lab::tandemd_cluster& c, int i, uint64_t since) {
  const json events = c.events(i, since);
  for (const json& e : events) {
    if (e.value("name", "") == "heartbeat.node_down" && e.value("about", "") == "node3")
      return parse_rfc3339_ms(e.value("time", ""));
  }
  return std::nullopt;
}

int run() {
  const char* t = std::getenv("TANDEM_BENCH_TRIALS");
  const int trials = t && *t ? std::max(1, std::atoi(t)) : 20;
  std::string hb = "200ms/1s";
  if (const char* h = std::getenv("TANDEM_BENCH_HEARTBEAT"); h && *h) hb = h;
  const auto slash = hb.find('/');
  if (slash == std::string::npos) {
    std::fprintf(stderr, "bench_failover: TANDEM_BENCH_HEARTBEAT is INTERVAL/TIMEOUT\n");
    return 2;
  }
  lab::tandemd_cluster_options o;
  o.interval = hb.substr(0, slash);
  o.timeout = hb.substr(slash + 1);
  const long long interval_ms = parse_ms(o.interval), timeout_ms = parse_ms(o.timeout);
  lab::tandemd_cluster c(o);
  for (int i = 0; i < 3; ++i)
    c.start(i);
  if (!c.wait_all_up()) throw std::runtime_error("the nodes never all saw each other");

  std::vector<double> agreed, spread;
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<long long> phase(0, 5 * interval_ms);
  for (int trial = 0; trial < trials; ++trial) {
    const uint64_t s0 = c.status(0).value("last_event", uint64_t{0});
    const uint64_t s1 = c.status(1).value("last_event", uint64_t{0});
    // A random phase against node3's heartbeat rounds, so the trials sample every point of the
    // interval (right after wait_all_up the kill would follow one of its heartbeats closely).
    std::this_thread::sleep_for(std::chrono::milliseconds(phase(rng)));
    const auto killed = sys_clock::now();
    c.kill9(2);
    const bool seen = lab::tandemd_cluster::wait_until(
        [&] { return c.state_of(0, 2) == "down" && c.state_of(1, 2) == "down"; }, 30s, 20ms);
    if (!seen) throw std::runtime_error("trial " + std::to_string(trial) + ": node3 never down");
    const auto d0 = down_event(c, 0, s0), d1 = down_event(c, 1, s1);
    if (!d0 || !d1)
      throw std::runtime_error("no node_down event in trial " + std::to_string(trial));
    auto ms = [&](sys_clock::time_point at) {
      return std::chrono::duration<double, std::milli>(at - killed).count();
    };
    spread.push_back(std::abs(ms(*d0) - ms(*d1)));
    agreed.push_back(std::max(ms(*d0), ms(*d1)));
    c.start(2);
    if (!c.wait_all_up())
      throw std::runtime_error("node3 did not rejoin in trial " + std::to_string(trial));
  }
  const double bound = static_cast<double>(timeout_ms + interval_ms);
  const double p95 = percentile(agreed, 0.95);
  const json line = {{"bench", "failover"},
                     {"phase", "detect"},
                     {"trials", trials},
                     {"p50_ms", std::lround(percentile(agreed, 0.5))},
                     {"p95_ms", std::lround(p95)},
                     {"max_ms", std::lround(*std::max_element(agreed.begin(), agreed.end()))},
                     {"min_ms", std::lround(*std::min_element(agreed.begin(), agreed.end()))},
                     // How far apart the two survivors noticed, at the median.
                     {"observer_spread_p50_ms", std::lround(percentile(spread, 0.5))},
                     {"interval_ms", interval_ms},
                     {"timeout_ms", timeout_ms},
                     {"bound_ms", std::lround(bound)},
                     {"ratio_p95_to_bound", std::round(p95 / bound * 1000) / 1000}};
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_failover: %s\n", e.what());
    return 1;
  }
}
