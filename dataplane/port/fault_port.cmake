# SPDX-License-Identifier: Apache-2.0
# The fault port: wraps any port with seeded drop, duplicate, reorder, corrupt, delay and rate.
# dataplane/port/loopback_port.h (header only, for tests) needs only tandem_dp_port.
add_library(tandem_dp_fault_port fault_port.cc)
target_link_libraries(tandem_dp_fault_port PUBLIC tandem_dp_port)
