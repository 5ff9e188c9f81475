// SPDX-License-Identifier: Apache-2.0
// The io_uring backend: a data file or block device, with O_DIRECT where the device allows it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "dataplane/backend/backend.h"
#include "dataplane/backend/regions.h"

struct io_uring;  // liburing's; its header stays private to uring_backend.cc

namespace tandem::dp::backend {

enum class io_mode : uint8_t {
  automatic,  // O_DIRECT when the device or file system reports that it supports it
  direct,     // O_DIRECT or fail
  buffered,   // through the page cache
};

struct uring_options {
  std::string path;  // an existing regular file or block device
  unsigned queue_depth = 128;
  io_mode mode = io_mode::automatic;
  // 0: the device's logical block size (buffered files: 512). Otherwise a power of two, at least
  // that, at most 65536, enforced on every request (e.g. the volume's block size).
  uint32_t block_size = 0;
  // Block devices: open with O_EXCL, so a device that is mounted or claimed is refused.
  bool exclusive = true;
  // Ask for IORING_SETUP_SINGLE_ISSUER, COOP_TASKRUN and TASKRUN_FLAG (each dropped where the
  // kernel refuses it).
  bool single_issuer = true;
};

// The backend contract (backend.h) over io_uring. How each request maps to the kernel:
//   read / write      IORING_OP_READ_FIXED / WRITE_FIXED when the buffer lies in a registered
//                     region, else READ / WRITE (READV / WRITEV for iovecs); req_fua adds
//                     RWF_DSYNC to that write. Short transfers are continued here.
//   flush             IORING_OP_FSYNC with IORING_FSYNC_DATASYNC
//   discard           fallocate(PUNCH_HOLE | KEEP_SIZE): files deallocate, block devices zero
//                     out with unmap; where refused (EOPNOTSUPP), as write_zeroes
//   write_zeroes      fallocate(ZERO_RANGE | KEEP_SIZE); where refused (tmpfs, some file
//                     systems), writes from a shared zero buffer, 1 MiB at a time
// Each request takes one slot of queue_depth; a slot has at most one SQE in flight, so the
// rings never overflow. The file is registered with the ring (IOSQE_FIXED_FILE) when allowed.
//
// With single_issuer, the ring starts disabled and the first submit() enables it: the thread
// that submits first owns it, and register_buffers() after that must come from that thread
// (else -EEXIST).
class uring_backend final : public backend {
 public:
  // Throws std::system_error (open, ioctl, io_uring setup) or std::invalid_argument (not a
  // file or block device, empty, O_DIRECT demanded but unsupported, bad options); the message
  // names the path.
  explicit uring_backend(const uring_options& opts);
  // Waits (up to 10 s) for requests still in flight, then closes the ring and the file.
  ~uring_backend() override;
  uring_backend(const uring_backend&) = delete;
  uring_backend& operator=(const uring_backend&) = delete;

  int submit(std::span<const request> reqs) noexcept override;
  int poll(std::span<completion> out) noexcept override;
  int wait(unsigned min, std::chrono::nanoseconds timeout) noexcept override;
  int register_buffers(std::span<const iovec> regions) noexcept override;

  [[nodiscard]] const geometry& geom() const noexcept override { return geom_; }
  [[nodiscard]] unsigned queue_depth() const noexcept override { return qd_; }
  [[nodiscard]] unsigned in_flight() const noexcept override { return used_ + ready_count_; }
  [[nodiscard]] const backend_stats& stats() const noexcept override { return stats_; }
  [[nodiscard]] std::string name() const override;

  // The IORING_SETUP_* flags the ring was made with, and whether the file is registered.
  [[nodiscard]] unsigned ring_flags() const noexcept { return ring_flags_; }
  [[nodiscard]] bool fixed_file() const noexcept { return fixed_file_; }
  // The last error io_uring_submit returned (0: none); requests stay queued and are retried.
  [[nodiscard]] int last_submit_error() const noexcept { return last_submit_error_; }

 private:
  enum class step : uint8_t { io, fsync, punch, zero_range, zero_write };
  struct slot;

  void open_device(const uring_options& opts);
  void setup_ring(const uring_options& opts);
  void ensure_enabled() noexcept;
  void prep(uint32_t index) noexcept;
  void on_cqe(uint32_t index, int res, std::span<completion> out, unsigned& n) noexcept;
  void finish(uint32_t index, int64_t result, std::span<completion> out, unsigned& n) noexcept;
  void flush_sq() noexcept;
  void push_ready(uint64_t cookie, int64_t result) noexcept;

  std::string path_;
  int fd_ = -1;
  std::unique_ptr<io_uring> ring_;
  bool ring_ready_ = false;  // io_uring_queue_init succeeded
  bool enabled_ = true;      // false while the ring waits for its first submit()
  bool fixed_file_ = false;
  unsigned ring_flags_ = 0;
  geometry geom_;
  unsigned qd_;

  std::unique_ptr<slot[]> slots_;
  std::unique_ptr<uint32_t[]> free_;  // stack of free slot indexes
  unsigned free_top_ = 0;
  unsigned used_ = 0;                   // slots taken
  std::unique_ptr<iovec[]> iov_store_;  // max_iovecs per slot

  // Requests refused by validation: completed without the ring, waiting for poll().
  std::unique_ptr<completion[]> ready_;
  unsigned ready_head_ = 0;
  unsigned ready_count_ = 0;

  buffer_regions regions_;
  bool punch_ok_ = true;       // PUNCH_HOLE not refused yet
  bool zero_range_ok_ = true;  // ZERO_RANGE not refused yet
  int last_submit_error_ = 0;
  backend_stats stats_;
};

}  // namespace tandem::dp::backend
