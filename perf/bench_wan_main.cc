// SPDX-License-Identifier: Apache-2.0
// bench_wan: async replication over a simulated WAN path (100 ms round trip, 100 Mbit/s), as a
// fraction of that path's bottleneck measured in the same run.
//
// This machine's kernel has no netem, so the path is simulated in process: two mirror engines on
// RAM disks, joined by in-memory ports through fault ports with a 50 ms delay each way and a
// 100 Mbit/s token bucket (with a 2 MiB queue) on the primary's side, on the real clock. The
// ceiling is raw datagrams pushed through the same kind of path for two seconds. The primary
// (mode async, the transport paced at the bottleneck as `rate_limit` would) writes 48 MiB of
// compressible data (words drawn at random from a small vocabulary, about 3:1 for DEFLATE) as
// fast as the queue takes it; goodput is those volume bytes over the time until the peer has
// acknowledged the last of them. One JSON line per compression (none, igzip):
//   {"bench":"wan","compression":...,"goodput_mbit":...,"ratio_to_bottleneck":...}
// Targets (issue "Mirror engine II"): >= 0.9 without compression, > 1.0 with igzip.
// A third line ("history":"file") runs without compression through a 4 MiB queue and a history
// file (io_uring on a file in /var/tmp): most of the data goes through the disk and back, and
// should cost the link nothing (same target, >= 0.9).
// Environment: TANDEM_WAN_MIB (default 48), TANDEM_WAN_RTT_MS (100), TANDEM_WAN_MBIT (100).
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataplane/backend/mem_backend.h"
#include "dataplane/backend/uring_backend.h"
#include "dataplane/mirror/volume.h"
#include "dataplane/port/fault_port.h"
#include "dataplane/volume/metadata.h"
#include "tests/unit/transport/pair_port.h"

namespace {

using namespace tandem;
using json = nlohmann::json;
namespace dm = dp::mirror;
namespace dv = dp::volume;
namespace db = dp::backend;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

struct path_params {
  uint64_t one_way_ns;
  uint64_t rate_bps;
};

dp::fault_profile forward(const path_params& p) {
  dp::fault_profile f;
  f.delay_ns = p.one_way_ns;
  f.rate_bps = p.rate_bps;
  f.queue_bytes = 2u << 20;  // the bottleneck's buffer
  return f;
}
dp::fault_profile backward(const path_params& p) {
  dp::fault_profile f;
  f.delay_ns = p.one_way_ns;
  return f;
}

// A temporary directory (in /dev/shm for the two metadata files, in /var/tmp for the history
// file), removed at the end.
struct shm_dir {
  std::string path;
  explicit shm_dir(const char* base = "/dev/shm") {
    std::string t = std::string(base) + "/tandem-bench-wan-XXXXXX";
    std::vector<char> tmpl(t.begin(), t.end());
    tmpl.push_back('\0');
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed in " + t);
    path = tmpl.data();
  }
  ~shm_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// The ceiling: 1400-byte datagrams through the same path for `seconds`, received bytes over the
// time from the first to the last arrival.
double ceiling_bps(const path_params& p, double seconds) {
  test::pair_port a({dp::ipv4_addr::from_octets(10, 0, 0, 1), 7789}, 1472, 8192);
  test::pair_port b({dp::ipv4_addr::from_octets(10, 0, 0, 2), 7789}, 1472, 8192);
  a.connect(b);
  dp::fault_options o;
  o.tx = forward(p);
  dp::fault_port fa(a, o);
  const uint64_t start = now_ns();
  const auto end = start + static_cast<uint64_t>(seconds * 1e9);
  uint64_t first = 0, last = 0, bytes = 0;
  while (now_ns() < end) {
    dp::dgram* bufs[32];
    const unsigned n = fa.alloc(bufs, 32);
    for (unsigned i = 0; i < n; ++i) {
      bufs[i]->len = 1400;
      bufs[i]->peer = b.local();
    }
    const unsigned sent = fa.send(bufs, n);
    if (sent < n) fa.free(bufs + sent, n - sent);
    fa.flush();
    dp::dgram* in[64];
    const unsigned got = b.recv(in, 64);
    if (got > 0) {
      const uint64_t t = now_ns();
      if (first == 0) first = t;
      last = t;
      for (unsigned i = 0; i < got; ++i)
        bytes += in[i]->len;
      b.free(in, got);
    }
  }
  // The first datagram's bytes arrived at `first`: count from there.
  return last > first
             ? static_cast<double>(bytes - 1400) * 8 / (static_cast<double>(last - first) / 1e9)
             : 0.0;
}

struct node {
  std::unique_ptr<db::mem_backend> data;
  std::optional<dv::metadata_store> meta;
  std::unique_ptr<test::pair_port> raw;
  std::unique_ptr<dp::fault_port> faults;
  std::unique_ptr<dm::volume> vol;
};

// Fills `buf` with words drawn at random from a small vocabulary: text-like data.
void fill_text(uint8_t* buf, size_t len, uint64_t& rng) {
  static const char* const words[] = {"replica ", "volume ",  "async ",   "write ",  "block ",
                                      "primary ", "standby ", "mirror ",  "extent ", "queue ",
                                      "tandem ",  "failover", "cluster ", "disk ",   "resync ",
                                      "bitmap ",  "the ",     "of ",      "a ",      "and "};
  size_t at = 0;
  while (at < len) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    const char* w = words[(rng >> 33) % (sizeof words / sizeof words[0])];
    const size_t n = std::min(std::strlen(w), len - at);
    std::memcpy(buf + at, w, n);
    at += n;
    if ((rng >> 20) % 16 == 0 && at + 8 <= len) {  // a number now and then
      std::memcpy(buf + at, &rng, 8);
      at += 8;
    }
  }
}

json run(const path_params& p, dp::compression comp, uint64_t total_bytes, double ceiling,
         bool history) {
  constexpr uint64_t vol_size = 64u << 20;
  constexpr uint64_t write_len = 64u << 10;
  shm_dir dir;
  std::optional<shm_dir> hist_dir;
  std::unique_ptr<db::backend> hist;
  if (history) {
    hist_dir.emplace("/var/tmp");
    const std::string path = hist_dir->path + "/history";
    std::ofstream(path, std::ios::binary).close();
    std::filesystem::resize_file(path, total_bytes + (16u << 20));
    db::uring_options uo;
    uo.path = path;
    uo.queue_depth = 32;
    uo.block_size = 4096;
    hist = std::make_unique<db::uring_backend>(uo);
  }
  node a, b;
  const dp::udp_addr addr_a{dp::ipv4_addr::from_octets(10, 0, 0, 1), 7789};
  const dp::udp_addr addr_b{dp::ipv4_addr::from_octets(10, 0, 0, 2), 7789};
  a.raw = std::make_unique<test::pair_port>(addr_a, 8972, 16384);
  b.raw = std::make_unique<test::pair_port>(addr_b, 8972, 16384);
  a.raw->connect(*b.raw);
  dp::fault_options fo;
  fo.tx = forward(p);
  fo.capacity = 16384;
  a.faults = std::make_unique<dp::fault_port>(*a.raw, fo);
  fo.tx = backward(p);
  b.faults = std::make_unique<dp::fault_port>(*b.raw, fo);
  int id = 1;
  for (node* n : {&a, &b}) {
    dv::create_options co;
    co.fixed_uuid = true;
    co.uuid.fill(0x77);
    co.force = true;
    n->meta.emplace(dv::metadata_store::create(dir.path + "/n" + std::to_string(id) + ".meta",
                                               vol_size, {}, co));
    db::mem_options mo;
    mo.size = vol_size;
    mo.block_size = 4096;
    n->data = std::make_unique<db::mem_backend>(mo);
    dm::volume_options vo;
    vo.node_id = static_cast<uint32_t>(id);
    vo.log = [](std::string_view) {};
    if (n == &a) {
      vo.mode = dm::replication_mode::async;
      vo.async_queue_bytes = history ? 4u << 20 : total_bytes + (64u << 20);
      vo.async_queue_entries = 65536;
      vo.async_history = hist.get();
      vo.compression = comp;
    }
    n->vol = std::make_unique<dm::volume>(*n->data, *n->meta, vo);
    dp::transport::connection_config tc;
    tc.peer = n == &a ? addr_b : addr_a;
    tc.max_message = 2u << 20;
    tc.send_buffer = 16u << 20;
    tc.recv_buffer = 16u << 20;
    tc.rate_cap_bps = p.rate_bps;  // paced at the bottleneck, as mirrors.transport.rate_limit
    tc.keepalive_ns = 200'000'000;
    tc.dead_peer_ns = 5'000'000'000;
    tc.log = [](std::string_view) {};
    n->vol->attach_peer(*n->faults, tc);
    ++id;
  }
  auto step = [&] {
    const uint64_t t = now_ns();
    a.vol->poll(t);
    b.vol->poll(t);
    a.faults->flush();
    b.faults->flush();
  };
  if (a.vol->promote(true) != 0 || a.vol->connect() != 0 || b.vol->connect() != 0)
    throw std::runtime_error("cannot start the pair: " + a.vol->last_error());
  // The initial full sync of the zeroed volumes (zeroes compress to nothing, and without
  // compression it is 64 MiB at the bottleneck: about 6 s).
  const uint64_t sync_deadline = now_ns() + 120'000'000'000ULL;
  while (!(a.vol->connection_state() == dm::conn_state::connected &&
           b.vol->connection_state() == dm::conn_state::connected)) {
    if (now_ns() > sync_deadline) throw std::runtime_error("the initial sync did not finish");
    step();
  }

  // The workload: 64 KiB writes of text, 16 in flight, until total_bytes were written.
  constexpr unsigned qd = 16;
  std::vector<uint8_t*> bufs(qd);
  std::vector<bool> busy(qd, false);
  for (auto& p_buf : bufs)
    p_buf = static_cast<uint8_t*>(std::aligned_alloc(4096, write_len));
  uint64_t rng = 42, submitted = 0, completed = 0;
  unsigned in_flight = 0;
  const dm::volume_counters c0 = a.vol->status().counters;
  const uint64_t wire0 = a.vol->transport()->stats().sent_bytes;
  const uint64_t t0 = now_ns();
  uint64_t t_local = 0;
  const uint64_t deadline = t0 + 600'000'000'000ULL;
  for (;;) {
    for (unsigned s = 0; s < qd && submitted < total_bytes; ++s) {
      if (busy[s]) continue;
      fill_text(bufs[s], write_len, rng);
      dm::io_request io;
      io.op = dm::io_op::write;
      io.offset = submitted % vol_size;
      io.length = write_len;
      io.buf = bufs[s];
      io.cookie = s;
      if (a.vol->submit(io) != 0) break;
      busy[s] = true;
      ++in_flight;
      submitted += write_len;
    }
    step();
    dm::io_completion out[qd];
    const unsigned n = a.vol->reap(out);
    for (unsigned k = 0; k < n; ++k) {
      if (out[k].result != 0) throw std::runtime_error("a write failed");
      busy[out[k].cookie] = false;
      --in_flight;
      completed += write_len;
    }
    if (completed >= total_bytes && in_flight == 0) {
      if (t_local == 0) t_local = now_ns();
      const auto s = a.vol->status();
      if (s.async.queued == 0) break;
    }
    if (now_ns() > deadline) throw std::runtime_error("the queue did not drain");
  }
  const uint64_t t1 = now_ns();
  for (uint8_t* p_buf : bufs)
    std::free(p_buf);
  const auto s = a.vol->status();
  if (s.counters.async_fallbacks != c0.async_fallbacks)
    throw std::runtime_error("the queue fell back to the bitmap");
  const uint64_t wire = a.vol->transport()->stats().sent_bytes - wire0;
  const double secs = static_cast<double>(t1 - t0) / 1e9;
  const double goodput = static_cast<double>(total_bytes) * 8 / secs;
  json line = {
      {"bench", "wan"},
      {"mode", "async"},
      {"compression", std::string(dp::to_string(comp))},
      {"rtt_ms", static_cast<double>(2 * p.one_way_ns) / 1e6},
      {"bottleneck_mbit", static_cast<double>(p.rate_bps) / 1e6},
      {"ceiling_mbit", ceiling / 1e6},
      {"volume_bytes", total_bytes},
      {"wire_bytes", wire},
      {"compression_ratio",
       static_cast<double>(s.counters.async_compressed_bytes - c0.async_compressed_bytes) /
           std::max<double>(1.0, static_cast<double>(s.counters.async_compressed_wire_bytes -
                                                     c0.async_compressed_wire_bytes))},
      {"history", history ? "file" : "none"},
      {"spilled_bytes", s.counters.async_spilled_bytes - c0.async_spilled_bytes},
      {"seconds", secs},
      {"local_seconds", static_cast<double>(t_local - t0) / 1e9},
      {"goodput_mbit", goodput / 1e6},
      {"ratio_to_bottleneck", ceiling > 0 ? goodput / ceiling : 0.0},
      {"retransmitted", a.vol->transport()->stats().retransmitted},
      {"target", comp == dp::compression::none ? ">= 0.9" : "> 1.0"}};
  // The engines first: closing a connection still sends through both nodes' ports.
  a.vol.reset();
  b.vol.reset();
  return line;
}

}  // namespace

int main() {
  try {
    const path_params p{env_u64("TANDEM_WAN_RTT_MS", 100) * 1'000'000 / 2,
                        env_u64("TANDEM_WAN_MBIT", 100) * 1'000'000};
    const uint64_t total = env_u64("TANDEM_WAN_MIB", 48) << 20;
    const double ceiling = ceiling_bps(p, 2.0);
    std::printf("%s\n", json({{"bench", "wan_ceiling"},
                              {"rtt_ms", static_cast<double>(2 * p.one_way_ns) / 1e6},
                              {"bottleneck_mbit", static_cast<double>(p.rate_bps) / 1e6},
                              {"ceiling_mbit", ceiling / 1e6}})
                            .dump()
                            .c_str());
    std::fflush(stdout);
    for (dp::compression c : {dp::compression::none, dp::compression::igzip}) {
      std::printf("%s\n", run(p, c, total, ceiling, false).dump().c_str());
      std::fflush(stdout);
    }
    std::printf("%s\n", run(p, dp::compression::none, total, ceiling, true).dump().c_str());
    std::fflush(stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_wan: %s\n", e.what());
    return 1;
  }
}
