// SPDX-License-Identifier: Apache-2.0
// Owns a file descriptor: closes it when the scope ends, whatever happens (header only; used by
// the dataplane and by the control plane's prober).
#pragma once

#include <unistd.h>

#include <utility>

namespace tandem::dp {

class fd_guard {
 public:
  explicit fd_guard(int fd) noexcept : fd_(fd) {}
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }
  // Gives the descriptor up without closing it.
  int release() noexcept { return std::exchange(fd_, -1); }
  // Closes now and reports close()'s error (it matters after writes).
  int close() noexcept { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

}  // namespace tandem::dp
