// SPDX-License-Identifier: Apache-2.0
// The DPDK port: UDP datagrams over any ethdev (a PCI NIC, or net_af_packet / net_memif vdevs),
// with tandem's own Ethernet / IPv4 / UDP headers and ARP.
#include "dataplane/port/dpdk_port.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>
#include <stdexcept>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "dataplane/net/headers.h"

namespace tandem::dp {
namespace {

constexpr unsigned max_neighbours = 64;
constexpr unsigned burst_max = 64;
// The dgram lives in the mbuf's private area, which DPDK wants in multiples of 8 bytes.
constexpr uint16_t priv_size =
    (sizeof(dgram) + RTE_MBUF_PRIV_ALIGN - 1) & ~(RTE_MBUF_PRIV_ALIGN - 1);

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

dgram* dgram_of(rte_mbuf* m) {
  return static_cast<dgram*>(rte_mbuf_to_priv(m));
}
rte_mbuf* mbuf_of(dgram* d) {
  return static_cast<rte_mbuf*>(d->port_ctx);
}

std::runtime_error dpdk_error(const std::string& what, int err) {
  return std::runtime_error("dpdk port: " + what + ": " + rte_strerror(err < 0 ? -err : err));
}

}  // namespace

dpdk_port::dpdk_port(const dpdk_port_options& opts) : opts_(opts) {
  if (opts_.local.port == 0) throw std::invalid_argument("dpdk port: local UDP port must be set");
  if (opts_.mtu < 576 || opts_.mtu > 9000) throw std::invalid_argument("dpdk port: mtu 576..9000");
  if (!rte_eth_dev_is_valid_port(opts_.port_id)) {
    throw std::runtime_error("dpdk port: no ethdev port " + std::to_string(opts_.port_id) +
                             " (check the EAL's --vdev / PCI arguments)");
  }
  char dev_name[RTE_ETH_NAME_MAX_LEN] = {};
  rte_eth_dev_get_name_by_port(opts_.port_id, dev_name);
  name_ = std::string("dpdk:") + dev_name;

  rte_eth_dev_info info{};
  if (int e = rte_eth_dev_info_get(opts_.port_id, &info); e != 0) throw dpdk_error("dev info", e);
  rte_eth_conf conf{};
  if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) {
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    ip_cksum_offload_ = true;
  }
  const uint32_t frame_room = opts_.mtu + RTE_ETHER_HDR_LEN + RTE_PKTMBUF_HEADROOM;
  const std::string pool_name = "tdm_port" + std::to_string(opts_.port_id);
  pool_ = rte_pktmbuf_pool_create(
      pool_name.c_str(), opts_.mbufs, 256, priv_size,
      static_cast<uint16_t>(std::max<uint32_t>(frame_room, RTE_MBUF_DEFAULT_BUF_SIZE)),
      rte_eth_dev_socket_id(opts_.port_id));
  if (!pool_) throw dpdk_error("mbuf pool for " + name_, rte_errno);
  const int socket = rte_eth_dev_socket_id(opts_.port_id);
  if (int e = rte_eth_dev_configure(opts_.port_id, 1, 1, &conf); e < 0) {
    throw dpdk_error("configure " + name_, e);
  }
  uint16_t rxd = static_cast<uint16_t>(opts_.rx_desc), txd = static_cast<uint16_t>(opts_.tx_desc);
  rte_eth_dev_adjust_nb_rx_tx_desc(opts_.port_id, &rxd, &txd);
  if (int e = rte_eth_rx_queue_setup(opts_.port_id, 0, rxd, socket, nullptr, pool_); e < 0) {
    throw dpdk_error("rx queue of " + name_, e);
  }
  if (int e = rte_eth_tx_queue_setup(opts_.port_id, 0, txd, socket, nullptr); e < 0) {
    throw dpdk_error("tx queue of " + name_, e);
  }
  // Best effort: vdevs such as af_packet take the MTU from the kernel interface.
  rte_eth_dev_set_mtu(opts_.port_id, static_cast<uint16_t>(opts_.mtu));
  if (int e = rte_eth_dev_start(opts_.port_id); e < 0) throw dpdk_error("start " + name_, e);
  started_ = true;
  rte_ether_addr addr{};
  rte_eth_macaddr_get(opts_.port_id, &addr);
  std::copy(std::begin(addr.addr_bytes), std::end(addr.addr_bytes), mac_.bytes.begin());

  neighbours_.reserve(max_neighbours);
  for (const auto& [ip, mac] : opts_.static_neighbours) {
    if (neighbours_.size() == max_neighbours) {
      throw std::invalid_argument("dpdk port: at most 64 static neighbours");
    }
    neighbours_.push_back({ip, mac, true, true, 0});
  }
}

dpdk_port::~dpdk_port() {
  if (started_) rte_eth_dev_stop(opts_.port_id);
  rte_eth_dev_close(opts_.port_id);
  if (pool_) rte_mempool_free(pool_);
}

bool dpdk_port::link_up() const {
  rte_eth_link link{};
  return rte_eth_link_get_nowait(opts_.port_id, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
}

unsigned dpdk_port::alloc(dgram** bufs, unsigned n) {
  rte_mbuf* m[burst_max];
  unsigned done = 0;
  while (done < n) {
    const unsigned chunk = std::min(n - done, burst_max);
    if (rte_pktmbuf_alloc_bulk(pool_, m, chunk) != 0) break;
    for (unsigned i = 0; i < chunk; ++i) {
      rte_mbuf* mb = m[i];
      mb->data_off = static_cast<uint16_t>(RTE_PKTMBUF_HEADROOM + udp_frame_overhead);
      dgram* d = new (dgram_of(mb)) dgram{};
      d->data = rte_pktmbuf_mtod(mb, uint8_t*);
      d->cap = max_payload();
      d->port_ctx = mb;
      bufs[done + i] = d;
    }
    done += chunk;
  }
  return done;
}

void dpdk_port::free(dgram** bufs, unsigned n) {
  for (unsigned i = 0; i < n; ++i)
    rte_pktmbuf_free(mbuf_of(bufs[i]));
}

dpdk_port::neighbour_entry* dpdk_port::find(ipv4_addr ip) {
  for (auto& n : neighbours_) {
    if (n.ip == ip) return &n;
  }
  return nullptr;
}

const mac_addr* dpdk_port::neighbour(ipv4_addr ip) const {
  for (const auto& n : neighbours_) {
    if (n.ip == ip && n.resolved) return &n.mac;
  }
  return nullptr;
}

void dpdk_port::learn(ipv4_addr ip, const mac_addr& mac) {
  if (ip == ipv4_addr{} || mac.is_multicast() || mac.is_zero()) return;
  if (neighbour_entry* n = find(ip)) {
    if (!n->is_static) {
      n->mac = mac;
      n->resolved = true;
    }
    return;
  }
  if (neighbours_.size() < max_neighbours) {
    neighbours_.push_back({ip, mac, true, false, 0});
    return;
  }
  // Full: replace a learned entry (a static one is configuration and stays).
  for (auto& n : neighbours_) {
    if (!n.is_static) {
      n = {ip, mac, true, false, 0};
      return;
    }
  }
}

void dpdk_port::send_raw(rte_mbuf* m) {
  if (rte_eth_tx_burst(opts_.port_id, 0, &m, 1) != 1) {
    rte_pktmbuf_free(m);
    ++stats_.tx_full;
  }
}

void dpdk_port::request(neighbour_entry& n, uint64_t now) {
  if (n.last_request_ns != 0 && now - n.last_request_ns < opts_.arp_retry_ns) return;
  n.last_request_ns = now;
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (!m) return;
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, wire::eth::min_frame_len));
  const int len =
      p ? build_arp_request({p, wire::eth::min_frame_len}, mac_, opts_.local.ip, n.ip) : -1;
  if (len <= 0) {
    rte_pktmbuf_free(m);
    return;
  }
  ++stats_.arp_requests;
  send_raw(m);
}

void dpdk_port::handle_arp(const arp_packet& arp) {
  learn(arp.sender_ip, arp.sender_mac);
  if (arp.op != arp_op::request || arp.target_ip != opts_.local.ip) return;
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (!m) return;
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, wire::eth::min_frame_len));
  const int len = p ? build_arp_reply({p, wire::eth::min_frame_len}, mac_, arp) : -1;
  if (len <= 0) {
    rte_pktmbuf_free(m);
    return;
  }
  ++stats_.arp_replies;
  send_raw(m);
}

unsigned dpdk_port::send(dgram** bufs, unsigned n) {
  rte_mbuf* m[burst_max];
  unsigned taken = 0;
  const udp_endpoint src{mac_, opts_.local.ip, opts_.local.port};
  udp_build_options bo;
  bo.ip_checksum = !ip_cksum_offload_;
  bo.udp_checksum = opts_.tx_udp_checksum;
  while (taken < n) {
    const unsigned chunk = std::min(n - taken, burst_max);
    unsigned ready = 0;
    bool blocked = false;
    for (; ready < chunk; ++ready) {
      dgram* d = bufs[taken + ready];
      neighbour_entry* nb = find(d->peer.ip);
      if (!nb || !nb->resolved) {
        if (!nb && neighbours_.size() < max_neighbours) {
          neighbours_.push_back({d->peer.ip, mac_addr{}, false, false, 0});
          nb = &neighbours_.back();
        }
        if (nb) request(*nb, now_ns());
        blocked = true;
        break;
      }
      rte_mbuf* mb = mbuf_of(d);
      // The payload stays where alloc() put it; the headers go into the headroom before it.
      mb->data_off =
          static_cast<uint16_t>(d->data - static_cast<uint8_t*>(mb->buf_addr) - udp_frame_overhead);
      mb->data_len = static_cast<uint16_t>(udp_frame_overhead + d->len);
      mb->pkt_len = mb->data_len;
      const udp_endpoint dst{nb->mac, d->peer.ip, d->peer.port};
      if (build_udp_headers({rte_pktmbuf_mtod(mb, uint8_t*), udp_frame_overhead}, src, dst,
                            {d->data, d->len}, bo) != static_cast<int>(udp_frame_overhead)) {
        blocked = true;  // len > cap: refuse it rather than send garbage
        break;
      }
      if (ip_cksum_offload_) {
        mb->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
        mb->l2_len = wire::eth::len;
        mb->l3_len = wire::ipv4::min_len;
      }
      m[ready] = mb;
    }
    const uint16_t sent =
        ready ? rte_eth_tx_burst(opts_.port_id, 0, m, static_cast<uint16_t>(ready)) : 0;
    for (uint16_t i = 0; i < sent; ++i) {
      stats_.tx_bytes += bufs[taken + i]->len;
    }
    stats_.tx_dgrams += sent;
    taken += sent;
    if (sent < ready) {
      ++stats_.tx_full;
      // Unsent mbufs keep their dgram; put data_off back so a retry rebuilds cleanly.
      for (unsigned i = sent; i < ready; ++i) {
        dgram* d = bufs[taken + (i - sent)];
        mbuf_of(d)->data_off =
            static_cast<uint16_t>(d->data - static_cast<uint8_t*>(mbuf_of(d)->buf_addr));
      }
      break;
    }
    if (blocked) break;
  }
  return taken;
}

unsigned dpdk_port::recv(dgram** bufs, unsigned n) {
  rte_mbuf* m[burst_max];
  unsigned out = 0;
  while (out < n) {
    const uint16_t want = static_cast<uint16_t>(std::min(n - out, burst_max));
    const uint16_t got = rte_eth_rx_burst(opts_.port_id, 0, m, want);
    if (got == 0) break;
    const uint64_t now = now_ns();
    for (uint16_t i = 0; i < got; ++i) {
      rte_mbuf* mb = m[i];
      if (mb->nb_segs != 1) {  // no scatter is configured; never expected
        ++stats_.rx_dropped;
        rte_pktmbuf_free(mb);
        continue;
      }
      parse_options po;
      po.verify_ip_checksum =
          (mb->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) != RTE_MBUF_F_RX_IP_CKSUM_GOOD;
      po.verify_udp_checksum =
          opts_.verify_udp_checksum &&
          (mb->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) != RTE_MBUF_F_RX_L4_CKSUM_GOOD;
      const auto r = parse_frame({rte_pktmbuf_mtod(mb, const uint8_t*), mb->data_len}, po);
      if (r.is_arp()) {
        handle_arp(r.arp);
        rte_pktmbuf_free(mb);
        continue;
      }
      if (!r.is_udp() || r.udp.dst.ip != opts_.local.ip || r.udp.dst.port != opts_.local.port) {
        ++stats_.rx_dropped;
        rte_pktmbuf_free(mb);
        continue;
      }
      // Datagrams teach us their sender's MAC too (no ARP needed to answer a peer).
      learn(r.udp.src.ip, r.udp.src.mac);
      dgram* d = new (dgram_of(mb)) dgram{};
      d->data = const_cast<uint8_t*>(r.udp.payload.data());
      d->len = static_cast<uint32_t>(r.udp.payload.size());
      d->cap = d->len;
      d->peer = {r.udp.src.ip, r.udp.src.port};
      d->rx_ns = now;
      d->port_ctx = mb;
      bufs[out++] = d;
      ++stats_.rx_dgrams;
      stats_.rx_bytes += d->len;
    }
    if (got < want) break;
  }
  return out;
}

}  // namespace tandem::dp
