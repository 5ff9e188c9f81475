// SPDX-License-Identifier: Apache-2.0
// The FUSE frontend: libfuse3's low-level API, one file per attached volume.
#define FUSE_USE_VERSION 312
#include "dataplane/frontend/fuse_frontend.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <stdexcept>
#include <system_error>

#include <fuse_lowlevel.h>

namespace tandem::dp::frontend {
namespace {

uint64_t align_down(uint64_t v, uint64_t a) {
  return v / a * a;
}
uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}

}  // namespace

// ---- fuse_export --------------------------------------------------------------------------------

fuse_export::fuse_export(std::string name, uint64_t ino) : name_(std::move(name)), ino_(ino) {
  // Anonymous memory: page aligned, and only the pages a request touches are ever backed.
  void* m = ::mmap(nullptr, size_t{slot_count} * slot_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(), "FUSE export " + name_ + ": buffers");
  }
  mem_ = static_cast<uint8_t*>(m);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    const int err = errno;
    ::munmap(mem_, size_t{slot_count} * slot_bytes);
    throw std::system_error(err, std::generic_category(), "FUSE export " + name_ + ": eventfd");
  }
  for (unsigned i = 0; i < slot_count; ++i)
    slots_[i].buf = mem_ + size_t{i} * slot_bytes;
  free_mask_.store(slot_count == 32 ? ~0u : (1u << slot_count) - 1, std::memory_order_release);
}

fuse_export::~fuse_export() {
  ::close(wake_fd_);
  ::munmap(mem_, size_t{slot_count} * slot_bytes);
}

bool fuse_export::next(mirror::io_request& out) noexcept {
  uint32_t i = 0;
  if (!handed_.pop(i)) return false;
  ++taken_;
  out = slots_[i].io;
  out.cookie = fuse_cookie_bit | i;
  return true;
}

void fuse_export::complete(uint64_t cookie, int result) noexcept {
  const uint64_t i = cookie & ~fuse_cookie_bit;
  if (i >= slot_count) return;
  slot& s = slots_[i];
  if (s.state.load(std::memory_order_acquire) != 1) return;
  s.result = result;
  in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  s.state.store(2, std::memory_order_release);
  s.state.notify_one();
}

// armed_ and handed_count_ are sequentially consistent on both sides: either the lcore sees the
// worker's request counted, or the worker sees the lcore armed and signals. signalled_ only
// saves workers a write each: while it is set, a write was made or is on its way, so wake_fd_
// is or becomes readable; a write that lands after a disarm wakes the next sleep at once, which
// then drains it.
bool fuse_export::arm_wakeup() noexcept {
  armed_.store(true);
  return handed_count_.load() != taken_;
}

void fuse_export::disarm_wakeup(bool fired) noexcept {
  armed_.store(false);
  if (fired) {
    uint64_t n = 0;
    (void)!::read(wake_fd_, &n, sizeof n);
  }
  signalled_.store(false);
}

void fuse_export::fail_pending(int result) noexcept {
  mirror::io_request io;
  while (next(io))
    complete(io.cookie, result);
}

void fuse_export::fail_in_flight(int result) noexcept {
  fail_pending(result);
  for (unsigned i = 0; i < slot_count; ++i)
    if (slots_[i].state.load(std::memory_order_acquire) == 1) complete(fuse_cookie_bit | i, result);
}

void fuse_export::publish(uint64_t size, uint32_t block_size, uint64_t zero_chunk) noexcept {
  size_.store(size, std::memory_order_release);
  block_.store(block_size, std::memory_order_release);
  zero_chunk_.store(zero_chunk, std::memory_order_release);
  published_.store(true, std::memory_order_release);
}

int fuse_export::withdraw() noexcept {
  if (opens_.load(std::memory_order_acquire) != 0) return -EBUSY;
  published_.store(false, std::memory_order_release);
  return 0;
}

bool fuse_export::open() {
  if (!published()) return false;
  opens_.fetch_add(1, std::memory_order_acq_rel);
  return true;
}

void fuse_export::release() noexcept {
  opens_.fetch_sub(1, std::memory_order_acq_rel);
}

unsigned fuse_export::acquire() {
  for (;;) {
    uint32_t m = free_mask_.load(std::memory_order_acquire);
    if (m == 0) {
      free_mask_.wait(0, std::memory_order_acquire);
      continue;
    }
    const unsigned i = static_cast<unsigned>(std::countr_zero(m));
    if (free_mask_.compare_exchange_weak(m, m & ~(1u << i), std::memory_order_acq_rel)) return i;
  }
}

void fuse_export::free_slot(unsigned i) noexcept {
  slots_[i].state.store(0, std::memory_order_relaxed);
  free_mask_.fetch_or(1u << i, std::memory_order_acq_rel);
  free_mask_.notify_one();
}

int fuse_export::run(unsigned i) {
  // Counted before closing_ is read (both sequentially consistent), so a close_down() either
  // turns this request away or sees it in in_flight() and completes it.
  in_flight_.fetch_add(1);
  if (closing_.load()) {
    in_flight_.fetch_sub(1);
    return -ESHUTDOWN;
  }
  slot& s = slots_[i];
  s.state.store(1, std::memory_order_release);
  // Never full: a slot is handed over at most once at a time and the queue holds them all.
  while (!handed_.push(i)) {
  }
  handed_count_.fetch_add(1);
  if (armed_.load() && !signalled_.exchange(true)) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
  uint32_t st;
  while ((st = s.state.load(std::memory_order_acquire)) != 2)
    s.state.wait(st, std::memory_order_acquire);
  return s.result;
}

int fuse_export::io_aligned(mirror::io_op op, uint8_t flags, uint64_t offset, uint64_t length,
                            uint8_t* buf, unsigned i) {
  slots_[i].io = mirror::io_request{
      .op = op, .flags = flags, .offset = offset, .length = length, .buf = buf, .cookie = 0};
  return run(i);
}

// A held slot, freed on every path out.
struct fuse_export::slot_hold {
  fuse_export& e;
  unsigned i;
  explicit slot_hold(fuse_export& x) : e(x), i(x.acquire()) {}
  ~slot_hold() { e.free_slot(i); }
  slot_hold(const slot_hold&) = delete;
  slot_hold& operator=(const slot_hold&) = delete;
};

ssize_t fuse_export::read(char* out, uint64_t length, uint64_t offset) {
  if (!published()) return -ENXIO;
  const uint64_t size = this->size();
  if (offset >= size || length == 0) return 0;
  length = std::min(length, size - offset);
  const slot_hold hold(*this);
  const unsigned s = hold.i;
  return read_locked(out, length, offset, s);
}

ssize_t fuse_export::read_locked(char* out, uint64_t length, uint64_t offset, unsigned s) {
  const uint64_t bs = block_size();
  uint8_t* buf = slots_[s].buf;
  uint64_t done = 0;
  if (offset % bs != 0 || length % bs != 0) stats_.unaligned.fetch_add(1);
  while (done < length) {
    const uint64_t pos = offset + done;
    const uint64_t a0 = align_down(pos, bs);
    const uint64_t end = std::min(offset + length, a0 + slot_bytes);
    const uint64_t a1 = align_up(end, bs);
    const int rc = io_aligned(mirror::io_op::read, 0, a0, a1 - a0, buf, s);
    if (rc < 0) {
      stats_.errors.fetch_add(1);
      return done ? static_cast<ssize_t>(done) : rc;
    }
    std::memcpy(out + done, buf + (pos - a0), end - pos);
    done += end - pos;
  }
  stats_.reads.fetch_add(1);
  stats_.read_bytes.fetch_add(done);
  return static_cast<ssize_t>(done);
}

ssize_t fuse_export::write(const char* in, uint64_t length, uint64_t offset) {
  if (!published()) return -ENXIO;
  const uint64_t size = this->size();
  if (length == 0) return 0;
  if (offset >= size) return -ENOSPC;
  length = std::min(length, size - offset);  // a short write; the next one gets ENOSPC
  const uint64_t bs = block_size();
  const slot_hold hold(*this);
  const unsigned s = hold.i;
  int rc = 0;
  if (offset % bs == 0 && length % bs == 0) {
    std::shared_lock lock(merge_lock_);
    uint8_t* buf = slots_[s].buf;
    for (uint64_t done = 0; done < length && rc == 0;) {
      const uint64_t n = std::min<uint64_t>(length - done, slot_bytes);
      std::memcpy(buf, in + done, n);
      rc = io_aligned(mirror::io_op::write, 0, offset + done, n, buf, s);
      done += n;
    }
  } else {
    stats_.unaligned.fetch_add(1);
    std::unique_lock lock(merge_lock_);
    rc = write_merged(in, length, offset, s);
  }
  if (rc < 0) {
    stats_.errors.fetch_add(1);
    return rc;
  }
  stats_.writes.fetch_add(1);
  stats_.write_bytes.fetch_add(length);
  return static_cast<ssize_t>(length);
}

// Partial blocks: read the whole-block span, lay the new bytes over it, write it back. The caller
// holds merge_lock_ exclusively, so no other write reaches these blocks meanwhile.
int fuse_export::write_merged(const char* in, uint64_t length, uint64_t offset, unsigned s) {
  const uint64_t bs = block_size();
  uint8_t* buf = slots_[s].buf;
  for (uint64_t done = 0; done < length;) {
    const uint64_t pos = offset + done;
    const uint64_t a0 = align_down(pos, bs);
    const uint64_t end = std::min(offset + length, a0 + slot_bytes);
    const uint64_t a1 = align_up(end, bs);
    if (pos != a0 || end != a1) {
      if (const int rc = io_aligned(mirror::io_op::read, 0, a0, a1 - a0, buf, s); rc < 0) {
        return rc;
      }
    }
    if (in) {
      std::memcpy(buf + (pos - a0), in + done, end - pos);
    } else {
      std::memset(buf + (pos - a0), 0, end - pos);
    }
    if (const int rc = io_aligned(mirror::io_op::write, 0, a0, a1 - a0, buf, s); rc < 0) {
      return rc;
    }
    done += end - pos;
  }
  return 0;
}

int fuse_export::flush() {
  if (!published()) return -ENXIO;
  const slot_hold hold(*this);
  const unsigned s = hold.i;
  const int rc = io_aligned(mirror::io_op::flush, 0, 0, 0, nullptr, s);
  if (rc < 0) {
    stats_.errors.fetch_add(1);
  } else {
    stats_.flushes.fetch_add(1);
  }
  return rc;
}

int fuse_export::zero_range(uint64_t offset, uint64_t length, bool discard) {
  if (!published()) return -ENXIO;
  const uint64_t size = this->size();
  if (offset >= size || length == 0) return 0;
  length = std::min(length, size - offset);
  const uint64_t bs = block_size();
  const uint64_t chunk = std::max<uint64_t>(zero_chunk_.load(std::memory_order_acquire), bs);
  const slot_hold hold(*this);
  const unsigned s = hold.i;
  const uint64_t end = offset + length;
  const uint64_t m0 = align_up(offset, bs), m1 = align_down(end, bs);
  int rc = 0;
  if (m0 >= m1) {  // within one block or two partial ones
    std::unique_lock lock(merge_lock_);
    rc = write_merged(nullptr, length, offset, s);
  } else {
    {
      std::unique_lock lock(merge_lock_);
      if (offset < m0) rc = write_merged(nullptr, m0 - offset, offset, s);
      if (rc == 0 && m1 < end) rc = write_merged(nullptr, end - m1, m1, s);
    }
    std::shared_lock lock(merge_lock_);
    // On the grid of `chunk` (a whole number of activity-log extents), so no request touches
    // more extents than the log has slots.
    for (uint64_t pos = m0; pos < m1 && rc == 0;) {
      const uint64_t n = std::min(m1, align_down(pos, chunk) + chunk) - pos;
      rc = io_aligned(discard ? mirror::io_op::discard : mirror::io_op::write_zeroes, 0, pos, n,
                      nullptr, s);
      pos += n;
    }
  }
  if (rc < 0) {
    stats_.errors.fetch_add(1);
  } else if (discard) {
    stats_.discards.fetch_add(1);
  } else {
    stats_.zeroes.fetch_add(1);
  }
  return rc;
}

// ---- the FUSE file system
// -------------------------------------------------------------------------

namespace {

fuse_frontend& fe(fuse_req_t req) {
  return *static_cast<fuse_frontend*>(fuse_req_userdata(req));
}

void fill_attr(const fuse_export* e, uint64_t ino, struct stat& st) {
  std::memset(&st, 0, sizeof st);
  st.st_ino = ino;
  if (!e) {
    st.st_mode = S_IFDIR | 0755;
    st.st_nlink = 2;
    return;
  }
  st.st_mode = S_IFREG | 0600;
  st.st_nlink = 1;
  st.st_size = static_cast<off_t>(e->size());
  st.st_blksize = static_cast<blksize_t>(e->block_size());
  st.st_blocks = static_cast<blkcnt_t>(e->size() / 512);
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_export* e = parent == FUSE_ROOT_ID ? fe(req).find(name) : nullptr;
  if (!e || !e->published()) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_entry_param p{};
  p.ino = e->ino();
  p.generation = 1;
  fill_attr(e, e->ino(), p.attr);
  // No caching of names or attributes: a volume appears and goes with attach and detach.
  p.attr_timeout = 0;
  p.entry_timeout = 0;
  fuse_reply_entry(req, &p);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st;
  if (ino == FUSE_ROOT_ID) {
    fill_attr(nullptr, ino, st);
    fuse_reply_attr(req, &st, 0);
    return;
  }
  fuse_export* e = fe(req).by_ino(ino);
  if (!e || !e->published()) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fill_attr(e, ino, st);
  fuse_reply_attr(req, &st, 0);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  fuse_export* e = fe(req).by_ino(ino);
  if (!e || !e->published()) {
    fuse_reply_err(req, ino == FUSE_ROOT_ID ? EPERM : ENOENT);
    return;
  }
  // The size is the volume's; owner and mode are fixed. Times are accepted and not kept.
  if ((to_set & FUSE_SET_ATTR_SIZE) && static_cast<uint64_t>(attr->st_size) != e->size()) {
    fuse_reply_err(req, EPERM);
    return;
  }
  if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    fuse_reply_err(req, EPERM);
    return;
  }
  struct stat st;
  fill_attr(e, ino, st);
  fuse_reply_attr(req, &st, 0);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  if (ino != FUSE_ROOT_ID) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  std::vector<std::pair<std::string, uint64_t>> entries = {{".", FUSE_ROOT_ID},
                                                           {"..", FUSE_ROOT_ID}};
  for (const auto& e : fe(req).exports())
    if (e->published()) entries.emplace_back(e->name(), e->ino());
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(off); i < entries.size(); ++i) {
    struct stat st {};
    st.st_ino = entries[i].second;
    st.st_mode = entries[i].second == FUSE_ROOT_ID ? S_IFDIR : S_IFREG;
    const size_t need = fuse_add_direntry(req, buf.data() + used, size - used,
                                          entries[i].first.c_str(), &st, static_cast<off_t>(i + 1));
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  fuse_export* e = fe(req).by_ino(ino);
  if (!e || !e->open()) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  if (fi->flags & O_TRUNC) {  // the size is the volume's
    e->release();
    fuse_reply_err(req, EPERM);
    return;
  }
  // No page cache between the caller and the engine: a write returns once the engine (and, for a
  // connected primary, the peer) has it, and an fsync covers every write that returned.
  fi->direct_io = 1;
  fi->keep_cache = 0;
  if (fuse_reply_open(req, fi) == -ENOENT) e->release();  // the opener was interrupted
}

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  if (fuse_export* e = fe(req).by_ino(ino)) e->release();
  fuse_reply_err(req, 0);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  fuse_export* e = fe(req).by_ino(ino);
  if (!e || off < 0) {
    fuse_reply_err(req, e ? EINVAL : ENOENT);
    return;
  }
  // The reply is copied out of a buffer of our own, which the slot's bounce buffer fills.
  std::vector<char> out(size);
  const ssize_t n = e->read(out.data(), size, static_cast<uint64_t>(off));
  if (n < 0) {
    fuse_reply_err(req, static_cast<int>(-n));
    return;
  }
  fuse_reply_buf(req, out.data(), static_cast<size_t>(n));
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
              fuse_file_info*) {
  fuse_export* e = fe(req).by_ino(ino);
  if (!e || off < 0) {
    fuse_reply_err(req, e ? EINVAL : ENOENT);
    return;
  }
  const ssize_t n = e->write(buf, size, static_cast<uint64_t>(off));
  if (n < 0) {
    fuse_reply_err(req, static_cast<int>(-n));
    return;
  }
  fuse_reply_write(req, static_cast<size_t>(n));
}

void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  fuse_reply_err(req, 0);  // close(): nothing is buffered here (fsync is the durability point)
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  fuse_export* e = fe(req).by_ino(ino);
  if (!e) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_reply_err(req, -e->flush());
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                  fuse_file_info*) {
  fuse_export* e = fe(req).by_ino(ino);
  if (!e || offset < 0 || length <= 0) {
    fuse_reply_err(req, e ? EINVAL : ENOENT);
    return;
  }
  const auto off = static_cast<uint64_t>(offset), len = static_cast<uint64_t>(length);
  int rc = 0;
  if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
    rc = e->zero_range(off, len, true);
  } else if (mode == FALLOC_FL_ZERO_RANGE || mode == (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)) {
    rc = e->zero_range(off, len, false);
  } else if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
    // Preallocation: every block of a volume exists already; growing it is not possible.
    rc = (mode == 0 && off + len > e->size()) ? -EFBIG : 0;
  } else {
    rc = -EOPNOTSUPP;
  }
  fuse_reply_err(req, -rc);
}

void op_init(void*, fuse_conn_info* conn) {
  // Large requests: up to the engine's largest I/O (libfuse's buffer holds 256 pages plus the
  // header, and the kernel asks for max_pages accordingly).
  conn->max_write = fuse_export::slot_bytes;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

const fuse_lowlevel_ops ops = [] {
  fuse_lowlevel_ops o{};
  o.init = op_init;
  o.lookup = op_lookup;
  o.getattr = op_getattr;
  o.setattr = op_setattr;
  o.readdir = op_readdir;
  o.open = op_open;
  o.release = op_release;
  o.read = op_read;
  o.write = op_write;
  o.flush = op_flush;
  o.fsync = op_fsync;
  o.fallocate = op_fallocate;
  return o;
}();

// The FUSE connection's number under /sys/fs/fuse/connections (the kernel's s_dev of the mount).
unsigned connection_id(dev_t dev) {
  return (major(dev) << 20) | minor(dev);
}

// Aborting the connection fails whatever is still queued in the kernel and wakes the workers
// blocked reading /dev/fuse even while a file stays open (a loop device).
void abort_connection(unsigned id) {
  const std::filesystem::path dir = "/sys/fs/fuse/connections";
  std::error_code ec;
  bool mounted_here = false;
  if (!std::filesystem::exists(dir / std::to_string(id), ec) &&
      std::filesystem::is_empty(dir, ec)) {
    // systemd mounts it at boot; elsewhere (containers, test hosts) mount it for this write.
    mounted_here = ::mount("fusectl", dir.c_str(), "fusectl", 0, nullptr) == 0;
  }
  std::ofstream(dir / std::to_string(id) / "abort") << "1\n";
  if (mounted_here) ::umount2(dir.c_str(), MNT_DETACH);
}

}  // namespace

// ---- fuse_frontend ----------------------------------------------------------------------------

fuse_frontend::fuse_frontend(const fuse_frontend_options& o, std::vector<std::string> names)
    : mountpoint_(o.mountpoint), max_threads_(o.max_threads) {
  if (mountpoint_.empty() || mountpoint_[0] != '/') {
    throw std::runtime_error("FUSE mountpoint \"" + mountpoint_ + "\" must be an absolute path");
  }
  while (mountpoint_.size() > 1 && mountpoint_.back() == '/')
    mountpoint_.pop_back();
  for (size_t i = 0; i < names.size(); ++i)
    exports_.push_back(std::make_unique<fuse_export>(names[i], 2 + i));

  const std::string where = "FUSE mount " + mountpoint_ + ": ";
  if (::access("/dev/fuse", R_OK | W_OK) != 0) {
    throw std::runtime_error(where + "/dev/fuse: " + std::strerror(errno) +
                             " (load the fuse module or run with access to /dev/fuse)");
  }
  // A replicator that died leaves its mount behind ("Transport endpoint is not connected").
  struct stat st;
  if (::stat(mountpoint_.c_str(), &st) != 0 && errno == ENOTCONN) {
    if (::umount2(mountpoint_.c_str(), MNT_DETACH) != 0) {
      throw std::runtime_error(where + "removing a dead mount: " + std::strerror(errno));
    }
    replaced_dead_mount_ = true;
  }
  std::error_code ec;
  std::filesystem::create_directories(mountpoint_, ec);
  if (::stat(mountpoint_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw std::runtime_error(where + "not a directory" +
                             (ec ? " (" + ec.message() + ")" : std::string()));
  }
  struct stat parent;
  const std::string up = std::filesystem::path(mountpoint_).parent_path().string();
  if (::stat(up.c_str(), &parent) == 0 && parent.st_dev != st.st_dev) {
    throw std::runtime_error(where + "something is mounted there already (another replicator?)");
  }

  const char* argv[] = {"tandem-replicator", "-o", "fsname=tandem,subtype=tandem"};
  fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
  se_ = fuse_session_new(&args, &ops, sizeof ops, this);
  if (!se_) throw std::runtime_error(where + "fuse_session_new failed");
  if (fuse_session_mount(se_, mountpoint_.c_str()) != 0) {
    fuse_session_destroy(se_);
    throw std::runtime_error(where + "mount failed (see the message above)");
  }
  loop_ = std::thread([this] {
    // The workers serve a loop device's I/O: reclaim must not wait for writeback to it (needs
    // CAP_SYS_RESOURCE; workers inherit it).
    ::prctl(PR_SET_IO_FLUSHER, 1UL, 0UL, 0UL, 0UL);
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, max_threads_);
    fuse_loop_cfg_set_idle_threads(cfg, std::min(4u, max_threads_));
    fuse_session_loop_mt(se_, cfg);
    fuse_loop_cfg_destroy(cfg);
  });
  // Read now, with the workers free to answer (at teardown they may all be busy).
  if (::stat(mountpoint_.c_str(), &st) == 0) dev_ = st.st_dev;
}

fuse_frontend::~fuse_frontend() {
  close_down();
  // The lcore has stopped: whatever it took and did not complete fails now.
  for (auto& e : exports_)
    e->fail_in_flight(-ESHUTDOWN);
  fuse_session_exit(se_);
  fuse_session_unmount(se_);  // lazy: an open file keeps the connection until it is aborted
  if (dev_ != 0) abort_connection(connection_id(dev_));
  loop_.join();
  fuse_session_destroy(se_);
}

void fuse_frontend::close_down() noexcept {
  for (auto& e : exports_)
    e->close_down();
}

fuse_export* fuse_frontend::find(const std::string& name) noexcept {
  for (auto& e : exports_)
    if (e->name() == name) return e.get();
  return nullptr;
}

fuse_export* fuse_frontend::by_ino(uint64_t ino) noexcept {
  if (ino < 2 || ino - 2 >= exports_.size()) return nullptr;
  return exports_[ino - 2].get();
}

}  // namespace tandem::dp::frontend
