// SPDX-License-Identifier: Apache-2.0
// The io_uring backend: a data file or block device, with O_DIRECT where the device allows it.
#include "dataplane/backend/uring_backend.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <liburing.h>

namespace tandem::dp::backend {
namespace {

constexpr size_t zero_buffer_bytes = 1 << 20;
constexpr unsigned max_queue_depth = 4096;
constexpr unsigned peek_batch = 64;

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), "uring backend: " + what);
}

// Zeroes for write_zeroes where the file system cannot zero a range itself. Shared by every
// backend and never freed, so a write from it still in flight can never read reused memory.
const uint8_t* zero_buffer() {
  static const uint8_t* const zeroes = [] {
    void* p = std::aligned_alloc(65536, zero_buffer_bytes);
    if (p == nullptr) throw std::bad_alloc();
    std::memset(p, 0, zero_buffer_bytes);
    return static_cast<const uint8_t*>(p);
  }();
  return zeroes;
}

}  // namespace

struct uring_backend::slot {
  uint64_t cookie = 0;
  uint64_t offset = 0;     // of the next step
  uint64_t remaining = 0;  // bytes the next step still has to cover
  int64_t result = 0;      // what the completion reports on success
  uint8_t* buf = nullptr;  // contiguous read/write: the next byte
  iovec* iov = nullptr;    // iovec read/write: this slot's copy, advanced on short transfers
  uint16_t iovcnt = 0;
  op opcode = op::read;
  step st = step::io;
  uint8_t flags = 0;
  bool fell_back = false;
  int buf_index = -1;  // registered region, or -1
};

uring_backend::uring_backend(const uring_options& opts) : path_(opts.path), qd_(opts.queue_depth) {
  if (qd_ == 0 || qd_ > max_queue_depth) {
    throw std::invalid_argument("uring backend: " + path_ + ": queue_depth must be in 1..4096");
  }
  try {
    zero_buffer();
    open_device(opts);
    setup_ring(opts);
    slots_ = std::make_unique<slot[]>(qd_);
    free_ = std::make_unique<uint32_t[]>(qd_);
    for (unsigned i = 0; i < qd_; ++i)
      free_[i] = qd_ - 1 - i;
    free_top_ = qd_;
    iov_store_ = std::make_unique<iovec[]>(static_cast<size_t>(qd_) * max_iovecs);
    ready_ = std::make_unique<completion[]>(qd_);
  } catch (...) {
    if (ring_ready_) io_uring_queue_exit(ring_.get());
    if (fd_ >= 0) ::close(fd_);
    throw;
  }
}

uring_backend::~uring_backend() {
  if (ring_ready_) {
    // The kernel may still be reading or writing the caller's buffers: let it finish.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    completion sink[peek_batch];
    while (used_ > 0 && std::chrono::steady_clock::now() < deadline) {
      wait(1, std::chrono::milliseconds(100));
      poll(sink);
    }
    io_uring_queue_exit(ring_.get());
  }
  if (fd_ >= 0) ::close(fd_);
}

void uring_backend::open_device(const uring_options& opts) {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) throw_errno(errno, "stat " + path_);
  const bool blk = S_ISBLK(st.st_mode);
  if (!blk && !S_ISREG(st.st_mode)) {
    throw std::invalid_argument("uring backend: " + path_ + ": not a regular file or block device");
  }
  int flags = O_RDWR | O_CLOEXEC;
  if (blk && opts.exclusive) flags |= O_EXCL;

  // O_DIRECT only where the kernel says how to align it: statx(STATX_DIOALIGN) for files (and
  // block devices on newer kernels), the logical block size for block devices. tmpfs accepts
  // O_DIRECT but reports no alignment (its "direct" I/O is the page cache): buffered there.
  uint32_t dio_offset = 0;
  uint32_t dio_mem = 0;
  if (opts.mode != io_mode::buffered) {
    const int fd = ::open(path_.c_str(), flags | O_DIRECT);
    if (fd < 0 && errno != EINVAL) throw_errno(errno, "open " + path_);
    if (fd >= 0) {
      struct statx sx {};
      if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
          (sx.stx_mask & STATX_DIOALIGN) != 0) {
        dio_offset = sx.stx_dio_offset_align;
        dio_mem = sx.stx_dio_mem_align;
      } else if (int lbs = 0; blk && ::ioctl(fd, BLKSSZGET, &lbs) == 0 && lbs > 0) {
        dio_offset = static_cast<uint32_t>(lbs);
        dio_mem = static_cast<uint32_t>(lbs);
      }
      if (dio_offset != 0) {
        fd_ = fd;
      } else {
        ::close(fd);
      }
    }
    if (fd_ < 0 && opts.mode == io_mode::direct) {
      throw std::invalid_argument("uring backend: " + path_ + ": O_DIRECT is not supported here");
    }
  }
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), flags);
    if (fd_ < 0) throw_errno(errno, "open " + path_);
  }
  geom_.direct = dio_offset != 0;
  geom_.block_device = blk;

  uint64_t bytes = 0;
  uint32_t lbs = 512;
  if (blk) {
    int ss = 0;
    unsigned int pbs = 0;
    if (::ioctl(fd_, BLKGETSIZE64, &bytes) != 0) throw_errno(errno, "BLKGETSIZE64 " + path_);
    if (::ioctl(fd_, BLKSSZGET, &ss) != 0) throw_errno(errno, "BLKSSZGET " + path_);
    if (::ioctl(fd_, BLKPBSZGET, &pbs) != 0) pbs = 0;
    lbs = static_cast<uint32_t>(ss);
    geom_.physical_block_size = pbs;
  } else {
    if (::fstat(fd_, &st) != 0) throw_errno(errno, "fstat " + path_);
    bytes = static_cast<uint64_t>(st.st_size);
    geom_.physical_block_size = static_cast<uint32_t>(st.st_blksize);
  }
  lbs = std::max(lbs, dio_offset);
  uint32_t mem = std::max(lbs, dio_mem);
  if (opts.block_size != 0) {
    if (!std::has_single_bit(opts.block_size) || opts.block_size < lbs || opts.block_size > 65536) {
      throw std::invalid_argument(
          "uring backend: " + path_ + ": block_size " + std::to_string(opts.block_size) +
          " must be a power of two from " + std::to_string(lbs) + " (the device's) to 65536");
    }
    lbs = opts.block_size;
    mem = std::max(mem, lbs);
  }
  if (!std::has_single_bit(lbs) || !std::has_single_bit(mem) || lbs > 65536) {
    throw std::invalid_argument("uring backend: " + path_ + ": unusable alignment (block " +
                                std::to_string(lbs) + ", memory " + std::to_string(mem) + ")");
  }
  geom_.block_size = lbs;
  geom_.mem_align = mem;
  geom_.size = bytes - bytes % lbs;
  if (geom_.size == 0) {
    throw std::invalid_argument("uring backend: " + path_ + ": smaller than one block (" +
                                std::to_string(bytes) + " bytes)");
  }
}

void uring_backend::setup_ring(const uring_options& opts) {
  ring_ = std::make_unique<io_uring>();
  constexpr unsigned submit_all = IORING_SETUP_SUBMIT_ALL;
  constexpr unsigned coop = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  constexpr unsigned single = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_R_DISABLED;
  // Most wanted first; each kernel that refuses a flag says EINVAL.
  const unsigned tuned[] = {submit_all | coop | single, submit_all | coop, submit_all, 0};
  const unsigned plain[] = {submit_all, 0};
  const std::span<const unsigned> candidates =
      opts.single_issuer ? std::span<const unsigned>(tuned) : std::span<const unsigned>(plain);
  int err = -EINVAL;
  for (const unsigned flags : candidates) {
    io_uring_params p{};
    p.flags = flags;
    err = io_uring_queue_init_params(qd_, ring_.get(), &p);
    if (err == 0) {
      ring_ready_ = true;
      ring_flags_ = flags;
      break;
    }
    if (err != -EINVAL) break;
  }
  if (!ring_ready_) throw_errno(-err, "io_uring_queue_init for " + path_);
  enabled_ = (ring_flags_ & IORING_SETUP_R_DISABLED) == 0;
  // One file: registering it saves a file reference per request. Optional.
  fixed_file_ = io_uring_register_files(ring_.get(), &fd_, 1) == 0;
}

std::string uring_backend::name() const {
  return "uring:" + path_ + (geom_.direct ? " (direct)" : " (buffered)");
}

void uring_backend::ensure_enabled() noexcept {
  if (enabled_) return;
  // liburing 2.3 declares io_uring_enable_rings() but does not export it: the syscall itself.
  if (::syscall(__NR_io_uring_register, ring_->ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) !=
      0) {
    last_submit_error_ = -errno;
  }
  enabled_ = true;
}

void uring_backend::push_ready(uint64_t cookie, int64_t result) noexcept {
  ready_[(ready_head_ + ready_count_) % qd_] = completion{cookie, result};
  ++ready_count_;
}

void uring_backend::prep(uint32_t index) noexcept {
  slot& s = slots_[index];
  // Never null: the SQ ring has at least qd_ entries and a slot has at most one SQE queued.
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  const int fd = fixed_file_ ? 0 : fd_;
  switch (s.st) {
    case step::io: {
      const int rw_flags = (s.flags & req_fua) != 0 ? RWF_DSYNC : 0;
      const bool rd = s.opcode == op::read;
      const auto len = static_cast<unsigned>(s.remaining);
      if (s.iovcnt != 0) {
        if (rd) {
          io_uring_prep_readv2(sqe, fd, s.iov, s.iovcnt, s.offset, rw_flags);
        } else {
          io_uring_prep_writev2(sqe, fd, s.iov, s.iovcnt, s.offset, rw_flags);
        }
      } else if (s.buf_index >= 0) {
        if (rd) {
          io_uring_prep_read_fixed(sqe, fd, s.buf, len, s.offset, s.buf_index);
        } else {
          io_uring_prep_write_fixed(sqe, fd, s.buf, len, s.offset, s.buf_index);
        }
        sqe->rw_flags = rw_flags;
      } else {
        if (rd) {
          io_uring_prep_read(sqe, fd, s.buf, len, s.offset);
        } else {
          io_uring_prep_write(sqe, fd, s.buf, len, s.offset);
        }
        sqe->rw_flags = rw_flags;
      }
      break;
    }
    case step::fsync:
      io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
      break;
    case step::punch:
      io_uring_prep_fallocate(sqe, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              static_cast<off_t>(s.offset), static_cast<off_t>(s.remaining));
      break;
    case step::zero_range:
      io_uring_prep_fallocate(sqe, fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                              static_cast<off_t>(s.offset), static_cast<off_t>(s.remaining));
      break;
    case step::zero_write:
      io_uring_prep_write(sqe, fd, zero_buffer(),
                          static_cast<unsigned>(std::min<uint64_t>(s.remaining, zero_buffer_bytes)),
                          s.offset);
      break;
  }
  if (fixed_file_) sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, index);
}

void uring_backend::flush_sq() noexcept {
  if (io_uring_sq_ready(ring_.get()) == 0) return;
  // What the kernel does not take now stays queued for the next call.
  const int r = io_uring_submit(ring_.get());
  if (r < 0) last_submit_error_ = r;
}

int uring_backend::submit(std::span<const request> reqs) noexcept {
  if (reqs.empty()) return 0;
  if (used_ + ready_count_ >= qd_) {
    ++stats_.queue_full;
    return -EAGAIN;
  }
  ensure_enabled();
  int taken = 0;
  bool queued = false;
  for (const request& r : reqs) {
    if (used_ + ready_count_ == qd_) {
      ++stats_.queue_full;
      break;
    }
    ++taken;
    if (validate(r, geom_) != 0) {
      ++stats_.invalid;
      ++stats_.errors;
      push_ready(r.cookie, -EINVAL);
      continue;
    }
    const uint32_t index = free_[--free_top_];
    ++used_;
    slot& s = slots_[index];
    s.cookie = r.cookie;
    s.opcode = r.opcode;
    s.flags = r.flags;
    s.offset = r.offset;
    s.remaining = r.length;
    s.result = static_cast<int64_t>(r.length);
    s.buf = nullptr;
    s.iov = nullptr;
    s.iovcnt = 0;
    s.buf_index = -1;
    s.fell_back = false;
    switch (r.opcode) {
      case op::read:
      case op::write:
        if (r.opcode == op::read) {
          ++stats_.reads;
          stats_.read_bytes += r.length;
        } else {
          ++stats_.writes;
          stats_.write_bytes += r.length;
          if ((r.flags & req_fua) != 0) ++stats_.fua_writes;
        }
        s.st = step::io;
        if (r.iovcnt != 0) {
          s.iov = &iov_store_[static_cast<size_t>(index) * max_iovecs];
          std::copy_n(r.iov, r.iovcnt, s.iov);
          s.iovcnt = r.iovcnt;
        } else {
          s.buf = static_cast<uint8_t*>(r.buf);
          s.buf_index = regions_.find(r.buf, r.length);
          if (s.buf_index >= 0) ++stats_.fixed_ios;
        }
        break;
      case op::flush:
        ++stats_.flushes;
        s.st = step::fsync;
        s.result = 0;
        break;
      case op::discard:
        ++stats_.discards;
        s.st = punch_ok_ ? step::punch : zero_range_ok_ ? step::zero_range : step::zero_write;
        break;
      case op::write_zeroes:
        ++stats_.write_zeroes;
        s.st = zero_range_ok_ ? step::zero_range : step::zero_write;
        break;
    }
    if ((r.opcode == op::discard && s.st != step::punch) || s.st == step::zero_write) {
      s.fell_back = true;
      ++stats_.zero_fallbacks;
    }
    prep(index);
    queued = true;
  }
  if (queued) flush_sq();
  ++stats_.submit_calls;
  return taken;
}

void uring_backend::finish(uint32_t index, int64_t result, std::span<completion> out,
                           unsigned& n) noexcept {
  out[n++] = completion{slots_[index].cookie, result};
  if (result < 0) ++stats_.errors;
  free_[free_top_++] = index;
  --used_;
}

void uring_backend::on_cqe(uint32_t index, int res, std::span<completion> out,
                           unsigned& n) noexcept {
  slot& s = slots_[index];
  const auto fall_back = [&](step next) {
    s.st = next;
    if (!s.fell_back) {
      s.fell_back = true;
      ++stats_.zero_fallbacks;
    }
    prep(index);
  };
  switch (s.st) {
    case step::io: {
      if (res == -EINTR || res == -EAGAIN) return prep(index);
      if (res < 0) return finish(index, res, out, n);
      if (res == 0) return finish(index, -EIO, out, n);  // no progress: the file shrank
      auto done = static_cast<uint64_t>(res);
      s.offset += done;
      s.remaining -= done;
      if (s.remaining == 0) return finish(index, s.result, out, n);
      ++stats_.short_ios;
      if (s.iovcnt != 0) {
        while (done >= s.iov->iov_len) {
          done -= s.iov->iov_len;
          ++s.iov;
          --s.iovcnt;
        }
        s.iov->iov_base = static_cast<uint8_t*>(s.iov->iov_base) + done;
        s.iov->iov_len -= done;
      } else {
        s.buf += done;
      }
      return prep(index);
    }
    case step::fsync:
      return finish(index, res < 0 ? res : 0, out, n);
    case step::punch:
      if (res == -EOPNOTSUPP) {
        punch_ok_ = false;
        return fall_back(zero_range_ok_ ? step::zero_range : step::zero_write);
      }
      return finish(index, res < 0 ? res : s.result, out, n);
    case step::zero_range:
      if (res == -EOPNOTSUPP) {
        zero_range_ok_ = false;
        return fall_back(step::zero_write);
      }
      return finish(index, res < 0 ? res : s.result, out, n);
    case step::zero_write:
      if (res < 0) return finish(index, res, out, n);
      if (res == 0) return finish(index, -EIO, out, n);
      s.offset += static_cast<uint64_t>(res);
      s.remaining -= static_cast<uint64_t>(res);
      if (s.remaining == 0) return finish(index, s.result, out, n);
      return prep(index);
  }
}

int uring_backend::poll(std::span<completion> out) noexcept {
  unsigned n = 0;
  while (n < out.size() && ready_count_ > 0) {
    out[n++] = ready_[ready_head_];
    ready_head_ = (ready_head_ + 1) % qd_;
    --ready_count_;
  }
  if (used_ == 0 || !enabled_) return static_cast<int>(n);
  io_uring_cqe* cqes[peek_batch];
  while (n < out.size()) {
    // Each CQE ends at most one request, so `want` never overruns `out`.
    const auto want = static_cast<unsigned>(std::min<size_t>(peek_batch, out.size() - n));
    const unsigned got = io_uring_peek_batch_cqe(ring_.get(), cqes, want);
    if (got == 0) break;
    for (unsigned i = 0; i < got; ++i) {
      const uint64_t index = cqes[i]->user_data;
      if (index < qd_) on_cqe(static_cast<uint32_t>(index), cqes[i]->res, out, n);
    }
    io_uring_cq_advance(ring_.get(), got);
  }
  flush_sq();  // the next steps of requests that continue
  return static_cast<int>(n);
}

int uring_backend::wait(unsigned min, std::chrono::nanoseconds timeout) noexcept {
  if (used_ == 0 || !enabled_) return static_cast<int>(ready_count_);
  const unsigned have = ready_count_ + io_uring_cq_ready(ring_.get());
  if (have >= min) return static_cast<int>(have);
  const unsigned wait_nr = std::min(min - ready_count_, used_);
  const int64_t ns = std::max<int64_t>(timeout.count(), 0);
  __kernel_timespec ts{};
  ts.tv_sec = ns / 1'000'000'000;
  ts.tv_nsec = ns % 1'000'000'000;
  io_uring_cqe* cqe = nullptr;
  const int r = io_uring_sq_ready(ring_.get()) != 0
                    ? io_uring_submit_and_wait_timeout(ring_.get(), &cqe, wait_nr, &ts, nullptr)
                    : io_uring_wait_cqes(ring_.get(), &cqe, wait_nr, &ts, nullptr);
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN) return r;
  return static_cast<int>(ready_count_ + io_uring_cq_ready(ring_.get()));
}

int uring_backend::register_buffers(std::span<const iovec> regions) noexcept {
  if (in_flight() != 0) return -EBUSY;
  if (!regions_.empty()) {
    const int r = io_uring_unregister_buffers(ring_.get());
    if (r < 0) return r;
    regions_.clear();
  }
  if (regions.empty()) return 0;
  if (const int r = regions_.assign(regions); r < 0) return r;
  const int r =
      io_uring_register_buffers(ring_.get(), regions.data(), static_cast<unsigned>(regions.size()));
  if (r < 0) {
    regions_.clear();
    return r;
  }
  return 0;
}

}  // namespace tandem::dp::backend
