# SPDX-License-Identifier: Apache-2.0
# tandem_dp_dpdk_port: the port over any DPDK ethdev.
add_library(tandem_dp_dpdk_port dpdk_port.cc)
target_link_libraries(tandem_dp_dpdk_port PUBLIC tandem_dp_port tandem_dp_eal tandem_dp_net)
