// SPDX-License-Identifier: Apache-2.0
// The RAM backend: the backend contract over memory, with a crash model and fault injection.
#include "dataplane/backend/mem_backend.h"

#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace tandem::dp::backend {
namespace {

uint64_t splitmix64(uint64_t& state) noexcept {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint8_t* zeroed(uint64_t bytes, const char* what) {
  // calloc: large images stay untouched (zero pages) until written.
  void* p = std::calloc(bytes, 1);
  if (p == nullptr) throw std::invalid_argument(std::string("mem backend: no memory for ") + what);
  return static_cast<uint8_t*>(p);
}

}  // namespace

mem_backend::mem_backend(const mem_options& opts) : qd_(opts.queue_depth) {
  const uint32_t bs = opts.block_size;
  if (!std::has_single_bit(bs) || bs < 512 || bs > 65536) {
    throw std::invalid_argument("mem backend: block_size must be a power of two in 512..65536");
  }
  const uint32_t align = opts.mem_align == 0 ? bs : opts.mem_align;
  if (!std::has_single_bit(align) || align < bs) {
    throw std::invalid_argument("mem backend: mem_align must be a power of two >= block_size");
  }
  if (qd_ == 0 || qd_ > 65536) {
    throw std::invalid_argument("mem backend: queue_depth must be in 1..65536");
  }
  geom_.size = opts.size - opts.size % bs;
  if (geom_.size == 0) throw std::invalid_argument("mem backend: size is less than one block");
  geom_.block_size = bs;
  geom_.physical_block_size = bs;
  geom_.mem_align = align;
  geom_.direct = false;
  geom_.block_device = false;
  blocks_ = geom_.size / bs;
  volatile_.reset(zeroed(geom_.size, "the volatile image"));
  durable_.reset(zeroed(geom_.size, "the durable image"));
  dirty_ = std::make_unique<uint64_t[]>((blocks_ + 63) / 64);
  ready_ = std::make_unique<completion[]>(qd_);
  shuffle_state_ = opts.shuffle_seed;
}

mem_backend::~mem_backend() = default;

uint64_t mem_backend::next_random() noexcept {
  return splitmix64(shuffle_state_);
}

void mem_backend::fail_nth(uint64_t nth, int err) noexcept {
  fail_countdown_ = nth;
  fail_nth_err_ = err;
}

void mem_backend::mark_dirty(uint64_t offset, uint64_t length, bool dirty) noexcept {
  const uint64_t first = offset / geom_.block_size;
  const uint64_t end = (offset + length) / geom_.block_size;
  for (uint64_t b = first; b < end; ++b) {
    const uint64_t bit = 1ULL << (b % 64);
    if (dirty) {
      dirty_[b / 64] |= bit;
    } else {
      dirty_[b / 64] &= ~bit;
    }
  }
}

void mem_backend::copy_block(uint8_t* to, const uint8_t* from, uint64_t block) const noexcept {
  const uint64_t off = block * geom_.block_size;
  std::memcpy(to + off, from + off, geom_.block_size);
}

uint64_t mem_backend::dirty_blocks() const noexcept {
  uint64_t n = 0;
  for (uint64_t w = 0; w < (blocks_ + 63) / 64; ++w)
    n += std::popcount(dirty_[w]);
  return n;
}

int64_t mem_backend::execute(const request& r) noexcept {
  if (const int v = validate(r, geom_); v != 0) {
    ++stats_.invalid;
    return v;
  }
  switch (r.opcode) {
    case op::read:
      ++stats_.reads;
      stats_.read_bytes += r.length;
      break;
    case op::write:
      ++stats_.writes;
      stats_.write_bytes += r.length;
      if ((r.flags & req_fua) != 0) ++stats_.fua_writes;
      break;
    case op::flush:
      ++stats_.flushes;
      break;
    case op::discard:
      ++stats_.discards;
      break;
    case op::write_zeroes:
      ++stats_.write_zeroes;
      break;
  }
  if (fail_all_ != 0) return -fail_all_;
  if (fail_countdown_ != 0 && --fail_countdown_ == 0) return -fail_nth_err_;

  const bool is_rw = r.opcode == op::read || r.opcode == op::write;
  if (is_rw && r.iovcnt == 0 && regions_.find(r.buf, r.length) >= 0) ++stats_.fixed_ios;
  uint8_t* const vol = volatile_.get();
  switch (r.opcode) {
    case op::read:
    case op::write: {
      const bool fua = (r.flags & req_fua) != 0;
      const iovec one{r.buf, r.length};
      const iovec* iov = r.iovcnt == 0 ? &one : r.iov;
      const unsigned n = r.iovcnt == 0 ? 1 : r.iovcnt;
      uint64_t off = r.offset;
      for (unsigned i = 0; i < n; ++i) {
        if (r.opcode == op::read) {
          std::memcpy(iov[i].iov_base, vol + off, iov[i].iov_len);
        } else {
          std::memcpy(vol + off, iov[i].iov_base, iov[i].iov_len);
          if (fua) std::memcpy(durable_.get() + off, iov[i].iov_base, iov[i].iov_len);
        }
        off += iov[i].iov_len;
      }
      // A FUA write leaves both images equal over whole blocks: they are clean.
      if (r.opcode == op::write) mark_dirty(r.offset, r.length, !fua);
      return static_cast<int64_t>(r.length);
    }
    case op::flush:
      for (uint64_t w = 0; w < (blocks_ + 63) / 64; ++w) {
        for (uint64_t bits = dirty_[w]; bits != 0; bits &= bits - 1) {
          copy_block(durable_.get(), vol, w * 64 + std::countr_zero(bits));
        }
        dirty_[w] = 0;
      }
      return 0;
    case op::discard:
    case op::write_zeroes:
      std::memset(vol + r.offset, 0, r.length);
      mark_dirty(r.offset, r.length, true);
      return static_cast<int64_t>(r.length);
  }
  return -EINVAL;
}

int mem_backend::submit(std::span<const request> reqs) noexcept {
  if (reqs.empty()) return 0;
  if (ready_count_ == qd_) {
    ++stats_.queue_full;
    return -EAGAIN;
  }
  int taken = 0;
  for (const request& r : reqs) {
    if (ready_count_ == qd_) {
      ++stats_.queue_full;
      break;
    }
    const int64_t res = execute(r);
    if (res < 0) ++stats_.errors;
    ready_[(ready_head_ + ready_count_) % qd_] = completion{r.cookie, res};
    ++ready_count_;
    ++taken;
  }
  ++stats_.submit_calls;
  return taken;
}

int mem_backend::poll(std::span<completion> out) noexcept {
  unsigned n = 0;
  while (n < out.size() && ready_count_ > 0) {
    if (shuffle_state_ != 0 && ready_count_ > 1) {
      const auto pick = static_cast<unsigned>(next_random() % ready_count_);
      std::swap(ready_[ready_head_], ready_[(ready_head_ + pick) % qd_]);
    }
    out[n++] = ready_[ready_head_];
    ready_head_ = (ready_head_ + 1) % qd_;
    --ready_count_;
  }
  return static_cast<int>(n);
}

int mem_backend::wait(unsigned /*min*/, std::chrono::nanoseconds /*timeout*/) noexcept {
  return static_cast<int>(ready_count_);
}

int mem_backend::register_buffers(std::span<const iovec> regions) noexcept {
  if (ready_count_ != 0) return -EBUSY;
  if (regions.empty()) {
    regions_.clear();
    return 0;
  }
  return regions_.assign(regions);
}

void mem_backend::crash(double keep_probability, uint64_t seed) noexcept {
  uint64_t rng = seed;
  uint8_t* const vol = volatile_.get();
  uint8_t* const dur = durable_.get();
  for (uint64_t w = 0; w < (blocks_ + 63) / 64; ++w) {
    for (uint64_t bits = dirty_[w]; bits != 0; bits &= bits - 1) {
      const uint64_t block = w * 64 + std::countr_zero(bits);
      // 53 random bits as a double in [0, 1).
      const double u = static_cast<double>(splitmix64(rng) >> 11) * 0x1.0p-53;
      if (u < keep_probability) {
        copy_block(dur, vol, block);
      } else {
        copy_block(vol, dur, block);
      }
    }
    dirty_[w] = 0;
  }
  lost_completions_ += ready_count_;
  ready_head_ = 0;
  ready_count_ = 0;
}

}  // namespace tandem::dp::backend
