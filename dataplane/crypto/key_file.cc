// SPDX-License-Identifier: Apache-2.0
// Loading and generating key files, with the size, type and permission checks.
#include "dataplane/crypto/key_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <system_error>

#include "dataplane/base/fd_guard.h"
#include "dataplane/crypto/kdf.h"

namespace tandem::dp {
namespace {

constexpr bool valid_key_size(size_t n) noexcept {
  return n == 16 || n == 24 || n == 32;
}

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

// Wipes a stack buffer however the scope is left.
template <size_t N>
struct wiped_buffer {
  uint8_t bytes[N] = {};
  ~wiped_buffer() { secure_wipe(bytes); }
};

const char* file_type(mode_t mode) noexcept {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

std::string octal_mode(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string size_error(const std::string& path, size_t size) {
  return "key file " + path + " holds " + std::to_string(size) +
         " bytes: expected 16, 24 or 32 raw random bytes (AES-128/192/256), not text; e.g. "
         "`head -c 32 /dev/urandom > " +
         path + "`";
}

}  // namespace

std::vector<uint8_t> load_key_file(const std::string& path) {
  // O_NONBLOCK: opening a FIFO by mistake must not hang; it is refused below.
  const fd_guard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) throw_errno(errno, "cannot open key file " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno(errno, "cannot stat key file " + path);
  if (!S_ISREG(st.st_mode)) {
    throw std::runtime_error("key file " + path + " is " + file_type(st.st_mode) +
                             ": expected a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    throw std::runtime_error("key file " + path + " has mode " + octal_mode(st.st_mode) +
                             ": group and others must have no access to it; run `chmod 600 " +
                             path + "`");
  }
  const auto size = static_cast<size_t>(st.st_size);
  if (!valid_key_size(size)) throw std::runtime_error(size_error(path, size));

  // Read one byte more than the largest key, to notice a file that grew since fstat.
  wiped_buffer<33> buf;
  size_t got = 0;
  while (got < sizeof buf.bytes) {
    const ssize_t n = ::read(fd.get(), buf.bytes + got, sizeof buf.bytes - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(errno, "cannot read key file " + path);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got != size) {
    throw std::runtime_error("key file " + path + " changed while being read (" +
                             std::to_string(size) + " bytes, then " + std::to_string(got) + ")");
  }
  std::vector<uint8_t> key;
  key.reserve(got);  // exactly once: no reallocation leaves a stray copy behind
  key.assign(buf.bytes, buf.bytes + got);
  return key;
}

void generate_key_file(const std::string& path, size_t bytes) {
  if (!valid_key_size(bytes)) {
    throw std::runtime_error("cannot generate key file " + path + " of " + std::to_string(bytes) +
                             " bytes: expected 16, 24 or 32");
  }
  wiped_buffer<32> key;
  random_bytes({key.bytes, bytes});

  fd_guard fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) throw_errno(errno, "cannot create key file " + path);
  auto fail = [&](const std::string& what) {
    const int err = errno;
    ::unlink(path.c_str());
    throw_errno(err, what + " " + path);
  };
  // The umask may only have removed bits; make the mode exact.
  if (::fchmod(fd.get(), 0600) != 0) fail("cannot chmod key file");
  size_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::write(fd.get(), key.bytes + done, bytes - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write key file");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) fail("cannot fsync key file");
  if (fd.close() != 0) fail("cannot close key file");
}

}  // namespace tandem::dp
