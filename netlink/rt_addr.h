// SPDX-License-Identifier: Apache-2.0
// Adding and removing IPv4 / IPv6 addresses on an interface through rtnetlink (libnl-route-3).
#pragma once

#include <optional>
#include <string>

#include "netlink/rt_link.h"
#include "netlink/rt_socket.h"

namespace tandem::nl {

// Adds `cidr` ("10.0.0.100/24", "fd00::100/64"; the prefix is required) to interface `ifname`
// of the socket's namespace. `label` is for IPv4 only: it must start with the interface name and
// fit in 15 characters ("eth0:vip"); empty means the kernel's default (the interface name).
// `nodad` adds an IPv6 address without duplicate address detection (IFA_F_NODAD); it is ignored
// for IPv4. Throws std::invalid_argument for a malformed address or label and for a missing
// interface ("no interface X"), nl::error (naming the address and interface) when the kernel
// refuses, e.g. NLE_EXIST when the same address and prefix are already on the interface.
void add_address(socket& sk, const std::string& ifname, const std::string& cidr,
                 const std::string& label = {}, bool nodad = false);

// Removes `cidr` (address and prefix length must both match) from `ifname`. Returns false when
// the address was not there. Throws like add_address for every other failure.
bool remove_address(socket& sk, const std::string& ifname, const std::string& cidr);

// Whether `address` ("10.0.0.100", "fd00::100", no prefix; compared as binary addresses, so any
// IPv6 spelling matches) is configured on `ifname`, with any prefix. Throws
// std::invalid_argument for a malformed address or a missing interface, nl::error on failure.
bool has_address(socket& sk, const std::string& ifname, const std::string& address);

// The configured address whose network holds `address` (a literal without prefix), on any
// interface but loopback: where a floating address belongs when no interface is named. The
// longest prefix wins; the address itself and host routes (/32, /128) are not networks and are
// skipped. nullopt when no network holds it. Throws std::invalid_argument for a malformed
// address, nl::error on failure.
std::optional<address_info> covering_address(socket& sk, const std::string& address);

}  // namespace tandem::nl
