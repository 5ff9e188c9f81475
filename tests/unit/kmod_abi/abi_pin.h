// SPDX-License-Identifier: Apache-2.0
// What abi_pin.c (the ABI header compiled as C) tells the C++ ABI test.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

struct tandem_abi_fact {
  const char* type;      // struct name
  const char* field;     // field name, or "sizeof"
  unsigned long pinned;  // the number in abi_fields.inc
  unsigned long actual;  // what the C compiler computed
};

// Terminated by an entry whose type is NULL.
extern const struct tandem_abi_fact tandem_abi_c_facts[];
// GET_FEATURES, ADD_DEV, DEL_DEV, GET_DEV_INFO, SET_EVENTFD, COMMIT as the C compiler encodes them.
extern const unsigned long tandem_abi_c_ioctls[6];

#ifdef __cplusplus
}
#endif
