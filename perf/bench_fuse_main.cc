// SPDX-License-Identifier: Apache-2.0
// The FUSE frontend benchmark: fio through each layer of the path against the same backing store
// in the same run, with tandem-replicator on two lab hosts (socket port, sync replication):
//   raw_file   fio on a file beside the primary's data image (same file system): the ceiling;
//   engine     the in-process workload generator on the primary (replication, no frontend);
//   fuse_file  fio on the volume's FUSE file (engine + FUSE);
//   fuse_loop  fio on a loop device over that file (engine + FUSE + loop): what ext4 sees.
// Random writes at 64 KiB QD32 (throughput) and 4 KiB QD1 (latency), and random reads at 64 KiB
// QD32. One JSON line per result with its ratio to raw_file, and to the layer below it, which
// says where the time goes. TANDEM_BENCH_SECONDS: each run's length (default 4);
// TANDEM_BENCH_IMAGE_DIR: where the images go (default: the lab's directory).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/exec/process.h"
#include "tests/lab/mirror_pair.h"

namespace {

using namespace tandem;
using json = nlohmann::json;
using namespace std::chrono_literals;

struct result {
  double mib_s = 0;
  double p50_us = 0, p99_us = 0;
};

struct shape {
  std::string name;  // randwrite | randread
  uint32_t size;
  unsigned qd;
};

result fio(const std::string& target, const shape& s, double seconds, uint64_t size_bytes) {
  const std::vector<std::string> argv = {"fio",
                                         "--name=bench",
                                         "--filename=" + target,
                                         "--rw=" + s.name,
                                         "--bs=" + std::to_string(s.size),
                                         "--iodepth=" + std::to_string(s.qd),
                                         "--ioengine=libaio",
                                         "--direct=1",
                                         "--size=" + std::to_string(size_bytes),
                                         "--time_based=1",
                                         "--runtime=" + std::to_string(static_cast<int>(seconds)),
                                         "--randrepeat=0",
                                         "--output-format=json"};
  const ctl::run_result r = ctl::run(argv, std::chrono::seconds(static_cast<int>(seconds) + 120));
  if (!r.status.ok()) throw std::runtime_error("fio on " + target + " failed: " + r.output);
  const json j = json::parse(r.output.substr(r.output.find('{')));
  const json& side = j["jobs"][0][s.name == "randread" ? "read" : "write"];
  result out;
  out.mib_s = side["bw_bytes"].get<double>() / (1 << 20);
  const json& pct = side["clat_ns"]["percentile"];
  out.p50_us = pct["50.000000"].get<double>() / 1000;
  out.p99_us = pct["99.000000"].get<double>() / 1000;
  return out;
}

// The in-process workload (writes only).
result engine(lab::mirror_pair& m, const shape& s, double seconds, uint64_t seed) {
  m.ok(0, {{"cmd", "workload"},
           {"volume", "db"},
           {"seed", seed},
           {"qd", s.qd},
           {"min_size", s.size},
           {"max_size", s.size},
           {"seconds", static_cast<uint64_t>(seconds)}});
  const auto done = [](const json& v) { return !v["workload"]["running"].get<bool>(); };
  if (!m.wait_for(0, done, std::chrono::milliseconds(static_cast<int>(seconds * 1000) + 60000)))
    throw std::runtime_error("the workload did not finish: " + m.volume(0).dump());
  const json w = m.volume(0)["workload"];
  if (w["failed"].get<uint64_t>() != 0) throw std::runtime_error("writes failed: " + w.dump());
  return {w["gbps"].get<double>() * 1e9 / 8 / (1 << 20), w["p50_us"].get<double>(),
          w["p99_us"].get<double>()};
}

void print(const std::string& layer, const shape& s, const result& r, const result& raw,
           const result* below, const std::string& below_name) {
  json line = {{"bench", "fuse"},
               {"layer", layer},
               {"rw", s.name},
               {"size", s.size},
               {"qd", s.qd},
               {"mib_s", r.mib_s},
               {"p50_us", r.p50_us},
               {"p99_us", r.p99_us},
               {"ratio_to_raw", raw.mib_s > 0 ? r.mib_s / raw.mib_s : 0.0}};
  if (below) {
    line["below"] = below_name;
    line["ratio_to_below"] = below->mib_s > 0 ? r.mib_s / below->mib_s : 0.0;
    line["p50_over_below_us"] = r.p50_us - below->p50_us;
  }
  std::printf("%s\n", line.dump().c_str());
  std::fflush(stdout);
}

int run() {
  const char* sec = std::getenv("TANDEM_BENCH_SECONDS");
  const double seconds = std::max(1.0, sec && *sec ? std::atof(sec) : 4.0);
  lab::mirror_pair_options o;
  o.mib = 256;
  o.fuse = true;
  if (const char* d = std::getenv("TANDEM_BENCH_IMAGE_DIR")) o.image_dir = d;
  lab::mirror_pair m(o);
  m.bring_up();
  const uint64_t bytes = m.volume_bytes();

  // The ceiling: a file of the volume's size beside the primary's image.
  const std::string raw_file = m.image(0) + ".raw";
  m.net().register_path(raw_file);
  ctl::run_checked({"fallocate", "-l", std::to_string(bytes), raw_file});
  const std::string dev = m.ok(0, {{"cmd", "loop"}, {"volume", "db"}})["device"];
  m.net().register_loop(dev);

  const shape shapes[] = {
      {"randwrite", 65536, 32}, {"randwrite", 4096, 1}, {"randread", 65536, 32}};
  uint64_t seed = 1;
  for (const shape& s : shapes) {
    const result raw = fio(raw_file, s, seconds, bytes);
    print("raw_file", s, raw, raw, nullptr, "");
    const bool writes = s.name == "randwrite";
    result eng;
    if (writes) {
      eng = engine(m, s, seconds, seed++);
      print("engine", s, eng, raw, &raw, "raw_file");
    }
    const result file = fio(m.fuse_file(0), s, seconds, bytes);
    print("fuse_file", s, file, raw, writes ? &eng : &raw, writes ? "engine" : "raw_file");
    const result loop = fio(dev, s, seconds, bytes);
    print("fuse_loop", s, loop, raw, &file, "fuse_file");
  }
  const json f = m.volume(0)["fuse"];
  if (f["errors"].get<uint64_t>() != 0) throw std::runtime_error("FUSE errors: " + f.dump());
  m.ok(0, {{"cmd", "unloop"}, {"volume", "db"}});
  return 0;
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_fuse: %s\n", e.what());
    return 1;
  }
}
