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
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
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
  json w = m.volume(0)["workload"];
  if (w["failed"].get<uint64_t>() != 0) throw std::runtime_error("writes failed: " + w.dump());
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
                             {"dirty_at_disconnect", dirty_at_disconnect}};
    std::printf("%s\n", line_local.dump().c_str());

    // Bitmap resync of what the local run dirtied.
    const json before0 = m.volume(0);
    const uint64_t dirty = before0["dirty_bytes"].get<uint64_t>();
    const uint64_t sent0 = before0["counters"]["resync_bytes_sent"].get<uint64_t>();
    const uint64_t wire0 = before0["transport"]["sent_bytes"].get<uint64_t>();
    const auto t0 = clock_type::now();
    m.ok(1, {{"cmd", "connect"}, {"volume", "db"}});
    wait_in_sync(m, 2ms);
    const double resync_s = std::chrono::duration<double>(clock_type::now() - t0).count();
    const json after0 = m.volume(0);
    const uint64_t sent = after0["counters"]["resync_bytes_sent"].get<uint64_t>() - sent0;
    const uint64_t wire = after0["transport"]["sent_bytes"].get<uint64_t>() - wire0;
    const double resync_gbps = static_cast<double>(sent) * 8 / resync_s / 1e9;
    std::printf("%s\n", json({{"bench", "resync"},
                              {"port", port},
                              {"kind", "bitmap"},
                              {"dirty_bytes", dirty},
                              {"resync_bytes", sent},
                              {"seconds", resync_s},
                              {"gbps", resync_gbps},
                              {"raw_gbps", raw},
                              {"ratio_to_raw", raw > 0 ? resync_gbps / raw : 0.0},
                              {"bytes_sent_per_volume_byte",
                               sent ? static_cast<double>(wire) / static_cast<double>(sent) : 0.0}})
                            .dump()
                            .c_str());

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
        {"p50_over_local_us", sync["p50_us"].get<double>() - local["p50_us"].get<double>()}};
    std::printf("%s\n", line_sync.dump().c_str());
    std::fflush(stdout);
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
