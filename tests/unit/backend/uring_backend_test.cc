// SPDX-License-Identifier: Apache-2.0
// The io_uring backend: O_DIRECT detection, open errors, exclusive block devices, the discard
// and write_zeroes fallbacks, and destruction with requests in flight.
#include "dataplane/backend/uring_backend.h"

#include <sys/stat.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/backend/targets.h"

namespace tandem::dp::backend {
namespace {

using test::aligned_buffer;
using test::loop_device;
using test::run_one;
using test::temp_file;

constexpr uint64_t size = 16ULL << 20;

uring_options on(const std::string& path, io_mode mode = io_mode::automatic) {
  uring_options o;
  o.path = path;
  o.mode = mode;
  o.queue_depth = 32;
  return o;
}

template <typename E>
std::string error_of(const uring_options& o) {
  try {
    uring_backend b(o);
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

// What the kernel says about O_DIRECT on this file: the expectation for the automatic mode.
bool kernel_reports_dio(const std::string& path) {
  struct statx sx {};
  return ::statx(AT_FDCWD, path.c_str(), 0, STATX_DIOALIGN, &sx) == 0 &&
         (sx.stx_mask & STATX_DIOALIGN) != 0 && sx.stx_dio_offset_align != 0;
}

TEST(uring_backend, tmpfs_is_buffered) {
  if (!test::is_tmpfs(test::tmpfs_dir)) GTEST_SKIP() << "no tmpfs at " << test::tmpfs_dir;
  temp_file f(test::tmpfs_dir, size);
  uring_backend b(on(f.path()));
  EXPECT_FALSE(b.geom().direct);
  EXPECT_FALSE(b.geom().block_device);
  EXPECT_EQ(b.geom().block_size, 512U);
  EXPECT_EQ(b.geom().size, size);
  EXPECT_EQ(b.name(), "uring:" + f.path() + " (buffered)");
  // Demanding O_DIRECT there fails and names the file.
  const std::string err = error_of<std::invalid_argument>(on(f.path(), io_mode::direct));
  EXPECT_NE(err.find(f.path()), std::string::npos) << err;
  EXPECT_NE(err.find("O_DIRECT"), std::string::npos) << err;
}

TEST(uring_backend, a_file_is_direct_where_the_kernel_reports_alignment) {
  temp_file f(test::file_dir, size);
  uring_backend b(on(f.path()));
  EXPECT_EQ(b.geom().direct, kernel_reports_dio(f.path())) << b.name();
  EXPECT_EQ(b.geom().size, size);
  if (b.geom().direct) {
    EXPECT_EQ(b.name(), "uring:" + f.path() + " (direct)");
  }
  uring_backend buffered(on(f.path(), io_mode::buffered));
  EXPECT_FALSE(buffered.geom().direct);
  EXPECT_EQ(buffered.geom().block_size, 512U);
  EXPECT_EQ(buffered.geom().mem_align, 512U);
}

TEST(uring_backend, a_loop_device_is_direct) {
  if (std::string why = test::loop_unavailable(); !why.empty()) GTEST_SKIP() << why;
  temp_file f(test::file_dir, size);
  loop_device loop(f.path());
  uring_backend b(on(loop.path()));
  EXPECT_TRUE(b.geom().direct);
  EXPECT_TRUE(b.geom().block_device);
  EXPECT_EQ(b.geom().size, size);
  EXPECT_GE(b.geom().block_size, 512U);
  EXPECT_GE(b.geom().physical_block_size, b.geom().block_size);
  EXPECT_EQ(b.name(), "uring:" + loop.path() + " (direct)");
  // O_EXCL: a second backend on the same device is refused while the first holds it.
  const std::string err = error_of<std::system_error>(on(loop.path()));
  EXPECT_NE(err.find(loop.path()), std::string::npos) << err;
  EXPECT_NE(err.find("busy"), std::string::npos) << err;
  uring_options shared = on(loop.path());
  shared.exclusive = false;
  EXPECT_NO_THROW(uring_backend second(shared));
}

TEST(uring_backend, setup_errors_name_the_path) {
  std::string err = error_of<std::system_error>(on("/nonexistent/tandem-volume"));
  EXPECT_NE(err.find("/nonexistent/tandem-volume"), std::string::npos) << err;
  err = error_of<std::invalid_argument>(on("/var/tmp"));
  EXPECT_NE(err.find("/var/tmp: not a regular file or block device"), std::string::npos) << err;
  temp_file empty(test::file_dir, 100);
  err = error_of<std::invalid_argument>(on(empty.path()));
  EXPECT_NE(err.find("smaller than one block"), std::string::npos) << err;
  temp_file f(test::file_dir, size);
  uring_options o = on(f.path());
  o.block_size = 1000;
  err = error_of<std::invalid_argument>(o);
  EXPECT_NE(err.find("block_size 1000"), std::string::npos) << err;
  o = on(f.path());
  o.queue_depth = 0;
  err = error_of<std::invalid_argument>(o);
  EXPECT_NE(err.find("queue_depth"), std::string::npos) << err;
}

TEST(uring_backend, size_is_rounded_down_to_the_block_size) {
  temp_file f(test::file_dir, size + 700);
  uring_options o = on(f.path(), io_mode::buffered);
  o.block_size = 4096;
  uring_backend b(o);
  EXPECT_EQ(b.geom().size, size);
}

TEST(uring_backend, write_zeroes_falls_back_to_writes_on_tmpfs) {
  if (!test::is_tmpfs(test::tmpfs_dir)) GTEST_SKIP() << "no tmpfs at " << test::tmpfs_dir;
  temp_file f(test::tmpfs_dir, size);
  uring_backend b(on(f.path()));
  auto buf = aligned_buffer(4 << 20);
  std::memset(buf.get(), 0x5a, 4 << 20);
  ASSERT_EQ(run_one(b, request::write(0, buf.get(), 4 << 20, 1)), 4 << 20);
  // tmpfs has no FALLOC_FL_ZERO_RANGE: zeroes are written, 1 MiB at a time.
  ASSERT_EQ(run_one(b, request::write_zeroes(512, (3 << 20) + 512, 2)), (3 << 20) + 512);
  EXPECT_EQ(b.stats().zero_fallbacks, 1U);
  // The next one goes straight to the writes, and is counted once.
  ASSERT_EQ(run_one(b, request::write_zeroes(0, 512, 3)), 512);
  EXPECT_EQ(b.stats().zero_fallbacks, 2U);
  // Punching holes works on tmpfs: no fallback for discard.
  ASSERT_EQ(run_one(b, request::discard(8 << 20, 1 << 20, 4)), 1 << 20);
  EXPECT_EQ(b.stats().zero_fallbacks, 2U);
  ASSERT_EQ(run_one(b, request::read(0, buf.get(), 4 << 20, 5)), 4 << 20);
  for (size_t i = 0; i < (4 << 20); ++i) {
    const uint8_t want = i < (3 << 20) + 1024 ? 0 : 0x5a;
    ASSERT_EQ(buf[i], want) << "at " << i;
  }
}

TEST(uring_backend, ring_setup_reports_its_flags) {
  temp_file f(test::file_dir, size);
  uring_backend b(on(f.path()));
  // Whatever the kernel accepted, the backend works with it; the fallback list ends at 0.
  auto buf = aligned_buffer(4096);
  EXPECT_EQ(run_one(b, request::write(0, buf.get(), 4096, 1)), 4096);
  EXPECT_EQ(b.last_submit_error(), 0);
  uring_options plain = on(f.path());
  plain.single_issuer = false;
  uring_backend p(plain);
  EXPECT_EQ(p.ring_flags() & (1U << 12), 0U);  // no IORING_SETUP_SINGLE_ISSUER
  EXPECT_EQ(run_one(p, request::read(0, buf.get(), 4096, 2)), 4096);
}

TEST(uring_backend, the_first_submitting_thread_owns_the_ring) {
  temp_file f(test::file_dir, size);
  uring_backend b(on(f.path()));
  auto buf = aligned_buffer(4096);
  // Made on this thread, driven from another one (as an lcore would).
  int64_t result = 0;
  std::thread([&] { result = run_one(b, request::write(0, buf.get(), 4096, 1)); }).join();
  EXPECT_EQ(result, 4096);
}

TEST(uring_backend, destruction_waits_for_requests_in_flight) {
  temp_file f(test::file_dir, size);
  auto buf = aligned_buffer(1 << 20);
  {
    uring_backend b(on(f.path()));
    std::vector<request> reqs;
    for (uint64_t i = 0; i < 16; ++i) {
      reqs.push_back(request::write(i << 20, buf.get(), 1 << 20, i));
    }
    reqs.push_back(request::write_zeroes(0, 8 << 20, 99));
    ASSERT_EQ(b.submit(reqs), 17);
  }  // destroyed without polling: must not leave the kernel writing into freed memory
  SUCCEED();
}

}  // namespace
}  // namespace tandem::dp::backend
