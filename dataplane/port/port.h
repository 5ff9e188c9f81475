// SPDX-License-Identifier: Apache-2.0
// The port interface: bursts of UDP datagrams to and from peers, over DPDK, a kernel socket, or
// a fault-injecting wrapper. Chosen at startup; at most one virtual call per burst.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "dataplane/net/addr.h"

namespace tandem::dp {

// Where a datagram comes from or goes to: an IPv4 address and UDP port. (The DPDK port resolves
// the MAC itself, by ARP or a static neighbour.)
struct udp_addr {
  ipv4_addr ip;
  uint16_t port = 0;
  friend constexpr bool operator==(const udp_addr&, const udp_addr&) = default;
  std::string to_string() const { return ip.to_string() + ":" + std::to_string(port); }
};

// One datagram buffer. The port that allocated it owns the memory; `data` points at the UDP
// payload, `len` bytes of it are valid, and there is room for `cap` bytes. Ports keep their own
// headroom in front of `data` for their headers, so payloads are never moved to add them.
struct dgram {
  uint8_t* data = nullptr;
  uint32_t len = 0;
  uint32_t cap = 0;
  udp_addr peer;             // destination on send, source on receive
  uint64_t rx_ns = 0;        // receive time, steady clock in ns; 0 when unknown
  void* port_ctx = nullptr;  // the owning port's bookkeeping (an mbuf, a slab slot, ...)
};

struct port_stats {
  uint64_t tx_dgrams = 0, tx_bytes = 0, tx_full = 0;  // tx_full: not accepted, caller retries
  uint64_t rx_dgrams = 0, rx_bytes = 0;
  uint64_t rx_dropped = 0;  // not a datagram for us (bad headers, other ports, ...)
  uint64_t arp_requests = 0, arp_replies = 0;
};

// Buffer ownership, as in DRBD's transport operation table: alloc() and recv() hand buffers to
// the caller; send() takes back exactly those it reports sent (the caller still owns the rest
// and retries or frees them); free() returns buffers. Buffers only ever go back to the port that
// made them. A port is used from one thread (its lcore); nothing here locks.
class port {
 public:
  virtual ~port() = default;

  // Up to n empty buffers of capacity max_payload(); returns how many (0 when the pool is dry).
  virtual unsigned alloc(dgram** bufs, unsigned n) = 0;
  // Queues up to n datagrams, each to its own `peer`; returns how many were taken.
  virtual unsigned send(dgram** bufs, unsigned n) = 0;
  // Up to n received datagrams; returns how many.
  virtual unsigned recv(dgram** bufs, unsigned n) = 0;
  virtual void free(dgram** bufs, unsigned n) = 0;
  // Pushes out anything queued by send() (ports that batch); cheap when there is nothing.
  virtual void flush() {}

  // Largest payload one datagram may carry on this port (its MTU less IPv4 and UDP headers).
  virtual uint32_t max_payload() const = 0;
  // This port's own address.
  virtual udp_addr local() const = 0;
  virtual bool link_up() const = 0;
  virtual const port_stats& stats() const = 0;
  // "dpdk:net_af_packet0", "socket", "fault(socket)": for logs and benchmark lines.
  virtual std::string name() const = 0;
  // For an idle lcore that sleeps: a file descriptor that polls readable when recv() would
  // return datagrams, or -1 when it cannot wait on this port now (a polled-mode device; or
  // datagrams already received and not handed out): then it naps briefly and polls.
  virtual int wait_fd() const noexcept { return -1; }
};

}  // namespace tandem::dp
