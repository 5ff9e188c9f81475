// SPDX-License-Identifier: Apache-2.0
// bench_transport: transport goodput against the raw ceiling of the same port pair, measured in
// one run between two lab namespaces. For each port (memif, af_packet, socket) it measures the
// ceiling first (DPDK: unpaced raw frames; socket: kernel TCP with iperf3 over the same veth),
// then goodput for 4 KiB / 64 KiB / 1 MiB messages, integrity only and AES-256-GCM, and prints
// one JSON line per result with ratio_to_raw. Needs root (namespaces); label perf.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataplane/crypto/key_file.h"
#include "dataplane/port/eal_args.h"
#include "tests/lab/dpdk.h"
#include "tests/lab/netns.h"

namespace {

using namespace tandem;
using json = nlohmann::json;
using namespace std::chrono_literals;

struct port_kind {
  std::string name;  // memif | af_packet | socket
  int lan;
  unsigned mtu;  // memif has no wire: it takes the largest frames the port allows
};

std::string tx_port(lab::lab& l, const port_kind& k, const std::string& sock) {
  if (k.name == "memif") return dp::memif_vdev(0, "client", sock, 0, k.mtu);
  if (k.name == "af_packet") return dp::af_packet_vdev(0, l.iface(k.lan));
  return "socket";
}

std::string rx_port(lab::lab& l, const port_kind& k, const std::string& sock) {
  if (k.name == "memif") return dp::memif_vdev(0, "server", sock, 0, k.mtu);
  if (k.name == "af_packet") return dp::af_packet_vdev(0, l.iface(k.lan));
  return "socket";
}

// The ceiling: what the port pair moves without the transport (one run).
double raw_once(lab::lab& l, const port_kind& k, std::string& source) {
  if (k.name == "socket") {
    source = "iperf3 tcp";
    try {
      return lab::iperf3_gbps(l, "node2", "node1", k.lan, 3);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 0;
    }
  }
  source = "dpdk raw frames";
  return lab::dpdk_raw_gbps(
      l, k.name == "memif" ? lab::dpdk_vdev_kind::memif : lab::dpdk_vdev_kind::af_packet, k.lan,
      k.mtu);
}

// The ceiling as the median of three runs: a single run on a shared 2-core machine can land
// far off either way.
double raw_gbps(lab::lab& l, const port_kind& k, std::string& source, std::vector<double>& runs) {
  for (int i = 0; i < 3; ++i)
    runs.push_back(raw_once(l, k, source));
  std::vector<double> sorted = runs;
  std::sort(sorted.begin(), sorted.end());
  return sorted[1];
}

json transport_run(lab::lab& l, const port_kind& k, uint32_t size, const std::string& key,
                   const std::string& tag) {
  const std::string sock = k.name == "memif" ? lab::memif_socket(l, tag) : "";
  const uint64_t mib = 256;
  auto args = [&](const std::string& host, const std::string& role, const std::string& port,
                  const std::string& peer) {
    std::vector<std::string> a =
        lab::transport_tool_args(l, host, role, port, peer, k.lan, 7200, tag);
    a.insert(a.end(),
             {"--mib", std::to_string(mib), "--max-message", std::to_string(size), "--fixed-size",
              "yes", "--timeout-ms", "120000", "--mtu", std::to_string(k.mtu)});
    if (!key.empty()) a.insert(a.end(), {"--key-file", key});
    return a;
  };
  const auto r = lab::run_pair(
      l, {"node2", tag + "-recv", args("node2", "recv", rx_port(l, k, sock), "node1")},
      {"node1", tag + "-send", args("node1", "send", tx_port(l, k, sock), "node2")}, 180s);
  if (!r.ok() || r.tx_json.empty()) {
    std::fprintf(stderr, "transport run %s failed:\n%s\n", tag.c_str(), r.logs.c_str());
    return {};
  }
  return json::parse(r.tx_json);
}

}  // namespace

int main() {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "bench_transport: needs root (network namespaces)\n");
    return 2;
  }
  int failures = 0;
  try {
    lab::lab l(lab::cluster_options(2, 1, false));
    const std::string key = l.log_dir() + "/bench.key";
    dp::generate_key_file(key, 32);
    int run = 0;
    for (const port_kind& k : {port_kind{"memif", 0, 9000}, port_kind{"af_packet", 1, 1500},
                               port_kind{"socket", 1, 1500}}) {
      std::string source;
      std::vector<double> runs;
      const double raw = raw_gbps(l, k, source, runs);
      std::printf("%s\n", json{{"bench", "transport_raw"},
                               {"port", k.name},
                               {"mtu", k.mtu},
                               {"gbps", raw},
                               {"runs", runs},
                               {"source", source}}
                              .dump()
                              .c_str());
      for (uint32_t size : {4096u, 65536u, 1048576u}) {
        for (bool enc : {false, true}) {
          const json r = transport_run(
              l, k, size, enc ? key : "",
              k.name + std::to_string(size) + (enc ? "e" : "p") + std::to_string(run++));
          if (r.is_null() || !r.value("complete", false)) {
            ++failures;
            continue;
          }
          const double gbps = r["gbps"].get<double>();
          std::printf("%s\n", json{{"bench", "transport"},
                                   {"port", k.name},
                                   {"mtu", k.mtu},
                                   {"size", size},
                                   {"crypto", enc ? "aes-256-gcm" : "none"},
                                   {"gbps", gbps},
                                   {"raw_gbps", raw},
                                   {"ratio_to_raw", raw > 0 ? gbps / raw : 0.0},
                                   {"retransmitted", r["retransmitted"]},
                                   {"rto_expiries", r["rto_expiries"]},
                                   {"rtt_us", r["rtt_us"]}}
                                  .dump()
                                  .c_str());
          std::fflush(stdout);
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_transport: %s\n", e.what());
    return 1;
  }
  return failures ? 1 : 0;
}
