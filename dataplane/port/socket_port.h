// SPDX-License-Identifier: Apache-2.0
// The socket port: a non-blocking kernel UDP socket driven by sendmmsg/recvmmsg, with UDP GSO/GRO.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "dataplane/port/port.h"

namespace tandem::dp {

struct socket_port_options {
  // Local address to bind. 0.0.0.0 binds every address; port 0 picks an ephemeral port
  // (local() reports the real one).
  udp_addr local;
  // Datagram buffers in the pool (alloc() and recv() take from it).
  unsigned buffers = 4096;
  // Largest payload: 1472 fits a 1500-byte MTU; up to 65507 (e.g. over loopback).
  uint32_t max_payload = 1472;
  // Most datagrams one send() or recv() call handles (sizes the per-burst arrays); larger bursts
  // are cut to this and the caller sees a short count.
  unsigned max_burst = 256;
  // UDP_SEGMENT on send / UDP_GRO on receive when the kernel has them; silently off otherwise.
  bool enable_gso = true;
  bool enable_gro = true;
  // Receive messages one recv() syscall may take with GRO on; each has a 64 KiB staging buffer
  // (and takes a pool buffer for its first datagram).
  unsigned gro_batch = 64;
  // SO_SNDBUF / SO_RCVBUF in bytes (SO_*BUFFORCE is tried first, which needs CAP_NET_ADMIN);
  // 0 keeps the kernel's default.
  int sndbuf = 4 << 20;
  int rcvbuf = 4 << 20;
  // SO_BINDTODEVICE: only this interface (empty: any).
  std::string device;
};

// What the socket port does beyond the common port_stats.
struct socket_port_stats {
  uint64_t tx_syscalls = 0, rx_syscalls = 0;
  uint64_t gso_msgs = 0, gso_dgrams = 0;  // UDP_SEGMENT messages sent and datagrams in them
  uint64_t gro_msgs = 0, gro_dgrams = 0;  // coalesced messages received and datagrams split out
  uint64_t rx_copies = 0;                 // datagrams copied out of a GRO staging buffer
  uint64_t tx_errors = 0;     // taken but dropped: the kernel refused them (EPERM, EMSGSIZE, ...)
  uint64_t tx_oversize = 0;   // taken but dropped: len > max_payload
  uint64_t rx_truncated = 0;  // datagrams larger than max_payload, dropped (also in rx_dropped)
  uint64_t rx_kernel_drops = 0;  // the socket's receive queue overflowed (SO_RXQ_OVFL)
  uint64_t gso_fallbacks = 0;    // the kernel rejected a GSO message: see gso_max_segment()
};

// Buffer ownership: every buffer comes from one slab of `buffers` slots allocated at
// construction; alloc() and recv() pop slots off a free stack, free() and a successful send()
// push them back. Without GRO, recvmmsg writes straight into the slots. With GRO, each message
// is received into a slot (its first max_payload bytes) followed by a 64 KiB staging buffer of
// the port's: a single datagram stays in its slot (no copy); of a coalesced message, the first
// datagram stays in its slot and recv() copies each of the others into its own slot, so a dgram
// never aliases another one. Datagrams received but not yet handed out (the caller asked for
// fewer, or the pool ran dry) wait for the next recv() call, which then makes no syscall.
//
// send() groups consecutive datagrams to the same peer with the same length (the last of a
// group may be shorter) into one UDP_SEGMENT message, one iovec per datagram (no copy); a burst
// is one sendmmsg. It takes datagrams in order: those the kernel accepted, plus any it refused
// with a hard error (counted in tx_errors and dropped, as a lossy link would). EAGAIN/ENOBUFS
// end the burst: the rest stay the caller's (tx_full), to retry.
class socket_port final : public port {
 public:
  // Throws std::system_error (bind, socket options) or std::invalid_argument (options).
  explicit socket_port(const socket_port_options& opts);
  ~socket_port() override;
  socket_port(const socket_port&) = delete;
  socket_port& operator=(const socket_port&) = delete;

  unsigned alloc(dgram** bufs, unsigned n) override;
  unsigned send(dgram** bufs, unsigned n) override;
  unsigned recv(dgram** bufs, unsigned n) override;
  void free(dgram** bufs, unsigned n) override;

  uint32_t max_payload() const override { return max_payload_; }
  udp_addr local() const override { return local_; }
  bool link_up() const override { return fd_ >= 0; }
  const port_stats& stats() const override { return stats_; }
  std::string name() const override { return "socket"; }

  const socket_port_stats& socket_stats() const { return sstats_; }
  // Whether GSO / GRO are in use (asked for and supported by the kernel).
  bool gso() const { return gso_; }
  // Longest datagram send() groups with GSO: max_payload until the kernel refuses a segment
  // size (above the path MTU), then less than that size.
  uint32_t gso_max_segment() const { return gso_ ? gso_max_seg_ : 0; }
  bool gro() const { return gro_; }
  // The socket, for a caller that sleeps in epoll/poll when idle (readable: recv() has work).
  int fd() const { return fd_; }
  // Free buffers in the pool.
  unsigned available() const { return free_top_; }
  // Datagrams received with GRO but not yet handed out by recv().
  bool rx_pending() const { return rx_stage_next_ < rx_stage_count_; }
  int wait_fd() const noexcept override { return rx_pending() ? -1 : fd_; }

 private:
  struct stage;

  void setup_socket(const socket_port_options& opts);
  unsigned recv_direct(dgram** bufs, unsigned n);
  unsigned recv_staged(dgram** bufs, unsigned n);
  unsigned drain_staged(dgram** bufs, unsigned n);
  void release(dgram* d) noexcept;

  int fd_ = -1;
  udp_addr local_;
  uint32_t max_payload_;
  unsigned nbuf_;
  unsigned max_burst_;
  bool gso_ = false;
  uint32_t gso_max_seg_;
  bool gro_ = false;

  // The slab: dgram descriptors and their payload memory (mmap'd), and the free stack.
  std::unique_ptr<dgram[]> dgrams_;
  uint8_t* payload_ = nullptr;
  size_t payload_bytes_ = 0;
  size_t stride_ = 0;
  std::unique_ptr<dgram*[]> free_stack_;
  unsigned free_top_ = 0;

  // Per-burst syscall arrays (max_burst_ entries; iovecs: one per datagram).
  std::unique_ptr<mmsghdr[]> msgs_;
  std::unique_ptr<iovec[]> iovs_;
  std::unique_ptr<sockaddr_storage[]> names_;
  std::unique_ptr<uint8_t[]> cmsgs_;       // msg control space, cmsg_space_ bytes per message
  std::unique_ptr<unsigned[]> msg_first_;  // send: first datagram index of each message
  std::unique_ptr<dgram*[]> rx_bufs_;

  // GRO staging: gro_batch_ buffers of 64 KiB, and the messages in them not yet handed out.
  std::unique_ptr<stage[]> stages_;
  uint8_t* stage_mem_ = nullptr;
  size_t stage_bytes_ = 0;
  unsigned gro_batch_ = 0;
  unsigned rx_stage_count_ = 0;  // messages received by the last staged recvmmsg
  unsigned rx_stage_next_ = 0;   // first one with datagrams left

  port_stats stats_;
  socket_port_stats sstats_;
};

}  // namespace tandem::dp
