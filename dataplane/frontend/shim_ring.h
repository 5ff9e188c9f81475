// SPDX-License-Identifier: Apache-2.0
// User-space side of the kernel block shim (tandem.ko): control ioctls and per-queue rings.
//
// Setup (shim_control, the shim_device constructor) throws std::system_error naming the device
// and the ioctl. Everything per request (shim_queue, and shim_device's forwarding calls) is
// noexcept, allocates nothing and returns counts or negative errno, for a polled lcore loop:
//
//   shim_request reqs[32];
//   for (;;) {
//     unsigned n = q.peek(reqs);
//     for (unsigned i = 0; i < n; ++i) {
//       int result = reqs[i].error != 0 ? reqs[i].error : serve(reqs[i], q.data(reqs[i].tag));
//       q.complete(reqs[i].tag, reqs[i].seq, result);
//     }
//     q.commit();                                  // one syscall per batch (none if idle)
//     if (n == 0) q.wait(std::chrono::milliseconds(100));  // spin briefly, then sleep
//   }
//
// The ABI and the kernel's side of each protocol are described in kmod/uapi/tandem_blk.h.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kmod/uapi/tandem_blk.h"

namespace tandem::dp::frontend {

enum class shim_op : uint8_t {
  read = TANDEM_BLK_OP_READ,
  write = TANDEM_BLK_OP_WRITE,
  flush = TANDEM_BLK_OP_FLUSH,
  discard = TANDEM_BLK_OP_DISCARD,
  write_zeroes = TANDEM_BLK_OP_WRITE_ZEROES,
};

const char* to_string(shim_op op) noexcept;

// What the descriptor parser checks a descriptor against: the device as the kernel granted it.
struct shim_geometry {
  uint64_t dev_size = 0;      // bytes
  uint32_t logical_bs = 512;  // power of two
  uint32_t queue_depth = 0;   // tags are below this
  uint32_t max_io_bytes = 0;  // READ / WRITE length limit (the data slot size)
  uint64_t features = 0;      // granted TANDEM_BLK_F_*

  static shim_geometry from(const tandem_blk_params& p) noexcept;
};

// One descriptor taken from a submission ring, validated.
struct shim_request {
  uint16_t tag = 0;  // the data slot (only meaningful when error == 0)
  shim_op op = shim_op::read;
  bool fua = false;  // WRITE only: durable before completion
  uint32_t seq = 0;  // echo in complete()
  uint64_t offset = 0;
  uint32_t length = 0;
  // 0: valid. Otherwise a negative errno (-EINVAL) the caller completes the request with,
  // without touching the data area or the backend.
  int error = 0;
};

// Parses and validates one descriptor: a pure function, fuzzed (tests/fuzz/shim_descriptor_fuzz).
// Rejects (error -EINVAL) non-zero reserved fields, unknown flags, a tag >= queue_depth, an
// unknown op or one whose feature was not granted, FUA on anything but WRITE or without
// TANDEM_BLK_F_FUA, FLUSH with an offset or length, an empty, unaligned or out-of-range
// READ / WRITE / DISCARD / WRITE_ZEROES, READ / WRITE longer than max_io_bytes and DISCARD /
// WRITE_ZEROES longer than TANDEM_BLK_MAX_DISCARD_BYTES.
shim_request parse_descriptor(const tandem_blk_sqe& sqe, const shim_geometry& g) noexcept;

// Checks that GET_DEV_INFO's layout is sane for its parameters (entries = depth, a power of two,
// every area inside the region and page aligned where it must be); throws std::runtime_error.
void check_layout(const tandem_blk_params& p, const tandem_blk_layout& l);

// Parameters for ADD_DEV; defaults suit a test device.
struct shim_params {
  uint32_t dev_id = TANDEM_BLK_DEV_ID_ANY;
  uint64_t dev_size = 0;  // bytes
  uint32_t logical_bs = 512;
  uint32_t physical_bs = 0;  // 0: logical_bs
  uint32_t nr_queues = 1;
  uint32_t queue_depth = 64;
  uint32_t max_io_bytes = 128 * 1024;
  uint32_t timeout_ms = 0;  // 0: the driver's default (30 s)
  uint64_t features = TANDEM_BLK_F_ALL;
};

// /dev/tandem-control. Needs CAP_SYS_ADMIN.
class shim_control {
 public:
  static constexpr const char* default_path = "/dev/tandem-control";

  explicit shim_control(std::string path = default_path);
  ~shim_control();
  shim_control(const shim_control&) = delete;
  shim_control& operator=(const shim_control&) = delete;

  tandem_blk_features features() const;
  // Adds a device; returns the parameters as granted (dev_id, features, defaults filled in).
  tandem_blk_params add(const shim_params& p);
  // Deletes a device; EBUSY while a server is attached or the block device is open.
  void remove(uint32_t dev_id);
  tandem_blk_dev_info info(uint32_t dev_id) const;

 private:
  std::string path_;
  int fd_ = -1;
};

// One queue's rings, mapped. Owned by one thread (lcore) at a time; no call blocks but wait().
class shim_queue {
 public:
  // `region` is the queue's mapping (layout.region_size bytes); `event_fd` the eventfd registered
  // for it (-1: wait() sleeps in 1 ms steps); `commit_fd` the char device (-1: commit() only
  // counts, for tests that play the kernel).
  shim_queue(std::span<std::byte> region, const tandem_blk_layout& layout,
             const shim_geometry& geometry, unsigned index, int event_fd, int commit_fd) noexcept;

  unsigned index() const noexcept { return index_; }
  int event_fd() const noexcept { return event_fd_; }
  const shim_geometry& geometry() const noexcept { return geometry_; }

  // Descriptors published and not yet taken.
  bool pending() const noexcept;
  // Takes up to out.size() descriptors from the submission ring, parsed and validated (see
  // parse_descriptor); their ring entries are free again. Returns how many.
  unsigned peek(std::span<shim_request> out) noexcept;
  // Writes one completion (result 0 or a negative errno) and publishes it. -EAGAIN when the
  // completion ring is full (only a server completing what it never took can get there).
  int complete(uint16_t tag, uint32_t seq, int result) noexcept;
  // Tells the kernel about the completions written since the last commit (one ioctl; none when
  // there are none). Returns the completions the kernel reaped or a negative errno.
  int commit() noexcept;
  // The tag's data slot (max_io_bytes); empty for a tag out of range.
  std::span<std::byte> data(uint16_t tag) const noexcept;
  // Adaptive wait for descriptors: polls for `spin`, then sets NEED_WAKEUP and sleeps on the
  // eventfd until something arrives or `timeout` passes (negative: no limit). Returns 1 when
  // descriptors are pending, 0 on timeout, or a negative errno.
  int wait(std::chrono::milliseconds timeout,
           std::chrono::microseconds spin = std::chrono::microseconds(20)) noexcept;
  // The halves of wait() for a caller that sleeps on several queues (and other things) at once:
  // arm_wakeup() sets NEED_WAKEUP, issues a full barrier and says whether descriptors arrived
  // meanwhile (then do not sleep); after the sleep, disarm_wakeup() clears the flag and drains
  // the eventfd.
  bool arm_wakeup() noexcept;
  void disarm_wakeup() noexcept;

 private:
  tandem_blk_ring_header* hdr_;
  const tandem_blk_sqe* sq_;
  tandem_blk_cqe* cq_;
  std::byte* data_;
  shim_geometry geometry_;
  uint32_t slot_size_;
  uint32_t sq_mask_;
  uint32_t cq_mask_;
  uint32_t sq_cons_;
  uint32_t cq_prod_;
  uint32_t committed_;
  unsigned index_;
  int event_fd_;
  int commit_fd_;
};

// The server side of one device: opens /dev/tandemc<dev_id> (attaching; EBUSY when another
// server is attached), reads GET_DEV_INFO, maps every queue and registers one eventfd per queue.
// Destruction detaches: the kernel fails whatever was not completed.
class shim_device {
 public:
  explicit shim_device(uint32_t dev_id, const std::string& dev_dir = "/dev");
  ~shim_device();
  shim_device(const shim_device&) = delete;
  shim_device& operator=(const shim_device&) = delete;

  uint32_t dev_id() const noexcept { return info_.dev_id; }
  const tandem_blk_dev_info& info() const noexcept { return info_; }
  const shim_geometry& geometry() const noexcept { return geometry_; }
  unsigned nr_queues() const noexcept { return static_cast<unsigned>(queues_.size()); }
  int fd() const noexcept { return fd_; }
  shim_queue& queue(unsigned q) noexcept { return queues_[q]; }

  // Per-queue hot path, forwarded to queue(q); an out-of-range queue gives 0 / -EINVAL / empty.
  unsigned peek(unsigned q, std::span<shim_request> out) noexcept;
  int complete(unsigned q, uint16_t tag, uint32_t seq, int result) noexcept;
  int commit(unsigned q) noexcept;
  std::span<std::byte> data(unsigned q, uint16_t tag) const noexcept;
  int wait(unsigned q, std::chrono::milliseconds timeout,
           std::chrono::microseconds spin = std::chrono::microseconds(20)) noexcept;

 private:
  void close_all() noexcept;

  std::string path_;
  int fd_ = -1;
  tandem_blk_dev_info info_{};
  shim_geometry geometry_;
  std::vector<std::span<std::byte>> maps_;
  std::vector<int> event_fds_;
  std::vector<shim_queue> queues_;
};

}  // namespace tandem::dp::frontend
