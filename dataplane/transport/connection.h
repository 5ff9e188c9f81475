// SPDX-License-Identifier: Apache-2.0
// One transport session with one peer: handshake (optionally keyed), reliable in-order messages
// over a port, selective acks, RTT-based retransmission, AIMD congestion control, a rate cap,
// keepalives and dead-peer detection. Owned and polled by one lcore; no locks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/crypto/aead.h"
#include "dataplane/crypto/kdf.h"
#include "dataplane/crypto/replay_window.h"
#include "dataplane/port/port.h"
#include "dataplane/transport/frame.h"

namespace tandem::dp::transport {

struct connection_config {
  udp_addr peer;
  // Static key (16/24/32 bytes, from load_key_file) or empty for integrity-only sessions.
  std::vector<uint8_t> key;
  // Refuse a peer that offers no encryption (always true when a key is configured: a keyed side
  // never falls back to plaintext).
  bool require_encryption = false;
  aead_backend backend = best_aead_backend();
  uint32_t max_message = 4u << 20;   // largest message send() accepts
  uint32_t send_buffer = 32u << 20;  // queued + unacknowledged bytes
  uint32_t recv_buffer = 32u << 20;  // reassembly ring (the window offered to the peer)
  uint64_t rate_cap_bps = 0;         // 0: congestion control alone
  uint64_t keepalive_ns = 200'000'000;
  uint64_t dead_peer_ns = 3'000'000'000;
  uint64_t handshake_retry_ns = 200'000'000;
  uint64_t min_rto_ns = 5'000'000;
  uint64_t max_rto_ns = 2'000'000'000;
  uint64_t ack_delay_ns = 200'000;  // an ack waits at most this long for a second packet
  // Log lines (one per event, naming the peer); default: stderr.
  std::function<void(std::string_view)> log;
};

enum class conn_state : uint8_t {
  connecting,   // handshake in progress (or waiting for the peer's hello)
  established,  // messages flow
  failed,       // the handshake was refused (wrong key, no encryption); retried slowly
};
std::string_view to_string(conn_state s) noexcept;

struct conn_stats {
  uint64_t sent_packets = 0, sent_bytes = 0;  // data packets and their message bytes
  uint64_t retransmitted = 0;                 // data packets sent again
  uint64_t rto_expiries = 0;                  // retransmission timeouts (all in flight resent)
  uint64_t acked_bytes = 0;
  uint64_t delivered_messages = 0, delivered_bytes = 0;
  uint64_t received_packets = 0;
  uint64_t dropped_bad_crc = 0;    // frames whose CRC32C did not match
  uint64_t dropped_auth = 0;       // frames that failed GCM authentication
  uint64_t dropped_replay = 0;     // packet numbers seen before or too old
  uint64_t dropped_malformed = 0;  // bad header or body, wrong connection id, beyond window
  uint64_t handshakes = 0;         // sessions established
  uint64_t ignored_hellos = 0;     // hellos while the session's peer was alive (forged or stale)
  uint64_t dead_peer_events = 0;
  uint64_t rtt_ns = 0, rttvar_ns = 0, rto_ns = 0;  // smoothed RTT estimate
  uint64_t cwnd_bytes = 0, bytes_in_flight = 0;
};

// Messages are delivered through `on_message` (called from input()/poll(); the span is valid for
// the call only). A new session (after a peer restart or a dead-peer timeout) discards what the
// old one had not delivered or acknowledged: the layer above resynchronises; on_session tells
// it when a session starts (true) or ends (false).
class connection {
 public:
  using message_fn = std::function<void(std::span<const uint8_t>)>;
  using session_fn = std::function<void(bool up)>;
  // A send_ref() message's buffer is free again: `acked` when the peer acknowledged every byte,
  // false when the session ended first (the message may or may not have arrived).
  using release_fn = std::function<void(uint64_t cookie, bool acked)>;

  // Throws std::runtime_error for an invalid configuration (key size, buffer sizes).
  connection(port& p, const connection_config& cfg, message_fn on_message,
             session_fn on_session = {});
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Queues a message (copied). 0; -EMSGSIZE when larger than max_message; -EAGAIN when the send
  // buffer is full (poll and retry); -ENOTCONN when no session is established.
  int send(std::span<const uint8_t> msg);
  // Queues a message without copying it: `msg` must stay valid and unchanged until the release
  // callback (set_release) names `cookie`. Same limits and results as send(); the message counts
  // against the send buffer until it is released. Releases come in send order; the callback
  // runs from input(), poll(), a session's end or the destructor. It may queue again after an
  // ack; while a session's end releases (acked == false), sends answer -ENOTCONN.
  int send_ref(std::span<const uint8_t> msg, uint64_t cookie);
  void set_release(release_fn f) { on_release_ = std::move(f); }

  // Datagrams from the peer's address (the endpoint demultiplexes).
  void input(dgram** bufs, unsigned n, uint64_t now_ns);
  // Timers and transmission; call often (every poll loop).
  void poll(uint64_t now_ns);

  conn_state state() const { return state_; }
  const conn_stats& stats() const { return stats_; }
  const connection_config& config() const { return cfg_; }
  // Bytes queued or sent but not yet acknowledged.
  uint64_t unacked_bytes() const { return snd_end_off_ - snd_una_off_; }
  bool encrypted() const { return tx_aead_ != nullptr; }
  uint32_t max_segment() const { return max_segment_; }

 private:
  struct impl;
  std::unique_ptr<impl> d_;
  connection_config cfg_;
  port& port_;  // declared before the callbacks: impl reads it on construction
  conn_state state_ = conn_state::connecting;
  conn_stats stats_;
  uint64_t snd_una_off_ = 0, snd_end_off_ = 0;
  std::unique_ptr<aead> tx_aead_, rx_aead_;
  uint32_t max_segment_ = 0;
  message_fn on_message_;
  session_fn on_session_;
  release_fn on_release_;
  friend struct impl;
};

}  // namespace tandem::dp::transport
