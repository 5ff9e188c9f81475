// SPDX-License-Identifier: Apache-2.0
// The FUSE frontend: each attached volume appears as one regular file in a FUSE mount, for hosts
// that cannot load tandem.ko. A loop device over that file (loop_device.h) is a block device
// that mkfs and mount accept.
//
// Threads: libfuse's worker threads (producers) and the replicator's lcore (the only consumer).
// A worker takes one of an export's request slots (each with an aligned bounce buffer), hands
// the slot's index to the lcore through a bounded lock-free queue and sleeps on the slot's state
// word (futex wait) until the lcore has completed it. The lcore side (next, complete) allocates
// nothing, takes no lock and never blocks. What the workers do beyond the engine's rules:
//  - reads and writes that are not aligned to the block size: reads are widened to whole blocks;
//    a partial-block write reads the edge blocks, merges and writes them back, holding the
//    export's lock exclusively (aligned requests hold it shared), so no two writes interleave
//    in a merged block;
//  - requests longer than the engine's largest I/O are split;
//  - fsync is a FLUSH (durable on both nodes when it returns); fallocate PUNCH_HOLE is a
//    DISCARD and ZERO_RANGE a WRITE_ZEROES (partial blocks at the edges are written as zeroes);
//  - the file's size is the volume's and cannot change (truncate: EPERM).
// Files are opened with FUSE's direct_io: no page cache in between, so what a loop device
// writes reaches the engine when the write returns, and an fsync covers it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/lockfree/queue.hpp>

#include "dataplane/mirror/volume.h"

struct fuse_session;

namespace tandem::dp::frontend {

// Completion cookies of FUSE requests carry this bit, so the lcore can tell them from another
// submitter's (the in-process workload) on the same volume.
inline constexpr uint64_t fuse_cookie_bit = uint64_t{1} << 63;

// One volume's file. Created at setup for every configured volume; visible while published.
class fuse_export {
 public:
  static constexpr unsigned slot_count = 32;
  static constexpr uint32_t slot_bytes = static_cast<uint32_t>(mirror::max_io_bytes);

  fuse_export(std::string name, uint64_t ino);
  ~fuse_export();
  fuse_export(const fuse_export&) = delete;
  fuse_export& operator=(const fuse_export&) = delete;

  const std::string& name() const { return name_; }
  uint64_t ino() const { return ino_; }

  // ---- lcore side: no allocation, no lock, no blocking ------------------------------------
  // The next request a worker handed over (cookie = fuse_cookie_bit | slot), or false.
  bool next(mirror::io_request& out) noexcept;
  // Completes the request with that cookie and wakes its worker.
  void complete(uint64_t cookie, int result) noexcept;
  // Slots handed over and not completed (the lcore drains them before a detach completes).
  unsigned in_flight() const noexcept { return in_flight_.load(std::memory_order_acquire); }
  // The idle lcore's sleep, as with the kernel devices' NEED_WAKEUP: arm_wakeup(), sleep on
  // wake_fd() (an eventfd, readable once a worker handed a request over while armed), then
  // disarm_wakeup(fired: the sleep saw wake_fd() readable). arm_wakeup() returns true when a
  // request is already waiting: do not sleep. A wake-up may be spurious, never lost.
  bool arm_wakeup() noexcept;
  int wake_fd() const noexcept { return wake_fd_; }
  void disarm_wakeup(bool fired) noexcept;

  // ---- control (the lcore at attach / detach) -----------------------------------------------
  // The file appears with this size and block size. Discards and zeroings are cut on a grid of
  // `zero_chunk` bytes (a whole number of the volume's activity-log extents, see
  // mirror::max_zero_bytes).
  void publish(uint64_t size, uint32_t block_size, uint64_t zero_chunk) noexcept;
  // The file disappears; -EBUSY (and nothing changes) while it is open.
  int withdraw() noexcept;
  bool published() const noexcept { return published_.load(std::memory_order_acquire); }
  unsigned open_count() const noexcept { return opens_.load(std::memory_order_acquire); }
  uint64_t size() const noexcept { return size_.load(std::memory_order_acquire); }
  uint32_t block_size() const noexcept { return block_.load(std::memory_order_acquire); }
  uint64_t zero_chunk() const noexcept { return zero_chunk_.load(std::memory_order_acquire); }
  // From now on requests fail with -ESHUTDOWN instead of reaching the lcore; in_flight() only
  // goes down (the lcore completes what it has until it is 0).
  void close_down() noexcept { closing_.store(true); }
  // Completes everything handed over with `result` (after the lcore stopped polling).
  void fail_pending(int result) noexcept;
  // Completes every request the lcore took and nobody completed (its engine is gone) with
  // `result`. Only when the lcore no longer polls this export.
  void fail_in_flight(int result) noexcept;

  // ---- worker side (blocking) ----------------------------------------------------------------
  // Each returns bytes done (read, write) or 0, or a negative errno.
  ssize_t read(char* out, uint64_t length, uint64_t offset);
  ssize_t write(const char* in, uint64_t length, uint64_t offset);
  int flush();
  int zero_range(uint64_t offset, uint64_t length, bool discard);
  bool open();  // false when not published
  void release() noexcept;

  struct counters {
    std::atomic<uint64_t> reads{0}, writes{0}, flushes{0}, discards{0}, zeroes{0};
    std::atomic<uint64_t> read_bytes{0}, write_bytes{0};
    std::atomic<uint64_t> unaligned{0};  // requests widened or merged
    std::atomic<uint64_t> errors{0};
  };
  const counters& stats() const { return stats_; }

 private:
  struct slot {
    mirror::io_request io;
    std::atomic<uint32_t> state{0};  // 0 free, 1 with the lcore, 2 completed
    int result = 0;
    uint8_t* buf = nullptr;
  };
  struct slot_hold;
  unsigned acquire();
  void free_slot(unsigned i) noexcept;
  // Hands the slot to the lcore and waits for its completion; the result.
  int run(unsigned i);
  int io_aligned(mirror::io_op op, uint8_t flags, uint64_t offset, uint64_t length, uint8_t* buf,
                 unsigned slot_index);
  ssize_t read_locked(char* out, uint64_t length, uint64_t offset, unsigned s);
  int write_merged(const char* in, uint64_t length, uint64_t offset, unsigned s);

  std::string name_;
  uint64_t ino_;
  uint8_t* mem_ = nullptr;  // slot_count * slot_bytes, page aligned
  slot slots_[slot_count];
  boost::lockfree::queue<uint32_t, boost::lockfree::capacity<slot_count>> handed_;
  // Wake-up: workers count what they hand over and, while the lcore is armed, signal wake_fd_
  // (once: signalled_); the lcore counts what it took (taken_, its own).
  int wake_fd_ = -1;
  std::atomic<uint64_t> handed_count_{0};
  uint64_t taken_ = 0;
  std::atomic<bool> armed_{false};
  std::atomic<bool> signalled_{false};
  std::atomic<uint32_t> free_mask_{0};  // bit i: slot i free
  std::atomic<unsigned> in_flight_{0};
  std::atomic<bool> published_{false};
  std::atomic<bool> closing_{false};
  std::atomic<uint64_t> size_{0};
  std::atomic<uint32_t> block_{4096};
  std::atomic<uint64_t> zero_chunk_{mirror::max_zero_bytes};
  std::atomic<unsigned> opens_{0};
  std::shared_mutex merge_lock_;
  counters stats_;
};

struct fuse_frontend_options {
  std::string mountpoint;  // created if missing; a stale mount of a dead replicator is removed
  unsigned max_threads = 16;
};

// The mount and its worker threads.
class fuse_frontend {
 public:
  // Mounts and starts serving. Throws std::runtime_error naming the mountpoint and the reason
  // (no /dev/fuse, not a directory, already a live mount).
  fuse_frontend(const fuse_frontend_options& o, std::vector<std::string> volume_names);
  // Unmounts; open files (a loop device) see I/O errors from then on.
  ~fuse_frontend();
  fuse_frontend(const fuse_frontend&) = delete;
  fuse_frontend& operator=(const fuse_frontend&) = delete;

  fuse_export* find(const std::string& name) noexcept;
  fuse_export* by_ino(uint64_t ino) noexcept;
  const std::vector<std::unique_ptr<fuse_export>>& exports() const { return exports_; }
  const std::string& mountpoint() const { return mountpoint_; }
  std::string path_of(const std::string& name) const { return mountpoint_ + "/" + name; }
  // This mount replaced a dead one left by a replicator that died: loop devices bound to files
  // of that old mount may still exist (loop_find's orphans).
  bool replaced_dead_mount() const noexcept { return replaced_dead_mount_; }
  // Every export refuses new requests (-ESHUTDOWN) from now on.
  void close_down() noexcept;

 private:
  std::string mountpoint_;
  bool replaced_dead_mount_ = false;
  std::vector<std::unique_ptr<fuse_export>> exports_;
  fuse_session* se_ = nullptr;
  dev_t dev_ = 0;  // the mount's device: its connection under /sys/fs/fuse/connections
  std::thread loop_;
  unsigned max_threads_;
};

}  // namespace tandem::dp::frontend
