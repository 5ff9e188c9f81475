// SPDX-License-Identifier: Apache-2.0
// The DPDK port: UDP datagrams over any ethdev (a PCI NIC, or net_af_packet / net_memif vdevs),
// with tandem's own Ethernet / IPv4 / UDP headers and ARP.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/net/addr.h"
#include "dataplane/net/headers.h"
#include "dataplane/port/port.h"

struct rte_mempool;
struct rte_mbuf;

namespace tandem::dp {

struct dpdk_port_options {
  uint16_t port_id = 0;  // ethdev port; the EAL must be initialised (eal_init) first
  udp_addr local;        // this port's IPv4 address and UDP port (port must not be 0)
  uint32_t mtu = 1500;   // IP MTU: max_payload() = mtu - 28
  unsigned mbufs = 8191;
  unsigned rx_desc = 1024;
  unsigned tx_desc = 1024;
  // Peers whose MAC is configured instead of resolved by ARP (the "static neighbour").
  std::vector<std::pair<ipv4_addr, mac_addr>> static_neighbours;
  // How often an unresolved peer is asked again.
  uint64_t arp_retry_ns = 200'000'000;
  // Verify UDP checksums of received datagrams. Off by default: the transport's CRC32C covers
  // every frame end to end, and a kernel peer on the same host (veth) sends datagrams whose UDP
  // checksum is left to offload, which af_packet receivers see unfinished. IPv4 header checksums
  // are always verified (or trusted when the NIC says it checked them).
  bool verify_udp_checksum = false;
  // The UDP checksum of sent datagrams. `full` (the default) suits any receiver; `none` (0, "no
  // checksum", RFC 768) saves a pass over every payload and is what the transport uses, since
  // its CRC32C already covers every byte end to end (kernel receivers accept 0 for IPv4).
  udp_checksum_mode tx_udp_checksum = udp_checksum_mode::full;
};

// One ethdev port with one rx and one tx queue, owned by one lcore. Buffers are mbufs from the
// port's own pool; each carries its `dgram` in the mbuf's private area and keeps 42 bytes of
// headroom in front of the payload for the headers, so send() never moves a payload.
//
// ARP: recv() answers requests for the local address, learns senders, and hands only UDP
// datagrams for the local address and port to the caller. send() of a datagram to a peer whose
// MAC is not known yet sends (at most every arp_retry_ns) an ARP request and reports that
// datagram and the rest of the burst as not taken; the caller retries, as for a full ring.
class dpdk_port final : public port {
 public:
  // Configures and starts the ethdev; throws std::runtime_error naming the port and DPDK's
  // reason.
  explicit dpdk_port(const dpdk_port_options& opts);
  ~dpdk_port() override;
  dpdk_port(const dpdk_port&) = delete;
  dpdk_port& operator=(const dpdk_port&) = delete;

  unsigned alloc(dgram** bufs, unsigned n) override;
  unsigned send(dgram** bufs, unsigned n) override;
  unsigned recv(dgram** bufs, unsigned n) override;
  void free(dgram** bufs, unsigned n) override;

  uint32_t max_payload() const override { return opts_.mtu - 28; }
  udp_addr local() const override { return opts_.local; }
  bool link_up() const override;
  const port_stats& stats() const override { return stats_; }
  std::string name() const override { return name_; }
  const mac_addr& mac() const { return mac_; }
  // The MAC known for a peer (static or learned), or nullptr.
  const mac_addr* neighbour(ipv4_addr ip) const;

 private:
  struct neighbour_entry {
    ipv4_addr ip;
    mac_addr mac;
    bool resolved = false;
    bool is_static = false;
    uint64_t last_request_ns = 0;
  };
  neighbour_entry* find(ipv4_addr ip);
  void learn(ipv4_addr ip, const mac_addr& mac);
  void request(neighbour_entry& n, uint64_t now_ns);
  void handle_arp(const struct arp_packet& arp);
  void send_raw(rte_mbuf* m);

  dpdk_port_options opts_;
  std::string name_;
  mac_addr mac_;
  rte_mempool* pool_ = nullptr;
  bool started_ = false;
  bool ip_cksum_offload_ = false;
  // A handful of peers: a flat array, searched linearly (no allocation after start-up).
  std::vector<neighbour_entry> neighbours_;
  port_stats stats_;
};

}  // namespace tandem::dp
