// SPDX-License-Identifier: Apache-2.0
// The in-process load generator: seeded random writes, an append-only log of acknowledged ones.
#include "dataplane/app/workload.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace tandem::dp::app {
namespace {

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t number(const nlohmann::json& a, const char* key, uint64_t def) {
  if (!a.contains(key)) return def;
  if (!a[key].is_number_unsigned()) {
    throw std::invalid_argument(std::string("workload: \"") + key +
                                "\" must be a non-negative integer");
  }
  return a[key].get<uint64_t>();
}

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

workload_options parse_workload(const nlohmann::json& a, const backend::geometry& g) {
  workload_options o;
  o.seed = number(a, "seed", 1);
  o.qd = static_cast<unsigned>(number(a, "qd", 8));
  o.min_size = static_cast<uint32_t>(number(a, "min_size", g.block_size));
  o.max_size = static_cast<uint32_t>(number(a, "max_size", 64u << 10));
  o.count = number(a, "count", 0);
  o.duration_ns = number(a, "seconds", 0) * 1'000'000'000ULL;
  o.region_offset = number(a, "region_offset", 0);
  o.region_size = number(a, "region_size", 0);
  o.fua_percent = static_cast<unsigned>(number(a, "fua_percent", 0));
  if (a.contains("log")) {
    if (!a["log"].is_string()) throw std::invalid_argument("workload: \"log\" must be a path");
    o.log_path = a["log"].get<std::string>();
  }
  const uint32_t bs = g.block_size;
  if (o.qd == 0 || o.qd > 256) throw std::invalid_argument("workload: qd must be 1..256");
  if (o.min_size == 0 || o.min_size % bs || o.max_size % bs || o.min_size > o.max_size ||
      o.max_size > mirror::max_io_bytes) {
    throw std::invalid_argument(
        "workload: sizes must be multiples of " + std::to_string(bs) +
        " with min_size <= max_size <= " + std::to_string(mirror::max_io_bytes));
  }
  if (o.region_offset % bs || o.region_size % bs || o.region_offset >= g.size ||
      o.region_offset + o.region_size > g.size) {
    throw std::invalid_argument("workload: the region must be block-aligned and inside the " +
                                std::to_string(g.size) + "-byte volume");
  }
  const uint64_t region = o.region_size ? o.region_size : g.size - o.region_offset;
  if (region < o.max_size)
    throw std::invalid_argument("workload: the region is smaller than max_size");
  if (o.fua_percent > 100) throw std::invalid_argument("workload: fua_percent must be 0..100");
  return o;
}

write_shape shape_of(const workload_options& o, uint64_t volume_size, uint32_t bs, uint64_t index) {
  const uint64_t region = o.region_size ? o.region_size : volume_size - o.region_offset;
  const uint64_t min_blocks = o.min_size / bs, max_blocks = o.max_size / bs;
  const uint64_t blocks =
      min_blocks + mix(o.seed ^ (index * 2 + 1)) % (max_blocks - min_blocks + 1);
  const uint64_t slots = region / bs - blocks + 1;
  return {o.region_offset + (mix(o.seed ^ (index * 2)) % slots) * bs, blocks * bs};
}

void fill_block(uint8_t* out, uint32_t bs, uint64_t seed, uint64_t index, uint64_t volume_block) {
  const uint64_t head[2] = {index + 1, volume_block};
  std::memcpy(out, head, sizeof head);
  uint64_t state = mix(seed ^ mix(index) ^ (volume_block << 1));
  for (uint32_t k = sizeof head; k + 8 <= bs; k += 8) {
    state += 0x9e3779b97f4a7c15ULL;  // a Weyl sequence: cheap, and every word differs
    std::memcpy(out + k, &state, 8);
  }
}

workload::workload(mirror::volume& v, const backend::geometry& geom, const workload_options& o,
                   uint64_t now_ns)
    : vol_(v), geom_(geom), o_(o), slots_(o.qd), start_ns_(now_ns) {
  const size_t align = std::max<size_t>(geom.mem_align, 4096);
  if (::posix_memalign(&buffers_, align, size_t{o.qd} * o.max_size) != 0) throw std::bad_alloc();
  latencies_us_.reserve(1u << 20);
  if (!o.log_path.empty()) {
    log_fd_ = ::open(o.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd_ < 0) {
      const int err = errno;
      std::free(buffers_);
      throw std::system_error(err, std::generic_category(), "workload log " + o.log_path);
    }
    char head[256];
    const int n = std::snprintf(
        head, sizeof head,
        "tandem-workload 1 seed=%llu block=%u size=%llu min=%u max=%u region_offset=%llu "
        "region_size=%llu\n",
        static_cast<unsigned long long>(o.seed), geom.block_size,
        static_cast<unsigned long long>(geom.size), o.min_size, o.max_size,
        static_cast<unsigned long long>(o.region_offset),
        static_cast<unsigned long long>(o.region_size));
    if (::write(log_fd_, head, static_cast<size_t>(n)) != n) {
      const int err = errno;
      ::close(log_fd_);
      std::free(buffers_);
      throw std::system_error(err, std::generic_category(), "workload log " + o.log_path);
    }
  }
}

workload::~workload() {
  if (in_flight_ == 0) std::free(buffers_);  // else leaked on purpose: the engine may write it
  if (log_fd_ >= 0) ::close(log_fd_);
}

void workload::complete(uint64_t cookie, int result, uint64_t now) {
  if (cookie < slots_.size() && slots_[cookie].busy) finish_one(cookie, result, now);
}

void workload::finish_one(uint64_t slot, int result, uint64_t now) {
  slot_state& s = slots_[slot];
  s.busy = false;
  --in_flight_;
  if (result != 0) {
    ++failed_;
    last_error_ = result;
    return;
  }
  ++acked_;
  bytes_ += s.length;
  if (latencies_us_.size() < latencies_us_.capacity()) {
    latencies_us_.push_back(static_cast<uint32_t>((now - s.submitted_ns) / 1000));
  }
  if (log_fd_ >= 0) {
    char line[32];
    const int n =
        std::snprintf(line, sizeof line, "A %llu\n", static_cast<unsigned long long>(s.index));
    // The page cache keeps it across a kill -9 of this process, which is what the crash
    // campaign does; a short write only loses evidence, never adds false evidence.
    (void)!::write(log_fd_, line, static_cast<size_t>(n));
  }
}

int workload::poll(uint64_t now) {
  int work = 0;
  if (done_) return work;
  const bool out_of_time = o_.duration_ns && now - start_ns_ >= o_.duration_ns;
  const bool out_of_writes = o_.count && next_index_ >= o_.count;
  if (stopping_ || out_of_time || out_of_writes || failed_) {
    if (in_flight_ == 0) {
      done_ = true;
      end_ns_ = now;
    }
    return work;
  }
  const uint32_t bs = geom_.block_size;
  for (uint64_t k = 0; k < slots_.size() && in_flight_ < o_.qd; ++k) {
    if (slots_[k].busy) continue;
    if (o_.count && next_index_ >= o_.count) break;
    const uint64_t index = next_index_;
    const write_shape w = shape_of(o_, geom_.size, bs, index);
    auto* buf = static_cast<uint8_t*>(buffers_) + k * o_.max_size;
    for (uint64_t b = 0; b < w.length / bs; ++b)
      fill_block(buf + b * bs, bs, o_.seed, index, w.offset / bs + b);
    mirror::io_request io;
    io.op = mirror::io_op::write;
    io.offset = w.offset;
    io.length = w.length;
    io.buf = buf;
    io.cookie = k;
    if (o_.fua_percent && mix(o_.seed ^ index ^ 0xf0a) % 100 < o_.fua_percent)
      io.flags = mirror::io_fua;
    const int rc = vol_.submit(io);
    if (rc == -EAGAIN) break;
    if (rc != 0) {
      ++failed_;
      last_error_ = rc;
      break;
    }
    slots_[k] = {true, index, w.length, now};
    ++in_flight_;
    ++next_index_;
    ++issued_;
    ++work;
  }
  return work;
}

nlohmann::json workload::status() const {
  std::vector<uint32_t> lat = latencies_us_;
  auto pct = [&](double p) -> uint32_t {
    if (lat.empty()) return 0;
    const size_t i =
        std::min(lat.size() - 1, static_cast<size_t>(p * static_cast<double>(lat.size())));
    std::nth_element(lat.begin(), lat.begin() + static_cast<ptrdiff_t>(i), lat.end());
    return lat[i];
  };
  const uint64_t end = done_ ? end_ns_ : now_ns();
  const double secs = static_cast<double>(end - start_ns_) / 1e9;
  return {{"running", !done_},
          {"issued", issued_},
          {"acked", acked_},
          {"failed", failed_},
          {"last_error", last_error_ ? std::strerror(-last_error_) : ""},
          {"bytes", bytes_},
          {"seconds", secs},
          {"gbps", secs > 0 ? static_cast<double>(bytes_) * 8 / secs / 1e9 : 0.0},
          {"p50_us", pct(0.50)},
          {"p99_us", pct(0.99)},
          {"log", o_.log_path}};
}

}  // namespace tandem::dp::app

namespace tandem::dp::app {

namespace {

// A workload log's first line: the options that place and fill its writes.
struct log_header {
  workload_options o;
  uint64_t size = 0;
  unsigned block = 0;
};

log_header read_log_header(std::FILE* f, const std::string& log_path) {
  log_header h;
  unsigned long long seed = 0, size = 0, off = 0, rsize = 0;
  unsigned block = 0, min = 0, max = 0;
  const int got =
      std::fscanf(f,
                  "tandem-workload 1 seed=%llu block=%u size=%llu min=%u max=%u region_offset=%llu "
                  "region_size=%llu\n",
                  &seed, &block, &size, &min, &max, &off, &rsize);
  if (got != 7 || block == 0 || size % block || min == 0 || max < min) {
    std::fclose(f);
    throw std::runtime_error(log_path + ": not a tandem workload log");
  }
  h.o.seed = seed;
  h.o.min_size = min;
  h.o.max_size = max;
  h.o.region_offset = off;
  h.o.region_size = rsize;
  h.size = size;
  h.block = block;
  return h;
}

}  // namespace

verify_result verify_workload(const std::string& image_path, const std::string& log_path) {
  std::FILE* f = std::fopen(log_path.c_str(), "r");
  if (!f) throw std::runtime_error("cannot read workload log " + log_path);
  const log_header hd = read_log_header(f, log_path);
  const workload_options& o = hd.o;
  const uint64_t size = hd.size, off = o.region_offset, rsize = o.region_size;
  const unsigned block = hd.block;
  verify_result r;
  const uint64_t blocks = size / block;
  constexpr uint64_t none = UINT64_MAX;
  std::vector<uint64_t> last(blocks, none);
  uint64_t max_acked = 0;
  unsigned long long index = 0;
  while (std::fscanf(f, "A %llu\n", &index) == 1) {
    ++r.acked_writes;
    max_acked = std::max<uint64_t>(max_acked, index);
    const write_shape w = shape_of(o, size, block, index);
    for (uint64_t b = w.offset / block; b < (w.offset + w.length) / block; ++b)
      last[b] = last[b] == none ? index : std::max<uint64_t>(last[b], index);
  }
  std::fclose(f);
  // Writes are issued in index order with at most 256 in flight: nothing beyond this exists.
  const uint64_t issued_bound = max_acked + 257;

  const int fd = ::open(image_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot read volume image " + image_path);
  std::vector<uint8_t> have(block), want(block);
  auto describe = [&](uint64_t b, const char* what) {
    if (r.first_problem.empty()) {
      r.first_problem = "block " + std::to_string(b) + " (offset " + std::to_string(b * block) +
                        "): " + what +
                        (last[b] == none ? std::string()
                                         : "; last acknowledged write " + std::to_string(last[b]));
    }
  };
  // Only the workload's region: the rest of the volume may hold anything (other workloads).
  const uint64_t first_block = std::min<uint64_t>(off / block, blocks);
  const uint64_t end_block =
      rsize == 0 ? blocks : std::min<uint64_t>((off + rsize + block - 1) / block, blocks);
  for (uint64_t b = first_block; b < end_block; ++b) {
    if (::pread(fd, have.data(), block, static_cast<off_t>(b * block)) !=
        static_cast<ssize_t>(block)) {
      ::close(fd);
      throw std::runtime_error("short read of " + image_path + " at block " + std::to_string(b));
    }
    uint64_t head[2];
    std::memcpy(head, have.data(), sizeof head);
    if (last[b] != none) ++r.checked_blocks;
    if (head[0] == 0) {
      if (last[b] != none) {
        ++r.missing;
        describe(b, "never written");
      }
      continue;
    }
    const uint64_t j = head[0] - 1;
    const write_shape w = j < issued_bound ? shape_of(o, size, block, j) : write_shape{};
    const bool covers =
        j < issued_bound && w.offset <= b * block && b * block < w.offset + w.length;
    if (covers) fill_block(want.data(), block, o.seed, j, b);
    if (!covers || head[1] != b || std::memcmp(have.data(), want.data(), block) != 0) {
      ++r.corrupt;
      describe(b, "bytes no write of this workload produced");
      continue;
    }
    if (last[b] != none && j < last[b]) {
      ++r.missing;
      describe(b, ("holds older write " + std::to_string(j)).c_str());
    }
  }
  ::close(fd);
  return r;
}

prefix_result verify_prefix(const std::string& image_path, const std::string& log_path) {
  std::FILE* f = std::fopen(log_path.c_str(), "r");
  if (!f) throw std::runtime_error("cannot read workload log " + log_path);
  const log_header hd = read_log_header(f, log_path);
  const workload_options& o = hd.o;
  prefix_result r;
  uint64_t max_acked = 0;
  unsigned long long index = 0;
  while (std::fscanf(f, "A %llu\n", &index) == 1) {
    ++r.acked_writes;
    max_acked = std::max<uint64_t>(max_acked, index);
  }
  std::fclose(f);
  const uint64_t bound = max_acked + 257;  // issued in index order, at most 256 in flight
  const uint64_t blocks = hd.size / hd.block;

  // What each block of the region names (0: zeroes, else write index + 1); every block whole.
  const int fd = ::open(image_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot read volume image " + image_path);
  const uint64_t first_block = std::min<uint64_t>(o.region_offset / hd.block, blocks);
  const uint64_t end_block =
      o.region_size == 0
          ? blocks
          : std::min<uint64_t>((o.region_offset + o.region_size + hd.block - 1) / hd.block, blocks);
  std::vector<uint64_t> have(blocks, 0);
  std::vector<uint8_t> buf(hd.block), want(hd.block);
  for (uint64_t b = first_block; b < end_block; ++b) {
    if (::pread(fd, buf.data(), hd.block, static_cast<off_t>(b * hd.block)) !=
        static_cast<ssize_t>(hd.block)) {
      ::close(fd);
      throw std::runtime_error("short read of " + image_path + " at block " + std::to_string(b));
    }
    uint64_t head = 0;
    std::memcpy(&head, buf.data(), 8);
    if (head == 0) {
      std::fill(want.begin(), want.end(), 0);
    } else if (head - 1 < bound) {
      fill_block(want.data(), hd.block, o.seed, head - 1, b);
    }
    if (head > bound || std::memcmp(buf.data(), want.data(), hd.block) != 0) {
      ::close(fd);
      r.first_problem = "block " + std::to_string(b) + " is torn or holds foreign bytes";
      return r;
    }
    have[b] = head;
  }
  ::close(fd);

  // Apply writes 0, 1, ... to a model of zeroes and watch the count of blocks that differ.
  std::vector<uint64_t> model(blocks, 0);
  uint64_t wrong = 0;
  for (uint64_t b = first_block; b < end_block; ++b)
    wrong += have[b] != 0 ? 1 : 0;
  if (wrong == 0) {
    r.prefix = 0;
    return r;
  }
  for (uint64_t j = 0; j < bound; ++j) {
    const write_shape w = shape_of(o, hd.size, hd.block, j);
    for (uint64_t b = w.offset / hd.block; b < (w.offset + w.length) / hd.block; ++b) {
      wrong -= model[b] != have[b] ? 1 : 0;
      model[b] = j + 1;
      wrong += model[b] != have[b] ? 1 : 0;
    }
    if (wrong == 0) {
      r.prefix = static_cast<int64_t>(j + 1);
      return r;
    }
  }
  r.first_problem = std::to_string(wrong) + " blocks differ from every prefix of the first " +
                    std::to_string(bound) + " writes";
  return r;
}

}  // namespace tandem::dp::app
