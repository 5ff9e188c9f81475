// SPDX-License-Identifier: Apache-2.0
// The transport connection over in-memory ports with a fake clock: handshakes (plain, keyed,
// wrong key, missing key), exactly-once in-order delivery of random-size messages, also under
// drops, duplicates, reordering and corruption, and refusal of tampered and replayed frames.
#include "dataplane/transport/connection.h"

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/port/fault_port.h"
#include "tests/unit/transport/pair_port.h"

namespace tandem::dp::transport {
namespace {

using test::pair_port;

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Message i of a seeded stream: its size and bytes follow from (seed, i).
std::vector<uint8_t> message(uint64_t seed, uint64_t i, uint32_t max_size) {
  const uint64_t r = mix(seed * 1000003 + i);
  // Mostly small and medium messages, a few large ones, some empty.
  uint32_t size = 0;
  switch (r % 8) {
    case 0:
      size = 0;
      break;
    case 1:
      size = static_cast<uint32_t>(mix(r) % max_size);
      break;
    default:
      size = static_cast<uint32_t>(mix(r) % 20000);
      break;
  }
  std::vector<uint8_t> m(size);
  uint64_t state = mix(r ^ 0x5555);
  for (uint32_t k = 0; k < size; ++k) {
    if ((k & 7) == 0) state = mix(state);
    m[k] = static_cast<uint8_t>(state >> ((k & 7) * 8));
  }
  return m;
}

struct side {
  pair_port raw;
  std::unique_ptr<fault_port> faults;
  port* p = nullptr;
  std::unique_ptr<connection> conn;
  std::vector<std::string> logs;
  uint64_t received = 0, bad = 0, bytes = 0;
  int sessions_up = 0, sessions_down = 0;
  uint64_t seed = 0;
  uint32_t max_size = 0;
  bool paused = false;  // not polled: a process descheduled, a stalled lcore

  explicit side(udp_addr a) : raw(a) { p = &raw; }
};

struct harness {
  uint64_t now = 1'000'000;
  side a{{ipv4_addr::from_octets(10, 0, 0, 1), 4000}};
  side b{{ipv4_addr::from_octets(10, 0, 0, 2), 4000}};

  harness() { a.raw.connect(b.raw); }
  // Both connections close (and may send a close frame) while both ports still exist.
  ~harness() {
    a.conn.reset();
    b.conn.reset();
  }

  void with_faults(const fault_profile& f, uint64_t seed) {
    for (side* s : {&a, &b}) {
      fault_options o;
      o.seed = seed + (s == &b);
      o.tx = f;
      o.clock = [this] { return now; };
      s->faults = std::make_unique<fault_port>(s->raw, o);
      s->p = s->faults.get();
    }
  }

  void open(side& s, const side& peer, connection_config cfg, uint64_t seed, uint32_t max_size) {
    cfg.peer = peer.raw.local();
    cfg.log = [&s](std::string_view line) { s.logs.emplace_back(line); };
    s.seed = seed;
    s.max_size = max_size;
    s.conn = std::make_unique<connection>(
        *s.p, cfg,
        [&s](std::span<const uint8_t> m) {
          const auto want = message(s.seed, s.received, s.max_size);
          if (m.size() != want.size() ||
              (!m.empty() && std::memcmp(m.data(), want.data(), m.size()) != 0)) {
            ++s.bad;
          }
          ++s.received;
          s.bytes += m.size();
        },
        [&s](bool up) { up ? ++s.sessions_up : ++s.sessions_down; });
  }

  void open_both(connection_config cfg_a, connection_config cfg_b, uint64_t seed = 1,
                 uint32_t max_size = 1 << 20) {
    open(a, b, cfg_a, seed, max_size);
    open(b, a, cfg_b, seed, max_size);
  }

  void step(uint64_t dt_ns = 20'000) {
    for (side* s : {&a, &b}) {
      if (!s->conn || s->paused) continue;
      dgram* bufs[64];
      const unsigned n = s->p->recv(bufs, 64);
      s->conn->input(bufs, n, now);
      s->p->free(bufs, n);
      s->conn->poll(now);
      s->p->flush();
    }
    now += dt_ns;
  }

  bool run_until(const std::function<bool()>& done, uint64_t max_ns = 60'000'000'000ULL) {
    const uint64_t end = now + max_ns;
    while (now < end) {
      if (done()) return true;
      step();
    }
    return done();
  }

  // Sends `count` messages of a's stream to b as fast as the send buffer allows.
  void stream(uint64_t count) {
    uint64_t sent = 0;
    std::vector<uint8_t> next = message(a.seed, 0, a.max_size);
    const bool ok = run_until([&] {
      while (sent < count) {
        const int rc = a.conn->send(next);
        if (rc == -EAGAIN) break;
        EXPECT_EQ(rc, 0);
        ++sent;
        next = message(a.seed, sent, a.max_size);
      }
      return sent == count && b.received == count;
    });
    EXPECT_TRUE(ok) << "sent " << sent << " received " << b.received;
  }
};

connection_config plain() {
  connection_config c;
  c.send_buffer = 8u << 20;
  c.recv_buffer = 8u << 20;
  c.max_message = 1u << 20;
  return c;
}

connection_config keyed(uint8_t fill, size_t size = 32) {
  connection_config c = plain();
  c.key.assign(size, fill);
  return c;
}

TEST(transport_connection, handshake_then_messages_in_order_integrity_only) {
  harness h;
  h.open_both(plain(), plain());
  ASSERT_TRUE(h.run_until([&] {
    return h.a.conn->state() == conn_state::established &&
           h.b.conn->state() == conn_state::established;
  }));
  EXPECT_FALSE(h.a.conn->encrypted());
  EXPECT_EQ(h.a.sessions_up, 1);
  EXPECT_EQ(h.b.sessions_up, 1);
  h.stream(400);
  EXPECT_EQ(h.b.bad, 0u);
  EXPECT_EQ(h.b.conn->stats().delivered_messages, 400u);
  EXPECT_EQ(h.a.conn->stats().retransmitted, 0u);
  // Everything gets acknowledged and released.
  ASSERT_TRUE(h.run_until([&] { return h.a.conn->unacked_bytes() == 0; }));
  EXPECT_GT(h.a.conn->stats().rtt_ns, 0u);
}

// A port whose tx ring takes only a few frames per poll (a slow NIC, a memif peer that lags):
// frames it refuses wait in the connection's backlog with their packet numbers, so nothing is
// lost, nothing is retransmitted, and every byte arrives.
TEST(transport_connection, a_full_tx_ring_delays_frames_and_loses_none) {
  harness h;
  h.open_both(plain(), plain(), 5);
  ASSERT_TRUE(h.run_until([&] {
    return h.a.conn->state() == conn_state::established &&
           h.b.conn->state() == conn_state::established;
  }));
  uint64_t sent = 0;
  std::vector<uint8_t> next = message(h.a.seed, 0, h.a.max_size);
  uint64_t polls = 0, limited = 0;
  const bool ok = h.run_until([&] {
    // The ring has room for 0..7 frames at each poll; the receiver's acks always get out.
    h.a.raw.tx_room = static_cast<uint32_t>(mix(++polls) % 8);
    if (h.a.raw.tx_room < 4) ++limited;
    while (sent < 200 && h.a.conn->send(next) == 0)
      next = message(h.a.seed, ++sent, h.a.max_size);
    return sent == 200 && h.b.received == 200;
  });
  EXPECT_TRUE(ok) << "received " << h.b.received;
  EXPECT_GT(limited, 100u);
  EXPECT_EQ(h.b.bad, 0u);
  EXPECT_EQ(h.a.conn->stats().retransmitted, 0u);
  EXPECT_EQ(h.a.conn->stats().rto_expiries, 0u);
  h.a.raw.tx_room = UINT32_MAX;
  ASSERT_TRUE(h.run_until([&] { return h.a.conn->unacked_bytes() == 0; }));
}

// send_ref(): the caller's buffers are sent without a copy, interleaved with copied messages,
// in order; each is released exactly once, in send order, after the peer acked it.
TEST(transport_connection, referenced_messages_are_released_in_order_once_acked) {
  harness h;
  h.open_both(keyed(3), keyed(3), 6);
  ASSERT_TRUE(h.run_until([&] { return h.a.conn->state() == conn_state::established; }));
  constexpr uint64_t count = 120;
  std::vector<std::vector<uint8_t>> held(count);  // the caller's buffers, by cookie
  std::vector<uint64_t> released;
  h.a.conn->set_release([&](uint64_t cookie, bool acked) {
    EXPECT_TRUE(acked);
    // The buffer is the caller's again: scribbling on it must not reach the peer.
    std::fill(held[cookie].begin(), held[cookie].end(), 0xee);
    released.push_back(cookie);
  });
  uint64_t sent = 0;
  const bool ok = h.run_until([&] {
    while (sent < count) {
      held[sent] = message(h.a.seed, sent, h.a.max_size);
      // Every third message is copied, the rest referenced (empty ones included).
      const int rc =
          sent % 3 == 0 ? h.a.conn->send(held[sent]) : h.a.conn->send_ref(held[sent], sent);
      if (rc == -EAGAIN) break;
      EXPECT_EQ(rc, 0);
      ++sent;
    }
    return sent == count && h.b.received == count;
  });
  ASSERT_TRUE(ok) << "received " << h.b.received;
  EXPECT_EQ(h.b.bad, 0u);
  ASSERT_TRUE(h.run_until([&] { return h.a.conn->unacked_bytes() == 0; }));
  std::vector<uint64_t> want;
  for (uint64_t i = 0; i < count; ++i)
    if (i % 3 != 0) want.push_back(i);
  EXPECT_EQ(released, want);
}

// A session that ends (dead peer) and a connection that is destroyed give every referenced
// buffer back, marked not acked; the callback cannot queue into the ending session.
TEST(transport_connection, referenced_messages_are_released_when_the_session_ends) {
  harness h;
  connection_config c = plain();
  c.dead_peer_ns = 300'000'000;
  c.keepalive_ns = 50'000'000;
  h.open_both(c, c, 9);
  ASSERT_TRUE(h.run_until([&] { return h.a.conn->state() == conn_state::established; }));
  const std::vector<uint8_t> buf(100000, 0x5a);
  uint64_t acked = 0, dropped = 0;
  bool destroying = false;
  h.a.conn->set_release([&](uint64_t cookie, bool ok) {
    ok ? ++acked : ++dropped;
    if (!destroying) {
      EXPECT_EQ(h.a.conn->send_ref(buf, cookie + 1000), -ENOTCONN);
    }
  });
  h.a.raw.cut = h.b.raw.cut = true;
  for (uint64_t i = 0; i < 20; ++i)
    ASSERT_EQ(h.a.conn->send_ref(buf, i), 0);
  ASSERT_TRUE(
      h.run_until([&] { return h.a.conn->state() != conn_state::established; }, 2'000'000'000));
  EXPECT_EQ(acked, 0u);
  EXPECT_EQ(dropped, 20u);
  EXPECT_EQ(h.a.conn->unacked_bytes(), 0u);
  // Reconnected: queued references are released by the destructor at the latest.
  h.a.raw.cut = h.b.raw.cut = false;
  ASSERT_TRUE(h.run_until([&] {
    return h.a.conn->state() == conn_state::established &&
           h.b.conn->state() == conn_state::established;
  }));
  h.a.raw.cut = true;
  ASSERT_EQ(h.a.conn->send_ref(buf, 5000), 0);
  h.step();
  const uint64_t before = dropped;
  destroying = true;
  h.a.conn.reset();
  EXPECT_EQ(dropped, before + 1);
}

// A receiver that stalls for several RTOs (nothing is lost, it just does not poll) costs the
// sender a probe, not a window of spurious retransmissions.
TEST(transport_connection, a_stalled_peer_costs_a_probe_not_the_window) {
  harness h;
  h.open_both(plain(), plain(), 11);
  ASSERT_TRUE(h.run_until([&] { return h.a.conn->state() == conn_state::established; }));
  const std::vector<uint8_t> m(256 * 1024, 0x42);
  for (int i = 0; i < 8; ++i)
    ASSERT_EQ(h.a.conn->send(m), 0);
  for (int i = 0; i < 3; ++i)
    h.step();  // the first window is on its way
  ASSERT_GT(h.a.conn->stats().bytes_in_flight, 100'000u);
  h.b.paused = true;
  for (int i = 0; i < 400; ++i)  // 8 ms at 20 us per step: beyond the 5 ms minimum RTO
    h.step();
  h.b.paused = false;
  ASSERT_TRUE(h.run_until([&] { return h.a.conn->unacked_bytes() == 0; }));
  EXPECT_EQ(h.b.received, 8u);
  EXPECT_GE(h.a.conn->stats().rto_expiries, 1u);
  EXPECT_LE(h.a.conn->stats().retransmitted, 2u);
}

// A hello is unauthenticated: one forged from the peer's address must not end a live session.
// A peer that really restarted (silent in the old session) gets a new session.
TEST(transport_connection, a_forged_hello_does_not_end_a_live_session) {
  harness h;
  std::vector<uint8_t> hello;
  h.a.raw.tap = [&](const dgram& d) {
    decoded_frame f;
    if (decode_frame({d.data, d.len}, f) == decode_error::none &&
        f.header.type == frame_type::hello) {
      hello.assign(d.data, d.data + d.len);
    }
  };
  h.open_both(keyed(4), keyed(4), 12);
  ASSERT_TRUE(h.run_until([&] { return h.b.conn->state() == conn_state::established; }));
  ASSERT_FALSE(hello.empty());
  // The captured hello with a fresh nonce: what an attacker can always make.
  hello[header_len + 16] ^= 0xff;
  seal_crc(hello);
  h.stream(10);
  h.b.raw.inject(hello, h.a.raw.local());
  for (int i = 0; i < 100; ++i)
    h.step();
  EXPECT_EQ(h.b.sessions_down, 0);
  EXPECT_EQ(h.b.conn->stats().ignored_hellos, 1u);
  EXPECT_EQ(h.b.conn->state(), conn_state::established);
  // a's process dies without a close (kill -9) and starts again: b answers its hellos once the
  // old session has been silent for two keepalive intervals.
  h.a.raw.cut = true;
  h.a.conn.reset();
  h.a.raw.cut = false;
  h.open(h.a, h.b, keyed(4), 13, 1 << 20);
  ASSERT_TRUE(h.run_until(
      [&] {
        return h.a.conn->state() == conn_state::established &&
               h.b.conn->state() == conn_state::established && h.b.sessions_up == 2;
      },
      2'000'000'000));
  EXPECT_EQ(h.b.sessions_down, 1);
}

TEST(transport_connection, encrypted_session_with_aes_256_gcm) {
  harness h;
  h.open_both(keyed(7), keyed(7), 2);
  ASSERT_TRUE(h.run_until([&] {
    return h.a.conn->state() == conn_state::established &&
           h.b.conn->state() == conn_state::established;
  }));
  EXPECT_TRUE(h.a.conn->encrypted());
  EXPECT_TRUE(h.b.conn->encrypted());
  h.stream(300);
  EXPECT_EQ(h.b.bad, 0u);
  EXPECT_EQ(h.b.conn->stats().dropped_auth, 0u);
}

TEST(transport_connection, large_messages_and_limits) {
  harness h;
  h.open_both(plain(), plain(), 3);
  ASSERT_TRUE(h.run_until([&] { return h.a.conn->state() == conn_state::established; }));
  std::vector<uint8_t> too_big((1u << 20) + 1);
  EXPECT_EQ(h.a.conn->send(too_big), -EMSGSIZE);
  // Exactly max_message: a 1 MiB message crosses as ~730 segments.
  auto big = message(99, 0, 1);
  big.assign(1u << 20, 0x5a);
  std::vector<uint8_t> got;
  h.b.conn.reset();
  h.open(h.b, h.a, plain(), 3, 1 << 20);
  // b was recreated: a's session ends by dead-peer timeout or a new hello; wait for both up.
  ASSERT_TRUE(h.run_until([&] {
    return h.a.conn->state() == conn_state::established &&
           h.b.conn->state() == conn_state::established;
  }));
  const uint64_t before = h.b.conn->stats().delivered_bytes;
  ASSERT_EQ(h.a.conn->send(big), 0);
  ASSERT_TRUE(
      h.run_until([&] { return h.b.conn->stats().delivered_bytes == before + big.size(); }));
}

TEST(transport_connection, wrong_key_is_refused_with_one_clear_line) {
  harness h;
  h.open_both(keyed(1), keyed(2));
  h.run_until([] { return false; }, 2'000'000'000);
  EXPECT_NE(h.a.conn->state(), conn_state::established);
  EXPECT_NE(h.b.conn->state(), conn_state::established);
  EXPECT_EQ(h.a.sessions_up + h.b.sessions_up, 0);
  bool named = false;
  for (const auto& l : h.a.logs) {
    named |=
        l.find("10.0.0.2:4000") != std::string::npos && l.find("wrong key") != std::string::npos;
  }
  EXPECT_TRUE(named) << (h.a.logs.empty() ? "no log" : h.a.logs.front());
  // Retries are not re-logged: one line per failure, not one per attempt.
  EXPECT_LE(h.a.logs.size(), 2u);
  EXPECT_EQ(h.a.conn->send(std::vector<uint8_t>(10)), -ENOTCONN);
}

TEST(transport_connection, a_keyed_side_never_falls_back_to_plaintext) {
  harness h;
  h.open_both(keyed(1), plain());
  h.run_until([] { return false; }, 2'000'000'000);
  EXPECT_NE(h.a.conn->state(), conn_state::established);
  EXPECT_NE(h.b.conn->state(), conn_state::established);
  // The responder (b, the higher address) has no key and the initiator uses one.
  bool told = false;
  for (const auto& l : h.b.logs)
    told |= l.find("refused") != std::string::npos;
  for (const auto& l : h.a.logs)
    told |= l.find("refused") != std::string::npos;
  EXPECT_TRUE(told);

  harness h2;
  h2.open_both(plain(), keyed(1));  // now the keyed side is the responder
  h2.run_until([] { return false; }, 2'000'000'000);
  EXPECT_NE(h2.b.conn->state(), conn_state::established);
  bool required = false;
  for (const auto& l : h2.b.logs)
    required |= l.find("encryption is required") != std::string::npos;
  EXPECT_TRUE(required);
}

TEST(transport_connection, exactly_once_in_order_under_faults) {
  for (bool encrypted : {false, true}) {
    harness h;
    fault_profile f;
    f.drop = 0.10;
    f.duplicate = 0.05;
    f.reorder = 0.05;
    f.corrupt = 0.01;
    f.delay_ns = 200'000;
    f.jitter_ns = 100'000;
    h.with_faults(f, 42);
    if (encrypted) {
      h.open_both(keyed(9, 16), keyed(9, 16), 5, 300000);
    } else {
      h.open_both(plain(), plain(), 5, 300000);
    }
    ASSERT_TRUE(h.run_until([&] {
      return h.a.conn->state() == conn_state::established &&
             h.b.conn->state() == conn_state::established;
    }));
    EXPECT_EQ(h.a.conn->encrypted(), encrypted);
    const uint64_t t0 = h.now;
    h.stream(600);
    std::printf("fake seconds %.3f rto expiries %llu cwnd %llu rto %llu srtt %llu\n",
                static_cast<double>(h.now - t0) / 1e9,
                static_cast<unsigned long long>(h.a.conn->stats().rto_expiries),
                static_cast<unsigned long long>(h.a.conn->stats().cwnd_bytes),
                static_cast<unsigned long long>(h.a.conn->stats().rto_ns),
                static_cast<unsigned long long>(h.a.conn->stats().rtt_ns));
    EXPECT_EQ(h.b.bad, 0u) << "encrypted=" << encrypted;
    EXPECT_EQ(h.b.received, 600u);
    const auto& sa = h.a.conn->stats();
    const auto& sb = h.b.conn->stats();
    EXPECT_GT(sa.retransmitted, 0u);
    EXPECT_GT(sb.dropped_bad_crc + sa.dropped_bad_crc, 0u);
    EXPECT_GT(sb.dropped_replay, 0u);  // the duplicates
    std::printf("faults encrypted=%d: %llu MiB, retransmitted %llu, bad crc %llu, replay %llu\n",
                encrypted, static_cast<unsigned long long>(h.b.bytes >> 20),
                static_cast<unsigned long long>(sa.retransmitted),
                static_cast<unsigned long long>(sb.dropped_bad_crc),
                static_cast<unsigned long long>(sb.dropped_replay));
  }
}

TEST(transport_connection, tampered_and_replayed_frames_are_refused_and_counted) {
  harness h;
  std::vector<std::vector<uint8_t>> captured;
  h.a.raw.tap = [&](const dgram& d) {
    decoded_frame f;
    if (decode_frame({d.data, d.len}, f) == decode_error::none &&
        f.header.type == frame_type::data) {
      captured.emplace_back(d.data, d.data + d.len);
    }
  };
  h.open_both(keyed(3), keyed(3), 6);
  ASSERT_TRUE(h.run_until([&] { return h.b.conn->state() == conn_state::established; }));
  h.stream(20);
  ASSERT_FALSE(captured.empty());
  const auto delivered = h.b.received;
  const auto from = h.a.raw.local();
  // Replay: the same frame again.
  const auto replay_before = h.b.conn->stats().dropped_replay;
  h.b.raw.inject(captured.front(), from);
  // Tamper: flip a ciphertext bit, give it a fresh packet number and fix the CRC, so that only
  // GCM can tell.
  auto forged = captured.back();
  forged[header_len + 3] ^= 0x40;
  forged[16] = 0x01;  // pn far above anything sent
  seal_crc(forged);
  h.b.raw.inject(forged, from);
  // Truncated and oversized.
  auto truncated = captured.back();
  truncated.resize(truncated.size() - 5);
  h.b.raw.inject(truncated, from);
  auto oversized = captured.back();
  oversized.push_back(0);
  h.b.raw.inject(oversized, from);
  // Plaintext data into an encrypted session.
  auto plain_frame = captured.back();
  plain_frame[4] = 0;
  h.b.raw.inject(plain_frame, from);
  for (int i = 0; i < 50; ++i)
    h.step();
  const auto& s = h.b.conn->stats();
  EXPECT_GT(s.dropped_replay, replay_before);
  EXPECT_GE(s.dropped_auth, 1u);
  EXPECT_GE(s.dropped_malformed + s.dropped_bad_crc, 2u);
  EXPECT_EQ(h.b.received, delivered);  // nothing extra was delivered
  EXPECT_EQ(h.b.bad, 0u);
}

TEST(transport_connection, dead_peer_is_detected_and_the_session_comes_back) {
  harness h;
  connection_config c = plain();
  c.dead_peer_ns = 500'000'000;
  c.keepalive_ns = 50'000'000;
  h.open_both(c, c, 8);
  ASSERT_TRUE(h.run_until([&] { return h.a.conn->state() == conn_state::established; }));
  h.a.raw.cut = h.b.raw.cut = true;  // the link goes silent both ways
  ASSERT_TRUE(
      h.run_until([&] { return h.a.conn->state() != conn_state::established; }, 2'000'000'000));
  EXPECT_EQ(h.a.conn->stats().dead_peer_events, 1u);
  EXPECT_EQ(h.a.sessions_down, 1);
  h.a.raw.cut = h.b.raw.cut = false;
  ASSERT_TRUE(h.run_until([&] {
    return h.a.conn->state() == conn_state::established &&
           h.b.conn->state() == conn_state::established;
  }));
  EXPECT_GE(h.a.sessions_up, 2);
}

TEST(transport_connection, rate_cap_bounds_the_goodput) {
  harness h;
  connection_config c = plain();
  c.rate_cap_bps = 100'000'000;  // 100 Mbit/s
  h.open_both(c, c, 10, 60000);
  ASSERT_TRUE(h.run_until([&] { return h.a.conn->state() == conn_state::established; }));
  const uint64_t t0 = h.now;
  h.stream(200);
  const double secs = static_cast<double>(h.now - t0) / 1e9;
  const double mbps = static_cast<double>(h.b.bytes) * 8 / secs / 1e6;
  EXPECT_LT(mbps, 110.0);
  EXPECT_GT(mbps, 50.0);
}

TEST(transport_connection, configuration_errors_are_clear) {
  pair_port p({ipv4_addr::from_octets(10, 0, 0, 1), 1});
  connection_config c = plain();
  c.key.assign(20, 1);
  EXPECT_THROW(connection(p, c, {}), std::runtime_error);
  c = plain();
  c.recv_buffer = 1000;
  EXPECT_THROW(connection(p, c, {}), std::runtime_error);
}

}  // namespace
}  // namespace tandem::dp::transport
