// SPDX-License-Identifier: Apache-2.0
// A volume served as /dev/tandemN by the kernel block shim (tandem.ko): the replicator's side.
// The lcore takes the shim's descriptors, hands them to the mirror engine with the data slot as
// the buffer (the kernel copies a write's pages into the slot before publishing it and a read's
// out of it after the completion, so the engine works on the slot without another copy), and
// writes the completions back, one COMMIT ioctl per batch and queue.
//
// The engine takes at most mirror::max_zero_bytes per DISCARD / WRITE_ZEROES and no more
// activity-log extents than its log holds; the shim allows up to 1 GiB. Those requests are cut
// on the grid of `zero_chunk` (whole extents) and their parts submitted one after the other; the
// kernel sees one completion. Hot path (pump, complete, commit): no allocation, no lock, no
// exception.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/frontend/shim_ring.h"
#include "dataplane/mirror/volume.h"

namespace tandem::dp::app {

// Completion cookies of the shim's requests: this bit, the queue in bits 16..31, the tag below.
inline constexpr uint64_t shim_cookie_bit = uint64_t{1} << 62;

struct shim_frontend_options {
  uint32_t dev_id = 0;  // /dev/tandem<dev_id>
  uint64_t size = 0;    // the volume's bytes
  uint32_t block_size = 4096;
  unsigned queues = 1;
  unsigned depth = 64;
  uint32_t max_io = 512u << 10;  // at most mirror::max_io_bytes
  uint64_t zero_chunk = mirror::max_zero_bytes;
  uint32_t timeout_ms = 0;  // 0: the driver's default
  std::string control = frontend::shim_control::default_path;
  std::string dev_dir = "/dev";
};

class shim_frontend {
 public:
  // Adds the device, or takes over one that exists with the same size and block size (a
  // replicator that restarted), and attaches as its server. Throws std::runtime_error /
  // std::system_error naming the device and the reason (no tandem.ko: the control device is
  // missing; another server attached; a device of another geometry).
  explicit shim_frontend(const shim_frontend_options& o);
  // Detaches: the kernel fails whatever is not completed, and new I/O until a server attaches.
  ~shim_frontend();
  shim_frontend(const shim_frontend&) = delete;
  shim_frontend& operator=(const shim_frontend&) = delete;

  const std::string& device() const noexcept { return device_; }
  uint32_t dev_id() const noexcept { return dev_id_; }
  // The block device is open (mounted, or held by a program).
  bool in_use() const;
  // Detaches and deletes the device. -EAGAIN while requests are in flight (the engine's buffers
  // are the mapped slots), -EBUSY while the device is open: nothing changed, still attached.
  // Throws when the delete fails otherwise (then it attached again, or, failing that, is inert:
  // every call does nothing).
  int remove();

  // ---- lcore ------------------------------------------------------------------------------
  // Moves descriptors into the engine (parts held back by -EAGAIN first). Returns the work done.
  int pump(mirror::volume& engine) noexcept;
  // A completion whose cookie has shim_cookie_bit. May submit the next part of a DISCARD /
  // WRITE_ZEROES (or hold it back).
  void complete(mirror::volume& engine, uint64_t cookie, int result) noexcept;
  // Publishes the completions written since the last call (one ioctl per queue that has any).
  void commit() noexcept;
  unsigned in_flight() const noexcept { return in_flight_; }  // held-back ones included
  // The lcore's idle sleep: arm_wakeup() asks the kernel to signal each queue's eventfd on new
  // descriptors and says whether some arrived meanwhile (then do not sleep); event_fds() lists
  // the eventfds to sleep on (returns how many, at most out.size()); disarm_wakeup() after.
  bool arm_wakeup() noexcept;
  unsigned event_fds(std::span<int> out) const noexcept;
  void disarm_wakeup() noexcept;

  struct counters {
    uint64_t reads = 0, writes = 0, flushes = 0, discards = 0, write_zeroes = 0, fua = 0;
    uint64_t read_bytes = 0, write_bytes = 0;
    uint64_t invalid = 0;  // descriptors the parser refused (completed with -EINVAL)
    uint64_t errors = 0;   // requests completed with an error
    uint64_t commits = 0;
  };
  const counters& stats() const noexcept { return stats_; }

 private:
  struct tag_state {
    uint32_t seq = 0;
    frontend::shim_op op = frontend::shim_op::read;
    bool fua = false;
    uint64_t next = 0, end = 0;  // the part to submit next; end of the request
    uint32_t length = 0;         // the whole request's length (counters)
  };
  tag_state& state(unsigned q, unsigned tag) noexcept { return tags_[q * depth_ + tag]; }
  // 0 submitted (or finished with an error), -EAGAIN held back.
  int submit_part(mirror::volume& e, unsigned q, unsigned tag) noexcept;
  void finish(unsigned q, unsigned tag, int result) noexcept;
  void hold(unsigned q, unsigned tag) noexcept;

  shim_frontend_options o_;
  uint32_t dev_id_ = 0;
  std::string device_;
  std::unique_ptr<frontend::shim_device> dev_;
  unsigned depth_ = 0;
  std::vector<tag_state> tags_;
  std::vector<uint32_t> held_;  // ring of (queue << 16 | tag) the engine could not take yet
  size_t held_head_ = 0, held_count_ = 0;
  std::vector<uint8_t> dirty_;  // per queue: completions written, not committed
  std::vector<frontend::shim_request> batch_;
  unsigned in_flight_ = 0;
  counters stats_;
};

}  // namespace tandem::dp::app
