// SPDX-License-Identifier: Apache-2.0
// The failover benchmark, group phase: the whole product in the lab (tests/lab/ha_cluster.h:
// two nodes running tandem-replicator and tandemd, a witness, a client; the group "web" is the
// mirrored volume, ext4, a file service and the floating IP). Each trial kills the node that runs
// the group (tandemd and the replicator, -9) and measures, from the kill, on the survivor's own
// events:
//
//   detect   heartbeat.node_down        (heartbeat timeout)
//   quorum   quorum.held                (the lease: the dead node's must expire first)
//   online   group.online               (promote, loop device, fsck, mount, service)
//   client   the client's first successful request to the floating IP (a new connection every
//            300 ms: it succeeds once the survivor announced the address and serves)
//
// The floor is what safety makes every failover wait, measured in the same trial: the time to
// quorum (the old lease running out). The ratio online / floor says how much activation adds.
// The killed node is then restarted (after its leftovers in this shared kernel are removed, as
// a reboot would) and resynced; the next trial kills the other node. One JSON line:
//
//   {"bench":"failover","phase":"group","trials":5,"p50_ms":..,"p95_ms":..,"max_ms":..,
//    "detect_p50_ms":..,"quorum_p50_ms":..,"activation_p50_ms":..,"client_p50_ms":..,
//    "ratio_p50_online_to_quorum":..}
//
// TANDEM_BENCH_TRIALS (default 5) changes the run.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/lab/ha_cluster.h"

namespace {

using namespace tandem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

int64_t ns_of(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// The first event named `name` (and containing `text`) at or after `since_ns`, in ms after it.
double ms_after(const json& events, const std::string& name, int64_t since_ns,
                const std::string& text = {}) {
  for (const json& e : events) {
    const int64_t at = e.value("mono_ns", int64_t{0});
    if (at < since_ns || e.value("name", "") != name) continue;
    if (e.value("message", "").find(text) == std::string::npos) continue;
    return static_cast<double>(at - since_ns) / 1e6;
  }
  return -1;
}

bool in_sync(lab::ha_cluster& c, int i) {
  try {
    const json v = c.replicator(i, {{"cmd", "status"}, {"volume", "db"}})["volumes"][0];
    return v["connection"] == "connected" && v["disk"] == "up_to_date" && v["dirty_bytes"] == 0;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

int main() {
  int trials = 5;
  if (const char* t = std::getenv("TANDEM_BENCH_TRIALS")) trials = std::max(1, std::atoi(t));
  try {
    lab::ha_cluster c;
    c.start();
    if (!c.wait_online(0, 0, 60s)) {
      std::fprintf(stderr, "bench_group_failover: the group did not start\n%s\n", c.logs().c_str());
      return 1;
    }
    std::vector<double> online, detect, quorum, activation, client;
    int active = 0;
    for (int t = 0; t < trials; ++t) {
      const int survivor = 1 - active;
      const auto t0 = steady::now();
      c.kill_node(active);
      double first_ok = -1;
      while (steady::now() - t0 < 60s) {
        if (c.http_vip("GET", "", {}, 300ms).first == 200) {
          first_ok = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
          break;
        }
        std::this_thread::sleep_for(20ms);
      }
      if (first_ok < 0 || !c.wait_online(survivor, survivor, 10s)) {
        std::fprintf(stderr, "bench_group_failover: trial %d: no failover\n%s\n", t,
                     c.logs().c_str());
        return 1;
      }
      const json ev = c.daemons().events(survivor);
      const double d = ms_after(ev, "heartbeat.node_down", ns_of(t0));
      const double q = ms_after(ev, "quorum.held", ns_of(t0));
      const double o = ms_after(ev, "group.online", ns_of(t0));
      if (d < 0 || q < 0 || o < 0) {
        std::fprintf(stderr, "bench_group_failover: trial %d: events missing\n%s\n", t,
                     ev.dump(1).c_str());
        return 1;
      }
      detect.push_back(d);
      quorum.push_back(q);
      online.push_back(o);
      activation.push_back(o - q);
      client.push_back(first_ok);
      std::fprintf(stderr,
                   "trial %d: %s killed; node_down %.0f ms, quorum %.0f ms, online %.0f ms, "
                   "client %.0f ms\n",
                   t, lab::ha_cluster::node(active).c_str(), d, q, o, first_ok);
      // The killed node comes back as the standby, in sync, before the next trial.
      c.clear_remains(active);
      c.start_replicator(active);
      c.start_daemon(active);
      if (!c.daemons().wait_all_up(30s) ||
          !lab::tandemd_cluster::wait_until([&] { return in_sync(c, 0) && in_sync(c, 1); }, 60s,
                                            100ms)) {
        std::fprintf(stderr, "bench_group_failover: %s did not come back in sync\n%s\n",
                     lab::ha_cluster::node(active).c_str(), c.logs().c_str());
        return 1;
      }
      active = survivor;
    }
    const double p50 = percentile(online, 0.5);
    const double q50 = percentile(quorum, 0.5);
    const json out = {{"bench", "failover"},
                      {"phase", "group"},
                      {"trials", trials},
                      {"p50_ms", std::lround(p50)},
                      {"p95_ms", std::lround(percentile(online, 0.95))},
                      {"max_ms", std::lround(percentile(online, 1.0))},
                      {"detect_p50_ms", std::lround(percentile(detect, 0.5))},
                      {"quorum_p50_ms", std::lround(q50)},
                      {"activation_p50_ms", std::lround(percentile(activation, 0.5))},
                      {"client_p50_ms", std::lround(percentile(client, 0.5))},
                      {"heartbeat", "200ms/1s"},
                      {"lease_ms", 3000},
                      {"ratio_p50_online_to_quorum", std::round(p50 / q50 * 1000) / 1000}};
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_group_failover: %s\n", e.what());
    return 1;
  }
  return 0;
}
