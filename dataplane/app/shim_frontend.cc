// SPDX-License-Identifier: Apache-2.0
// A volume served as /dev/tandemN through tandem.ko's rings.
#include "dataplane/app/shim_frontend.h"

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace tandem::dp::app {

namespace fe = frontend;

shim_frontend::shim_frontend(const shim_frontend_options& o) : o_(o) {
  if (o.max_io == 0 || o.max_io > mirror::max_io_bytes || o.max_io % o.block_size != 0) {
    throw std::invalid_argument("kernel device: max I/O " + std::to_string(o.max_io) +
                                " must be a multiple of the block size up to 1 MiB");
  }
  device_ = o.dev_dir + "/tandem" + std::to_string(o.dev_id);
  fe::shim_control ctl(o.control);
  fe::shim_params p;
  p.dev_id = o.dev_id;
  p.dev_size = o.size;
  p.logical_bs = o.block_size;
  p.nr_queues = o.queues;
  p.queue_depth = o.depth;
  p.max_io_bytes = o.max_io;
  p.timeout_ms = o.timeout_ms;
  try {
    dev_id_ = ctl.add(p).dev_id;
  } catch (const std::system_error& e) {
    if (e.code().value() != EEXIST) throw;
    // Left by a replicator that stopped or died: take it over if it is this volume's shape.
    const tandem_blk_dev_info info = ctl.info(o.dev_id);
    if (info.params.dev_size != o.size || info.params.logical_bs != o.block_size) {
      throw std::runtime_error(device_ + " exists with " + std::to_string(info.params.dev_size) +
                               " bytes in blocks of " + std::to_string(info.params.logical_bs) +
                               ", not this volume's " + std::to_string(o.size) + " / " +
                               std::to_string(o.block_size) + " (another volume's device?)");
    }
    dev_id_ = o.dev_id;
  }
  dev_ = std::make_unique<fe::shim_device>(dev_id_, o.dev_dir);
  depth_ = dev_->geometry().queue_depth;
  tags_.resize(size_t{dev_->nr_queues()} * depth_);
  held_.resize(tags_.size());
  dirty_.resize(dev_->nr_queues());
  batch_.resize(32);
}

shim_frontend::~shim_frontend() = default;

bool shim_frontend::in_use() const {
  fe::shim_control ctl(o_.control);
  return (ctl.info(dev_id_).state & TANDEM_BLK_STATE_OPEN) != 0;
}

int shim_frontend::remove() {
  // The engine may hold requests whose buffers are the mapped slots: never unmap under them.
  if (in_flight_ > 0 || held_count_ > 0) return -EAGAIN;
  if (in_use()) return -EBUSY;
  dev_.reset();  // detach, then delete
  fe::shim_control ctl(o_.control);
  int err = 0;
  try {
    ctl.remove(dev_id_);
    return 0;
  } catch (const std::system_error& e) {
    err = e.code().value();
  }
  // Opened in between (EBUSY) or another failure: serve it again, from a clean state (nothing
  // was in flight). If that fails too the device stays unserved and this object inert.
  std::fill(tags_.begin(), tags_.end(), tag_state{});
  std::fill(dirty_.begin(), dirty_.end(), 0);
  dev_ = std::make_unique<fe::shim_device>(dev_id_, o_.dev_dir);
  if (err == EBUSY) return -EBUSY;
  throw std::system_error(err, std::generic_category(), device_ + ": delete");
}

void shim_frontend::hold(unsigned q, unsigned tag) noexcept {
  held_[(held_head_ + held_count_) % held_.size()] = (q << 16) | tag;
  ++held_count_;
}

void shim_frontend::finish(unsigned q, unsigned tag, int result) noexcept {
  tag_state& s = state(q, tag);
  if (result < 0) {
    ++stats_.errors;
  } else {
    switch (s.op) {
      case fe::shim_op::read:
        ++stats_.reads;
        stats_.read_bytes += s.length;
        break;
      case fe::shim_op::write:
        ++stats_.writes;
        stats_.write_bytes += s.length;
        if (s.fua) ++stats_.fua;
        break;
      case fe::shim_op::flush:
        ++stats_.flushes;
        break;
      case fe::shim_op::discard:
        ++stats_.discards;
        break;
      case fe::shim_op::write_zeroes:
        ++stats_.write_zeroes;
        break;
    }
  }
  (void)dev_->complete(q, static_cast<uint16_t>(tag), s.seq, result);
  dirty_[q] = 1;
  --in_flight_;
}

int shim_frontend::submit_part(mirror::volume& e, unsigned q, unsigned tag) noexcept {
  tag_state& s = state(q, tag);
  mirror::io_request io;
  io.cookie = shim_cookie_bit | (uint64_t{q} << 16) | tag;
  uint64_t n = s.end - s.next;
  switch (s.op) {
    case fe::shim_op::read:
    case fe::shim_op::write:
      io.op = s.op == fe::shim_op::read ? mirror::io_op::read : mirror::io_op::write;
      io.flags = s.fua ? mirror::io_fua : 0;
      io.buf = dev_->data(q, static_cast<uint16_t>(tag)).data();
      break;
    case fe::shim_op::flush:
      io.op = mirror::io_op::flush;
      n = 0;
      break;
    case fe::shim_op::discard:
    case fe::shim_op::write_zeroes:
      io.op = s.op == fe::shim_op::discard ? mirror::io_op::discard : mirror::io_op::write_zeroes;
      // Within one cell of the grid: a whole number of activity-log extents.
      n = std::min(s.end, (s.next / o_.zero_chunk + 1) * o_.zero_chunk) - s.next;
      break;
  }
  io.offset = s.op == fe::shim_op::flush ? 0 : s.next;
  io.length = n;
  const int rc = e.submit(io);
  if (rc == -EAGAIN) return rc;
  if (rc < 0) {
    finish(q, tag, rc);
    return 0;
  }
  s.next += n;
  return 0;
}

int shim_frontend::pump(mirror::volume& e) noexcept {
  int work = 0;
  if (!dev_) return 0;
  // Parts the engine could not take before go first, in order.
  while (held_count_ > 0) {
    const uint32_t v = held_[held_head_];
    if (submit_part(e, v >> 16, v & 0xffff) == -EAGAIN) return work;
    held_head_ = (held_head_ + 1) % held_.size();
    --held_count_;
    ++work;
  }
  for (unsigned q = 0; q < dev_->nr_queues(); ++q) {
    const unsigned n = dev_->peek(q, batch_);
    for (unsigned i = 0; i < n; ++i) {
      const fe::shim_request& r = batch_[i];
      ++work;
      if (r.error != 0) {
        ++stats_.invalid;
        // A descriptor whose tag is out of range names no slot to complete: the kernel's timeout
        // ends that request. Nothing of ours is touched.
        if (r.tag >= depth_) continue;
        ++in_flight_;
        tag_state& s = state(q, r.tag);
        s.seq = r.seq;
        s.op = fe::shim_op::flush;  // counted as an error, not as an operation
        finish(q, r.tag, r.error);
        continue;
      }
      ++in_flight_;
      tag_state& s = state(q, r.tag);
      s.seq = r.seq;
      s.op = r.op;
      s.fua = r.fua;
      s.next = r.offset;
      s.end = r.offset + r.length;
      s.length = r.length;
      // Once something is held back, the rest waits behind it (the engine is full).
      if (held_count_ > 0 || submit_part(e, q, r.tag) == -EAGAIN) hold(q, r.tag);
    }
  }
  return work;
}

void shim_frontend::complete(mirror::volume& e, uint64_t cookie, int result) noexcept {
  if (!dev_) return;
  const unsigned q = static_cast<unsigned>((cookie >> 16) & 0xffff);
  const unsigned tag = static_cast<unsigned>(cookie & 0xffff);
  if (q >= dev_->nr_queues() || tag >= depth_) return;
  tag_state& s = state(q, tag);
  if (result < 0 || s.next >= s.end) {
    finish(q, tag, result);
    return;
  }
  // The next part of a DISCARD / WRITE_ZEROES.
  if (held_count_ > 0 || submit_part(e, q, tag) == -EAGAIN) hold(q, tag);
}

bool shim_frontend::arm_wakeup() noexcept {
  bool pending = false;
  if (!dev_) return false;
  for (unsigned q = 0; q < dev_->nr_queues(); ++q)
    pending = dev_->queue(q).arm_wakeup() || pending;
  return pending;
}

unsigned shim_frontend::event_fds(std::span<int> out) const noexcept {
  unsigned n = 0;
  if (!dev_) return 0;
  for (unsigned q = 0; q < dev_->nr_queues() && n < out.size(); ++q)
    if (const int fd = dev_->queue(q).event_fd(); fd >= 0) out[n++] = fd;
  return n;
}

void shim_frontend::disarm_wakeup() noexcept {
  if (!dev_) return;
  for (unsigned q = 0; q < dev_->nr_queues(); ++q)
    dev_->queue(q).disarm_wakeup();
}

void shim_frontend::commit() noexcept {
  if (!dev_) return;
  for (unsigned q = 0; q < dirty_.size(); ++q) {
    if (!dirty_[q]) continue;
    dirty_[q] = 0;
    (void)dev_->commit(q);
    ++stats_.commits;
  }
}

}  // namespace tandem::dp::app
