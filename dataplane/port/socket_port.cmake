# SPDX-License-Identifier: Apache-2.0
# The socket port: kernel UDP (sendmmsg/recvmmsg, GSO/GRO). No DPDK headers.
add_library(tandem_dp_socket_port socket_port.cc)
target_link_libraries(tandem_dp_socket_port PUBLIC tandem_dp_port)
