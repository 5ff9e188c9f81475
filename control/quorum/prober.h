// SPDX-License-Identifier: Apache-2.0
// Probes the partition-resolution targets (ICMP echo, any HTTP answer) on worker threads.
//
// probe_once() is one blocking probe; `prober` runs every target once per interval on an Asio
// executor and hands each result to a callback on that executor, for partition_resolver::record.
// Each target has its own worker thread, so a target that hangs until the timeout delays nobody
// else; a target whose probe is still running when the next is due is skipped for that round
// (not queued). docs/quorum.md, "How the daemon probes".
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>

#include "control/quorum/http_client.h"
#include "control/quorum/partition.h"

namespace tandem::ctl::quorum {

// --- ICMP echo, the pure part ---

// The echo request we sent, as far as matching its answer needs it.
struct icmp_echo {
  bool v6 = false;
  bool ip_header = false;  // packets start with the IPv4 header (raw IPv4 sockets deliver it)
  bool match_id = true;    // false on datagram sockets: the kernel rewrote the identifier
  uint16_t id = 0;
  uint16_t seq = 0;
};

enum class icmp_match : uint8_t {
  unrelated,  // not about our request (another type, id or sequence, truncated, bad checksum)
  reply,      // the echo reply to our request
  error,      // destination unreachable / time exceeded quoting our request (raw sockets)
};

struct icmp_answer {
  icmp_match match = icmp_match::unrelated;
  uint8_t type = 0;  // the ICMP type and code of the packet, for error texts
  uint8_t code = 0;
};

// Looks at one packet read from the ICMP socket. IPv4 checksums are verified (raw sockets see
// packets before the kernel checks them); ICMPv6 checksums are the kernel's business.
[[nodiscard]] icmp_answer match_icmp(std::span<const uint8_t> packet,
                                     const icmp_echo& sent) noexcept;

// An echo request (type 8 / 128) with `payload`; the IPv4 checksum is filled in, the ICMPv6 one
// left 0 (the kernel computes it, it needs the addresses).
[[nodiscard]] std::vector<uint8_t> make_echo_request(bool v6, uint16_t id, uint16_t seq,
                                                     std::span<const uint8_t> payload);

// The Internet checksum (RFC 1071) of `data`.
[[nodiscard]] uint16_t icmp_checksum(std::span<const uint8_t> data) noexcept;

// "host unreachable", "TTL exceeded in transit", "type 3 code 7".
[[nodiscard]] std::string icmp_error_text(bool v6, uint8_t type, uint8_t code);

// --- blocking probes ---

enum class icmp_socket : uint8_t {
  automatic,  // SOCK_DGRAM (unprivileged ping socket), SOCK_RAW if that gives EACCES / EPERM
  datagram,   // only SOCK_DGRAM
  raw,        // only SOCK_RAW (needs CAP_NET_RAW)
};

struct ping_outcome {
  bool reachable = false;
  std::string detail;                         // "reply in 0.3 ms", "timeout after 1000 ms"...
  icmp_socket used = icmp_socket::automatic;  // the socket type that was used, when one was
};

// One ICMP echo request to an IPv4 or IPv6 literal ("10.0.0.1", "fe80::1%eth0"; names are never
// resolved), waiting up to `timeout` for the matching reply.
[[nodiscard]] ping_outcome ping(const std::string& address, std::chrono::milliseconds timeout,
                                icmp_socket sock = icmp_socket::automatic);

// One probe of `t`, blocking for at most about `timeout` (at least 1 ms is used). ping: one
// echo request; http: a GET with default TLS options, where any HTTP answer (any status) counts
// as reachable. `at` is when it finished; `target` is left 0 (the caller knows the index).
// `client`: a client to reuse for http (its kept-alive connection); a fresh one when null.
[[nodiscard]] probe_result probe_once(const probe_target& t, std::chrono::milliseconds timeout,
                                      http_client* client = nullptr);

// --- the periodic prober ---

class prober {
 public:
  using callback = std::function<void(const probe_result&)>;

  // Throws std::invalid_argument for a timeout or interval that is not positive. A timeout at
  // or above the interval makes a target that times out skip every other round.
  prober(asio::any_io_executor ex, std::vector<probe_target> targets,
         std::chrono::milliseconds timeout, std::chrono::milliseconds interval, callback cb);
  ~prober();
  prober(const prober&) = delete;
  prober& operator=(const prober&) = delete;

  // Probes every target now and then every interval. Call start() and stop() on the executor
  // (or while it is not running); the callback runs only on the executor.
  void start();
  // Cancels the timer and waits for the probes in flight (each bounded by the timeout); no
  // callback runs after it returns. The prober cannot be started again.
  void stop();
  // Stops at once without waiting: no new round, no callback from now on; probes in flight
  // finish on their threads and are dropped. For replacing a prober on the executor, which must
  // not block; stop() (or the destructor) later waits for them. On the executor.
  void retire();

  [[nodiscard]] const std::vector<probe_target>& targets() const noexcept { return targets_; }

 private:
  struct shared_state {
    std::atomic<bool> stopped{false};
  };
  void round();
  void arm();

  asio::any_io_executor ex_;
  std::vector<probe_target> targets_;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds interval_;
  callback cb_;
  asio::steady_timer timer_;
  std::vector<std::unique_ptr<http_client>> clients_;  // per http target, used by its worker
  std::vector<bool> in_flight_;                        // per target, on the executor
  std::chrono::steady_clock::time_point next_;
  asio::thread_pool workers_;  // one thread per target
  std::shared_ptr<shared_state> shared_ = std::make_shared<shared_state>();
  bool started_ = false;
  bool joined_ = false;
};

}  // namespace tandem::ctl::quorum
