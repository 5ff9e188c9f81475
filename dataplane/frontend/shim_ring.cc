// SPDX-License-Identifier: Apache-2.0
// User-space side of the kernel block shim: control ioctls, ring mapping, descriptor parsing.
#include "dataplane/frontend/shim_ring.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace tandem::dp::frontend {
namespace {

using std::chrono::steady_clock;

std::system_error sys_error(int err, const std::string& path, const std::string& what) {
  return std::system_error(err, std::generic_category(), path + ": " + what);
}

template <typename T>
std::atomic_ref<T> atomic(T& v) noexcept {
  return std::atomic_ref<T>(v);
}

bool is_pow2(uint64_t v) noexcept {
  return v != 0 && (v & (v - 1)) == 0;
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

const char* to_string(shim_op op) noexcept {
  switch (op) {
    case shim_op::read:
      return "read";
    case shim_op::write:
      return "write";
    case shim_op::flush:
      return "flush";
    case shim_op::discard:
      return "discard";
    case shim_op::write_zeroes:
      return "write_zeroes";
  }
  return "unknown";
}

shim_geometry shim_geometry::from(const tandem_blk_params& p) noexcept {
  return {.dev_size = p.dev_size,
          .logical_bs = p.logical_bs,
          .queue_depth = p.queue_depth,
          .max_io_bytes = p.max_io_bytes,
          .features = p.features};
}

shim_request parse_descriptor(const tandem_blk_sqe& sqe, const shim_geometry& g) noexcept {
  shim_request r;
  r.tag = sqe.tag;
  r.seq = sqe.seq;
  r.offset = sqe.offset;
  r.length = sqe.length;
  r.fua = (sqe.flags & TANDEM_BLK_SQE_F_FUA) != 0;
  r.error = -EINVAL;
  if (sqe.reserved0 != 0 || sqe.reserved1 != 0) return r;
  if ((sqe.flags & ~TANDEM_BLK_SQE_F_ALL) != 0) return r;
  if (sqe.tag >= g.queue_depth) return r;
  if (!is_pow2(g.logical_bs)) return r;

  bool ranged = true;    // offset and length address the device
  uint64_t max_len = 0;  // 0: no data
  uint64_t feature = 0;  // needed feature bit
  switch (sqe.op) {
    case TANDEM_BLK_OP_READ:
      r.op = shim_op::read;
      max_len = g.max_io_bytes;
      break;
    case TANDEM_BLK_OP_WRITE:
      r.op = shim_op::write;
      max_len = g.max_io_bytes;
      break;
    case TANDEM_BLK_OP_FLUSH:
      r.op = shim_op::flush;
      ranged = false;
      feature = TANDEM_BLK_F_FLUSH;
      break;
    case TANDEM_BLK_OP_DISCARD:
      r.op = shim_op::discard;
      max_len = TANDEM_BLK_MAX_DISCARD_BYTES;
      feature = TANDEM_BLK_F_DISCARD;
      break;
    case TANDEM_BLK_OP_WRITE_ZEROES:
      r.op = shim_op::write_zeroes;
      max_len = TANDEM_BLK_MAX_DISCARD_BYTES;
      feature = TANDEM_BLK_F_WRITE_ZEROES;
      break;
    default:
      return r;
  }
  if ((g.features & feature) != feature) return r;
  if (r.fua && (r.op != shim_op::write || (g.features & TANDEM_BLK_F_FUA) == 0)) return r;
  if (!ranged) {
    if (sqe.offset != 0 || sqe.length != 0) return r;
  } else {
    const uint64_t mask = g.logical_bs - 1;
    if (sqe.length == 0 || sqe.length > max_len) return r;
    if ((sqe.offset & mask) != 0 || (sqe.length & mask) != 0) return r;
    if (sqe.offset > g.dev_size || sqe.length > g.dev_size - sqe.offset) return r;
  }
  r.error = 0;
  return r;
}

void check_layout(const tandem_blk_params& p, const tandem_blk_layout& l) {
  auto fail = [](const std::string& why) {
    return std::runtime_error("tandem shim: GET_DEV_INFO layout: " + why);
  };
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  if (!is_pow2(p.queue_depth) || p.queue_depth > TANDEM_BLK_MAX_QUEUE_DEPTH) {
    throw fail("queue depth " + std::to_string(p.queue_depth) +
               " is not a power of two <= " + std::to_string(TANDEM_BLK_MAX_QUEUE_DEPTH));
  }
  if (l.sq_entries != p.queue_depth || l.cq_entries != p.queue_depth) {
    throw fail("ring entries differ from the queue depth");
  }
  if (p.nr_queues == 0 || p.nr_queues > TANDEM_BLK_MAX_QUEUES) throw fail("bad queue count");
  if (!is_pow2(p.logical_bs) || p.logical_bs > 4096) throw fail("bad logical block size");
  if (l.data_slot_size < p.max_io_bytes) throw fail("data slots smaller than max_io_bytes");
  if (l.region_size == 0 || l.region_size % page != 0 || l.queue_stride < l.region_size ||
      l.queue_stride % page != 0) {
    throw fail("region size or stride not page aligned");
  }
  auto inside = [&](uint64_t off, uint64_t size) {
    return off <= l.region_size && size <= l.region_size - off;
  };
  if (l.header_size < sizeof(tandem_blk_ring_header) || l.header_offset % 64 != 0 ||
      !inside(l.header_offset, l.header_size)) {
    throw fail("ring header outside the region");
  }
  if (l.sq_offset % alignof(tandem_blk_sqe) != 0 ||
      !inside(l.sq_offset, uint64_t{l.sq_entries} * sizeof(tandem_blk_sqe))) {
    throw fail("submission ring outside the region");
  }
  if (l.cq_offset % alignof(tandem_blk_cqe) != 0 ||
      !inside(l.cq_offset, uint64_t{l.cq_entries} * sizeof(tandem_blk_cqe))) {
    throw fail("completion ring outside the region");
  }
  if (l.data_offset % page != 0 || l.data_size != uint64_t{p.queue_depth} * l.data_slot_size ||
      !inside(l.data_offset, l.data_size)) {
    throw fail("data area outside the region");
  }
}

// ---- shim_control ----

shim_control::shim_control(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) {
    int err = errno;
    throw sys_error(err, path_,
                    err == ENOENT ? "open (is tandem.ko loaded? modprobe tandem)" : "open");
  }
}

shim_control::~shim_control() {
  if (fd_ >= 0) ::close(fd_);
}

tandem_blk_features shim_control::features() const {
  tandem_blk_features f{};
  f.size = sizeof f;
  if (::ioctl(fd_, TANDEM_BLK_IOC_GET_FEATURES, &f) != 0) {
    int err = errno;
    throw sys_error(err, path_, "ioctl TANDEM_BLK_IOC_GET_FEATURES");
  }
  return f;
}

tandem_blk_params shim_control::add(const shim_params& p) {
  tandem_blk_params k{};
  k.size = sizeof k;
  k.dev_id = p.dev_id;
  k.dev_size = p.dev_size;
  k.features = p.features;
  k.logical_bs = p.logical_bs;
  k.physical_bs = p.physical_bs;
  k.nr_queues = p.nr_queues;
  k.queue_depth = p.queue_depth;
  k.max_io_bytes = p.max_io_bytes;
  k.timeout_ms = p.timeout_ms;
  if (::ioctl(fd_, TANDEM_BLK_IOC_ADD_DEV, &k) != 0) {
    int err = errno;
    std::string id = p.dev_id == TANDEM_BLK_DEV_ID_ANY ? "any" : std::to_string(p.dev_id);
    throw sys_error(err, path_,
                    "ioctl TANDEM_BLK_IOC_ADD_DEV (id " + id + ", " + std::to_string(p.dev_size) +
                        " bytes, block " + std::to_string(p.logical_bs) + ", " +
                        std::to_string(p.nr_queues) + " queue(s) of depth " +
                        std::to_string(p.queue_depth) + ", max I/O " +
                        std::to_string(p.max_io_bytes) + ")");
  }
  return k;
}

void shim_control::remove(uint32_t dev_id) {
  tandem_blk_dev_cmd c{};
  c.size = sizeof c;
  c.dev_id = dev_id;
  if (::ioctl(fd_, TANDEM_BLK_IOC_DEL_DEV, &c) != 0) {
    int err = errno;
    throw sys_error(
        err, path_,
        "ioctl TANDEM_BLK_IOC_DEL_DEV (id " + std::to_string(dev_id) +
            (err == EBUSY ? ": a server is attached or the block device is open)" : ")"));
  }
}

tandem_blk_dev_info shim_control::info(uint32_t dev_id) const {
  tandem_blk_dev_info i{};
  i.size = sizeof i;
  i.dev_id = dev_id;
  if (::ioctl(fd_, TANDEM_BLK_IOC_GET_DEV_INFO, &i) != 0) {
    int err = errno;
    throw sys_error(err, path_,
                    "ioctl TANDEM_BLK_IOC_GET_DEV_INFO (id " + std::to_string(dev_id) + ")");
  }
  return i;
}

// ---- shim_queue ----

shim_queue::shim_queue(std::span<std::byte> region, const tandem_blk_layout& layout,
                       const shim_geometry& geometry, unsigned index, int event_fd,
                       int commit_fd) noexcept
    : hdr_(reinterpret_cast<tandem_blk_ring_header*>(region.data() + layout.header_offset)),
      sq_(reinterpret_cast<const tandem_blk_sqe*>(region.data() + layout.sq_offset)),
      cq_(reinterpret_cast<tandem_blk_cqe*>(region.data() + layout.cq_offset)),
      data_(region.data() + layout.data_offset),
      geometry_(geometry),
      slot_size_(layout.data_slot_size),
      sq_mask_(layout.sq_entries - 1),
      cq_mask_(layout.cq_entries - 1),
      sq_cons_(atomic(hdr_->sq_cons).load(std::memory_order_relaxed)),
      cq_prod_(atomic(hdr_->cq_prod).load(std::memory_order_relaxed)),
      committed_(cq_prod_),
      index_(index),
      event_fd_(event_fd),
      commit_fd_(commit_fd) {}

bool shim_queue::pending() const noexcept {
  return atomic(hdr_->sq_prod).load(std::memory_order_acquire) != sq_cons_;
}

unsigned shim_queue::peek(std::span<shim_request> out) noexcept {
  const uint32_t prod = atomic(hdr_->sq_prod).load(std::memory_order_acquire);
  uint32_t avail = prod - sq_cons_;
  // The kernel never has more than sq_entries descriptors outstanding; never read past them.
  if (avail > sq_mask_ + 1) avail = sq_mask_ + 1;
  const unsigned n = avail < out.size() ? avail : static_cast<unsigned>(out.size());
  for (unsigned i = 0; i < n; ++i) {
    tandem_blk_sqe sqe;
    std::memcpy(&sqe, &sq_[(sq_cons_ + i) & sq_mask_], sizeof sqe);
    out[i] = parse_descriptor(sqe, geometry_);
  }
  sq_cons_ += n;
  if (n != 0) atomic(hdr_->sq_cons).store(sq_cons_, std::memory_order_release);
  return n;
}

int shim_queue::complete(uint16_t tag, uint32_t seq, int result) noexcept {
  const uint32_t cons = atomic(hdr_->cq_cons).load(std::memory_order_acquire);
  if (cq_prod_ - cons > cq_mask_) return -EAGAIN;
  tandem_blk_cqe cqe{};
  cqe.tag = tag;
  cqe.seq = seq;
  cqe.result = result;
  std::memcpy(&cq_[cq_prod_ & cq_mask_], &cqe, sizeof cqe);
  ++cq_prod_;
  atomic(hdr_->cq_prod).store(cq_prod_, std::memory_order_release);
  return 0;
}

int shim_queue::commit() noexcept {
  if (cq_prod_ == committed_) return 0;
  const int fresh = static_cast<int>(cq_prod_ - committed_);
  committed_ = cq_prod_;
  if (commit_fd_ < 0) return fresh;
  int r = ::ioctl(commit_fd_, TANDEM_BLK_IOC_COMMIT, static_cast<unsigned long>(index_));
  return r < 0 ? -errno : r;
}

std::span<std::byte> shim_queue::data(uint16_t tag) const noexcept {
  if (tag >= geometry_.queue_depth) return {};
  return {data_ + size_t{tag} * slot_size_, geometry_.max_io_bytes};
}

bool shim_queue::arm_wakeup() noexcept {
  auto flags = atomic(hdr_->flags);
  // Dekker with the kernel: flag, full barrier, re-check; it publishes, barrier, reads flag.
  flags.store(flags.load(std::memory_order_relaxed) | TANDEM_BLK_RING_NEED_WAKEUP,
              std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return pending();
}

void shim_queue::disarm_wakeup() noexcept {
  auto flags = atomic(hdr_->flags);
  flags.store(flags.load(std::memory_order_relaxed) & ~TANDEM_BLK_RING_NEED_WAKEUP,
              std::memory_order_release);
  if (event_fd_ >= 0) {
    uint64_t count;
    (void)!::read(event_fd_, &count, sizeof count);  // non-blocking: EAGAIN when unsignalled
  }
}

int shim_queue::wait(std::chrono::milliseconds timeout, std::chrono::microseconds spin) noexcept {
  if (pending()) return 1;
  const auto start = steady_clock::now();
  while (steady_clock::now() - start < spin) {
    for (int i = 0; i < 64; ++i)
      cpu_relax();
    if (pending()) return 1;
  }
  const bool forever = timeout.count() < 0;
  const auto deadline = start + timeout;
  auto flags = atomic(hdr_->flags);
  int ret = 0;
  for (;;) {
    // Dekker with the kernel: flag, full barrier, re-check; it publishes, barrier, reads flag.
    flags.store(flags.load(std::memory_order_relaxed) | TANDEM_BLK_RING_NEED_WAKEUP,
                std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (pending()) {
      ret = 1;
      break;
    }
    int wait_ms = -1;
    if (!forever) {
      auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - steady_clock::now()).count();
      if (left <= 0) break;
      wait_ms = left > 60000 ? 60000 : static_cast<int>(left);
    }
    if (event_fd_ < 0) {
      ::usleep(1000);
      continue;
    }
    pollfd p{.fd = event_fd_, .events = POLLIN, .revents = 0};
    int r = ::poll(&p, 1, wait_ms);
    if (r < 0 && errno != EINTR) {
      ret = -errno;
      break;
    }
    if (r > 0) {
      uint64_t count;
      if (::read(event_fd_, &count, sizeof count) < 0 && errno != EAGAIN) {
        ret = -errno;
        break;
      }
    }
    if (r < 0) {  // EINTR: let the caller look at its stop flag
      break;
    }
  }
  flags.store(flags.load(std::memory_order_relaxed) & ~TANDEM_BLK_RING_NEED_WAKEUP,
              std::memory_order_relaxed);
  if (ret == 0 && pending()) ret = 1;
  return ret;
}

// ---- shim_device ----

shim_device::shim_device(uint32_t dev_id, const std::string& dev_dir)
    : path_(dev_dir + "/tandemc" + std::to_string(dev_id)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) {
    int err = errno;
    throw sys_error(err, path_,
                    err == EBUSY ? "open (another server is attached to this device)" : "open");
  }
  try {
    info_.size = sizeof info_;
    info_.dev_id = dev_id;
    if (::ioctl(fd_, TANDEM_BLK_IOC_GET_DEV_INFO, &info_) != 0) {
      int err = errno;
      throw sys_error(err, path_, "ioctl TANDEM_BLK_IOC_GET_DEV_INFO");
    }
    check_layout(info_.params, info_.layout);
    geometry_ = shim_geometry::from(info_.params);
    const unsigned nr = info_.params.nr_queues;
    maps_.reserve(nr);
    event_fds_.reserve(nr);
    queues_.reserve(nr);
    for (unsigned q = 0; q < nr; ++q) {
      const auto& l = info_.layout;
      void* m = ::mmap(nullptr, l.region_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                       fd_, static_cast<off_t>(q * l.queue_stride));
      if (m == MAP_FAILED) {
        int err = errno;
        throw sys_error(err, path_, "mmap queue " + std::to_string(q));
      }
      maps_.emplace_back(static_cast<std::byte*>(m), l.region_size);
      int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (efd < 0) {
        int err = errno;
        throw sys_error(err, path_, "eventfd");
      }
      event_fds_.push_back(efd);
      tandem_blk_eventfd e{};
      e.size = sizeof e;
      e.queue = q;
      e.fd = efd;
      if (::ioctl(fd_, TANDEM_BLK_IOC_SET_EVENTFD, &e) != 0) {
        int err = errno;
        throw sys_error(err, path_,
                        "ioctl TANDEM_BLK_IOC_SET_EVENTFD (queue " + std::to_string(q) + ")");
      }
      queues_.emplace_back(maps_.back(), l, geometry_, q, efd, fd_);
    }
  } catch (...) {
    close_all();
    throw;
  }
}

shim_device::~shim_device() {
  close_all();
}

void shim_device::close_all() noexcept {
  queues_.clear();
  for (auto m : maps_)
    ::munmap(m.data(), m.size());
  maps_.clear();
  for (int efd : event_fds_)
    ::close(efd);
  event_fds_.clear();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

unsigned shim_device::peek(unsigned q, std::span<shim_request> out) noexcept {
  return q < queues_.size() ? queues_[q].peek(out) : 0;
}

int shim_device::complete(unsigned q, uint16_t tag, uint32_t seq, int result) noexcept {
  return q < queues_.size() ? queues_[q].complete(tag, seq, result) : -EINVAL;
}

int shim_device::commit(unsigned q) noexcept {
  return q < queues_.size() ? queues_[q].commit() : -EINVAL;
}

std::span<std::byte> shim_device::data(unsigned q, uint16_t tag) const noexcept {
  return q < queues_.size() ? queues_[q].data(tag) : std::span<std::byte>{};
}

int shim_device::wait(unsigned q, std::chrono::milliseconds timeout,
                      std::chrono::microseconds spin) noexcept {
  return q < queues_.size() ? queues_[q].wait(timeout, spin) : -EINVAL;
}

}  // namespace tandem::dp::frontend
