// SPDX-License-Identifier: Apache-2.0
// Registered buffer regions (backend::register_buffers), sorted for the lookup on each request.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <new>
#include <span>
#include <vector>

namespace tandem::dp::backend {

class buffer_regions {
 public:
  // Keeps the regions (setup time: this allocates). 0, or -EINVAL for an empty or null region,
  // -ENOMEM.
  int assign(std::span<const iovec> regions) noexcept {
    sorted_.clear();
    try {
      sorted_.reserve(regions.size());
      for (size_t i = 0; i < regions.size(); ++i) {
        const auto begin = reinterpret_cast<uintptr_t>(regions[i].iov_base);
        if (begin == 0 || regions[i].iov_len == 0) {
          sorted_.clear();
          return -EINVAL;
        }
        sorted_.push_back({begin, begin + regions[i].iov_len, static_cast<int>(i)});
      }
    } catch (const std::bad_alloc&) {
      sorted_.clear();
      return -ENOMEM;
    }
    std::sort(sorted_.begin(), sorted_.end(),
              [](const region& a, const region& b) { return a.begin < b.begin; });
    return 0;
  }

  void clear() noexcept { sorted_.clear(); }
  [[nodiscard]] bool empty() const noexcept { return sorted_.empty(); }
  [[nodiscard]] size_t size() const noexcept { return sorted_.size(); }

  // The index (in the order given to assign) of a region holding all of [p, p + len), or -1.
  [[nodiscard]] int find(const void* p, uint64_t len) const noexcept {
    if (sorted_.empty()) return -1;
    const auto begin = reinterpret_cast<uintptr_t>(p);
    auto it = std::upper_bound(sorted_.begin(), sorted_.end(), begin,
                               [](uintptr_t b, const region& r) { return b < r.begin; });
    if (it == sorted_.begin()) return -1;
    --it;
    return begin < it->end && len <= it->end - begin ? it->index : -1;
  }

 private:
  struct region {
    uintptr_t begin;
    uintptr_t end;
    int index;
  };
  std::vector<region> sorted_;
};

}  // namespace tandem::dp::backend
