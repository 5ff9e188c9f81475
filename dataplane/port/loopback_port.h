// SPDX-License-Identifier: Apache-2.0
// An in-memory port for tests: ports on one loopback_hub deliver datagrams to each other by copy.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/port/port.h"

namespace tandem::dp {

class loopback_port;

// The "network": the loopback ports attached to it, found by address. Single-threaded, like the
// ports. The clock (ns) stamps rx_ns; without one rx_ns is 0.
class loopback_hub {
 public:
  explicit loopback_hub(std::function<uint64_t()> clock = {}) : clock_(std::move(clock)) {}
  loopback_hub(const loopback_hub&) = delete;
  loopback_hub& operator=(const loopback_hub&) = delete;

  loopback_port* find(const udp_addr& a) const noexcept;
  uint64_t now() const { return clock_ ? clock_() : 0; }
  // Datagrams sent to an address no port has (dropped, as UDP would).
  uint64_t undeliverable() const { return undeliverable_; }

 private:
  friend class loopback_port;
  std::vector<loopback_port*> ports_;
  std::function<uint64_t()> clock_;
  uint64_t undeliverable_ = 0;
};

struct loopback_port_options {
  udp_addr local;
  unsigned buffers = 1024;
  uint32_t max_payload = 1472;
  // Datagrams waiting for recv(). A send to a port whose queue (or pool) is full stops there
  // and the sender sees a short count, like a full socket buffer with backpressure.
  unsigned rx_queue = 1024;
};

// send() copies each datagram into a buffer of the destination's pool and queues it there, then
// frees the sender's buffer: buffers never leave the port that made them.
class loopback_port final : public port {
 public:
  loopback_port(loopback_hub& hub, const loopback_port_options& opts)
      : hub_(hub),
        opts_(opts),
        dgrams_(opts.buffers),
        memory_(static_cast<size_t>(opts.buffers) * opts.max_payload),
        free_(opts.buffers),
        queue_(std::max(1U, opts.rx_queue)) {
    if (hub.find(opts.local)) {
      throw std::runtime_error("loopback port: address " + opts.local.to_string() + " in use");
    }
    for (unsigned i = 0; i < opts.buffers; ++i) {
      dgrams_[i].data = memory_.data() + static_cast<size_t>(i) * opts.max_payload;
      dgrams_[i].cap = opts.max_payload;
      dgrams_[i].port_ctx = this;
      free_[opts.buffers - 1 - i] = &dgrams_[i];
    }
    free_n_ = opts.buffers;
    hub_.ports_.push_back(this);
  }
  ~loopback_port() override {
    auto& v = hub_.ports_;
    v.erase(std::remove(v.begin(), v.end(), this), v.end());
  }
  loopback_port(const loopback_port&) = delete;
  loopback_port& operator=(const loopback_port&) = delete;

  unsigned alloc(dgram** bufs, unsigned n) override {
    const unsigned k = std::min(n, free_n_);
    for (unsigned i = 0; i < k; ++i) {
      dgram* d = free_[--free_n_];
      d->data = memory_.data() + static_cast<size_t>(d - dgrams_.data()) * opts_.max_payload;
      d->len = 0;
      d->peer = {};
      d->rx_ns = 0;
      bufs[i] = d;
    }
    return k;
  }

  unsigned send(dgram** bufs, unsigned n) override {
    unsigned i = 0;
    for (; i < n; ++i) {
      dgram* d = bufs[i];
      loopback_port* dst = link_up_ ? hub_.find(d->peer) : nullptr;
      if (dst && d->len <= opts_.max_payload) {
        if (!dst->deliver(*d, opts_.local, hub_.now())) break;
        ++stats_.tx_dgrams;
        stats_.tx_bytes += d->len;
      } else {
        ++hub_.undeliverable_;
      }
      free(&d, 1);
    }
    stats_.tx_full += n - i;
    return i;
  }

  unsigned recv(dgram** bufs, unsigned n) override {
    const unsigned k = std::min(n, queue_n_);
    for (unsigned i = 0; i < k; ++i) {
      bufs[i] = queue_[queue_head_];
      queue_head_ = (queue_head_ + 1) % queue_.size();
      stats_.rx_bytes += bufs[i]->len;
    }
    queue_n_ -= k;
    stats_.rx_dgrams += k;
    return k;
  }

  void free(dgram** bufs, unsigned n) override {
    for (unsigned i = 0; i < n; ++i) {
      if (bufs[i]->port_ctx != this || free_n_ >= free_.size()) {
        std::fputs("loopback port: freed a buffer it does not own\n", stderr);
        std::abort();  // a bug in the caller: stop here rather than corrupt the pool
      }
      free_[free_n_++] = bufs[i];
    }
  }

  uint32_t max_payload() const override { return opts_.max_payload; }
  udp_addr local() const override { return opts_.local; }
  bool link_up() const override { return link_up_; }
  const port_stats& stats() const override { return stats_; }
  std::string name() const override { return "loopback"; }

  // A link that is down sends nothing (datagrams are taken and lost) and receives nothing.
  void set_link_up(bool up) { link_up_ = up; }
  unsigned available() const { return free_n_; }
  unsigned queued() const { return queue_n_; }

 private:
  bool deliver(const dgram& src, const udp_addr& from, uint64_t now) {
    if (!link_up_ || src.len > opts_.max_payload) {
      ++stats_.rx_dropped;
      return true;  // lost on the way, not pushed back
    }
    if (queue_n_ == queue_.size() || free_n_ == 0) return false;
    dgram* d = free_[--free_n_];
    d->data = memory_.data() + static_cast<size_t>(d - dgrams_.data()) * opts_.max_payload;
    std::memcpy(d->data, src.data, src.len);
    d->len = src.len;
    d->peer = from;
    d->rx_ns = now;
    queue_[(queue_head_ + queue_n_++) % queue_.size()] = d;
    return true;
  }

  loopback_hub& hub_;
  loopback_port_options opts_;
  std::vector<dgram> dgrams_;
  std::vector<uint8_t> memory_;
  std::vector<dgram*> free_;
  unsigned free_n_ = 0;
  std::vector<dgram*> queue_;
  unsigned queue_head_ = 0;
  unsigned queue_n_ = 0;
  bool link_up_ = true;
  port_stats stats_;
};

inline loopback_port* loopback_hub::find(const udp_addr& a) const noexcept {
  for (loopback_port* p : ports_) {
    if (p->local() == a) return p;
  }
  return nullptr;
}

}  // namespace tandem::dp
