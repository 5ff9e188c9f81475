// SPDX-License-Identifier: Apache-2.0
// The ABI header compiled as C11: its _Static_asserts run, and the layout the C compiler computes
// is exported for kmod_abi_test.cc to compare with C++'s and with the pinned numbers.
#include <stddef.h>

#include "kmod/uapi/tandem_blk.h"
#include "tests/unit/kmod_abi/abi_pin.h"

const struct tandem_abi_fact tandem_abi_c_facts[] = {
#define TANDEM_ABI_SIZE(s, bytes) {#s, "sizeof", bytes, sizeof(struct s)},
#define TANDEM_ABI_FIELD(s, f, off) {#s, #f, off, offsetof(struct s, f)},
#include "tests/unit/kmod_abi/abi_fields.inc"
#undef TANDEM_ABI_SIZE
#undef TANDEM_ABI_FIELD
    {NULL, NULL, 0, 0},
};

const unsigned long tandem_abi_c_ioctls[] = {
    TANDEM_BLK_IOC_GET_FEATURES, TANDEM_BLK_IOC_ADD_DEV,    TANDEM_BLK_IOC_DEL_DEV,
    TANDEM_BLK_IOC_GET_DEV_INFO, TANDEM_BLK_IOC_SET_EVENTFD, TANDEM_BLK_IOC_COMMIT,
};
