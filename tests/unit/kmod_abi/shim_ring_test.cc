// SPDX-License-Identifier: Apache-2.0
// shim_ring without a kernel: the descriptor parser, the layout check, and one queue's rings with
// the test playing the kernel's side of the protocol (kmod/uapi/tandem_blk.h).
#include "dataplane/frontend/shim_ring.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tandem::dp::frontend {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr uint64_t dev_size = 1 << 20;

shim_geometry geometry(uint64_t features = TANDEM_BLK_F_ALL) {
  return {.dev_size = dev_size,
          .logical_bs = 512,
          .queue_depth = 8,
          .max_io_bytes = 64 * 1024,
          .features = features};
}

tandem_blk_sqe sqe(uint8_t op, uint64_t offset, uint32_t length, uint16_t tag = 3,
                   uint32_t seq = 7) {
  tandem_blk_sqe s{};
  s.tag = tag;
  s.op = op;
  s.seq = seq;
  s.offset = offset;
  s.length = length;
  return s;
}

int parse_error(const tandem_blk_sqe& s, const shim_geometry& g = geometry()) {
  return parse_descriptor(s, g).error;
}

TEST(shim_descriptor, valid_requests_parse) {
  auto r = parse_descriptor(sqe(TANDEM_BLK_OP_READ, 4096, 8192, 5, 42), geometry());
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.op, shim_op::read);
  EXPECT_EQ(r.tag, 5);
  EXPECT_EQ(r.seq, 42u);
  EXPECT_EQ(r.offset, 4096u);
  EXPECT_EQ(r.length, 8192u);
  EXPECT_FALSE(r.fua);

  auto w = sqe(TANDEM_BLK_OP_WRITE, 0, 512);
  w.flags = TANDEM_BLK_SQE_F_FUA;
  r = parse_descriptor(w, geometry());
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.op, shim_op::write);
  EXPECT_TRUE(r.fua);

  EXPECT_EQ(parse_descriptor(sqe(TANDEM_BLK_OP_FLUSH, 0, 0), geometry()).op, shim_op::flush);
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_FLUSH, 0, 0)), 0);
  EXPECT_EQ(parse_descriptor(sqe(TANDEM_BLK_OP_DISCARD, 0, dev_size), geometry()).op,
            shim_op::discard);
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_DISCARD, 0, dev_size)), 0);  // longer than max_io
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_WRITE_ZEROES, 512, 1024)), 0);
  // The last block of the device.
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_READ, dev_size - 512, 512)), 0);
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_WRITE, 0, 64 * 1024, 7)), 0);
}

TEST(shim_descriptor, malformed_descriptors_are_rejected) {
  auto bad = sqe(TANDEM_BLK_OP_READ, 0, 512);
  bad.reserved0 = 1;
  EXPECT_EQ(parse_error(bad), -EINVAL) << "reserved0";
  bad = sqe(TANDEM_BLK_OP_READ, 0, 512);
  bad.reserved1 = 1ull << 63;
  EXPECT_EQ(parse_error(bad), -EINVAL) << "reserved1";
  bad = sqe(TANDEM_BLK_OP_WRITE, 0, 512);
  bad.flags = 0x80;
  EXPECT_EQ(parse_error(bad), -EINVAL) << "unknown flag";
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_READ, 0, 512, 8)), -EINVAL) << "tag == depth";
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_READ, 0, 512, 0xffff)), -EINVAL) << "tag";
  EXPECT_EQ(parse_error(sqe(5, 0, 512)), -EINVAL) << "unknown op";
  EXPECT_EQ(parse_error(sqe(0xff, 0, 512)), -EINVAL) << "unknown op";
}

TEST(shim_descriptor, ranges_lengths_and_alignment_are_checked) {
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_READ, 0, 0)), -EINVAL) << "empty read";
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_WRITE, 100, 512)), -EINVAL) << "unaligned offset";
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_WRITE, 0, 1000)), -EINVAL) << "unaligned length";
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_READ, 0, 64 * 1024 + 512)), -EINVAL) << "> max_io";
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_READ, dev_size, 512)), -EINVAL) << "past the end";
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_READ, dev_size - 512, 1024)), -EINVAL) << "straddles";
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_READ, ~uint64_t{511}, 1024)), -EINVAL) << "wraps";
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_DISCARD, 0, 0)), -EINVAL) << "empty discard";
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_DISCARD, 0, dev_size + 512)), -EINVAL);
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_WRITE_ZEROES, 1, 512)), -EINVAL);
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_FLUSH, 512, 0)), -EINVAL) << "flush with offset";
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_FLUSH, 0, 512)), -EINVAL) << "flush with length";

  // A 4 KiB-sector device rejects 512-byte alignment.
  auto g = geometry();
  g.logical_bs = 4096;
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_READ, 512, 4096), g), -EINVAL);
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_READ, 4096, 512), g), -EINVAL);
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_READ, 4096, 4096), g), 0);
  // Huge discards stop at the ABI's limit even on a huge device.
  g.dev_size = uint64_t{1} << 40;
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_DISCARD, 0, TANDEM_BLK_MAX_DISCARD_BYTES), g), 0);
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_DISCARD, 0, TANDEM_BLK_MAX_DISCARD_BYTES + 4096), g),
            -EINVAL);
}

TEST(shim_descriptor, ops_need_their_granted_features) {
  const auto none = geometry(0);
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_READ, 0, 512), none), 0);
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_WRITE, 0, 512), none), 0);
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_FLUSH, 0, 0), none), -EINVAL);
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_DISCARD, 0, 512), none), -EINVAL);
  EXPECT_EQ(parse_error(sqe(TANDEM_BLK_OP_WRITE_ZEROES, 0, 512), none), -EINVAL);
  auto fua = sqe(TANDEM_BLK_OP_WRITE, 0, 512);
  fua.flags = TANDEM_BLK_SQE_F_FUA;
  EXPECT_EQ(parse_error(fua, geometry(TANDEM_BLK_F_FLUSH)), -EINVAL) << "FUA not granted";
  auto fua_read = sqe(TANDEM_BLK_OP_READ, 0, 512);
  fua_read.flags = TANDEM_BLK_SQE_F_FUA;
  EXPECT_EQ(parse_error(fua_read), -EINVAL) << "FUA on a read";
  auto fua_flush = sqe(TANDEM_BLK_OP_FLUSH, 0, 0);
  fua_flush.flags = TANDEM_BLK_SQE_F_FUA;
  EXPECT_EQ(parse_error(fua_flush), -EINVAL) << "FUA on a flush";
}

// ---- layout and rings ----

size_t page_size() {
  return static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

// The layout the driver computes (tandem_check_params in kmod/tandem_blk.c).
tandem_blk_layout kernel_layout(const tandem_blk_params& p) {
  auto align = [](uint64_t v, uint64_t a) { return (v + a - 1) / a * a; };
  tandem_blk_layout l{};
  l.header_size = sizeof(tandem_blk_ring_header);
  l.sq_offset = static_cast<uint32_t>(align(l.header_size, 64));
  l.sq_entries = p.queue_depth;
  l.cq_offset =
      static_cast<uint32_t>(align(l.sq_offset + l.sq_entries * sizeof(tandem_blk_sqe), 64));
  l.cq_entries = p.queue_depth;
  l.data_offset = align(l.cq_offset + l.cq_entries * sizeof(tandem_blk_cqe), page_size());
  l.data_slot_size = p.max_io_bytes;
  l.data_size = uint64_t{p.queue_depth} * p.max_io_bytes;
  l.region_size = align(l.data_offset + l.data_size, page_size());
  l.queue_stride = l.region_size;
  return l;
}

tandem_blk_params params(uint32_t depth = 8) {
  tandem_blk_params p{};
  p.size = sizeof p;
  p.dev_size = dev_size;
  p.features = TANDEM_BLK_F_ALL;
  p.logical_bs = 512;
  p.physical_bs = 512;
  p.nr_queues = 1;
  p.queue_depth = depth;
  p.max_io_bytes = 64 * 1024;
  p.timeout_ms = 1000;
  return p;
}

TEST(shim_layout, the_drivers_layout_passes_and_broken_ones_throw) {
  auto p = params();
  auto l = kernel_layout(p);
  EXPECT_NO_THROW(check_layout(p, l));

  auto expect_bad = [&](auto mutate, const char* what) {
    auto bl = l;
    auto bp = p;
    mutate(bp, bl);
    EXPECT_THROW(check_layout(bp, bl), std::runtime_error) << what;
  };
  expect_bad([](auto&, auto& x) { x.sq_entries = 4; }, "sq entries");
  expect_bad([](auto& y, auto& x) { y.queue_depth = 6, x.sq_entries = x.cq_entries = 6; },
             "not a power of two");
  expect_bad([](auto&, auto& x) { x.region_size += 1; }, "region not page aligned");
  expect_bad([](auto&, auto& x) { x.queue_stride = x.region_size - page_size(); }, "stride");
  expect_bad([](auto&, auto& x) { x.data_offset += 4096 * 1024; }, "data outside");
  expect_bad([](auto&, auto& x) { x.data_slot_size = 4096; }, "slots too small");
  expect_bad([](auto&, auto& x) { x.cq_offset = static_cast<uint32_t>(x.region_size); }, "cq");
  expect_bad([](auto&, auto& x) { x.sq_offset = 3; }, "sq misaligned");
  expect_bad([](auto&, auto& x) { x.header_size = 64; }, "short header");
  try {
    auto bl = l;
    bl.cq_entries = 2;
    check_layout(p, bl);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("GET_DEV_INFO"));
  }
}

// One queue's region in ordinary memory; the test writes what the kernel would.
class fake_kernel {
 public:
  explicit fake_kernel(uint32_t depth = 8, int event_fd = -1)
      : params_(params(depth)),
        layout_(kernel_layout(params_)),
        mem_(static_cast<std::byte*>(std::aligned_alloc(page_size(), layout_.region_size))),
        event_fd_(event_fd) {
    std::memset(mem_.get(), 0, layout_.region_size);
  }

  shim_queue queue(int commit_fd = -1) {
    return shim_queue({mem_.get(), layout_.region_size}, layout_, shim_geometry::from(params_), 0,
                      event_fd_, commit_fd);
  }
  tandem_blk_ring_header& hdr() {
    return *reinterpret_cast<tandem_blk_ring_header*>(mem_.get() + layout_.header_offset);
  }
  tandem_blk_sqe* sq() { return reinterpret_cast<tandem_blk_sqe*>(mem_.get() + layout_.sq_offset); }
  tandem_blk_cqe* cq() { return reinterpret_cast<tandem_blk_cqe*>(mem_.get() + layout_.cq_offset); }
  std::byte* slot(unsigned tag) {
    return mem_.get() + layout_.data_offset + size_t{tag} * layout_.data_slot_size;
  }
  uint32_t mask() const { return layout_.sq_entries - 1; }

  // Publishes a descriptor like ->queue_rq: entry, release store of sq_prod, full barrier, and
  // an eventfd signal only when the server asked for one.
  bool submit(const tandem_blk_sqe& s) {
    auto prod = std::atomic_ref<uint32_t>(hdr().sq_prod);
    uint32_t p = prod.load(std::memory_order_relaxed);
    sq()[p & mask()] = s;
    prod.store(p + 1, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    bool wake = (std::atomic_ref<uint32_t>(hdr().flags).load(std::memory_order_relaxed) &
                 TANDEM_BLK_RING_NEED_WAKEUP) != 0;
    if (wake && event_fd_ >= 0) {
      uint64_t one = 1;
      EXPECT_EQ(::write(event_fd_, &one, sizeof one), 8);
    }
    return wake;
  }
  // Reaps like COMMIT: every completion up to cq_prod.
  std::vector<tandem_blk_cqe> reap() {
    std::vector<tandem_blk_cqe> out;
    uint32_t prod = std::atomic_ref<uint32_t>(hdr().cq_prod).load(std::memory_order_acquire);
    uint32_t& cons = hdr().cq_cons;
    while (cons != prod) {
      out.push_back(cq()[cons & mask()]);
      ++cons;
    }
    return out;
  }

 private:
  struct free_deleter {
    void operator()(std::byte* p) const { std::free(p); }
  };
  tandem_blk_params params_;
  tandem_blk_layout layout_;
  std::unique_ptr<std::byte, free_deleter> mem_;
  int event_fd_;
};

TEST(shim_queue, peek_takes_published_descriptors_in_order_and_validates_them) {
  fake_kernel k;
  auto q = k.queue();
  shim_request out[2];
  EXPECT_FALSE(q.pending());
  EXPECT_EQ(q.peek(out), 0u);

  k.submit(sqe(TANDEM_BLK_OP_WRITE, 0, 4096, 1, 10));
  k.submit(sqe(TANDEM_BLK_OP_READ, 8192, 512, 2, 11));
  k.submit(sqe(TANDEM_BLK_OP_READ, 8192, 512, 9, 12));  // tag out of range
  EXPECT_TRUE(q.pending());
  ASSERT_EQ(q.peek(out), 2u);
  EXPECT_EQ(out[0].op, shim_op::write);
  EXPECT_EQ(out[0].tag, 1);
  EXPECT_EQ(out[0].seq, 10u);
  EXPECT_EQ(out[1].op, shim_op::read);
  EXPECT_EQ(out[1].offset, 8192u);
  EXPECT_EQ(k.hdr().sq_cons, 2u) << "the server publishes what it took";
  ASSERT_EQ(q.peek(out), 1u);
  EXPECT_EQ(out[0].error, -EINVAL);
  EXPECT_EQ(out[0].seq, 12u);
  EXPECT_FALSE(q.pending());
  EXPECT_EQ(q.peek(out), 0u);
}

TEST(shim_queue, indexes_run_free_across_the_32_bit_wrap) {
  fake_kernel k(4);
  k.hdr().sq_prod = k.hdr().sq_cons = 0xfffffffeu;
  k.hdr().cq_prod = k.hdr().cq_cons = 0xffffffffu;
  auto q = k.queue();
  shim_request out[8];
  for (uint32_t i = 0; i < 4; ++i) {
    k.submit(sqe(TANDEM_BLK_OP_READ, i * 512, 512, static_cast<uint16_t>(i), 100 + i));
  }
  ASSERT_EQ(q.peek(out), 4u);
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(out[i].seq, 100 + i);
    EXPECT_EQ(q.complete(out[i].tag, out[i].seq, 0), 0);
  }
  EXPECT_EQ(k.hdr().sq_cons, 2u);
  EXPECT_EQ(q.complete(0, 1, 0), -EAGAIN) << "four completions fill a depth-4 ring";
  auto cqes = k.reap();
  ASSERT_EQ(cqes.size(), 4u);
  for (uint32_t i = 0; i < 4; ++i)
    EXPECT_EQ(cqes[i].seq, 100 + i);
  EXPECT_EQ(k.hdr().cq_cons, 3u);
}

TEST(shim_queue, completions_are_written_published_and_committed_per_batch) {
  fake_kernel k;
  auto q = k.queue();
  EXPECT_EQ(q.commit(), 0) << "nothing to commit";
  EXPECT_EQ(q.complete(3, 77, 0), 0);
  EXPECT_EQ(q.complete(4, 78, -EIO), 0);
  EXPECT_EQ(k.hdr().cq_prod, 2u);
  EXPECT_EQ(q.commit(), 2);
  EXPECT_EQ(q.commit(), 0);
  auto cqes = k.reap();
  ASSERT_EQ(cqes.size(), 2u);
  EXPECT_EQ(cqes[0].tag, 3);
  EXPECT_EQ(cqes[0].seq, 77u);
  EXPECT_EQ(cqes[0].result, 0);
  EXPECT_EQ(cqes[1].tag, 4);
  EXPECT_EQ(cqes[1].result, -EIO);
  EXPECT_EQ(cqes[1].reserved0, 0);
  EXPECT_EQ(cqes[1].reserved1, 0u);

  // A full ring refuses more until the kernel reaps.
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(q.complete(0, i, 0), 0);
  EXPECT_EQ(q.complete(0, 9, 0), -EAGAIN);
  EXPECT_EQ(k.reap().size(), 8u);
  EXPECT_EQ(q.complete(0, 9, 0), 0);
}

TEST(shim_queue, data_slots_are_the_tags) {
  fake_kernel k;
  auto q = k.queue();
  auto s = q.data(5);
  ASSERT_EQ(s.size(), 64u * 1024);
  EXPECT_EQ(s.data(), k.slot(5));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s.data()) % page_size(), 0u);
  EXPECT_TRUE(q.data(8).empty());
  EXPECT_TRUE(q.data(0xffff).empty());
}

TEST(shim_queue, wait_times_out_then_wakes_on_the_eventfd_only_when_asked) {
  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_efd{efd};
  fake_kernel k(8, efd);
  auto q = k.queue();

  // Busy server: no wake-up requested, so the kernel does not signal.
  EXPECT_FALSE(k.submit(sqe(TANDEM_BLK_OP_READ, 0, 512)));
  EXPECT_EQ(q.wait(1000ms), 1) << "already pending";
  shim_request out[4];
  EXPECT_EQ(q.peek(out), 1u);

  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(q.wait(50ms), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);
  EXPECT_EQ(k.hdr().flags & TANDEM_BLK_RING_NEED_WAKEUP, 0u) << "cleared after waiting";

  // Idle server: asleep on the eventfd; the kernel sees NEED_WAKEUP and signals.
  std::atomic<bool> signalled{false};
  std::thread kernel([&] {
    std::this_thread::sleep_for(100ms);
    signalled = k.submit(sqe(TANDEM_BLK_OP_WRITE, 512, 512));
  });
  start = std::chrono::steady_clock::now();
  int r = q.wait(10s);
  auto waited = std::chrono::steady_clock::now() - start;
  kernel.join();
  EXPECT_EQ(r, 1);
  EXPECT_TRUE(signalled) << "NEED_WAKEUP was set while asleep";
  EXPECT_LT(waited, 5s);
  EXPECT_EQ(q.peek(out), 1u);
  EXPECT_EQ(out[0].op, shim_op::write);
  EXPECT_EQ(k.hdr().flags & TANDEM_BLK_RING_NEED_WAKEUP, 0u);
}

TEST(shim_queue, wait_without_an_eventfd_polls) {
  fake_kernel k;
  auto q = k.queue();
  std::thread kernel([&] {
    std::this_thread::sleep_for(30ms);
    k.submit(sqe(TANDEM_BLK_OP_READ, 0, 512));
  });
  EXPECT_EQ(q.wait(5s), 1);
  kernel.join();
}

TEST(shim_control, errors_name_the_device_and_say_what_to_do) {
  try {
    shim_control c("/nonexistent/tandem-control");
    FAIL() << "opened a missing device";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/tandem-control"));
    EXPECT_THAT(e.what(), HasSubstr("tandem.ko"));
  }
  try {
    shim_device d(3, "/nonexistent");
    FAIL() << "attached to a missing device";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/tandemc3"));
  }
  // Not a tandem device: GET_DEV_INFO fails and names the ioctl.
  char dir[] = "/tmp/shim-ring-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string fake = std::string(dir) + "/tandemc0";
  ASSERT_EQ(::close(::open(fake.c_str(), O_CREAT | O_RDWR, 0600)), 0);
  try {
    shim_device d(0, dir);
    ADD_FAILURE() << "attached to a plain file";
  } catch (const std::system_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("TANDEM_BLK_IOC_GET_DEV_INFO"));
    EXPECT_THAT(e.what(), HasSubstr(fake));
  }
  ::unlink(fake.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace tandem::dp::frontend
