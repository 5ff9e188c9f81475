// SPDX-License-Identifier: Apache-2.0
// Backend test helpers: temp files, loop devices (RAII), aligned buffers and completion drains.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "control/exec/process.h"
#include "dataplane/backend/backend.h"
#include "dataplane/backend/mem_backend.h"
#include "dataplane/backend/uring_backend.h"

namespace tandem::dp::backend::test {

inline constexpr long tmpfs_magic = 0x01021994;  // TMPFS_MAGIC

// A sparse temporary file of `size` bytes in `dir`, removed by the destructor.
class temp_file {
 public:
  temp_file(const std::string& dir, uint64_t size) {
    std::string templ = dir + "/tandem-backend-XXXXXX";
    const int fd = ::mkstemp(templ.data());
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "mkstemp in " + dir);
    path_ = templ;
    const int r = ::ftruncate(fd, static_cast<off_t>(size));
    const int err = errno;
    ::close(fd);
    if (r != 0) {
      ::unlink(path_.c_str());
      throw std::system_error(err, std::generic_category(), "ftruncate " + path_);
    }
  }
  ~temp_file() { ::unlink(path_.c_str()); }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A loop device over a file (losetup --direct-io=on), detached by the destructor even when the
// test fails.
class loop_device {
 public:
  explicit loop_device(const std::string& file) {
    std::string out = ctl::run_checked({"losetup", "--find", "--show", "--direct-io=on", file});
    while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
      out.pop_back();
    if (out.rfind("/dev/", 0) != 0) throw std::runtime_error("losetup printed: " + out);
    path_ = out;
  }
  ~loop_device() {
    if (!path_.empty()) ctl::run({"losetup", "-d", path_});
  }
  loop_device(const loop_device&) = delete;
  loop_device& operator=(const loop_device&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Where losetup can run: root, /dev/loop-control and the losetup binary. Empty when it can,
// else why not.
inline std::string loop_unavailable() {
  if (::geteuid() != 0) return "loop devices need root";
  if (::access("/dev/loop-control", R_OK | W_OK) != 0) return "no /dev/loop-control";
  const ctl::run_result r = ctl::run({"losetup", "--version"});
  if (!r.status.ok()) return "losetup is not available: " + r.output;
  return "";
}

inline bool is_tmpfs(const std::string& dir) {
  struct statfs s {};
  return ::statfs(dir.c_str(), &s) == 0 && s.f_type == tmpfs_magic;
}

struct free_deleter {
  void operator()(void* p) const noexcept { std::free(p); }
};
using buffer = std::unique_ptr<uint8_t[], free_deleter>;

// `bytes` (rounded up to 4096) aligned to 4096, zeroed.
inline buffer aligned_buffer(size_t bytes) {
  const size_t n = (bytes + 4095) / 4096 * 4096;
  void* p = std::aligned_alloc(4096, n);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, n);
  return buffer(static_cast<uint8_t*>(p));
}

// Collects at least n completions, sleeping in wait() when none is ready; throws after timeout.
inline std::vector<completion> drain(backend& b, size_t n,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  std::vector<completion> out;
  out.reserve(n);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  completion batch[64];
  while (out.size() < n) {
    const int got = b.poll(batch);
    if (got < 0) throw std::runtime_error("poll: " + std::to_string(got));
    out.insert(out.end(), batch, batch + got);
    if (got == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("timed out with " + std::to_string(out.size()) + " of " +
                                 std::to_string(n) + " completions");
      }
      const int w = b.wait(1, std::chrono::milliseconds(50));
      if (w < 0) throw std::runtime_error("wait: " + std::to_string(w));
    }
  }
  return out;
}

// Submits one request and returns its result.
inline int64_t run_one(backend& b, const request& r) {
  const int taken = b.submit({&r, 1});
  if (taken != 1) throw std::runtime_error("submit: " + std::to_string(taken));
  const std::vector<completion> c = drain(b, 1);
  if (c.size() != 1 || c[0].cookie != r.cookie) throw std::runtime_error("wrong completion");
  return c[0].result;
}

// What a backend under test runs on.
enum class kind { mem, file, tmpfs, loop };

inline const char* kind_name(kind k) {
  switch (k) {
    case kind::mem:
      return "mem";
    case kind::file:
      return "file";
    case kind::tmpfs:
      return "tmpfs";
    case kind::loop:
      return "loop";
  }
  return "?";
}

// A backend and what it stands on, torn down in the right order: the backend, then the loop
// device, then the file.
struct target {
  std::unique_ptr<temp_file> file;
  std::unique_ptr<loop_device> loop;
  std::unique_ptr<backend> b;

  void reset() {
    b.reset();
    loop.reset();
    file.reset();
  }
};

inline constexpr const char* file_dir = "/var/tmp";
inline constexpr const char* tmpfs_dir = "/dev/shm";

// Opens a backend of `size` bytes on `k`. Returns why it cannot here (for GTEST_SKIP), or "".
inline std::string open_target(kind k, uint64_t size, unsigned qd, target& t,
                               uint32_t block_size = 0) {
  if (k == kind::mem) {
    mem_options o;
    o.size = size;
    o.queue_depth = qd;
    if (block_size != 0) o.block_size = block_size;
    t.b = std::make_unique<mem_backend>(o);
    return "";
  }
  if (k == kind::tmpfs && !is_tmpfs(tmpfs_dir)) return std::string(tmpfs_dir) + " is not tmpfs";
  if (k == kind::loop) {
    if (std::string why = loop_unavailable(); !why.empty()) return why;
  }
  t.file = std::make_unique<temp_file>(k == kind::tmpfs ? tmpfs_dir : file_dir, size);
  uring_options o;
  o.path = t.file->path();
  if (k == kind::loop) {
    t.loop = std::make_unique<loop_device>(t.file->path());
    o.path = t.loop->path();
  }
  o.queue_depth = qd;
  o.block_size = block_size;
  t.b = std::make_unique<uring_backend>(o);
  return "";
}

}  // namespace tandem::dp::backend::test
