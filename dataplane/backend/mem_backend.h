// SPDX-License-Identifier: Apache-2.0
// The RAM backend: the backend contract over memory, with a crash model and fault injection.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include "dataplane/backend/backend.h"
#include "dataplane/backend/regions.h"

namespace tandem::dp::backend {

struct mem_options {
  uint64_t size = 16ULL << 20;  // bytes; rounded down to block_size
  uint32_t block_size = 512;    // a power of two, 512..65536
  uint32_t mem_align = 0;       // 0: block_size (what O_DIRECT on a disk wants)
  unsigned queue_depth = 128;
  // Non-zero: poll() hands out ready completions in an order drawn from this seed instead of
  // submission order, as a real device may.
  uint64_t shuffle_seed = 0;
};

// The crash model. The backend keeps two images: the volatile one (what reads return: a disk's
// media plus its write cache) and the durable one (what survives power loss).
//  - write: volatile only; the blocks it covers become dirty.
//  - write with req_fua: both images; its blocks are clean afterwards.
//  - discard / write_zeroes: zeroes in the volatile image; dirty, like a plain write.
//  - flush: copies every dirty block to the durable image (every write has completed by the
//    time a flush is submitted here, so a flush covers them all).
//  - crash(): power loss. Each dirty block survives whole with probability keep_probability
//    (seeded; a disk may persist any subset of unflushed writes, block by block), every other
//    dirty block reverts to its durable content; completions not yet polled are lost.
// So a test can crash at any point and check that whatever the engine acknowledged as durable
// (after a flush or with FUA) is still there, for every surviving subset.
//
// Requests execute when submit() takes them; their completions wait for poll(). A request that
// fails (validation, injected error) changes nothing.
class mem_backend final : public backend {
 public:
  // Throws std::invalid_argument for bad options.
  explicit mem_backend(const mem_options& opts);
  ~mem_backend() override;
  mem_backend(const mem_backend&) = delete;
  mem_backend& operator=(const mem_backend&) = delete;

  int submit(std::span<const request> reqs) noexcept override;
  int poll(std::span<completion> out) noexcept override;
  // Never sleeps: everything taken is complete already.
  int wait(unsigned min, std::chrono::nanoseconds timeout) noexcept override;
  int register_buffers(std::span<const iovec> regions) noexcept override;

  [[nodiscard]] const geometry& geom() const noexcept override { return geom_; }
  [[nodiscard]] unsigned queue_depth() const noexcept override { return qd_; }
  [[nodiscard]] unsigned in_flight() const noexcept override { return ready_count_; }
  [[nodiscard]] const backend_stats& stats() const noexcept override { return stats_; }
  [[nodiscard]] std::string name() const override { return "mem"; }

  // Fault injection. The nth valid request taken from now on (1: the next one) completes with
  // -err and changes nothing; 0 cancels. err is a positive errno. Invalid requests still
  // complete with -EINVAL and do not count.
  void fail_nth(uint64_t nth, int err) noexcept;
  // Every request from now on completes with -err (a dead disk) until fail_all(0).
  void fail_all(int err) noexcept { fail_all_ = err; }

  // Power loss, as described above. The backend stays usable, as after a reboot.
  void crash(double keep_probability = 0.0, uint64_t seed = 1) noexcept;

  // What reads return, and what would survive a crash now.
  [[nodiscard]] std::span<const uint8_t> data() const noexcept {
    return {volatile_.get(), geom_.size};
  }
  [[nodiscard]] std::span<const uint8_t> durable() const noexcept {
    return {durable_.get(), geom_.size};
  }
  // Blocks written since they were last made durable.
  [[nodiscard]] uint64_t dirty_blocks() const noexcept;
  // Completions lost by crash() so far.
  [[nodiscard]] uint64_t lost_completions() const noexcept { return lost_completions_; }

 private:
  struct free_deleter {
    void operator()(void* p) const noexcept { std::free(p); }
  };

  int64_t execute(const request& r) noexcept;
  void mark_dirty(uint64_t offset, uint64_t length, bool dirty) noexcept;
  void copy_block(uint8_t* to, const uint8_t* from, uint64_t block) const noexcept;
  uint64_t next_random() noexcept;

  geometry geom_;
  unsigned qd_;
  uint64_t blocks_;
  std::unique_ptr<uint8_t[], free_deleter> volatile_;
  std::unique_ptr<uint8_t[], free_deleter> durable_;
  std::unique_ptr<uint64_t[]> dirty_;  // one bit per block

  std::unique_ptr<completion[]> ready_;  // ring of qd_ completions waiting for poll()
  unsigned ready_head_ = 0;
  unsigned ready_count_ = 0;
  uint64_t shuffle_state_;

  buffer_regions regions_;
  uint64_t fail_countdown_ = 0;
  int fail_nth_err_ = 0;
  int fail_all_ = 0;
  uint64_t lost_completions_ = 0;
  backend_stats stats_;
};

}  // namespace tandem::dp::backend
