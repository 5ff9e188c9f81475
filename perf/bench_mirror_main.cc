// SPDX-License-Identifier: Apache-2.0
// The mirror benchmark: tandem-replicator on two lab hosts, driven through its control socket.
// In one run it measures, with the in-process workload generator on the primary:
// - local writes (the secondary disconnected: the primary's own path, bitmap tracking included)
//   against sync-replicated writes, at 64 KiB QD32 (throughput) and 4 KiB QD1 (latency);
// - bitmap resync of what the local run dirtied, against the port's raw ceiling measured in the
//   same run: unpaced raw DPDK frames between the same namespaces for the DPDK ports, iperf3 TCP
//   for the socket port.
// for each port: memif (DPDK net_memif, MTU 9000), af_packet (DPDK net_af_packet on the veths)
// and socket (the kernel UDP socket). One JSON line per result (docs/fuzzing-and-benchmarks.md).
// TANDEM_BENCH_PORTS picks ports (comma-separated, default all three), TANDEM_BENCH_SECONDS each
// write run's length (default 4), TANDEM_BENCH_IMAGE_DIR where the data images go (default the
// lab's directory on disk; a tmpfs directory takes the disk out of the comparison).
// After the write shapes, a checksum resync of the two (identical) volumes: what it sends per
// volume byte, against the target of 0.01.
// Then, on a second pair with mode: async, local writes against async ones for the same shapes
// ("mode":"async" lines with ratio_to_local; the queue drains before the next shape).
// Every line carries the machine's CPU use over its run (`cpu_busy`, the busy fraction of all
// cores, and `cpu_s_per_gib`, busy core-seconds per GiB moved): both replicators share this
// host's cores, so a sync write costs the host both nodes' work, and these say how much.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/lab/dpdk.h"
#include "tests/lab/mirror_pair.h"

namespace {

using namespace tandem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// The host's CPU time from /proc/stat (all cores, in clock ticks): busy and total.
struct cpu_sample {
  uint64_t busy = 0, total = 0;
};
cpu_sample cpu_now() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  uint64_t v[8] = {};
  f >> cpu;
  for (uint64_t& x : v)
    f >> x;
  cpu_sample s;
  for (const uint64_t x : v)
    s.total += x;
  s.busy = s.total - v[3] - v[4];  // less idle and iowait
  return s;
}
// Adds cpu_busy and cpu_s_per_gib (for `bytes` moved) to `line`.
void add_cpu(json& line, const cpu_sample& a, const cpu_sample& b, uint64_t bytes) {
  static const double tick = 1.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double busy_s = static_cast<double>(b.busy - a.busy) * tick;
  line["cpu_busy"] = b.total > a.total ? static_cast<double>(b.busy - a.busy) /
                                             static_cast<double>(b.total - a.total)
                                       : 0.0;
  line["cpu_s_per_gib"] = bytes ? busy_s / (static_cast<double>(bytes) / (1u << 30)) : 0.0;
}

double env_double(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atof(v) : fallback;
}

// The port's raw ceiling between node1 and node2, the median of three runs: raw DPDK frames for
// the DPDK ports, iperf3 TCP (2 s runs) for the socket port.
double ceiling_gbps(lab::lab& l, const std::string& port, std::string& source) {
  std::vector<double> runs;
  for (int i = 0; i < 3; ++i) {
    if (port == "socket") {
      source = "iperf3 tcp";
      runs.push_back(lab::iperf3_gbps(l, "node2", "node1", 1, 2));
    } else {
      source = "dpdk raw frames";
      runs.push_back(port == "memif"
                         ? lab::dpdk_raw_gbps(l, lab::dpdk_vdev_kind::memif, 0, 9000)
                         : lab::dpdk_raw_gbps(l, lab::dpdk_vdev_kind::af_packet, 1, 1500));
    }
  }
  std::sort(runs.begin(), runs.end());
  return runs[1];
}

// One workload run on the primary; returns its final status.
json write_run(lab::mirror_pair& m, uint32_t size, unsigned qd, double seconds, uint64_t seed) {
  const cpu_sample c0 = cpu_now();
  m.ok(0, {{"cmd", "workload"},
           {"volume", "db"},
           {"seed", seed},
           {"qd", qd},
           {"min_size", size},
           {"max_size", size},
           {"seconds", static_cast<uint64_t>(std::max(1.0, seconds))}});
  const auto done = [](const json& v) { return !v["workload"]["running"].get<bool>(); };
  if (!m.wait_for(0, done, std::chrono::milliseconds(static_cast<int>(seconds * 1000) + 60000)))
    throw std::runtime_error("the workload did not finish: " + m.volume(0).dump());
  const cpu_sample c1 = cpu_now();
  json w = m.volume(0)["workload"];
  if (w["failed"].get<uint64_t>() != 0) throw std::runtime_error("writes failed: " + w.dump());
  add_cpu(w, c0, c1, w["bytes"].get<uint64_t>());
  return w;
}

bool connected(const json& v) {
  return v["connection"] == "connected";
}

// Both nodes connected, UpToDate, nothing dirty; `interval` is the status polling period.
void wait_in_sync(lab::mirror_pair& m, std::chrono::milliseconds interval = 20ms) {
  for (int i = 0; i < 2; ++i)
    if (!m.wait_for(i, lab::mirror_pair::in_sync, 300s, interval))
      throw std::runtime_error(m.node(i) + " did not get back in sync: " + m.volume(i).dump());
}

struct shape {
  uint32_t size;
  unsigned qd;
};

void run_port(const std::string& port) {
  const double seconds = env_double("TANDEM_BENCH_SECONDS", 4);
  lab::mirror_pair_options o;
  o.port = port;
  o.mib = 512;
  o.volume_extra = "resync: {rate: 0}";
  if (const char* d = std::getenv("TANDEM_BENCH_IMAGE_DIR")) o.image_dir = d;
  lab::mirror_pair m(o);
  m.bring_up();

  std::string source;
  const double raw = ceiling_gbps(m.net(), port, source);
  std::printf("%s\n",
              json({{"bench", "mirror_ceiling"}, {"port", port}, {"source", source}, {"gbps", raw}})
                  .dump()
                  .c_str());

  const shape shapes[] = {{65536, 32}, {4096, 1}};
  uint64_t seed = 1;
  for (const shape& s : shapes) {
    // Local: the secondary steps away; the primary writes alone and tracks what it dirties.
    m.ok(1, {{"cmd", "disconnect"}, {"volume", "db"}});
    if (!m.wait_for(0, [](const json& v) { return !connected(v); }))
      throw std::runtime_error("the primary still sees its peer: " + m.volume(0).dump());
    // What the lost session itself marked (writes and extents the peer had not made durable).
    const uint64_t dirty_at_disconnect = m.volume(0)["dirty_bytes"].get<uint64_t>();
    const json local = write_run(m, s.size, s.qd, seconds, seed++);
    const json line_local = {{"bench", "mirror"},
                             {"port", port},
                             {"mode", "local"},
                             {"size", s.size},
                             {"qd", s.qd},
                             {"gbps", local["gbps"]},
                             {"p50_us", local["p50_us"]},
                             {"p99_us", local["p99_us"]},
                             {"writes", local["acked"]},
                             {"dirty_at_disconnect", dirty_at_disconnect},
                             {"cpu_busy", local["cpu_busy"]},
                             {"cpu_s_per_gib", local["cpu_s_per_gib"]}};
    std::printf("%s\n", line_local.dump().c_str());

    // Bitmap resync of what the local run dirtied.
    const json before0 = m.volume(0);
    const uint64_t dirty = before0["dirty_bytes"].get<uint64_t>();
    const uint64_t sent0 = before0["counters"]["resync_bytes_sent"].get<uint64_t>();
    const uint64_t wire0 = before0["transport"]["sent_bytes"].get<uint64_t>();
    const auto t0 = clock_type::now();
    const cpu_sample c0 = cpu_now();
    m.ok(1, {{"cmd", "connect"}, {"volume", "db"}});
    wait_in_sync(m, 2ms);
    const cpu_sample c1 = cpu_now();
    const double resync_s = std::chrono::duration<double>(clock_type::now() - t0).count();
    const json after0 = m.volume(0);
    const uint64_t sent = after0["counters"]["resync_bytes_sent"].get<uint64_t>() - sent0;
    const uint64_t wire = after0["transport"]["sent_bytes"].get<uint64_t>() - wire0;
    const double resync_gbps = static_cast<double>(sent) * 8 / resync_s / 1e9;
    json line_resync = {{"bench", "resync"},
                        {"port", port},
                        {"kind", "bitmap"},
                        {"dirty_bytes", dirty},
                        {"resync_bytes", sent},
                        {"seconds", resync_s},
                        {"gbps", resync_gbps},
                        {"raw_gbps", raw},
                        {"ratio_to_raw", raw > 0 ? resync_gbps / raw : 0.0},
                        {"bytes_sent_per_volume_byte",
                         sent ? static_cast<double>(wire) / static_cast<double>(sent) : 0.0}};
    add_cpu(line_resync, c0, c1, sent);
    std::printf("%s\n", line_resync.dump().c_str());

    // Sync: the same writes, acknowledged once durable on both nodes.
    const json sync = write_run(m, s.size, s.qd, seconds, seed++);
    const double lg = local["gbps"].get<double>();
    const double rtt_us = static_cast<double>(m.volume(0)["transport"]["rtt_us"].get<uint64_t>());
    const json line_sync = {
        {"bench", "mirror"},
        {"port", port},
        {"mode", "sync"},
        {"size", s.size},
        {"qd", s.qd},
        {"gbps", sync["gbps"]},
        {"p50_us", sync["p50_us"]},
        {"p99_us", sync["p99_us"]},
        {"writes", sync["acked"]},
        {"ratio_to_local", lg > 0 ? sync["gbps"].get<double>() / lg : 0.0},
        {"rtt_us", rtt_us},
        {"p50_over_local_us", sync["p50_us"].get<double>() - local["p50_us"].get<double>()},
        {"cpu_busy", sync["cpu_busy"]},
        {"cpu_s_per_gib", sync["cpu_s_per_gib"]},
        // What a replicated byte costs this host (both nodes' work) against a local one.
        {"cpu_ratio_to_local",
         local["cpu_s_per_gib"].get<double>() > 0
             ? sync["cpu_s_per_gib"].get<double>() / local["cpu_s_per_gib"].get<double>()
             : 0.0}};
    std::printf("%s\n", line_sync.dump().c_str());
    std::fflush(stdout);
    wait_in_sync(m);
  }

  // Checksum resync of the two volumes, identical after the sync runs: a full resync from node1
  // that sends each 4 KiB block's digest and no block.
  {
    const json before = m.volume(0);
    const uint64_t wire0 = before["transport"]["sent_bytes"].get<uint64_t>();
    const uint64_t sent0 = before["counters"]["resync_bytes_sent"].get<uint64_t>();
    const uint64_t same0 = before["counters"]["resync_bytes_same"].get<uint64_t>();
    const uint64_t done0 = before["counters"]["resyncs_completed"].get<uint64_t>();
    const auto t0 = clock_type::now();
    const cpu_sample c0 = cpu_now();
    m.ok(0, {{"cmd", "resync"}, {"volume", "db"}, {"full", true}, {"checksum", true}});
    if (!m.wait_for(
            0, [&](const json& v) { return v["counters"]["resyncs_completed"] > done0; }, 300s,
            2ms)) {
      throw std::runtime_error("the checksum resync did not finish: " + m.volume(0).dump());
    }
    wait_in_sync(m, 2ms);
    const cpu_sample c1 = cpu_now();
    const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
    const json after = m.volume(0);
    const uint64_t vol = m.volume_bytes();
    // The resync request restarts the mirror session; a new transport connection counts from
    // zero, and everything it sent (hello, bitmaps, digests) is the resync's cost.
    const uint64_t wire_now = after["transport"]["sent_bytes"].get<uint64_t>();
    const bool restarted = after["counters"]["sessions"] != before["counters"]["sessions"];
    const uint64_t wire = restarted ? wire_now : wire_now - wire0;
    const double gbps = static_cast<double>(vol) * 8 / s / 1e9;
    json line = {
        {"bench", "resync"},
        {"port", port},
        {"kind", "checksum"},
        {"volume_bytes", vol},
        {"identical", true},
        {"resync_bytes", after["counters"]["resync_bytes_sent"].get<uint64_t>() - sent0},
        {"same_bytes", after["counters"]["resync_bytes_same"].get<uint64_t>() - same0},
        {"seconds", s},
        {"gbps", gbps},  // volume bytes compared per second
        {"raw_gbps", raw},
        {"ratio_to_raw", raw > 0 ? gbps / raw : 0.0},
        {"bytes_sent_per_volume_byte", static_cast<double>(wire) / static_cast<double>(vol)}};
    add_cpu(line, c0, c1, vol);
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
  }
  for (int i = 0; i < 2; ++i)
    m.ok(i, {{"cmd", "detach"}, {"volume", "db"}});
}

// Async vs local: a pair with mode: async. The application's writes complete once durable on
// the primary; the queue (1 GiB) takes what the link does not (a full queue falls back to the
// bitmap, counted in the line).
void run_async_port(const std::string& port) {
  const double seconds = env_double("TANDEM_BENCH_SECONDS", 4);
  lab::mirror_pair_options o;
  o.port = port;
  o.mib = 512;
  o.volume_extra = "mode: async\n      async: {queue: 1GiB}\n      resync: {rate: 0}";
  if (const char* d = std::getenv("TANDEM_BENCH_IMAGE_DIR")) o.image_dir = d;
  lab::mirror_pair m(o);
  m.bring_up();
  wait_in_sync(m);
  const shape shapes[] = {{65536, 32}, {4096, 1}};
  uint64_t seed = 101;
  for (const shape& s : shapes) {
    m.ok(1, {{"cmd", "disconnect"}, {"volume", "db"}});
    if (!m.wait_for(0, [](const json& v) { return !connected(v); }))
      throw std::runtime_error("the primary still sees its peer: " + m.volume(0).dump());
    const json local = write_run(m, s.size, s.qd, seconds, seed++);
    m.ok(1, {{"cmd", "connect"}, {"volume", "db"}});
    wait_in_sync(m);
    const uint64_t fallbacks0 = m.volume(0)["counters"]["async_fallbacks"].get<uint64_t>();
    const json async = write_run(m, s.size, s.qd, seconds, seed++);
    const json after = m.volume(0);
    const double lg = local["gbps"].get<double>();
    const json line = {
        {"bench", "mirror"},
        {"port", port},
        {"mode", "async"},
        {"size", s.size},
        {"qd", s.qd},
        {"gbps", async["gbps"]},
        {"p50_us", async["p50_us"]},
        {"p99_us", async["p99_us"]},
        {"writes", async["acked"]},
        {"ratio_to_local", lg > 0 ? async["gbps"].get<double>() / lg : 0.0},
        {"local_gbps", lg},
        {"queued_bytes_at_end", after["async"]["queued_bytes"]},
        {"async_fallbacks", after["counters"]["async_fallbacks"].get<uint64_t>() - fallbacks0},
        {"cpu_busy", async["cpu_busy"]},
        {"cpu_s_per_gib", async["cpu_s_per_gib"]}};
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
    if (!m.wait_for(
            0, [](const json& v) { return v["async"]["queued"].get<uint64_t>() == 0; }, 300s))
      throw std::runtime_error("the async queue did not drain: " + m.volume(0).dump());
    wait_in_sync(m);
  }
  for (int i = 0; i < 2; ++i)
    m.ok(i, {{"cmd", "detach"}, {"volume", "db"}});
}

int run() {
  const char* env = std::getenv("TANDEM_BENCH_PORTS");
  std::string ports = env && *env ? env : "memif,af_packet,socket";
  int failures = 0;
  size_t at = 0;
  while (at <= ports.size()) {
    const size_t comma = std::min(ports.find(',', at), ports.size());
    const std::string port = ports.substr(at, comma - at);
    at = comma + 1;
    if (port.empty()) continue;
    try {
      run_port(port);
      run_async_port(port);
    } catch (const std::exception& e) {
      // One port failing does not hide the others' figures; the run still fails.
      std::fprintf(stderr, "bench_mirror: port %s: %s\n", port.c_str(), e.what());
      ++failures;
    }
  }
  return failures ? 1 : 0;
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_mirror: %s\n", e.what());
    return 1;
  }
}
