// SPDX-License-Identifier: Apache-2.0
// One transport session with one peer: handshake, reliable in-order messages, selective acks,
// RTT-based retransmission, AIMD congestion control, rate cap, keepalives, dead-peer detection.
//
// Sender. Messages are copied into a ring of send_buffer bytes and cut into segments of at most
// max_segment bytes the first time they are sent. Every transmission of a segment gets a new
// packet number (never reused: it is also the GCM nonce), recorded in the in-flight ring. Acks
// name packet numbers; a segment is done when any of its packets is acked. A packet is lost
// when three later ones were acked or when its RTO expires; its segment then goes to the
// retransmission queue. Bytes are released when the oldest message is fully acked.
//
// Receiver. Segments are written at their stream offset into a reassembly ring of recv_buffer
// bytes; a small interval set records what arrived; messages are delivered in order once their
// bytes are contiguous from the delivered point. Acks carry the received packet numbers (up to
// 32 ranges) and the window: delivered offset + free space.
#include "dataplane/transport/connection.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "dataplane/crypto/crc32c.h"

namespace tandem::dp::transport {
namespace {

constexpr unsigned burst = 32;
constexpr uint32_t max_messages = 1u << 16;    // queued or undelivered messages per direction
constexpr uint32_t max_segments = 1u << 16;    // unacknowledged segments
constexpr uint32_t max_inflight = 1u << 16;    // tracked packet numbers
constexpr uint32_t max_intervals = 512;        // out-of-order holes the receiver remembers
constexpr uint32_t initial_window = 1u << 20;  // until the peer's first ack says otherwise

uint64_t rand64() {
  uint64_t v = 0;
  random_bytes({reinterpret_cast<uint8_t*>(&v), sizeof v});
  return v;
}

// Handshake frames travel in the clear, outside the session's packet numbering; a plaintext
// close belongs to them (a refusal before any keys exist).
bool is_handshake(const frame_header& h) {
  return h.type == frame_type::hello || h.type == frame_type::hello_ack ||
         h.type == frame_type::confirm || (h.type == frame_type::close && !h.encrypted());
}

bool addr_less(const udp_addr& a, const udp_addr& b) {
  return a.ip.value != b.ip.value ? a.ip.value < b.ip.value : a.port < b.port;
}

}  // namespace

std::string_view to_string(conn_state s) noexcept {
  switch (s) {
    case conn_state::connecting:
      return "connecting";
    case conn_state::established:
      return "established";
    case conn_state::failed:
      return "failed";
  }
  return "unknown";
}

struct connection::impl {
  connection& c;
  const bool initiator;
  const uint64_t boot_id = rand64();

  // ---- session --------------------------------------------------------------------------
  uint32_t local_id = 0;
  uint32_t peer_id = 0;
  uint8_t i_nonce[nonce_len] = {}, r_nonce[nonce_len] = {};
  bool awaiting_confirm = false;  // responder: hello_ack sent, confirm not yet seen
  session_keys keys;
  uint64_t last_hello_ns = 0;
  uint64_t last_recv_ns = 0;
  uint64_t last_send_ns = 0;
  bool logged_failure = false;
  close_reason failure = close_reason::shutdown;
  replay_window replay;

  // ---- sender ----------------------------------------------------------------------------
  struct msg_rec {
    uint64_t msg_id, stream_off;
    uint32_t len, acked;
    bool empty_acked;    // a zero-length message's one empty segment was acked
    bool ref;            // send_ref(): the bytes are the caller's (ext), released by callback
    const uint8_t* ext;  // send_ref(): the caller's bytes (null when empty)
    uint64_t cookie;     // send_ref(): named in the release callback
    bool done() const { return len > 0 ? acked >= len : empty_acked; }
  };
  struct seg_rec {
    uint32_t msg_slot;  // index into msgs
    uint32_t offset, len;
    bool acked, queued;  // queued: in the retransmission queue
  };
  struct pkt_rec {
    uint64_t seg;  // segment sequence number
    uint64_t sent_ns;
    uint32_t bytes;
    uint8_t state;  // 0 free/acked, 1 in flight, 2 declared lost
  };
  std::vector<uint8_t> sbuf;
  std::vector<msg_rec> msgs;  // ring; msg_head..msg_tail
  uint64_t msg_head = 0, msg_tail = 0, next_msg_id = 0;
  uint64_t cur_msg = 0;  // next message to cut segments from
  uint32_t cur_offset = 0;
  std::vector<seg_rec> segs;  // ring by segment sequence number
  uint64_t seg_head = 0, seg_tail = 0;
  std::vector<uint64_t> retx;  // ring of segment numbers
  uint64_t retx_head = 0, retx_tail = 0;
  std::vector<pkt_rec> pkts;  // ring by packet number
  uint64_t pn_base = 1, next_pn = 1;
  uint64_t largest_acked = 0;
  // congestion control and RTT
  uint64_t cwnd = 0, ssthresh = UINT64_MAX, in_flight = 0, recovery_pn = 0;
  uint64_t pkts_in_flight = 0;  // counts zero-length segments too, unlike in_flight
  uint64_t srtt = 0, rttvar = 0, rto = 0, latest_rtt = 0;
  // The time threshold never goes below this: an ack may wait ack_delay_ns at the receiver.
  static constexpr uint64_t min_loss_delay_ns = 500'000;
  unsigned rto_backoff = 0;
  uint64_t peer_delivered = 0, peer_window = initial_window;
  // rate cap (token bucket in bytes)
  double tokens = 0;
  uint64_t tokens_ns = 0;

  // ---- receiver --------------------------------------------------------------------------
  std::vector<uint8_t> rbuf;
  std::vector<uint8_t> scratch;  // a message that wraps around the ring, made contiguous
  struct rmsg {
    uint64_t msg_id = UINT64_MAX, stream_off = 0;
    uint32_t len = 0;
  };
  std::vector<rmsg> rmsgs;  // by msg_id % max_messages
  uint64_t delivered_off = 0, next_deliver_id = 0;
  struct interval {
    uint64_t start, end;
  };
  std::vector<interval> have;     // sorted, disjoint, above delivered_off
  std::vector<pn_range> rcv_pns;  // received data packet numbers, descending
  unsigned ack_pending = 0;
  uint64_t ack_first_ns = 0;

  impl(connection& conn) : c(conn), initiator(addr_less(conn.port_.local(), conn.cfg_.peer)) {
    sbuf.resize(conn.cfg_.send_buffer);
    rbuf.resize(conn.cfg_.recv_buffer);
    scratch.resize(conn.cfg_.max_message);
    msgs.resize(max_messages);
    segs.resize(max_segments);
    retx.resize(max_segments);
    pkts.resize(max_inflight);
    rmsgs.resize(max_messages);
    have.reserve(max_intervals);
    rcv_pns.reserve(max_ack_ranges + 2);
  }

  // ---- helpers ---------------------------------------------------------------------------
  void log(const std::string& line) {
    const std::string full = "transport peer " + c.cfg_.peer.to_string() + ": " + line;
    if (c.cfg_.log) {
      c.cfg_.log(full);
    } else {
      std::fprintf(stderr, "%s\n", full.c_str());
    }
  }

  uint32_t mss() const { return c.max_segment_; }

  void reset_session() {
    // Sender: everything queued or in flight belongs to the old session. The caller's buffers
    // are released first (the callback may queue again: into the ring as it is after reset).
    drop_backlog();
    const uint64_t head = msg_head, tail = msg_tail;
    msg_head = msg_tail = cur_msg = 0;
    cur_offset = 0;
    next_msg_id = 0;
    seg_head = seg_tail = 0;
    retx_head = retx_tail = 0;
    pn_base = next_pn = 1;
    largest_acked = 0;
    in_flight = 0;
    pkts_in_flight = 0;
    cwnd = uint64_t{32} * mss();
    ssthresh = UINT64_MAX;
    recovery_pn = 0;
    srtt = rttvar = latest_rtt = 0;
    rto = 100'000'000;
    rto_backoff = 0;
    peer_delivered = 0;
    peer_window = initial_window;
    c.snd_una_off_ = c.snd_end_off_ = 0;
    // Receiver.
    for (auto& m : rmsgs)
      m.msg_id = UINT64_MAX;
    delivered_off = 0;
    next_deliver_id = 0;
    have.clear();
    rcv_pns.clear();
    ack_pending = 0;
    replay.reset();
    c.tx_aead_.reset();
    c.rx_aead_.reset();
    awaiting_confirm = false;
    update_stats();
    release_discarded(head, tail);
  }

  // Releases the discarded send_ref() messages after a reset. Meanwhile send() and
  // send_ref() answer -ENOTCONN: the session they would queue into is ending.
  bool discarding = false;
  void release_discarded(uint64_t head, uint64_t tail) {
    if (!c.on_release_) return;
    discarding = true;
    for (uint64_t i = head; i < tail; ++i) {
      const msg_rec& m = msgs[i % max_messages];
      if (m.ref) c.on_release_(m.cookie, false);
    }
    discarding = false;
  }

  void update_stats() {
    c.stats_.rtt_ns = srtt;
    c.stats_.rttvar_ns = rttvar;
    c.stats_.rto_ns = rto;
    c.stats_.cwnd_bytes = cwnd;
    c.stats_.bytes_in_flight = in_flight;
  }

  void go_established() {
    const bool was = c.state_ == conn_state::established;
    c.state_ = conn_state::established;
    logged_failure = false;
    ++c.stats_.handshakes;
    if (!was) {
      log(std::string("session established") +
          (c.tx_aead_ ? " (" + std::string(c.tx_aead_->name()) + ")" : " (integrity only)"));
    }
    if (c.on_session_) c.on_session_(true);
  }

  void end_session(const char* why) {
    if (c.state_ == conn_state::established) {
      log(std::string("session ended: ") + why);
      if (c.on_session_) c.on_session_(false);
    }
    reset_session();
    c.state_ = conn_state::connecting;
    local_id = 0;
  }

  void fail(close_reason r, const std::string& line) {
    if (!logged_failure || failure != r) log(line);
    logged_failure = true;
    failure = r;
    if (c.state_ == conn_state::established && c.on_session_) c.on_session_(false);
    reset_session();
    c.state_ = conn_state::failed;
    local_id = 0;
  }

  // proof = HKDF(static key, salt = i_nonce || r_nonce, info = label); zeros without a key.
  void proof(const char* label, uint8_t result[proof_len]) {
    std::memset(result, 0, proof_len);
    if (c.cfg_.key.empty()) return;
    uint8_t salt[2 * nonce_len];
    std::memcpy(salt, i_nonce, nonce_len);
    std::memcpy(salt + nonce_len, r_nonce, nonce_len);
    hkdf_sha256(c.cfg_.key, salt, {reinterpret_cast<const uint8_t*>(label), std::strlen(label)},
                {result, proof_len});
  }

  void make_keys() {
    if (c.cfg_.key.empty()) return;
    keys = derive_session_keys(c.cfg_.key, std::span<const uint8_t, nonce_len>(i_nonce),
                               std::span<const uint8_t, nonce_len>(r_nonce),
                               initiator ? handshake_role::initiator : handshake_role::responder);
    c.tx_aead_ = make_aead(c.cfg_.backend, keys.tx.key());
    c.rx_aead_ = make_aead(c.cfg_.backend, keys.rx.key());
  }

  // ---- transmission ----------------------------------------------------------------------
  // Frames the port did not take (full tx ring, peer MAC not resolved yet): they keep their
  // packet numbers and go first at the next chance, in order. Dropping them instead would turn
  // a momentarily full ring into losses, retransmissions and a halved window.
  static constexpr unsigned backlog_cap = 2 * burst;
  dgram* backlog[backlog_cap];
  unsigned backlog_n = 0;

  unsigned push(dgram** bufs, unsigned n) {
    unsigned done = 0;
    while (done < n) {
      const unsigned sent = c.port_.send(bufs + done, n - done);
      if (sent == 0) break;
      done += sent;
    }
    return done;
  }

  // Sends the backlog; true when it is empty.
  bool drain_backlog(uint64_t now) {
    if (backlog_n == 0) return true;
    const unsigned done = push(backlog, backlog_n);
    if (done) {
      last_send_ns = now;
      std::memmove(backlog, backlog + done, (backlog_n - done) * sizeof(dgram*));
      backlog_n -= done;
    }
    return backlog_n == 0;
  }

  // Sends frames built in `bufs` (already finished) after the backlog; keeps what the port does
  // not take (frees it only when the backlog is full: then it counts as lost).
  void transmit(dgram** bufs, unsigned n, uint64_t now) {
    const unsigned done = drain_backlog(now) ? push(bufs, n) : 0;
    if (done) last_send_ns = now;
    const unsigned keep = std::min(n - done, backlog_cap - backlog_n);
    std::memcpy(backlog + backlog_n, bufs + done, keep * sizeof(dgram*));
    backlog_n += keep;
    if (done + keep < n) c.port_.free(bufs + done + keep, n - done - keep);
  }

  void drop_backlog() {
    c.port_.free(backlog, backlog_n);
    backlog_n = 0;
  }

  // Builds an unencrypted control frame (handshake) into a fresh buffer.
  dgram* control_frame(frame_type t, uint32_t conn_id, const std::vector<uint8_t>& body) {
    dgram* d = nullptr;
    if (c.port_.alloc(&d, 1) != 1) return nullptr;
    frame_header h;
    h.type = t;
    h.conn_id = conn_id;
    h.body_len = static_cast<uint16_t>(body.size());
    std::memcpy(d->data + header_len, body.data(), body.size());
    const int len = finish_frame({d->data, d->cap}, h);
    d->len = static_cast<uint32_t>(len);
    d->peer = c.cfg_.peer;
    return d;
  }

  void send_hello(frame_type t, uint32_t conn_id, const uint8_t nonce[nonce_len],
                  const uint8_t prf[proof_len], uint64_t now) {
    hello_body hb;
    hb.sender_conn_id = local_id;
    hb.crypto = c.cfg_.key.empty() ? 0 : 1;
    hb.key_bytes = static_cast<uint8_t>(c.cfg_.key.size());
    hb.boot_id = boot_id;
    std::memcpy(hb.nonce, nonce, nonce_len);
    std::memcpy(hb.proof, prf, proof_len);
    std::vector<uint8_t> body(hello_body_len);
    (void)encode_hello(body, hb);
    if (dgram* d = control_frame(t, conn_id, body)) transmit(&d, 1, now);
  }

  void send_close(close_reason r, uint32_t conn_id, uint64_t now) {
    std::vector<uint8_t> body(close_body_len);
    (void)encode_close(body, r);
    if (dgram* d = control_frame(frame_type::close, conn_id, body)) transmit(&d, 1, now);
  }

  // Per-burst receive scratch (input()), kept here so a call does not initialise it.
  struct rx_scratch {
    decoded_frame frames[burst];
    bool usable[burst];
    aead_op ops[burst];
    uint8_t nonces[burst][aead_nonce_size];
    uint8_t aads[burst][header_len];
    unsigned op_of[burst];
  } rx;

  // Writes header + body (already at data + header_len) of a session frame; seals it when the
  // session is encrypted (queues the op) and finishes the CRC later in flush_sealed().
  struct pending {
    dgram* d[burst];
    aead_op ops[burst];
    uint8_t nonces[burst][aead_nonce_size];
    uint8_t aads[burst][header_len];
    unsigned n = 0;
  } outq;

  void queue_session_frame(dgram* d, frame_type t, uint16_t body_len, uint64_t now) {
    frame_header h;
    h.type = t;
    h.conn_id = peer_id;
    h.body_len = body_len;
    h.pn = next_pn++;
    if (c.tx_aead_) h.flags |= flag_encrypted;
    const int len = write_header({d->data, d->cap}, h);
    d->len = static_cast<uint32_t>(len);
    d->peer = c.cfg_.peer;
    const unsigned i = outq.n++;
    outq.d[i] = d;
    if (c.tx_aead_) {
      make_gcm_nonce(keys.tx.salt, h.pn, outq.nonces[i]);
      frame_aad({d->data, d->len}, outq.aads[i]);
      aead_op& op = outq.ops[i];
      op = {};
      op.nonce = outq.nonces[i];
      op.aad = {outq.aads[i], header_len};
      op.in = {d->data + header_len, body_len};
      op.out = d->data + header_len;
      op.tag = d->data + header_len + body_len;
    }
    if (outq.n == burst) flush_out(now);
  }

  void flush_out(uint64_t now) {
    if (outq.n == 0) return;
    if (c.tx_aead_) c.tx_aead_->seal_burst(outq.ops, outq.n);  // one virtual call per burst
    for (unsigned i = 0; i < outq.n; ++i)
      seal_crc({outq.d[i]->data, outq.d[i]->len});
    transmit(outq.d, outq.n, now);
    outq.n = 0;
  }

  void send_ack(uint64_t now) {
    if (rcv_pns.empty()) return;
    dgram* d = nullptr;
    if (c.port_.alloc(&d, 1) != 1) return;
    ack_body a;
    a.delivered = delivered_off;
    a.window = static_cast<uint32_t>(std::min<uint64_t>(c.cfg_.recv_buffer, UINT32_MAX));
    a.ack_delay_us = static_cast<uint32_t>((now - ack_first_ns) / 1000);
    a.count = static_cast<uint16_t>(std::min<size_t>(rcv_pns.size(), max_ack_ranges));
    for (uint16_t i = 0; i < a.count; ++i)
      a.ranges[i] = rcv_pns[i];
    const int len = encode_ack({d->data + header_len, d->cap - header_len - tag_len}, a);
    queue_session_frame(d, frame_type::ack, static_cast<uint16_t>(len), now);
    ack_pending = 0;
  }

  void send_keepalive(uint64_t sent, uint64_t echo, uint64_t now) {
    dgram* d = nullptr;
    if (c.port_.alloc(&d, 1) != 1) return;
    const int len =
        encode_keepalive({d->data + header_len, d->cap - header_len - tag_len}, {sent, echo});
    queue_session_frame(d, frame_type::keepalive, static_cast<uint16_t>(len), now);
  }

  // ---- sender data path ------------------------------------------------------------------
  // send() (copied into the ring) and send_ref() (ref: the caller's bytes).
  int enqueue(std::span<const uint8_t> msg, bool ref, uint64_t cookie) {
    if (msg.size() > c.cfg_.max_message) return -EMSGSIZE;
    if (c.state_ != conn_state::established || discarding) return -ENOTCONN;
    // Referenced messages take stream space too, so ring positions never overlap: every
    // unacknowledged byte lies within one send_buffer of stream offsets.
    if (c.snd_end_off_ - c.snd_una_off_ + msg.size() > sbuf.size()) return -EAGAIN;
    if (msg_tail - msg_head >= max_messages) return -EAGAIN;
    if (!ref && !msg.empty()) {  // an empty span may have a null data()
      const uint64_t at = c.snd_end_off_ % sbuf.size();
      const size_t first = std::min<size_t>(msg.size(), sbuf.size() - at);
      std::memcpy(sbuf.data() + at, msg.data(), first);
      std::memcpy(sbuf.data(), msg.data() + first, msg.size() - first);
    }
    msg_at(msg_tail) = {next_msg_id++,
                        c.snd_end_off_,
                        static_cast<uint32_t>(msg.size()),
                        0,
                        false,
                        ref,
                        ref ? msg.data() : nullptr,
                        cookie};
    ++msg_tail;
    c.snd_end_off_ += msg.size();
    return 0;
  }

  msg_rec& msg_at(uint64_t i) { return msgs[i % max_messages]; }
  seg_rec& seg_at(uint64_t s) { return segs[s % max_segments]; }
  pkt_rec& pkt_at(uint64_t pn) { return pkts[pn % max_inflight]; }

  // Next segment to send: a lost one first, else a new one cut from the queued messages.
  // Returns false when there is none or a limit stops it.
  bool next_segment(uint64_t& seg) {
    while (retx_head != retx_tail) {
      const uint64_t s = retx[retx_head % max_segments];
      ++retx_head;
      seg_rec& r = seg_at(s);
      r.queued = false;
      if (!r.acked && s >= seg_head) {
        seg = s;
        return true;
      }
    }
    if (cur_msg == msg_tail) return false;
    if (seg_tail - seg_head == max_segments) return false;
    msg_rec& m = msg_at(cur_msg);
    const uint32_t len = std::min(m.len - cur_offset, mss());
    // Flow control: the peer has room up to delivered + window.
    if (m.stream_off + cur_offset + len > peer_delivered + peer_window && len > 0) return false;
    seg = seg_tail++;
    seg_at(seg) = {static_cast<uint32_t>(cur_msg % max_messages), cur_offset, len, false, false};
    cur_offset += len;
    if (cur_offset >= m.len) {
      ++cur_msg;
      cur_offset = 0;
    }
    return true;
  }

  bool rate_allows(uint32_t bytes, uint64_t now) {
    if (c.cfg_.rate_cap_bps == 0) return true;
    const double rate = static_cast<double>(c.cfg_.rate_cap_bps) / 8e9;  // bytes per ns
    const double cap = std::max<double>(64 * 1024, 2.0 * mss());
    tokens = std::min(cap, tokens + static_cast<double>(now - tokens_ns) * rate);
    tokens_ns = now;
    if (tokens < bytes) return false;
    tokens -= bytes;
    return true;
  }

  void send_data(uint64_t now) {
    if (!drain_backlog(now)) return;  // the port is full: new frames would only queue up
    while (in_flight + mss() <= cwnd || pkts_in_flight == 0) {
      if (outq.n == 0 && backlog_n > 0) break;  // the last burst did not fit either
      if (next_pn - pn_base >= max_inflight - 1) break;
      uint64_t s;
      if (!next_segment(s)) break;
      seg_rec& r = seg_at(s);
      dgram* d = nullptr;
      if (!rate_allows(r.len + 48, now) || c.port_.alloc(&d, 1) != 1) {
        // Put it back in front: it goes first when tokens and buffers allow.
        r.queued = true;
        --retx_head;
        retx[retx_head % max_segments] = s;
        break;
      }
      msg_rec& m = msgs[r.msg_slot];
      uint8_t* body = d->data + header_len;
      data_body db{m.msg_id, m.stream_off, m.len, r.offset, {}};
      (void)encode_data({body, data_body_overhead}, db);
      if (m.ref) {
        if (r.len) std::memcpy(body + data_body_overhead, m.ext + r.offset, r.len);
      } else {
        // Copy the segment out of the send ring (it may wrap).
        const uint64_t from = (m.stream_off + r.offset) % sbuf.size();
        const uint32_t first = static_cast<uint32_t>(std::min<uint64_t>(r.len, sbuf.size() - from));
        std::memcpy(body + data_body_overhead, sbuf.data() + from, first);
        std::memcpy(body + data_body_overhead + first, sbuf.data(), r.len - first);
      }
      const uint64_t pn = next_pn;
      pkt_rec& p = pkt_at(pn);
      p = {s, now, r.len, 1};
      in_flight += r.len;
      ++pkts_in_flight;
      ++c.stats_.sent_packets;
      c.stats_.sent_bytes += r.len;
      queue_session_frame(d, frame_type::data, static_cast<uint16_t>(data_body_overhead + r.len),
                          now);
    }
  }

  void mark_lost(uint64_t pn) {
    pkt_rec& p = pkt_at(pn);
    if (p.state != 1) return;
    p.state = 2;
    in_flight -= p.bytes;
    --pkts_in_flight;
    seg_rec& r = seg_at(p.seg);
    if (!r.acked && !r.queued && p.seg >= seg_head) {
      r.queued = true;
      retx[retx_tail % max_segments] = p.seg;
      ++retx_tail;
      ++c.stats_.retransmitted;
    }
  }

  void congestion_event(uint64_t pn) {
    if (pn < recovery_pn) return;  // one reduction per round trip
    ssthresh = std::max<uint64_t>(cwnd / 2, uint64_t{4} * mss());
    cwnd = ssthresh;
    recovery_pn = next_pn;
  }

  void release_acked() {
    // Segments, then messages, then send-ring bytes, from the oldest.
    while (seg_head < seg_tail && seg_at(seg_head).acked)
      ++seg_head;
    while (msg_head < cur_msg) {
      msg_rec& m = msg_at(msg_head);
      if (!m.done()) break;
      ++msg_head;
      c.snd_una_off_ = m.stream_off + m.len;
      if (m.ref && c.on_release_) c.on_release_(m.cookie, true);
    }
    while (pn_base < next_pn && pkt_at(pn_base).state != 1)
      ++pn_base;
  }

  void on_ack(const ack_body& a, uint64_t now) {
    peer_delivered = std::max(peer_delivered, a.delivered);
    peer_window = a.window;
    const uint64_t largest = a.largest();
    if (largest >= next_pn) return;  // acks a packet never sent: ignore the frame
    bool newly_largest = false;
    uint64_t largest_sent_ns = 0;
    for (uint16_t i = 0; i < a.count; ++i) {
      const uint64_t lo = std::max(a.ranges[i].first, pn_base);
      for (uint64_t pn = a.ranges[i].last; pn >= lo && pn != 0; --pn) {
        pkt_rec& p = pkt_at(pn);
        if (p.state == 0) continue;
        if (pn == largest && pn > largest_acked) {
          newly_largest = true;
          largest_sent_ns = p.sent_ns;
        }
        if (p.state == 1) {
          in_flight -= p.bytes;
          --pkts_in_flight;
          // AIMD: slow start below ssthresh, then one segment per window.
          if (cwnd < ssthresh) {
            cwnd += p.bytes;
          } else {
            cwnd += std::max<uint64_t>(1, uint64_t{mss()} * p.bytes / cwnd);
          }
        }
        p.state = 0;
        seg_rec& r = seg_at(p.seg);
        if (!r.acked && p.seg >= seg_head) {
          r.acked = true;
          msgs[r.msg_slot].acked += r.len;
          if (r.len == 0) msgs[r.msg_slot].empty_acked = true;
          c.stats_.acked_bytes += r.len;
        }
        if (pn == lo) break;
      }
    }
    if (newly_largest) {
      largest_acked = largest;
      const uint64_t delay = uint64_t{a.ack_delay_us} * 1000;
      uint64_t sample = now - largest_sent_ns;
      if (sample > delay) sample -= delay;
      rtt_sample(sample);
      rto_backoff = 0;
    }
    detect_losses(now);
    release_acked();
  }

  // A packet sent before the largest acknowledged one is lost when three later packets were
  // acked (packet threshold) or when it is older than 9/8 of the RTT (time threshold, as QUIC
  // and RACK do): with a small window, after losses, three later packets may never come, and
  // only the time threshold saves waiting for the RTO. Runs on acks and from poll().
  void detect_losses(uint64_t now) {
    if (largest_acked == 0 || srtt == 0) return;
    const uint64_t rtt = std::max(srtt, latest_rtt);
    const uint64_t delay = std::max<uint64_t>(rtt + rtt / 8, min_loss_delay_ns);
    for (uint64_t pn = pn_base; pn < largest_acked && pn < next_pn; ++pn) {
      const pkt_rec& p = pkt_at(pn);
      if (p.state != 1) continue;
      if (pn + 3 <= largest_acked || now - p.sent_ns >= delay) {
        mark_lost(pn);
        congestion_event(pn);
      }
    }
  }

  void rtt_sample(uint64_t sample) {
    latest_rtt = sample;
    if (srtt == 0) {
      srtt = sample;
      rttvar = sample / 2;
    } else {
      const uint64_t diff = srtt > sample ? srtt - sample : sample - srtt;
      rttvar = (3 * rttvar + diff) / 4;
      srtt = (7 * srtt + sample) / 8;
    }
    rto = std::clamp<uint64_t>(srtt + std::max<uint64_t>(4 * rttvar, 1'000'000), c.cfg_.min_rto_ns,
                               c.cfg_.max_rto_ns);
  }

  // Retransmission timeout. The first expiry sends a probe: only the oldest packet is resent
  // (its ack, with a new packet number, lets packet-threshold detection find what else was
  // lost), and the window stays. A peer that was only slow, say descheduled for longer than
  // the RTO, then costs one packet instead of a whole window of spurious retransmissions. A
  // second expiry in a row means the path is gone or congested: everything in flight is
  // resent from a window of two segments (RFC 6298 5.5-5.7).
  void check_rto(uint64_t now) {
    if (pkts_in_flight == 0) return;
    // The oldest packet still in flight.
    uint64_t pn = pn_base;
    while (pn < next_pn && pkt_at(pn).state != 1)
      ++pn;
    if (pn == next_pn) return;
    // The probe fires after a probe timeout (PTO, as QUIC: RTT + 4 RTT variations + the peer's
    // ack delay), far below the RTO on a LAN: a lost tail of the window costs about one round
    // trip instead of min_rto_ns. The collapse waits for the (doubled) RTO.
    const uint64_t pto =
        srtt == 0 ? rto
                  : std::clamp<uint64_t>(srtt + std::max<uint64_t>(4 * rttvar, min_loss_delay_ns) +
                                             c.cfg_.ack_delay_ns,
                                         min_loss_delay_ns, rto);
    const uint64_t timeout =
        rto_backoff == 0 ? pto : std::min(rto << std::min(rto_backoff, 6u), c.cfg_.max_rto_ns);
    if (now - pkt_at(pn).sent_ns < timeout) return;
    ++c.stats_.rto_expiries;
    if (rto_backoff++ == 0) {
      // The next oldest was sent after this one, so the doubled timeout gives the probe's ack
      // about one more RTO before the second expiry.
      mark_lost(pn);
    } else {
      for (uint64_t p = pn; p < next_pn; ++p)
        mark_lost(p);
      ssthresh = std::max<uint64_t>(cwnd / 2, uint64_t{4} * mss());
      cwnd = uint64_t{2} * mss();
      recovery_pn = next_pn;
    }
    release_acked();
  }

  // ---- receiver data path ----------------------------------------------------------------
  void record_pn(uint64_t pn, uint64_t now) {
    // rcv_pns is descending and disjoint: find the first range not above pn.
    auto it = rcv_pns.begin();
    while (it != rcv_pns.end() && it->first > pn)
      ++it;
    if (it != rcv_pns.end() && it->last >= pn) return;  // already recorded
    it = rcv_pns.insert(it, {pn, pn});
    if (auto lower = std::next(it); lower != rcv_pns.end() && lower->last + 1 == it->first) {
      it->first = lower->first;
      rcv_pns.erase(lower);
    }
    if (it != rcv_pns.begin() && std::prev(it)->first == it->last + 1) {
      std::prev(it)->first = it->first;
      rcv_pns.erase(it);
    }
    if (rcv_pns.size() > max_ack_ranges) rcv_pns.pop_back();  // the oldest holes are forgotten
    if (ack_pending++ == 0) ack_first_ns = now;
  }

  void add_interval(uint64_t start, uint64_t end) {
    // Sorted ascending, disjoint; merge overlapping or touching intervals.
    auto it = std::lower_bound(have.begin(), have.end(), start,
                               [](const interval& iv, uint64_t s) { return iv.end < s; });
    uint64_t s = start, e = end;
    auto first = it;
    while (it != have.end() && it->start <= e) {
      s = std::min(s, it->start);
      e = std::max(e, it->end);
      ++it;
    }
    it = have.erase(first, it);
    have.insert(it, {s, e});
  }

  bool on_data(const data_body& db) {
    const uint64_t seg_start = db.stream_off + db.offset;
    const uint64_t seg_end = seg_start + db.bytes.size();
    if (db.msg_id < next_deliver_id) return true;  // an old duplicate: ack it again
    if (db.msg_id - next_deliver_id >= max_messages || db.msg_len > c.cfg_.max_message ||
        seg_end > delivered_off + rbuf.size() || db.stream_off < delivered_off) {
      return false;
    }
    rmsg& m = rmsgs[db.msg_id % max_messages];
    if (m.msg_id != db.msg_id) {
      if (m.msg_id != UINT64_MAX && m.msg_id >= next_deliver_id) return false;
      m = {db.msg_id, db.stream_off, db.msg_len};
    } else if (m.stream_off != db.stream_off || m.len != db.msg_len) {
      return false;  // contradicts what an earlier segment said
    }
    if (!db.bytes.empty()) {
      if (have.size() >= max_intervals) return false;  // too many holes: dropped, resent later
      const uint64_t at = seg_start % rbuf.size();
      const size_t first = std::min<size_t>(db.bytes.size(), rbuf.size() - at);
      std::memcpy(rbuf.data() + at, db.bytes.data(), first);
      std::memcpy(rbuf.data(), db.bytes.data() + first, db.bytes.size() - first);
      add_interval(seg_start, seg_end);
    }
    return true;
  }

  void deliver() {
    for (;;) {
      rmsg& m = rmsgs[next_deliver_id % max_messages];
      if (m.msg_id != next_deliver_id || m.stream_off != delivered_off) return;
      const uint64_t end = m.stream_off + m.len;
      if (m.len > 0 &&
          (have.empty() || have.front().start > delivered_off || have.front().end < end)) {
        return;
      }
      const uint64_t at = m.stream_off % rbuf.size();
      std::span<const uint8_t> view;
      if (at + m.len <= rbuf.size()) {
        view = {rbuf.data() + at, m.len};
      } else {
        const size_t first = rbuf.size() - at;
        std::memcpy(scratch.data(), rbuf.data() + at, first);
        std::memcpy(scratch.data() + first, rbuf.data(), m.len - first);
        view = {scratch.data(), m.len};
      }
      delivered_off = end;
      ++next_deliver_id;
      m.msg_id = UINT64_MAX;
      if (!have.empty()) {
        if (have.front().end <= delivered_off) {
          have.erase(have.begin());
        } else if (have.front().start < delivered_off) {
          have.front().start = delivered_off;
        }
      }
      ++c.stats_.delivered_messages;
      c.stats_.delivered_bytes += view.size();
      if (c.on_message_) c.on_message_(view);
    }
  }
};

connection::connection(port& p, const connection_config& cfg, message_fn on_message,
                       session_fn on_session)
    : cfg_(cfg), port_(p), on_message_(std::move(on_message)), on_session_(std::move(on_session)) {
  if (!cfg_.key.empty() && cfg_.key.size() != 16 && cfg_.key.size() != 24 &&
      cfg_.key.size() != 32) {
    throw std::runtime_error("transport: key must be 16, 24 or 32 bytes, not " +
                             std::to_string(cfg_.key.size()));
  }
  if (!cfg_.key.empty()) cfg_.require_encryption = true;  // never fall back to plaintext
  if (cfg_.max_message == 0 || cfg_.send_buffer < cfg_.max_message ||
      cfg_.recv_buffer < cfg_.max_message) {
    throw std::runtime_error("transport: send and receive buffers must hold max_message bytes");
  }
  const uint32_t room = port_.max_payload();
  if (room < header_len + data_body_overhead + tag_len + 64) {
    throw std::runtime_error("transport: port payload too small: " + std::to_string(room));
  }
  max_segment_ = room - header_len - data_body_overhead - tag_len;
  d_ = std::make_unique<impl>(*this);
  d_->reset_session();
}

connection::~connection() {
  impl& s = *d_;
  dgram* d = nullptr;
  if (state_ == conn_state::established && port_.alloc(&d, 1) == 1) {
    const int len = encode_close({d->data + header_len, close_body_len}, close_reason::shutdown);
    s.queue_session_frame(d, frame_type::close, static_cast<uint16_t>(len), 0);
    s.flush_out(0);
  }
  s.drop_backlog();  // the port outlives the connection; its buffers go back to it
  s.release_discarded(s.msg_head, s.msg_tail);
}

int connection::send(std::span<const uint8_t> msg) {
  return d_->enqueue(msg, false, 0);
}

int connection::send_ref(std::span<const uint8_t> msg, uint64_t cookie) {
  return d_->enqueue(msg, true, cookie);
}

void connection::input(dgram** bufs, unsigned n, uint64_t now) {
  if (n > burst) {
    for (unsigned off = 0; off < n; off += burst)
      input(bufs + off, std::min(burst, n - off), now);
    return;
  }
  if (n == 0) return;  // nothing changes without input; poll() runs the timers
  impl& s = *d_;
  // Decrypt the session frames of the burst with one AEAD call. The scratch arrays live in the
  // connection: initialising them on the stack cost more than the rest of an empty poll.
  impl::rx_scratch& rx = s.rx;
  decoded_frame* const frames = rx.frames;
  bool* const usable = rx.usable;
  aead_op* const ops = rx.ops;
  auto& nonces = rx.nonces;
  auto& aads = rx.aads;
  unsigned* const op_of = rx.op_of;
  unsigned nops = 0;
  for (unsigned i = 0; i < n; ++i) {
    usable[i] = false;
    const auto err = decode_frame({bufs[i]->data, bufs[i]->len}, frames[i]);
    if (err == decode_error::bad_crc) {
      ++stats_.dropped_bad_crc;
      continue;
    }
    if (err != decode_error::none) {
      ++stats_.dropped_malformed;
      continue;
    }
    const frame_header& h = frames[i].header;
    if (is_handshake(h)) {
      usable[i] = true;
      continue;
    }
    if (state_ != conn_state::established && !s.awaiting_confirm) {
      ++stats_.dropped_malformed;
      continue;
    }
    if (h.conn_id != s.local_id) {
      ++stats_.dropped_malformed;
      continue;
    }
    if (h.encrypted() != (rx_aead_ != nullptr)) {
      ++stats_.dropped_auth;  // plaintext where a key is required, or the reverse
      continue;
    }
    if (s.replay.check(h.pn) != replay_window::verdict::fresh) {
      ++stats_.dropped_replay;
      if (h.type == frame_type::data) s.ack_pending++;  // our ack may have been lost
      continue;
    }
    usable[i] = true;
    if (rx_aead_) {
      const unsigned k = nops++;
      op_of[i] = k;
      make_gcm_nonce(s.keys.rx.salt, h.pn, nonces[k]);
      frame_aad({bufs[i]->data, bufs[i]->len}, aads[k]);
      ops[k] = {};
      ops[k].nonce = nonces[k];
      ops[k].aad = {aads[k], header_len};
      ops[k].in = frames[i].body;
      ops[k].out = bufs[i]->data + header_len;  // in place
      ops[k].tag = const_cast<uint8_t*>(frames[i].tag.data());
    }
  }
  if (nops) rx_aead_->open_burst(ops, nops);

  for (unsigned i = 0; i < n; ++i) {
    if (!usable[i]) continue;
    const frame_header& h = frames[i].header;
    if (!is_handshake(h)) {
      if (rx_aead_ && ops[op_of[i]].result != 0) {
        ++stats_.dropped_auth;
        continue;
      }
      s.replay.commit(h.pn);
      s.last_recv_ns = now;
      if (s.awaiting_confirm && h.type != frame_type::close) {
        // Responder: an authenticated session frame proves the initiator has the keys.
        s.awaiting_confirm = false;
        s.go_established();
      }
    }
    const std::span<const uint8_t> body = frames[i].body;
    switch (h.type) {
      case frame_type::hello: {
        hello_body hb;
        if (!decode_hello(body, hb) || s.initiator) {
          ++stats_.dropped_malformed;
          break;
        }
        // A hello is unauthenticated. While the session's peer is demonstrably alive (an
        // authenticated frame within two keepalive intervals), a new one is ignored: otherwise
        // anyone who can send from the peer's address could end the session at will. A peer
        // that really restarted falls silent in the old session, so its hellos are answered
        // from then on (at most 2 x keepalive_ns later).
        if (state_ == conn_state::established && now - s.last_recv_ns < 2 * cfg_.keepalive_ns &&
            std::memcmp(s.i_nonce, hb.nonce, nonce_len) != 0) {
          ++stats_.ignored_hellos;
          break;
        }
        s.last_recv_ns = now;
        if (cfg_.require_encryption && hb.crypto == 0) {
          s.fail(close_reason::crypto_required,
                 "refused: encryption is required and the peer has no key");
          s.send_close(close_reason::crypto_required, hb.sender_conn_id, now);
          break;
        }
        if (hb.crypto == 1 && cfg_.key.empty()) {
          s.fail(close_reason::crypto_mismatch, "refused: the peer uses a key and we have none");
          s.send_close(close_reason::crypto_mismatch, hb.sender_conn_id, now);
          break;
        }
        if (hb.crypto == 1 && hb.key_bytes != cfg_.key.size()) {
          s.fail(close_reason::crypto_mismatch,
                 "refused: key sizes differ (peer " + std::to_string(hb.key_bytes * 8) +
                     " bits, ours " + std::to_string(cfg_.key.size() * 8) + ")");
          s.send_close(close_reason::crypto_mismatch, hb.sender_conn_id, now);
          break;
        }
        // A repeated hello (our hello_ack was lost) gets the same answer; a new one starts a
        // new session.
        const bool same = s.local_id != 0 && s.peer_id == hb.sender_conn_id &&
                          std::memcmp(s.i_nonce, hb.nonce, nonce_len) == 0;
        if (!same) {
          if (state_ == conn_state::established) s.end_session("the peer started a new session");
          s.reset_session();
          s.local_id = static_cast<uint32_t>(rand64()) | 1;
          s.peer_id = hb.sender_conn_id;
          std::memcpy(s.i_nonce, hb.nonce, nonce_len);
          random_bytes(s.r_nonce);
          s.make_keys();
          s.awaiting_confirm = true;
          state_ = conn_state::connecting;
        }
        uint8_t prf[proof_len];
        s.proof("tandem v1 responder proof", prf);
        s.send_hello(frame_type::hello_ack, s.peer_id, s.r_nonce, prf, now);
        break;
      }
      case frame_type::hello_ack: {
        hello_body hb;
        if (!decode_hello(body, hb) || !s.initiator || h.conn_id != s.local_id ||
            state_ == conn_state::established) {
          if (state_ != conn_state::established) ++stats_.dropped_malformed;
          break;
        }
        s.last_recv_ns = now;
        std::memcpy(s.r_nonce, hb.nonce, nonce_len);
        if (hb.crypto != (cfg_.key.empty() ? 0 : 1)) {
          s.fail(close_reason::crypto_mismatch, "refused: the peer's encryption setting differs");
          break;
        }
        uint8_t want[proof_len];
        s.proof("tandem v1 responder proof", want);
        if (std::memcmp(want, hb.proof, proof_len) != 0) {
          s.fail(close_reason::wrong_key, "refused: wrong key (the peer's proof does not verify)");
          s.send_close(close_reason::wrong_key, hb.sender_conn_id, now);
          break;
        }
        s.peer_id = hb.sender_conn_id;
        s.make_keys();
        uint8_t prf[proof_len];
        s.proof("tandem v1 initiator proof", prf);
        s.send_hello(frame_type::confirm, s.peer_id, s.i_nonce, prf, now);
        s.go_established();
        break;
      }
      case frame_type::confirm: {
        hello_body hb;
        if (!decode_hello(body, hb) || s.initiator || h.conn_id != s.local_id) {
          ++stats_.dropped_malformed;
          break;
        }
        if (!s.awaiting_confirm) break;  // already established through a session frame
        uint8_t want[proof_len];
        s.proof("tandem v1 initiator proof", want);
        if (std::memcmp(want, hb.proof, proof_len) != 0) {
          s.fail(close_reason::wrong_key, "refused: wrong key (the peer's proof does not verify)");
          s.send_close(close_reason::wrong_key, hb.sender_conn_id, now);
          break;
        }
        s.last_recv_ns = now;
        s.awaiting_confirm = false;
        s.go_established();
        break;
      }
      case frame_type::close: {
        close_reason r;
        if (!decode_close(body, r)) {
          ++stats_.dropped_malformed;
          break;
        }
        if (h.conn_id != s.local_id || s.local_id == 0) break;
        if (rx_aead_ && !h.encrypted() && state_ == conn_state::established) {
          ++stats_.dropped_auth;  // an encrypted session ends only by an authenticated close
          break;
        }
        if (r == close_reason::wrong_key || r == close_reason::crypto_required ||
            r == close_reason::crypto_mismatch) {
          s.fail(r, std::string("refused by the peer: ") + std::string(to_string(r)));
        } else {
          s.end_session(std::string(to_string(r)).c_str());
        }
        break;
      }
      case frame_type::data: {
        data_body db;
        ++stats_.received_packets;
        if (!decode_data(body, db) || !s.on_data(db)) {
          ++stats_.dropped_malformed;
          break;
        }
        s.record_pn(h.pn, now);
        break;
      }
      case frame_type::ack: {
        ack_body a;
        if (!decode_ack(body, a)) {
          ++stats_.dropped_malformed;
          break;
        }
        s.on_ack(a, now);
        break;
      }
      case frame_type::keepalive: {
        keepalive_body k;
        if (!decode_keepalive(body, k)) {
          ++stats_.dropped_malformed;
          break;
        }
        if (k.echo_ns == 0) {
          s.send_keepalive(now, k.sent_ns, now);
        } else if (s.in_flight == 0 && now > k.echo_ns) {
          s.rtt_sample(now - k.echo_ns);
        }
        break;
      }
    }
  }
  s.deliver();
  if (s.ack_pending >= 2) s.send_ack(now);
  s.flush_out(now);
  s.update_stats();
}

void connection::poll(uint64_t now) {
  impl& s = *d_;
  if (state_ != conn_state::established) {
    // The initiator (re)starts the handshake; a failed one is retried slowly (the operator may
    // fix the key), a pending one at the handshake interval.
    const uint64_t every =
        state_ == conn_state::failed ? 10 * cfg_.handshake_retry_ns : cfg_.handshake_retry_ns;
    if (s.initiator && (s.last_hello_ns == 0 || now - s.last_hello_ns >= every)) {
      if (s.local_id == 0 || state_ == conn_state::failed) {
        s.reset_session();
        s.local_id = static_cast<uint32_t>(rand64()) | 1;
        random_bytes(s.i_nonce);
      }
      s.last_hello_ns = now;
      const uint8_t zero[proof_len] = {};
      s.send_hello(frame_type::hello, 0, s.i_nonce, zero, now);
    }
    if (s.awaiting_confirm && now - s.last_recv_ns > cfg_.dead_peer_ns) s.end_session("timeout");
    s.flush_out(now);
    return;
  }
  if (s.last_recv_ns == 0) s.last_recv_ns = now;
  if (now - s.last_recv_ns >= cfg_.dead_peer_ns) {
    ++stats_.dead_peer_events;
    s.end_session("dead peer (nothing heard for the dead-peer timeout)");
    s.last_hello_ns = 0;
    return;
  }
  if (s.ack_pending && now - s.ack_first_ns >= cfg_.ack_delay_ns) s.send_ack(now);
  s.detect_losses(now);
  s.check_rto(now);
  s.send_data(now);
  if (now - s.last_send_ns >= cfg_.keepalive_ns) s.send_keepalive(now, 0, now);
  s.flush_out(now);
  s.update_stats();
}

}  // namespace tandem::dp::transport
