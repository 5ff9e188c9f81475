// SPDX-License-Identifier: Apache-2.0
// The io_uring backend on a file in /var/tmp, buffered and O_DIRECT: 4 KiB QD1 write latency
// against plain pwrite(2), and 64 KiB QD32 write throughput against raw liburing.
//
// Each run writes sequentially through a 64 MiB file (written once beforehand, so no block is
// allocated while measuring), wrapping around. The backend is driven as the volume's lcore will
// drive it: buffers in one registered pool, busy polling for completions. Ceilings, measured in
// the same run on the same file:
//   ceiling/pwrite/<mode>/4096         one pwrite(2) at a time from one thread: the shortest
//                                      path from a write to its completion;
//   ceiling/uring_raw/<mode>/65536     liburing used directly, 32 writes in flight, the same
//                                      ring flags and fixed buffers: what the backend's own
//                                      bookkeeping costs shows as ratio < 1.
// Every backend run also measures each write's latency (submit to completion reaped); a summary
// line per workload gives gbps, p50_us and p99_us.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <benchmark/benchmark.h>
#include <liburing.h>

#include "dataplane/backend/uring_backend.h"
#include "perf/bench.h"

namespace tandem::perf {
namespace {

using namespace tandem::dp::backend;

constexpr uint64_t file_bytes = 64ULL << 20;
constexpr size_t small_io = 4096;
constexpr size_t large_io = 65536;
constexpr unsigned large_qd = 32;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// The data file, made on first use and removed at exit.
class data_file {
 public:
  static const data_file& get() {
    static const data_file f;
    return f;
  }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  ~data_file() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }

 private:
  data_file() {
    std::string templ = "/var/tmp/tandem-bench-backend-XXXXXX";
    const int fd = ::mkstemp(templ.data());
    if (fd < 0) {
      error_ = "mkstemp in /var/tmp: " + std::generic_category().message(errno);
      return;
    }
    path_ = templ;
    std::vector<uint8_t> chunk(1 << 20, 0xa5);
    for (uint64_t off = 0; off < file_bytes; off += chunk.size()) {
      if (::pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(off)) !=
          static_cast<ssize_t>(chunk.size())) {
        error_ = "write " + path_ + ": " + std::generic_category().message(errno);
        break;
      }
    }
    ::fsync(fd);
    ::close(fd);
  }
  std::string path_;
  std::string error_;
};

struct free_deleter {
  void operator()(void* p) const noexcept { std::free(p); }
};
using buffer = std::unique_ptr<uint8_t[], free_deleter>;

buffer aligned(size_t bytes) {
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(4096, bytes));
  std::memset(p, 0x3c, bytes);
  return buffer(p);
}

// Per-write latencies of one run; the percentiles of the last run of each benchmark are kept
// for the summary lines.
class latencies {
 public:
  latencies() { ns_.reserve(1 << 22); }
  void add(uint64_t ns) {
    if (ns_.size() < ns_.capacity()) ns_.push_back(ns);
  }
  void publish(benchmark::State& state, const std::string& name) {
    if (ns_.empty()) return;
    std::sort(ns_.begin(), ns_.end());
    const auto at = [&](double q) {
      return static_cast<double>(
                 ns_[static_cast<size_t>(q * static_cast<double>(ns_.size() - 1))]) /
             1000.0;
    };
    table()[name] = {at(0.50), at(0.99)};
    state.counters["p50_us"] = at(0.50);
    state.counters["p99_us"] = at(0.99);
  }
  struct summary {
    double p50_us;
    double p99_us;
  };
  static std::map<std::string, summary>& table() {
    static std::map<std::string, summary> t;
    return t;
  }

 private:
  std::vector<uint64_t> ns_;
};

const char* mode_name(bool direct) {
  return direct ? "direct" : "buffered";
}

std::string bench_name(const char* kind, bool direct, size_t size, unsigned qd) {
  return std::string(kind) + "/" + mode_name(direct) + "/" + std::to_string(size) + "/qd" +
         std::to_string(qd);
}

void account(benchmark::State& state, uint64_t ios, size_t size) {
  state.SetItemsProcessed(static_cast<int64_t>(ios));
  state.SetBytesProcessed(static_cast<int64_t>(ios * size));
}

// Ceiling for QD1: pwrite(2), one at a time.
void bm_pwrite(benchmark::State& state, bool direct, size_t size) {
  const data_file& f = data_file::get();
  if (!f.error().empty()) return state.SkipWithError(f.error().c_str());
  const int fd = ::open(f.path().c_str(), O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
  if (fd < 0) return state.SkipWithError(("open " + f.path()).c_str());
  buffer buf = aligned(size);
  latencies lat;
  uint64_t off = 0;
  uint64_t ios = 0;
  for (auto _ : state) {
    const uint64_t t0 = now_ns();
    if (::pwrite(fd, buf.get(), size, static_cast<off_t>(off)) != static_cast<ssize_t>(size)) {
      state.SkipWithError("pwrite failed");
      break;
    }
    lat.add(now_ns() - t0);
    off = (off + size) % file_bytes;
    ++ios;
  }
  ::close(fd);
  account(state, ios, size);
  lat.publish(state, bench_name("ceiling/pwrite", direct, size, 1));
}

// Ceiling for QD32: liburing directly, with what the backend asks for (fixed file and buffers,
// SINGLE_ISSUER, COOP_TASKRUN), busy polling.
void bm_uring_raw(benchmark::State& state, bool direct, size_t size, unsigned qd) {
  const data_file& f = data_file::get();
  if (!f.error().empty()) return state.SkipWithError(f.error().c_str());
  const int fd = ::open(f.path().c_str(), O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
  if (fd < 0) return state.SkipWithError(("open " + f.path()).c_str());
  io_uring ring{};
  io_uring_params p{};
  p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
            IORING_SETUP_SINGLE_ISSUER;
  if (io_uring_queue_init_params(qd, &ring, &p) != 0) {
    p = io_uring_params{};
    if (io_uring_queue_init_params(qd, &ring, &p) != 0) {
      ::close(fd);
      return state.SkipWithError("io_uring_queue_init failed");
    }
  }
  buffer pool = aligned(size * qd);
  const iovec region{pool.get(), size * qd};
  const bool fixed = io_uring_register_buffers(&ring, &region, 1) == 0;
  const bool fixed_file = io_uring_register_files(&ring, &fd, 1) == 0;
  std::vector<uint64_t> started(qd);
  std::vector<unsigned> free_tags;
  for (unsigned i = 0; i < qd; ++i)
    free_tags.push_back(i);
  latencies lat;
  uint64_t off = 0;
  uint64_t ios = 0;
  unsigned in_flight = 0;
  io_uring_cqe* cqes[64];
  for (auto _ : state) {
    while (!free_tags.empty()) {
      const unsigned tag = free_tags.back();
      free_tags.pop_back();
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      uint8_t* b = pool.get() + static_cast<size_t>(tag) * size;
      const int target = fixed_file ? 0 : fd;
      if (fixed) {
        io_uring_prep_write_fixed(sqe, target, b, static_cast<unsigned>(size), off, 0);
      } else {
        io_uring_prep_write(sqe, target, b, static_cast<unsigned>(size), off);
      }
      if (fixed_file) sqe->flags |= IOSQE_FIXED_FILE;
      io_uring_sqe_set_data64(sqe, tag);
      started[tag] = now_ns();
      off = (off + size) % file_bytes;
      ++in_flight;
    }
    io_uring_submit(&ring);
    unsigned got = 0;
    while ((got = io_uring_peek_batch_cqe(&ring, cqes, 64)) == 0) {
    }
    const uint64_t t = now_ns();
    for (unsigned i = 0; i < got; ++i) {
      if (cqes[i]->res != static_cast<int>(size)) state.SkipWithError("write failed");
      const auto tag = static_cast<unsigned>(cqes[i]->user_data);
      lat.add(t - started[tag]);
      free_tags.push_back(tag);
    }
    io_uring_cq_advance(&ring, got);
    in_flight -= got;
    ios += got;
  }
  while (in_flight > 0) {
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe(&ring, &cqe) != 0) break;
    io_uring_cqe_seen(&ring, cqe);
    --in_flight;
  }
  io_uring_queue_exit(&ring);
  ::close(fd);
  account(state, ios, size);
  lat.publish(state, bench_name("ceiling/uring_raw", direct, size, qd));
  state.counters["fixed_buffers"] = fixed ? 1 : 0;
}

// The backend: `qd` writes of `size` bytes in flight, from a registered pool. Completions are
// reaped by busy polling (as the volume's lcore will) or, with `sleep`, by waiting in the kernel
// when none is ready.
void bm_backend(benchmark::State& state, bool direct, size_t size, unsigned qd, bool sleep,
                const std::string& name, const std::string& ceiling) {
  const data_file& f = data_file::get();
  if (!f.error().empty()) return state.SkipWithError(f.error().c_str());
  uring_options o;
  o.path = f.path();
  o.mode = direct ? io_mode::direct : io_mode::buffered;
  o.queue_depth = std::max(qd, 8U);
  std::unique_ptr<uring_backend> b;
  try {
    b = std::make_unique<uring_backend>(o);
  } catch (const std::exception& e) {
    return state.SkipWithError(e.what());
  }
  buffer pool = aligned(size * qd);
  const iovec region{pool.get(), size * qd};
  const bool fixed = b->register_buffers({&region, 1}) == 0;
  std::vector<uint64_t> started(qd);
  std::vector<request> burst;
  burst.reserve(qd);
  std::vector<unsigned> free_tags;
  for (unsigned i = 0; i < qd; ++i)
    free_tags.push_back(i);
  latencies lat;
  completion done[64];
  uint64_t off = 0;
  uint64_t ios = 0;
  for (auto _ : state) {
    burst.clear();
    while (!free_tags.empty()) {
      const unsigned tag = free_tags.back();
      free_tags.pop_back();
      burst.push_back(request::write(off, pool.get() + static_cast<size_t>(tag) * size, size, tag));
      started[tag] = now_ns();
      off = (off + size) % file_bytes;
    }
    if (!burst.empty() && b->submit(burst) != static_cast<int>(burst.size())) {
      state.SkipWithError("submit refused a write");
      break;
    }
    int got = 0;
    while ((got = b->poll(done)) == 0) {
      if (sleep) b->wait(1, std::chrono::seconds(1));
    }
    const uint64_t t = now_ns();
    for (int i = 0; i < got; ++i) {
      if (done[i].result != static_cast<int64_t>(size)) state.SkipWithError("write failed");
      lat.add(t - started[done[i].cookie]);
      free_tags.push_back(static_cast<unsigned>(done[i].cookie));
    }
    ios += static_cast<uint64_t>(got);
  }
  while (b->in_flight() > 0) {
    b->wait(1, std::chrono::seconds(1));
    b->poll(done);
  }
  account(state, ios, size);
  lat.publish(state, name);
  state.counters["fixed_buffers"] = fixed && b->stats().fixed_ios > 0 ? 1 : 0;
  set_ceiling(state, ceiling, b->name());
}

std::optional<double> gbps(const bench_result* r) {
  if (r == nullptr || !r->bytes_per_second) return std::nullopt;
  return *r->bytes_per_second * 8 / 1e9;
}

std::optional<double> lat_of(const std::string& name, bool p99) {
  const auto& t = latencies::table();
  const auto it = t.find(name);
  if (it == t.end()) return std::nullopt;
  return p99 ? it->second.p99_us : it->second.p50_us;
}

// A workload: its ceiling, then the backend reaping each way in `reaps` ("poll", "wait"), with
// one summary line each: the backend's figures next to its ceiling's.
void add_workload(bool direct, size_t size, unsigned qd, const char* ceiling_kind,
                  std::initializer_list<const char*> reaps) {
  const std::string ceiling = bench_name(ceiling_kind, direct, size, qd);
  benchmark::RegisterBenchmark(ceiling.c_str(), [=](benchmark::State& s) {
    if (qd == 1) {
      bm_pwrite(s, direct, size);
    } else {
      bm_uring_raw(s, direct, size, qd);
    }
  })->UseRealTime();
  // UseRealTime (rates over wall-clock time: the CPU waits for the disk) appends "/real_time".
  const std::string suffix = "/real_time";
  for (const std::string reap : reaps) {
    const std::string mine = bench_name("backend/write", direct, size, qd) + "/" + reap;
    benchmark::RegisterBenchmark(mine.c_str(), [=](benchmark::State& s) {
      bm_backend(s, direct, size, qd, reap == "wait", mine, ceiling + suffix);
    })->UseRealTime();
    register_summary([=](const bench_results& results) {
      const bench_result* r = results.find(mine + suffix);
      const bench_result* c = results.find(ceiling + suffix);
      std::optional<double> ratio;
      if (r && c && r->bytes_per_second && c->bytes_per_second && *c->bytes_per_second > 0) {
        ratio = *r->bytes_per_second / *c->bytes_per_second;
      }
      return json_line("backend")
          .add_string("op", "write")
          .add_string("mode", mode_name(direct))
          .add_int("size", static_cast<int64_t>(size))
          .add_int("qd", qd)
          .add_string("reap", reap)
          .add_number("gbps", gbps(r))
          .add_number("iops", r ? r->items_per_second : std::nullopt)
          .add_number("p50_us", lat_of(mine, false))
          .add_number("p99_us", lat_of(mine, true))
          .add_string("ceiling", ceiling)
          .add_number("ceiling_gbps", gbps(c))
          .add_number("ceiling_p50_us", lat_of(ceiling, false))
          .add_number("ceiling_p99_us", lat_of(ceiling, true))
          .add_number("ratio", ratio)
          .str();
    });
  }
}

const bool registered = [] {
  for (const bool direct : {false, true}) {
    add_workload(direct, small_io, 1, "ceiling/pwrite", {"poll", "wait"});
    add_workload(direct, large_io, large_qd, "ceiling/uring_raw", {"poll"});
  }
  return true;
}();

}  // namespace
}  // namespace tandem::perf
