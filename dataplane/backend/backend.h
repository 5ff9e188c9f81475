// SPDX-License-Identifier: Apache-2.0
// The backend interface: a volume's local data device or file, as bursts of block requests.
// Chosen at startup (io_uring on a file or block device, or RAM); one virtual call per burst.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

namespace tandem::dp::backend {

enum class op : uint8_t {
  read,          // into buf / iov
  write,         // from buf / iov; may carry req_fua
  flush,         // makes every write completed before this flush was submitted durable
  discard,       // deallocates where the medium can; afterwards the range reads back as zeroes
  write_zeroes,  // the range reads back as zeroes; stays allocated
};

const char* op_name(op o) noexcept;

// request::flags
inline constexpr uint8_t req_fua = 1U << 0;  // write only: durable when it completes

// One block request. Offsets and lengths are bytes and must be multiples of the backend's
// block_size; buffers (and every iovec base) must be aligned to its mem_align, and every iovec
// length a multiple of block_size. Anything else completes with -EINVAL and touches nothing.
struct request {
  op opcode = op::read;
  uint8_t flags = 0;
  uint16_t iovcnt = 0;  // 0: `buf` is one contiguous buffer; else `iov` holds iovcnt segments
  uint64_t offset = 0;
  uint64_t length = 0;  // read/write: the buffer's size (the iovecs' sum); 0 for flush
  void* buf = nullptr;
  const iovec* iov = nullptr;  // copied by submit(): it need not outlive the call
  uint64_t cookie = 0;         // the caller's, handed back in the completion

  static request read(uint64_t offset, void* buf, uint64_t length, uint64_t cookie) noexcept {
    return {op::read, 0, 0, offset, length, buf, nullptr, cookie};
  }
  static request write(uint64_t offset, const void* buf, uint64_t length, uint64_t cookie,
                       uint8_t flags = 0) noexcept {
    return {op::write, flags, 0, offset, length, const_cast<void*>(buf), nullptr, cookie};
  }
  static request readv(uint64_t offset, const iovec* iov, uint16_t iovcnt, uint64_t length,
                       uint64_t cookie) noexcept {
    return {op::read, 0, iovcnt, offset, length, nullptr, iov, cookie};
  }
  static request writev(uint64_t offset, const iovec* iov, uint16_t iovcnt, uint64_t length,
                        uint64_t cookie, uint8_t flags = 0) noexcept {
    return {op::write, flags, iovcnt, offset, length, nullptr, iov, cookie};
  }
  static request flush(uint64_t cookie) noexcept {
    return {op::flush, 0, 0, 0, 0, nullptr, nullptr, cookie};
  }
  static request discard(uint64_t offset, uint64_t length, uint64_t cookie) noexcept {
    return {op::discard, 0, 0, offset, length, nullptr, nullptr, cookie};
  }
  static request write_zeroes(uint64_t offset, uint64_t length, uint64_t cookie) noexcept {
    return {op::write_zeroes, 0, 0, offset, length, nullptr, nullptr, cookie};
  }
};

// The end of one request: its cookie and `length` on success (0 for a flush), or a negative
// errno. Short transfers are finished inside the backend and never reported.
struct completion {
  uint64_t cookie = 0;
  int64_t result = 0;
};

// Longest read or write one request may carry (io_uring's length field is 32 bits and the
// kernel caps one transfer below 2 GiB).
inline constexpr uint64_t max_rw_bytes = 1ULL << 30;
// Most iovec segments one request may carry.
inline constexpr uint16_t max_iovecs = 64;

struct geometry {
  uint64_t size = 0;                 // bytes, a multiple of block_size
  uint32_t block_size = 512;         // offsets and lengths are multiples of this
  uint32_t physical_block_size = 0;  // the device's own, when known (writes of this are atomic)
  uint32_t mem_align = 512;          // buffers are aligned to this (>= block_size)
  bool direct = false;               // O_DIRECT: no page cache between us and the device
  bool block_device = false;
};

struct backend_stats {
  uint64_t reads = 0, writes = 0, flushes = 0, discards = 0, write_zeroes = 0;  // accepted
  uint64_t read_bytes = 0, write_bytes = 0;
  uint64_t fua_writes = 0;
  uint64_t fixed_ios = 0;       // reads/writes through a registered buffer
  uint64_t invalid = 0;         // refused by validation: completed with -EINVAL
  uint64_t errors = 0;          // completions with any negative result (invalid included)
  uint64_t queue_full = 0;      // submit() calls that stopped at a full queue
  uint64_t short_ios = 0;       // short transfers continued by the backend
  uint64_t zero_fallbacks = 0;  // discards/write_zeroes that had to fall back (see docs)
  uint64_t submit_calls = 0;    // submit() calls that accepted at least one request
};

// Ordering: requests in flight are unordered, as on any block device. A flush covers exactly
// the writes whose completions the caller has reaped (or at least seen) before submitting it;
// writes still in flight when it is submitted may or may not be covered. A FUA write is durable
// when it completes, independently of any flush. To order B after A, submit B after A's
// completion.
//
// Threads: one thread (the volume's lcore) calls submit/poll/wait; nothing locks. The hot-path
// calls (submit, poll, wait) allocate nothing and throw nothing; constructors throw
// std::system_error or std::invalid_argument naming the path.
class backend {
 public:
  virtual ~backend() = default;

  // Accepts requests in order until the queue is full: returns how many were taken (each will
  // produce exactly one completion), -EAGAIN when the queue was already full, 0 for an empty
  // span. Never blocks. Invalid requests are taken too and complete with -EINVAL.
  virtual int submit(std::span<const request> reqs) noexcept = 0;
  // Hands out up to out.size() completions; returns how many. Never blocks.
  virtual int poll(std::span<completion> out) noexcept = 0;
  // For callers that do not poll (tests, tools): sleeps until at least `min` completions are
  // ready for poll() or `timeout` passes; returns how many are ready (perhaps fewer than min,
  // and poll() may hand out fewer: internal steps count too), or a negative errno.
  virtual int wait(unsigned min, std::chrono::nanoseconds timeout) noexcept = 0;

  // Registers memory that requests' buffers will lie in (the engine's buffer pool), so that a
  // read or write whose buffer lies inside one region skips the page pinning (io_uring fixed
  // buffers). Replaces any earlier registration; an empty span unregisters. Setup time only:
  // nothing may be in flight (-EBUSY). 0 or a negative errno; requests work either way.
  virtual int register_buffers(std::span<const iovec> regions) noexcept = 0;

  [[nodiscard]] virtual const geometry& geom() const noexcept = 0;
  [[nodiscard]] virtual unsigned queue_depth() const noexcept = 0;
  // Requests taken whose completions have not been handed out yet.
  [[nodiscard]] virtual unsigned in_flight() const noexcept = 0;
  [[nodiscard]] virtual const backend_stats& stats() const noexcept = 0;
  // "uring:/dev/loop3 (direct)", "mem": for logs and benchmark lines.
  [[nodiscard]] virtual std::string name() const = 0;
};

// The validation every backend applies before touching anything: 0, or -EINVAL.
int validate(const request& r, const geometry& g) noexcept;

}  // namespace tandem::dp::backend
