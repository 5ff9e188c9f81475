// SPDX-License-Identifier: Apache-2.0
// N:1 mirroring in lab namespaces: three primaries (p1, p2, p3) mirror 64 volumes in all to one
// standby, every replicator reading the SAME mirrors file (each serves only the volumes it holds
// a replica of), the standby polling its 64 volumes from two pinned lcores. A random workload
// on every volume, then all 64 connected and in sync on both sides; p2's replicator is killed
// (kill -9) and the standby takes over p2's volumes while p1's and p3's keep replicating; after a
// clean shutdown every volume's two images are byte-identical.
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/lab/mirror_fleet.h"

namespace tandem::lab {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr int volume_count = 64;
const std::vector<std::string> primaries = {"p1", "p2", "p3"};
const std::string standby = "standby";

std::string volume_name(int i) {
  char b[8];
  std::snprintf(b, sizeof b, "v%02d", i);
  return b;
}

// 22 / 21 / 21 volumes, in config order.
std::string primary_of(int i) {
  return i < 22 ? "p1" : i < 43 ? "p2" : "p3";
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  std::string out(f ? static_cast<size_t>(f.tellg()) : 0, '\0');
  f.seekg(0);
  f.read(out.data(), static_cast<std::streamsize>(out.size()));
  return out;
}

// The first two CPUs this process may run on (one CPU twice on a single-CPU machine).
std::vector<int> two_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
  std::vector<int> out;
  for (int c = 0; c < CPU_SETSIZE && out.size() < 2; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  if (out.size() == 1) out.push_back(out[0]);
  return out;
}

// name (comm) -> Cpus_allowed_list of every thread of a process.
std::map<std::string, std::string> thread_cpus(pid_t pid) {
  std::map<std::string, std::string> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& t : std::filesystem::directory_iterator(dir)) {
    std::string comm;  // /proc files have no size: read by line
    std::getline(std::ifstream(t.path().string() + "/comm"), comm);
    std::ifstream st(t.path().string() + "/status");
    std::string line;
    while (std::getline(st, line)) {
      if (line.rfind("Cpus_allowed_list:", 0) == 0) {
        out[comm] = line.substr(line.find_first_not_of(" \t", 18));
      }
    }
  }
  return out;
}

// The volumes of `host` for which `pred` does not hold, with their states: failure messages.
std::string not_yet(mirror_fleet& f, const std::string& host,
                    const std::function<bool(const json&)>& pred) {
  std::string out = host + ":";
  for (const auto& [name, v] : f.volumes_of(host)) {
    if (pred(v)) continue;
    out += " " + name + " (" + v.value("role", "") + ", " + v.value("disk", "") + ", " +
           v.value("connection", "") + ", dirty " + std::to_string(v.value("dirty_bytes", 0ull)) +
           (v.contains("workload") ? ", workload " + v["workload"].dump() : "") + ")";
  }
  return out;
}

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

// Runs f(host) for every host at once (each replicator takes its commands one by one).
template <class F>
void on_each(const std::vector<std::string>& hosts, F f) {
  std::vector<std::thread> threads;
  std::vector<std::string> errors(hosts.size());
  for (size_t i = 0; i < hosts.size(); ++i) {
    threads.emplace_back([&, i] {
      try {
        f(hosts[i]);
      } catch (const std::exception& e) {
        errors[i] = hosts[i] + ": " + e.what();
      }
    });
  }
  for (auto& t : threads)
    t.join();
  for (const auto& e : errors)
    if (!e.empty()) throw std::runtime_error(e);
}

TEST(n_to_one_netns, three_primaries_mirror_64_volumes_to_one_standby_on_two_lcores) {
  const auto t0 = clock_type::now();
  mirror_fleet_options o;
  o.hosts = {"p1", "p2", "p3", standby};
  for (int i = 0; i < volume_count; ++i)
    o.volumes.push_back({volume_name(i), primary_of(i), standby, ""});
  // One volume placed by the file: lcore 1 where round-robin would pick 0 on the standby.
  o.volumes[62].extra = "lcore: 1";
  // Small rings: each attached volume allocates and touches two of them (32MiB each by default).
  o.transport = "buffer: 2MiB";
  const std::vector<int> cpus = two_cpus();
  o.mirrors_extra = "  lcores: 2\n  lcore_cpus: [" + std::to_string(cpus[0]) + ", " +
                    std::to_string(cpus[1]) + "]\n";
  mirror_fleet f(o);
  f.fresh_disks();
  for (const auto& h : o.hosts)
    f.start(h);
  const std::vector<std::string> all_hosts = o.hosts;

  // Every host reads the whole file and serves its own volumes only.
  EXPECT_NE(f.log("p1").find("holds no replica of 42 configured volumes, not served here: v22, "),
            std::string::npos)
      << f.log("p1");
  EXPECT_EQ(f.log(standby).find("not served here"), std::string::npos) << f.log(standby);
  json r = f.call("p1", {{"cmd", "attach"}, {"volume", "v30"}});
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find(
                "volume \"v30\" has no replica on node p1 (its replicas: p2, standby; served "
                "here: v00, v01"),
            std::string::npos)
      << r.dump();
  r = f.call(standby, {{"cmd", "promote"}, {"volume", "nope"}});
  EXPECT_NE(r["error"].get<std::string>().find("unknown volume \"nope\" (configured: v00, v01, "),
            std::string::npos)
      << r.dump();

  // Create and attach everywhere (each replicator takes its commands one by one).
  on_each(all_hosts, [&](const std::string& h) {
    for (const auto& v : f.volumes()) {
      if (v.primary != h && v.standby != h) continue;
      f.ok(h, {{"cmd", "create"}, {"volume", v.name}});
      f.ok(h, {{"cmd", "attach"}, {"volume", v.name}});
    }
  });
  const double up_s = seconds_since(t0);
  const auto t_sync = clock_type::now();

  // Each primary promotes its volumes (a full sync of each) and starts a random write workload
  // on every one of them, during that sync.
  on_each(primaries, [&](const std::string& h) {
    for (int i = 0; i < volume_count; ++i) {
      if (primary_of(i) != h) continue;
      f.ok(h, {{"cmd", "promote"}, {"volume", volume_name(i)}, {"force", true}});
      f.ok(h, {{"cmd", "workload"},
               {"volume", volume_name(i)},
               {"seed", 1000 + i},
               {"qd", 4},
               {"count", 40},
               {"max_size", 65536}});
    }
  });
  const auto settled = [](const json& v) {
    return mirror_fleet::in_sync(v) &&
           (!v.contains("workload") || !v["workload"]["running"].get<bool>());
  };
  for (const auto& h : all_hosts)
    ASSERT_TRUE(f.wait_all(h, settled, 60s)) << not_yet(f, h, settled);
  const double sync_s = seconds_since(t_sync);

  // The standby: 64 volumes over two lcores, round-robin in config order but for v62, which the
  // file places; each primary spreads its own volumes the same way.
  const json st = f.status(standby);
  EXPECT_EQ(st["lcores"], 2);
  ASSERT_EQ(st["volumes"].size(), 64u);
  int on_lcore[2] = {0, 0};
  for (int i = 0; i < volume_count; ++i) {
    const json& v = st["volumes"][i];
    EXPECT_EQ(v["name"], volume_name(i));  // merged in config order
    EXPECT_EQ(v["lcore"], i == 62 ? 1 : i % 2) << v["name"];
    EXPECT_EQ(v["role"], "secondary");
    ++on_lcore[v["lcore"].get<int>()];
  }
  EXPECT_EQ(on_lcore[0], 31);
  EXPECT_EQ(on_lcore[1], 33);
  const json p2 = f.status("p2");
  ASSERT_EQ(p2["volumes"].size(), 21u);
  for (size_t k = 0; k < 21; ++k) {
    EXPECT_EQ(p2["volumes"][k]["name"], volume_name(22 + static_cast<int>(k)));
    EXPECT_EQ(p2["volumes"][k]["lcore"], k % 2);
    EXPECT_EQ(p2["volumes"][k]["workload"]["acked"], 40) << p2["volumes"][k].dump();
  }
  // One status of a single volume goes to its lcore alone.
  r = f.ok(standby, {{"cmd", "status"}, {"volume", "v07"}});
  ASSERT_EQ(r["volumes"].size(), 1u);
  EXPECT_EQ(r["volumes"][0]["lcore"], 1);

  // Two lcore threads, each pinned to its CPU.
  const auto threads = thread_cpus(f.replicator(standby).pid());
  ASSERT_TRUE(threads.contains("tandem-lcore0")) << ::testing::PrintToString(threads);
  ASSERT_TRUE(threads.contains("tandem-lcore1")) << ::testing::PrintToString(threads);
  EXPECT_EQ(threads.at("tandem-lcore0"), std::to_string(cpus[0]));
  EXPECT_EQ(threads.at("tandem-lcore1"), std::to_string(cpus[1]));

  const uint64_t rss = f.rss_bytes(standby);
  std::printf("standby: 64 attached sync volumes, RSS %.1f MiB (%.1f MiB per volume)\n",
              static_cast<double>(rss) / (1 << 20), static_cast<double>(rss) / (1 << 20) / 64);

  // Failover of p2: kill -9, the standby takes p2's volumes over; p1's and p3's stay in sync.
  const auto t_fail = clock_type::now();
  f.kill9("p2");
  for (int i = 22; i < 43; ++i) {
    f.ok(standby, {{"cmd", "disconnect"}, {"volume", volume_name(i)}});
    f.ok(standby, {{"cmd", "promote"}, {"volume", volume_name(i)}});  // no force: UpToDate
  }
  const double failover_s = seconds_since(t_fail);
  // A new write on one volume of p1 and one of p3 reaches the standby while p2 is gone.
  auto applied = [&](const std::string& name) {
    return f.ok(standby, {{"cmd", "status"}, {"volume", name}})["volumes"][0]["counters"]["applied"]
        .get<uint64_t>();
  };
  const uint64_t applied_v00 = applied("v00"), applied_v63 = applied("v63");
  f.ok("p1", {{"cmd", "workload"}, {"volume", "v00"}, {"seed", 7}, {"count", 30}});
  f.ok("p3", {{"cmd", "workload"}, {"volume", "v63"}, {"seed", 8}, {"count", 30}});
  for (const auto& h : {std::string("p1"), std::string("p3")})
    ASSERT_TRUE(f.wait_all(h, settled, 30s)) << not_yet(f, h, settled);
  EXPECT_GE(applied("v00"), applied_v00 + 30);
  EXPECT_GE(applied("v63"), applied_v63 + 30);
  for (const auto& [name, v] : f.volumes_of(standby)) {
    const int i = std::stoi(name.substr(1));
    if (primary_of(i) == "p2") {
      EXPECT_EQ(v["role"], "primary") << v.dump();
      EXPECT_EQ(v["disk"], "up_to_date") << v.dump();
    } else {
      EXPECT_TRUE(mirror_fleet::in_sync(v)) << v.dump();
      EXPECT_EQ(v["role"], "secondary") << v.dump();
    }
  }

  // Clean shutdown everywhere left, then every volume's two images byte for byte.
  for (const auto& h : {std::string("p1"), std::string("p3"), standby})
    f.stop(h);
  for (const auto& v : f.volumes()) {
    const std::string a = read_file(f.image(v.primary, v.name));
    const std::string b = read_file(f.image(v.standby, v.name));
    ASSERT_EQ(a.size(), f.volume_bytes()) << v.name;
    EXPECT_TRUE(a == b) << v.name << ": the primary's and the standby's images differ";
    EXPECT_NE(a, std::string(a.size(), '\0')) << v.name << ": the workload wrote nothing";
  }
  std::printf(
      "n_to_one: start, create and attach %.1f s; promote, workload and sync of 64 volumes %.1f s, "
      "p2 failover %.1f s, "
      "total %.1f s\n",
      up_s, sync_s, failover_s, seconds_since(t0));
}

}  // namespace
}  // namespace tandem::lab
