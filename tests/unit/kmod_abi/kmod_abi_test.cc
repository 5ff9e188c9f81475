// SPDX-License-Identifier: Apache-2.0
// Pins kmod/uapi/tandem_blk.h's layout from C++ and checks that C (abi_pin.c) agrees.
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kmod/uapi/tandem_blk.h"
#include "tests/unit/kmod_abi/abi_pin.h"

namespace {

struct cxx_fact {
  std::string type;
  std::string field;
  unsigned long pinned;
  unsigned long actual;
};

std::vector<cxx_fact> cxx_facts() {
  return {
#define TANDEM_ABI_SIZE(s, bytes) {#s, "sizeof", bytes, sizeof(s)},
#define TANDEM_ABI_FIELD(s, f, off) {#s, #f, off, offsetof(s, f)},
#include "tests/unit/kmod_abi/abi_fields.inc"
#undef TANDEM_ABI_SIZE
#undef TANDEM_ABI_FIELD
  };
}

TEST(kmod_abi, cxx_layout_matches_the_pins) {
  auto facts = cxx_facts();
  ASSERT_GT(facts.size(), 60u);
  for (const auto& f : facts) {
    EXPECT_EQ(f.actual, f.pinned) << f.type << "." << f.field;
  }
}

TEST(kmod_abi, c_layout_matches_the_pins_and_cxx) {
  auto facts = cxx_facts();
  size_t i = 0;
  for (; tandem_abi_c_facts[i].type != nullptr; ++i) {
    const auto& c = tandem_abi_c_facts[i];
    ASSERT_LT(i, facts.size());
    EXPECT_EQ(facts[i].type, c.type);
    EXPECT_EQ(facts[i].field, c.field);
    EXPECT_EQ(c.actual, c.pinned) << c.type << "." << c.field << " in C";
    EXPECT_EQ(c.actual, facts[i].actual) << c.type << "." << c.field << ": C and C++ differ";
  }
  EXPECT_EQ(i, facts.size());
}

TEST(kmod_abi, every_struct_has_natural_alignment_and_no_hidden_padding) {
  // Fixed-width fields only: the largest member is 8 bytes, so 8-byte alignment everywhere.
  EXPECT_EQ(alignof(tandem_blk_params), 8u);
  EXPECT_EQ(alignof(tandem_blk_dev_info), 8u);
  EXPECT_EQ(alignof(tandem_blk_sqe), 8u);
  EXPECT_EQ(alignof(tandem_blk_cqe), 4u);
  EXPECT_EQ(alignof(tandem_blk_ring_header), 4u);
  // Each ring index sits on its own cache line.
  EXPECT_EQ(offsetof(tandem_blk_ring_header, sq_cons) % TANDEM_BLK_CACHELINE, 0u);
  EXPECT_EQ(offsetof(tandem_blk_ring_header, cq_prod) % TANDEM_BLK_CACHELINE, 0u);
  EXPECT_EQ(offsetof(tandem_blk_ring_header, cq_cons) % TANDEM_BLK_CACHELINE, 0u);
  EXPECT_EQ(offsetof(tandem_blk_ring_header, flags) % TANDEM_BLK_CACHELINE, 0u);
  EXPECT_EQ(sizeof(tandem_blk_ring_header) % TANDEM_BLK_CACHELINE, 0u);
}

TEST(kmod_abi, ioctl_numbers_are_pinned_and_agree_with_c) {
  const unsigned long cxx[] = {TANDEM_BLK_IOC_GET_FEATURES, TANDEM_BLK_IOC_ADD_DEV,
                               TANDEM_BLK_IOC_DEL_DEV,      TANDEM_BLK_IOC_GET_DEV_INFO,
                               TANDEM_BLK_IOC_SET_EVENTFD,  TANDEM_BLK_IOC_COMMIT};
  const unsigned long pinned[] = {0xc040d700, 0xc050d701, 0x4020d702,
                                  0xc0d0d703, 0x4020d710, 0x0000d711};
  for (size_t i = 0; i < std::size(pinned); ++i) {
    EXPECT_EQ(cxx[i], pinned[i]) << "ioctl " << i;
    EXPECT_EQ(tandem_abi_c_ioctls[i], pinned[i]) << "ioctl " << i << " in C";
  }
}

TEST(kmod_abi, constants_are_consistent) {
  EXPECT_EQ(TANDEM_BLK_ABI_VERSION, 1);
  EXPECT_EQ(TANDEM_BLK_F_ALL, 0xfull);
  EXPECT_EQ(TANDEM_BLK_OP_READ, 0);
  EXPECT_EQ(TANDEM_BLK_OP_WRITE_ZEROES, 4);
  EXPECT_EQ(TANDEM_BLK_MAX_QUEUE_DEPTH & (TANDEM_BLK_MAX_QUEUE_DEPTH - 1), 0);
  EXPECT_LE(uint64_t{TANDEM_BLK_MAX_QUEUE_DEPTH} - 1, uint64_t{UINT16_MAX});  // tags fit __u16
  EXPECT_EQ(TANDEM_BLK_DEV_ID_ANY, 0xffffffffu);
}

}  // namespace
