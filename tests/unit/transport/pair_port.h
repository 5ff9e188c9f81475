// SPDX-License-Identifier: Apache-2.0
// Two in-memory ports joined back to back, for deterministic transport tests. A tap sees every
// datagram sent, and tests can inject datagrams of their own.
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "dataplane/port/port.h"

namespace tandem::test {

class pair_port final : public dp::port {
 public:
  pair_port(dp::udp_addr local, uint32_t max_payload = 1472, unsigned buffers = 8192)
      : local_(local), max_payload_(max_payload) {
    storage_.resize(size_t{buffers} * max_payload);
    bufs_.resize(buffers);
    for (unsigned i = 0; i < buffers; ++i) {
      bufs_[i].data = storage_.data() + size_t{i} * max_payload;
      bufs_[i].cap = max_payload;
      bufs_[i].port_ctx = this;
      free_.push_back(&bufs_[i]);
    }
  }
  void connect(pair_port& peer) {
    peer_ = &peer;
    peer.peer_ = this;
  }

  unsigned alloc(dp::dgram** b, unsigned n) override {
    unsigned i = 0;
    for (; i < n && !free_.empty(); ++i) {
      b[i] = free_.back();
      free_.pop_back();
      b[i]->len = 0;
      b[i]->data = storage_.data() + size_t(b[i] - bufs_.data()) * max_payload_;
    }
    return i;
  }
  unsigned send(dp::dgram** b, unsigned n) override {
    if (n > tx_room) n = tx_room;  // a full tx ring takes part of the burst, or none of it
    tx_room -= tx_room == UINT32_MAX ? 0 : n;
    for (unsigned i = 0; i < n; ++i) {
      if (tap) tap(*b[i]);
      if (!cut) peer_->inject({b[i]->data, b[i]->len}, local_);
      stats_.tx_dgrams++;
      stats_.tx_bytes += b[i]->len;
      free(&b[i], 1);
    }
    return n;
  }
  unsigned recv(dp::dgram** b, unsigned n) override {
    unsigned i = 0;
    for (; i < n && !rxq_.empty(); ++i) {
      b[i] = rxq_.front();
      rxq_.pop_front();
    }
    stats_.rx_dgrams += i;
    return i;
  }
  void free(dp::dgram** b, unsigned n) override {
    for (unsigned i = 0; i < n; ++i)
      free_.push_back(b[i]);
  }
  // Queues a datagram as if it came from `from` (copied; dropped when out of buffers).
  void inject(std::span<const uint8_t> bytes, dp::udp_addr from) {
    dp::dgram* d = nullptr;
    if (alloc(&d, 1) != 1) return;
    std::memcpy(d->data, bytes.data(), bytes.size());
    d->len = static_cast<uint32_t>(bytes.size());
    d->peer = from;
    rxq_.push_back(d);
  }
  uint32_t max_payload() const override { return max_payload_; }
  dp::udp_addr local() const override { return local_; }
  bool link_up() const override { return true; }
  const dp::port_stats& stats() const override { return stats_; }
  std::string name() const override { return "pair"; }

  std::function<void(const dp::dgram&)> tap;  // sees every datagram sent
  bool cut = false;                           // true: sent datagrams vanish
  uint32_t tx_room = UINT32_MAX;              // datagrams send() still takes (UINT32_MAX: no limit)

 private:
  dp::udp_addr local_;
  uint32_t max_payload_;
  std::vector<uint8_t> storage_;
  std::vector<dp::dgram> bufs_;
  std::vector<dp::dgram*> free_;
  std::deque<dp::dgram*> rxq_;
  pair_port* peer_ = nullptr;
  dp::port_stats stats_;
};

}  // namespace tandem::test
