// SPDX-License-Identifier: Apache-2.0
// Loop devices over a file: LOOP_CTL_GET_FREE, LOOP_CONFIGURE, LOOP_CLR_FD and sysfs.
#include "dataplane/frontend/loop_device.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "dataplane/base/fd_guard.h"

namespace tandem::dp::frontend {
namespace {

[[noreturn]] void fail(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

// The device node appears through devtmpfs / udev shortly after LOOP_CTL_GET_FREE created it.
int open_device(const std::string& dev) {
  for (int i = 0; i < 200; ++i) {
    const int fd = ::open(dev.c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT) return fd;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

// LOOP_GET_STATUS64 asks the backing file system for the file's attributes; a FUSE connection
// that was aborted (its server died) answers ENOTCONN.
bool on_dead_fuse(const std::string& dev) {
  fd_guard loop(::open(dev.c_str(), O_RDONLY | O_CLOEXEC));
  if (loop.get() < 0) return false;
  loop_info64 info{};
  return ::ioctl(loop.get(), LOOP_GET_STATUS64, &info) != 0 &&
         (errno == ENOTCONN || errno == ECONNABORTED);
}

}  // namespace

std::string loop_attach(const std::string& path, uint32_t block_size) {
  if (block_size < 512 || block_size > 4096 || (block_size & (block_size - 1)) != 0) {
    throw std::invalid_argument("loop block size " + std::to_string(block_size) +
                                " is not a power of two from 512 to 4096");
  }
  fd_guard file(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (file.get() < 0) fail(errno, "loop device over " + path + ": open");
  fd_guard ctl(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (ctl.get() < 0) fail(errno, "loop device over " + path + ": /dev/loop-control");
  // Another program may take the free device between our two calls: then ask again.
  for (int attempt = 0; attempt < 16; ++attempt) {
    const int n = ::ioctl(ctl.get(), LOOP_CTL_GET_FREE);
    if (n < 0) fail(errno, "loop device over " + path + ": LOOP_CTL_GET_FREE");
    const std::string dev = "/dev/loop" + std::to_string(n);
    fd_guard loop(open_device(dev));
    if (loop.get() < 0) fail(errno, "loop device over " + path + ": open " + dev);
    loop_config cfg{};
    cfg.fd = static_cast<uint32_t>(file.get());
    cfg.block_size = block_size;
    // Direct I/O: the loop driver submits its requests to the file asynchronously and in
    // parallel (without it, one at a time through the page cache), and the page cache of the
    // loop device is the only one.
    cfg.info.lo_flags = LO_FLAGS_DIRECT_IO;
    std::strncpy(reinterpret_cast<char*>(cfg.info.lo_file_name), path.c_str(), LO_NAME_SIZE - 1);
    if (::ioctl(loop.get(), LOOP_CONFIGURE, &cfg) == 0) return dev;
    if (errno != EBUSY) fail(errno, "loop device over " + path + ": LOOP_CONFIGURE on " + dev);
  }
  fail(EBUSY, "loop device over " + path + ": every free device was taken meanwhile");
}

std::optional<std::string> loop_find(const std::string& path, bool orphans) {
  const std::string base = std::filesystem::path(path).filename().string();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/sys/block", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("loop", 0) != 0) continue;
    std::ifstream in(entry.path() / "loop" / "backing_file");
    std::string backing;
    if (!std::getline(in, backing)) continue;
    // A file that went away (a dead FUSE mount) is shown with " (deleted)".
    constexpr std::string_view deleted = " (deleted)";
    if (backing.size() > deleted.size() && backing.ends_with(deleted)) {
      backing.resize(backing.size() - deleted.size());
    }
    if (backing == path) return "/dev/" + name;
    // The mount of a replicator that died was detached and replaced: the kernel shows the old
    // file from the detached mount's root ("/db"), and the file answers nothing.
    if (orphans && backing == "/" + base && on_dead_fuse("/dev/" + name)) return "/dev/" + name;
  }
  return std::nullopt;
}

void loop_detach(const std::string& device) {
  // O_EXCL on a block device fails with EBUSY while a file system (or anyone else) holds it
  // exclusively; LOOP_CLR_FD would then only schedule the unbinding for the last close.
  {
    fd_guard probe(::open(device.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC));
    if (probe.get() < 0) {
      if (errno == EBUSY) {
        throw std::runtime_error(device + " is in use (mounted?); unmount it first");
      }
      fail(errno, "open " + device);
    }
  }
  fd_guard loop(::open(device.c_str(), O_RDONLY | O_CLOEXEC));
  if (loop.get() < 0) fail(errno, "open " + device);
  if (::ioctl(loop.get(), LOOP_CLR_FD) != 0) fail(errno, device + ": LOOP_CLR_FD");
}

}  // namespace tandem::dp::frontend
