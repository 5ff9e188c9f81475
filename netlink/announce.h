// SPDX-License-Identifier: Apache-2.0
// Address announcements and the duplicate-address check for floating IPs, on packet sockets:
// gratuitous ARP and the RFC 5227 ARP probe (IPv4), unsolicited neighbour advertisements (IPv6).
//
// Every call is blocking (it sleeps between announcements, waits for probe answers): run it on a
// worker, never on an event loop. `netns` names /run/netns/<netns>; empty: this process's own.
// Sockets are made on a short-lived thread inside that namespace (nl::in_netns), so
// the caller's namespace never changes. Failures throw std::system_error naming the interface.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace tandem::nl {

// Broadcasts `count` gratuitous ARP requests ("who has IP, tell IP" from the interface's MAC),
// `interval` apart: neighbours that cache IP update it to this interface's MAC.
void gratuitous_arp(const std::string& netns, const std::string& ifname, const std::string& ipv4,
                    int count, std::chrono::milliseconds interval);

// RFC 5227 probe: asks "who has IP" with sender address 0.0.0.0, then listens for `wait`. Returns
// the MAC of a host that answered for the address (a reply, or another host's probe or request
// from that address), or nullopt when nobody claims it.
std::optional<std::string> arp_probe(const std::string& netns, const std::string& ifname,
                                     const std::string& ipv4, std::chrono::milliseconds wait);

// IPv6 duplicate address detection (RFC 4862 5.4) done by hand, so the holder can be named: sends
// a neighbour solicitation for `ipv6` from the unspecified address to its solicited-node multicast
// group, then listens for `wait`. Returns the MAC of a host that defends the address (a neighbour
// advertisement for it, or another host's own DAD solicitation for it), or nullopt when nobody
// claims it. The address itself may then be added without the kernel's DAD (nodad).
std::optional<std::string> nd_probe(const std::string& netns, const std::string& ifname,
                                    const std::string& ipv6, std::chrono::milliseconds wait);

// Sends `count` unsolicited neighbour advertisements for `ipv6` (override flag, target link-layer
// address option with the interface's MAC) to all nodes (ff02::1), `interval` apart.
void unsolicited_na(const std::string& netns, const std::string& ifname, const std::string& ipv6,
                    int count, std::chrono::milliseconds interval);

}  // namespace tandem::nl
