// SPDX-License-Identifier: Apache-2.0
// membership (control/cluster/membership.h): a simulated cluster of membership objects exchanging
// real encoded heartbeats under an injected clock; detection times are asserted exactly.
#include "control/cluster/membership.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

namespace tandem::ctl::cluster {
namespace {

using namespace std::chrono_literals;
using time_point = membership::time_point;
using ids = std::vector<uint8_t>;

const time_point t0 = time_point(1000s);
constexpr uint8_t a = 0, b = 1, c = 2;

std::vector<uint8_t> bytes_of(std::string_view s) {
  return {s.begin(), s.end()};
}
const std::vector<uint8_t> secret = bytes_of("the cluster secret, 32 bytes ok");

membership_config config_for(uint8_t self, std::vector<node_config> nodes = {}) {
  membership_config cfg;
  cfg.self = self;
  cfg.nodes = nodes.empty() ? std::vector<node_config>{{a, "node-a"}, {b, "node-b"}, {c, "node-c"}}
                            : std::move(nodes);
  cfg.link_names = {"lan0", "lan1"};
  cfg.interval = 1s;
  cfg.timeout = 5s;
  cfg.delay_warning_percent = 80;  // 4 s
  return cfg;
}

heartbeat_codec codec(std::string_view cluster = "alpha") {
  return heartbeat_codec(secret, cluster_id_of(cluster));
}

struct member {
  std::unique_ptr<membership> m;
  std::vector<event> events;
  bool alive = true;

  size_t count(uint32_t id, std::optional<uint8_t> node = std::nullopt) const {
    return static_cast<size_t>(std::count_if(events.begin(), events.end(), [&](const event& e) {
      return e.id == id && (!node || e.node == node);
    }));
  }
  const event* first(uint32_t id, std::optional<uint8_t> node = std::nullopt) const {
    for (const event& e : events)
      if (e.id == id && (!node || e.node == node)) return &e;
    return nullptr;
  }
};

// N nodes on two interconnects; the test moves the clock and decides who sends and ticks.
struct sim {
  time_point now = t0;
  std::vector<std::unique_ptr<member>> nodes;
  std::set<std::tuple<uint8_t, uint8_t, uint8_t>> cut;  // (from, to, link) dropped
  uint64_t next_incarnation = 1000;

  explicit sim(size_t n = 3) {
    for (size_t i = 0; i < n; ++i) {
      nodes.push_back(std::make_unique<member>());
      start(static_cast<uint8_t>(i));
    }
  }

  member& operator[](uint8_t id) { return *nodes.at(id); }

  // (Re)starts a node's daemon: a new membership with a new, greater incarnation.
  void start(uint8_t id) {
    member& n = *nodes.at(id);
    n.events.clear();
    n.alive = true;
    n.m = std::make_unique<membership>(config_for(id), codec(), ++next_incarnation, now,
                                       [&n](const event& e) { n.events.push_back(e); });
  }

  void cut_node(uint8_t id, bool on) {
    for (uint8_t other = 0; other < nodes.size(); ++other) {
      for (uint8_t l = 0; l < 2; ++l) {
        for (const auto& k : {std::tuple(id, other, l), std::tuple(other, id, l)})
          on ? static_cast<void>(cut.insert(k)) : static_cast<void>(cut.erase(k));
      }
    }
  }

  // Every live node sends one round to every peer on every link.
  void round() {
    for (uint8_t from = 0; from < nodes.size(); ++from) {
      member& s = *nodes[from];
      if (!s.alive) continue;
      s.m->begin_round();
      for (uint8_t to = 0; to < nodes.size(); ++to) {
        if (to == from) continue;
        for (uint8_t l = 0; l < 2; ++l) {
          std::vector<uint8_t> buf(max_heartbeat_size);
          const int n = s.m->build(to, l, now, buf);
          ASSERT_GT(n, 0);
          buf.resize(static_cast<size_t>(n));
          if (cut.count({from, to, l}) || !nodes[to]->alive) continue;
          nodes[to]->m->receive(buf, l, now);
        }
      }
    }
  }

  void tick() {
    for (auto& n : nodes)
      if (n->alive) n->m->tick(now);
  }

  // Runs until `until`: a round at every whole interval since t0, ticks every `tick_period`
  // (ticks and rounds at the same instant: round first). `each` runs after every step.
  template <typename F>
  void run(time_point until, std::chrono::milliseconds tick_period, F each) {
    while (now <= until) {
      if ((now - t0) % 1s == 0ms) round();
      if ((now - t0) % tick_period == 0ms) tick();
      each();
      const auto to_round = 1s - (now - t0) % 1s;
      const auto to_tick = tick_period - (now - t0) % tick_period;
      now += std::min<std::chrono::nanoseconds>(to_round, to_tick);
    }
  }
  void run(time_point until, std::chrono::milliseconds tick_period = 1000ms) {
    run(until, tick_period, [] {});
  }
};

std::vector<uint8_t> packet(const membership& from, uint8_t to, uint8_t link, time_point now) {
  std::vector<uint8_t> buf(max_heartbeat_size);
  const int n = from.build(to, link, now, buf);
  EXPECT_GT(n, 0);
  buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return buf;
}

TEST(membership, three_nodes_join_and_every_node_sees_every_view) {
  sim s;
  s[b].m->set_local_status(
      {node_state::online, true, 0, {{9, group_state::online}, {5, group_state::starting}}});
  s[c].m->set_local_status({node_state::online, false, 0, {}});
  s.round();  // everyone learns the others' incarnations
  s.round();  // and proves it by echoing them
  s.tick();
  for (uint8_t n : ids{a, b, c}) {
    EXPECT_EQ(s[n].m->up_count(), 3u) << int{n};
    EXPECT_EQ(s[n].count(heartbeat_events::node_up), 2u) << int{n};
    EXPECT_EQ(s[n].events.size(), 2u) << int{n};
  }
  const std::vector<node_view> v = s[a].m->view();
  ASSERT_EQ(v.size(), 3u);
  EXPECT_TRUE(v[a].self);
  EXPECT_EQ(v[a].incarnation, s[a].m->incarnation());
  EXPECT_EQ(v[b].name, "node-b");
  EXPECT_EQ(v[b].state, peer_state::up);
  EXPECT_FALSE(v[b].pending);
  EXPECT_EQ(v[b].incarnation, s[b].m->incarnation());
  EXPECT_EQ(v[b].seq, 2u);
  EXPECT_EQ(v[b].link[0].state, link_state::up);
  EXPECT_EQ(v[b].link[1].state, link_state::up);
  // What B says, as A shows it: B online with quorum, its groups sorted, and its view of all.
  ASSERT_TRUE(v[b].reported);
  const node_status& rb = *v[b].reported;
  EXPECT_EQ(rb.state, node_state::online);
  EXPECT_TRUE(rb.quorum);
  ASSERT_EQ(rb.group_count, 2);
  EXPECT_EQ(rb.groups[0], (group_report{5, group_state::starting}));
  EXPECT_EQ(rb.groups[1], (group_report{9, group_state::online}));
  ASSERT_EQ(rb.node_count, 3);
  for (uint8_t n : ids{a, b, c}) {
    EXPECT_EQ(rb.nodes[n].node, n);
    EXPECT_EQ(rb.nodes[n].state, peer_state::up);
    EXPECT_EQ(rb.nodes[n].links, 0b11);
  }
  ASSERT_TRUE(v[c].reported);
  EXPECT_FALSE(v[c].reported->quorum);
  EXPECT_EQ(v[c].reported->group_count, 0);
  EXPECT_EQ(v[c].counters.accepted, 4u);             // two rounds on two links
  EXPECT_EQ(s[a].m->link_counters(0).accepted, 4u);  // from B and C, round 1 and 2
}

TEST(membership, first_packet_of_a_new_peer_waits_for_the_echo) {
  sim s(2);
  s[a].m->begin_round();
  EXPECT_EQ(s[b].m->receive(packet(*s[a].m, b, 0, s.now), 0, s.now), receive_result::pending);
  EXPECT_EQ(s[b].m->state_of(a), peer_state::unknown);
  EXPECT_TRUE(s[b].m->view()[a].pending);
  EXPECT_EQ(s[b].m->node_counters(a).pending, 1u);
  // B now knows A's incarnation and echoes it: A admits B at once.
  s[b].m->begin_round();
  const heartbeat hb = s[b].m->make_heartbeat(a, 0, s.now);
  EXPECT_EQ(hb.flags & flag_echo, flag_echo);
  EXPECT_EQ(hb.echo_incarnation, s[a].m->incarnation());
  EXPECT_EQ(s[a].m->receive(packet(*s[b].m, a, 0, s.now), 0, s.now), receive_result::accepted);
  EXPECT_EQ(s[a].m->state_of(b), peer_state::up);
  EXPECT_EQ(s[b].m->receive(packet(*s[a].m, b, 1, s.now), 1, s.now), receive_result::accepted);
  EXPECT_EQ(s[b].m->state_of(a), peer_state::up);
  EXPECT_FALSE(s[b].m->view()[a].pending);
}

TEST(membership, one_interconnect_down_is_a_warning_not_a_failure) {
  sim s;
  const time_point cut_at = t0 + 2s;  // after the round at 2 s
  const time_point restore_at = t0 + 10s;
  s.run(t0 + 15s, 250ms, [&] {
    if (s.now == cut_at) {
      s.cut.insert({a, b, 1});
      s.cut.insert({b, a, 1});
    }
    if (s.now == restore_at - 250ms) s.cut.clear();  // the round at 10 s gets through
    EXPECT_EQ(s[a].m->state_of(b), peer_state::up);
    // B admits A one round later: A sends first, before it has heard B's incarnation.
    if (s.now >= t0 + 1s) {
      EXPECT_EQ(s[b].m->state_of(a), peer_state::up);
    }
  });
  const event* down = s[a].first(heartbeat_events::link_down, b);
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->level, severity::warning);
  EXPECT_EQ(down->link, 1);
  EXPECT_EQ(down->time, cut_at + 5s);  // the last packet on lan1 came at 2 s
  EXPECT_NE(down->message.find("lan1"), std::string::npos) << down->message;
  EXPECT_NE(down->message.find("still reachable"), std::string::npos) << down->message;
  EXPECT_EQ(s[b].count(heartbeat_events::link_down, a), 1u);
  EXPECT_EQ(s[a].count(heartbeat_events::node_down), 0u);
  EXPECT_EQ(s[a].count(heartbeat_events::link_down), 1u);  // nothing about C
  const event* up = s[a].first(heartbeat_events::link_up, b);
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->time, restore_at);
  EXPECT_EQ(up->link, 1);
  EXPECT_EQ(s[a].m->view()[b].link[1].state, link_state::up);
}

// The timing contract: killed at T (last heartbeat at L <= T), declared down by the first tick
// at or after L + timeout, hence no later than T + timeout + one tick period.
TEST(membership, killed_node_is_down_within_timeout_plus_one_tick) {
  sim s;
  const time_point killed = t0 + 5400ms;  // its last round was at 5 s
  const auto tick = 300ms;
  std::optional<time_point> declared;
  s.run(t0 + 14s, tick, [&] {
    if (s.now == killed) s[c].alive = false;
    if (!declared && s[a].m->state_of(c) == peer_state::down) declared = s.now;
    if (s.now > killed && s.now < t0 + 10s) {
      EXPECT_EQ(s[a].m->state_of(c), peer_state::up) << (s.now - t0).count();
    }
  });
  ASSERT_TRUE(declared);
  // Ticks fall on multiples of 300 ms: 9.9 s is too early, 10.2 s is the first at/after 10 s.
  EXPECT_EQ(*declared, t0 + 10200ms);
  EXPECT_LE(*declared, killed + 5s + tick);
  for (uint8_t n : ids{a, b}) {
    const event* e = s[n].first(heartbeat_events::node_down, c);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->level, severity::error);
    EXPECT_EQ(e->time, t0 + 10200ms);
    EXPECT_EQ(e->module, "heartbeat");
    EXPECT_NE(e->message.find("node node-c is down"), std::string::npos) << e->message;
    // The delay warning came first, at the first tick at or after 5 s + 80% of 5 s.
    const event* d = s[n].first(heartbeat_events::delay, c);
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->time, t0 + 9000ms);
    // One interconnect lost is never reported when the whole node goes.
    EXPECT_EQ(s[n].count(heartbeat_events::link_down, c), 0u);
  }
  EXPECT_EQ(s[a].m->up_count(), 2u);
  EXPECT_EQ(s[a].m->view()[c].link[0].state, link_state::down);
  EXPECT_EQ(s[a].count(heartbeat_events::node_down), 1u);
}

TEST(membership, ticking_at_next_deadline_detects_exactly_at_timeout) {
  sim s(2);
  s.round();
  s.round();
  const time_point last = s.now;
  s[b].alive = false;
  EXPECT_EQ(s[a].m->next_deadline(), last + 4s);  // the delay warning comes first
  s.now = *s[a].m->next_deadline();
  s.tick();
  EXPECT_EQ(s[a].count(heartbeat_events::delay, b), 1u);
  EXPECT_EQ(s[a].m->next_deadline(), last + 5s);
  s.now = last + 5s - 1ns;
  s.tick();
  EXPECT_EQ(s[a].m->state_of(b), peer_state::up);
  s.now = *s[a].m->next_deadline();
  s.tick();
  EXPECT_EQ(s[a].m->state_of(b), peer_state::down);
  EXPECT_EQ(s[a].first(heartbeat_events::node_down, b)->time, last + 5s);
  EXPECT_FALSE(s[a].m->next_deadline());  // nothing left to time out
}

TEST(membership, node_cut_off_on_all_links_is_down_then_rejoins) {
  sim s;
  s.run(t0 + 30s, 500ms, [&] {
    if (s.now == t0 + 3500ms) s.cut_node(c, true);    // last heartbeats at 3 s
    if (s.now == t0 + 19500ms) s.cut_node(c, false);  // the round at 20 s gets through
  });
  for (uint8_t n : ids{a, b}) {
    const event* down = s[n].first(heartbeat_events::node_down, c);
    ASSERT_NE(down, nullptr);
    EXPECT_EQ(down->time, t0 + 8s);
    const event* up = nullptr;
    for (const event& e : s[n].events)
      if (e.id == heartbeat_events::node_up && e.node == c && e.time > down->time) up = &e;
    ASSERT_NE(up, nullptr);
    EXPECT_EQ(up->time, t0 + 20s);
    EXPECT_NE(up->message.find("rejoined"), std::string::npos) << up->message;
    EXPECT_EQ(s[n].m->state_of(c), peer_state::up);
  }
  // C saw both others go and come back the same way.
  EXPECT_EQ(s[c].count(heartbeat_events::node_down), 2u);
  EXPECT_EQ(s[c].m->up_count(), 3u);
  // Same incarnation throughout: no restart reported.
  EXPECT_EQ(s[a].count(heartbeat_events::node_restarted), 0u);
}

// A clean stop: the peer's heartbeats say `leaving`. It is down with the first of them, not a
// timeout later, and only once; it stays down while it says so and after it goes quiet.
TEST(membership, a_leaving_peer_is_down_at_once_and_stays_down) {
  sim s;
  s.run(t0 + 2s);  // rounds at 0..2 s: everyone up; the clock is now at 3 s
  ASSERT_EQ(s[a].m->state_of(b), peer_state::up);
  const time_point left_at = s.now;
  s[b].m->set_local_status({node_state::leaving, false, 0, {}});
  s.round();
  for (uint8_t n : ids{a, c}) {
    EXPECT_EQ(s[n].m->state_of(b), peer_state::down) << int{n};
    ASSERT_EQ(s[n].count(heartbeat_events::node_left, b), 1u) << int{n};  // not once per link
    const event& e = *s[n].first(heartbeat_events::node_left, b);
    EXPECT_EQ(e.level, severity::info);
    EXPECT_EQ(e.module, "heartbeat");
    EXPECT_EQ(e.time, left_at);
    EXPECT_EQ(e.link, 0);  // the first leaving heartbeat came on lan0
    EXPECT_NE(e.message.find("node node-b left the cluster"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("lan0"), std::string::npos) << e.message;
    EXPECT_EQ(s[n].m->up_count(), 2u);
  }
  const std::vector<node_view> v = s[a].m->view();
  EXPECT_EQ(v[b].state, peer_state::down);
  EXPECT_EQ(v[b].link[0].state, link_state::down);
  EXPECT_EQ(v[b].link[1].state, link_state::down);
  EXPECT_EQ(v[b].last_rx, left_at);
  ASSERT_TRUE(v[b].reported);
  EXPECT_EQ(v[b].reported->state, node_state::leaving);
  EXPECT_EQ(s[a].m->node_counters(b).accepted, 8u);  // 3 online rounds + 1 leaving, 2 links
  // It keeps saying `leaving` for a while (stopping its groups): still down, nothing new.
  s.now += 1s;
  s.run(t0 + 12s, 500ms);
  EXPECT_EQ(s[a].m->state_of(b), peer_state::down);
  EXPECT_EQ(s[a].count(heartbeat_events::node_left, b), 1u);
  EXPECT_EQ(s[a].m->view()[b].reported->state, node_state::leaving);
  EXPECT_EQ(s[a].m->view()[b].last_rx, t0 + 12s);
  // Then it goes quiet: no timeout runs for it any more, so no node_down, ever.
  s[b].alive = false;
  s.run(t0 + 40s, 500ms);
  EXPECT_EQ(s[a].m->state_of(b), peer_state::down);
  for (uint8_t n : ids{a, c}) {
    EXPECT_EQ(s[n].count(heartbeat_events::node_down, b), 0u) << int{n};
    EXPECT_EQ(s[n].count(heartbeat_events::link_down, b), 0u) << int{n};
    EXPECT_EQ(s[n].count(heartbeat_events::delay, b), 0u) << int{n};
    EXPECT_EQ(s[n].count(heartbeat_events::node_left, b), 1u) << int{n};
  }
  EXPECT_EQ(s[a].m->state_of(c), peer_state::up);  // the others are unaffected
  EXPECT_EQ(s[a].count(heartbeat_events::node_down), 0u);
}

TEST(membership, a_peer_that_left_rejoins_once_it_reports_another_state) {
  sim s(2);
  s.run(t0 + 5s);  // node-c, configured but never started, is down by now: no deadline of its own
  s[b].m->set_local_status({node_state::leaving, false, 0, {}});
  s.round();
  ASSERT_EQ(s[a].m->state_of(b), peer_state::down);
  ASSERT_EQ(s[a].count(heartbeat_events::node_left, b), 1u);
  EXPECT_FALSE(s[a].m->next_deadline()) << "no deadline runs for a node that left";
  // The stop was called off: the same run reports online again and is back at once.
  s.now += 1s;
  s[b].m->set_local_status({node_state::online, false, 0, {}});
  s.round();
  EXPECT_EQ(s[a].m->state_of(b), peer_state::up);
  ASSERT_EQ(s[a].count(heartbeat_events::node_up, b), 2u);
  const event& up = s[a].events.back();
  EXPECT_EQ(up.id, heartbeat_events::node_up);
  EXPECT_EQ(up.time, s.now);
  EXPECT_NE(up.message.find("rejoined"), std::string::npos) << up.message;
  EXPECT_EQ(s[a].m->view()[b].link[0].state, link_state::up);
  EXPECT_EQ(s[a].m->view()[b].link[1].state, link_state::up);
  EXPECT_EQ(s[a].m->view()[b].reported->state, node_state::online);
  EXPECT_EQ(s[a].count(heartbeat_events::link_up, b), 0u);
  EXPECT_EQ(s[a].m->next_deadline(), s.now + 4s) << "timing runs again (delay warning first)";
  // It leaves again, and this time stops and starts a new run: down at once, then rejoined
  // (not `restarted`: it was not up) once the new run proves it hears this node.
  s.now += 1s;
  s[b].m->set_local_status({node_state::leaving, false, 0, {}});
  s.round();
  ASSERT_EQ(s[a].m->state_of(b), peer_state::down);
  EXPECT_EQ(s[a].count(heartbeat_events::node_left, b), 2u);
  s.now += 2s;
  s.start(b);
  s.round();  // A sends first: B's first packets already echo A's run
  EXPECT_EQ(s[a].m->state_of(b), peer_state::up);
  EXPECT_EQ(s[a].m->view()[b].incarnation, s[b].m->incarnation());
  ASSERT_EQ(s[a].count(heartbeat_events::node_up, b), 3u);
  EXPECT_NE(s[a].events.back().message.find("rejoined"), std::string::npos);
  EXPECT_EQ(s[a].count(heartbeat_events::node_restarted, b), 0u);
  EXPECT_EQ(s[a].count(heartbeat_events::node_down, b), 0u);
}

// set_timing: a reload's new timing, checked like the constructor's, in force at once.
TEST(membership, set_timing_refuses_unsafe_timing_and_keeps_the_old_one) {
  membership m(config_for(a), codec(), 5, t0, nullptr);
  EXPECT_THROW(m.set_timing(0s, 5s), std::invalid_argument);
  EXPECT_THROW(m.set_timing(-1s, 5s), std::invalid_argument);
  EXPECT_THROW(m.set_timing(1s, 1999ms), std::invalid_argument);  // less than two intervals
  EXPECT_THROW(m.set_timing(3s, 5s), std::invalid_argument);
  EXPECT_EQ(m.config().interval, 1s);
  EXPECT_EQ(m.config().timeout, 5s);
  EXPECT_EQ(m.next_deadline(), t0 + 5s) << "the old timeout still runs";
  m.set_timing(500ms, 1s);  // exactly twice the interval is allowed
  EXPECT_EQ(m.config().interval, 500ms);
  EXPECT_EQ(m.config().timeout, 1s);
  EXPECT_EQ(m.next_deadline(), t0 + 1s);
}

TEST(membership, a_longer_timeout_delays_the_detection_of_a_silent_peer) {
  sim s(2);
  s.round();
  s.round();
  const time_point last = s.now;
  s[b].alive = false;
  s.now = last + 2s;
  s.tick();
  s[a].m->set_timing(1s, 8s);
  EXPECT_EQ(s[a].m->next_deadline(), last + 6400ms) << "80% of the new timeout";
  s.now = last + 5s;  // the old timeout
  s.tick();
  EXPECT_EQ(s[a].m->state_of(b), peer_state::up);
  EXPECT_EQ(s[a].count(heartbeat_events::delay, b), 0u);
  s.now = last + 6400ms;
  s.tick();
  ASSERT_EQ(s[a].count(heartbeat_events::delay, b), 1u);
  EXPECT_NE(s[a].first(heartbeat_events::delay, b)->message.find("timeout 8000 ms"),
            std::string::npos)
      << s[a].first(heartbeat_events::delay, b)->message;
  s.now = last + 8s - 1ns;
  s.tick();
  EXPECT_EQ(s[a].m->state_of(b), peer_state::up);
  EXPECT_EQ(s[a].m->next_deadline(), last + 8s);
  s.now = last + 8s;
  s.tick();
  EXPECT_EQ(s[a].m->state_of(b), peer_state::down);
  const event* down = s[a].first(heartbeat_events::node_down, b);
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->time, last + 8s);
  EXPECT_NE(down->message.find("for 8000 ms"), std::string::npos) << down->message;
}

TEST(membership, a_shorter_timeout_takes_effect_at_the_next_tick) {
  sim s(2);
  s.round();
  s.round();
  const time_point last = s.now;
  s[b].alive = false;
  s.now = last + 1500ms;
  s.tick();
  EXPECT_EQ(s[a].m->state_of(b), peer_state::up);
  s[a].m->set_timing(500ms, 2s);
  EXPECT_EQ(s[a].m->next_deadline(), last + 1600ms);
  EXPECT_EQ(s[a].m->state_of(b), peer_state::up) << "set_timing itself decides nothing";
  s.now = last + 2s - 1ns;
  s.tick();
  EXPECT_EQ(s[a].m->state_of(b), peer_state::up);
  s.now = last + 3s;  // before the old 5 s timeout
  s.tick();
  EXPECT_EQ(s[a].m->state_of(b), peer_state::down);
  const event* down = s[a].first(heartbeat_events::node_down, b);
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->time, last + 3s);
  EXPECT_NE(down->message.find("for 2000 ms (last one 3000 ms ago)"), std::string::npos)
      << down->message;
}

TEST(membership, new_timing_applies_to_nodes_never_heard_of) {
  sim s(2);
  s[b].alive = false;
  s[a].m->set_timing(1s, 8s);
  EXPECT_EQ(s[a].m->next_deadline(), t0 + 8s);
  s.now = t0 + 5s;
  s.tick();
  EXPECT_EQ(s[a].m->state_of(b), peer_state::unknown);
  s.now = t0 + 8s;
  s.tick();
  EXPECT_EQ(s[a].m->state_of(b), peer_state::down);
  EXPECT_NE(s[a].first(heartbeat_events::node_down, b)->message.find("(8000 ms)"),
            std::string::npos);
}

TEST(membership, restart_within_the_timeout_is_reported_not_missed) {
  sim s;
  s.run(t0 + 3s);  // rounds at 0..3 s; the clock is now at 4 s
  const uint64_t old_inc = s[c].m->incarnation();
  s[c].m->begin_round();
  const std::vector<uint8_t> captured = packet(*s[c].m, a, 0, s.now);  // from the old run
  s.now += 500ms;
  s.start(c);  // kill -9 and restart: new incarnation
  s.run(t0 + 12s);
  EXPECT_EQ(s[a].count(heartbeat_events::node_down, c), 0u);
  ASSERT_EQ(s[a].count(heartbeat_events::node_restarted, c), 1u);
  // The new run's first packet to A (round at 5 s) already echoes A: admitted at once.
  EXPECT_EQ(s[a].first(heartbeat_events::node_restarted, c)->time, t0 + 5s);
  EXPECT_GT(s[c].m->incarnation(), old_inc);
  EXPECT_EQ(s[a].m->view()[c].incarnation, s[c].m->incarnation());
  EXPECT_EQ(s[a].m->state_of(c), peer_state::up);
  // A capture of the earlier run is refused for good.
  EXPECT_EQ(s[a].m->receive(captured, 0, s.now), receive_result::dropped_replay);
  EXPECT_EQ(s[a].m->node_counters(c).dropped_replay, 1u);
}

// A node that restarts must not be fooled by captured heartbeats of a peer that has since died:
// they echo the receiver's previous incarnation, so they never prove anything.
TEST(membership, captured_heartbeats_cannot_revive_a_dead_node_for_a_restarted_receiver) {
  sim s(2);
  s.run(t0 + 3s);
  ASSERT_EQ(s[a].m->state_of(b), peer_state::up);
  std::vector<std::vector<uint8_t>> captures;
  for (int i = 0; i < 3; ++i) {
    s[b].m->begin_round();
    captures.push_back(packet(*s[b].m, a, 0, s.now));
  }
  s[b].alive = false;
  s.now += 1s;
  s.start(a);
  for (const auto& p : captures)
    EXPECT_EQ(s[a].m->receive(p, 0, s.now), receive_result::pending);
  EXPECT_EQ(s[a].m->state_of(b), peer_state::unknown);
  EXPECT_EQ(s[a].m->receive(captures[0], 0, s.now), receive_result::dropped_replay);
  s.now += 5s;
  s.tick();
  ASSERT_EQ(s[a].m->state_of(b), peer_state::down);
  const event* e = s[a].first(heartbeat_events::node_down, b);
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->message.find("does not hear this node"), std::string::npos) << e->message;
}

TEST(membership, replays_and_reordering) {
  sim s(2);
  s.run(t0 + 2s);
  s[b].m->begin_round();
  const auto p0 = packet(*s[b].m, a, 0, s.now);
  const auto p1 = packet(*s[b].m, a, 1, s.now);
  EXPECT_EQ(s[a].m->receive(p0, 0, s.now), receive_result::accepted);
  EXPECT_EQ(s[a].m->receive(p1, 1, s.now), receive_result::accepted);  // same seq, other link
  EXPECT_EQ(s[a].m->receive(p0, 0, s.now), receive_result::dropped_replay);
  EXPECT_EQ(s[a].m->receive(p1, 1, s.now), receive_result::dropped_replay);
  EXPECT_EQ(s[a].count(heartbeat_events::rejected_replay, b), 2u);  // one per link
  EXPECT_EQ(s[a].m->receive(p0, 0, s.now + 1s), receive_result::dropped_replay);
  EXPECT_EQ(s[a].count(heartbeat_events::rejected_replay, b), 2u);  // rate-limited
  EXPECT_EQ(s[a].m->receive(p0, 0, s.now + 61s), receive_result::dropped_replay);
  EXPECT_EQ(s[a].count(heartbeat_events::rejected_replay, b), 3u);
  EXPECT_EQ(s[a].m->node_counters(b).dropped_replay, 4u);
  EXPECT_EQ(s[a].m->link_counters(0).dropped_replay, 3u);
  EXPECT_EQ(s[a].m->link_counters(1).dropped_replay, 1u);
  // Reordered within the window: each accepted once.
  std::vector<std::vector<uint8_t>> later;
  for (int i = 0; i < 3; ++i) {
    s[b].m->begin_round();
    later.push_back(packet(*s[b].m, a, 0, s.now));
  }
  EXPECT_EQ(s[a].m->receive(later[2], 0, s.now), receive_result::accepted);
  EXPECT_EQ(s[a].m->receive(later[0], 0, s.now), receive_result::accepted);
  EXPECT_EQ(s[a].m->receive(later[1], 0, s.now), receive_result::accepted);
  EXPECT_EQ(s[a].m->receive(later[1], 0, s.now), receive_result::dropped_replay);
}

TEST(membership, wrong_secret_is_not_admitted_and_the_event_says_why) {
  sim s(2);
  membership impostor(config_for(b),
                      heartbeat_codec(bytes_of("not the cluster secret!"), cluster_id_of("alpha")),
                      77, s.now, nullptr);
  impostor.begin_round();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(s[a].m->receive(packet(impostor, a, 0, s.now), 0, s.now, "10.9.0.2:29002"),
              receive_result::dropped_auth);
  }
  EXPECT_EQ(s[a].m->state_of(b), peer_state::unknown);
  ASSERT_EQ(s[a].count(heartbeat_events::rejected_auth), 1u);
  const event& e = *s[a].first(heartbeat_events::rejected_auth);
  EXPECT_EQ(e.level, severity::error);
  EXPECT_EQ(e.node, b);
  EXPECT_EQ(e.link, 0);
  EXPECT_NE(e.message.find("node node-b"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("wrong cluster secret"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("10.9.0.2:29002"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("not admitted"), std::string::npos) << e.message;
  EXPECT_EQ(s[a].m->node_counters(b).dropped_auth, 3u);
  EXPECT_EQ(s[a].m->link_counters(0).dropped_auth, 3u);
  EXPECT_EQ(s[a].m->node_counters(b).accepted, 0u);
}

TEST(membership, other_cluster_unknown_node_and_name_mismatch_are_refused) {
  sim s(2);
  // Same secret, another cluster name.
  membership other(config_for(b), codec("beta"), 77, s.now, nullptr);
  EXPECT_EQ(s[a].m->receive(packet(other, a, 0, s.now), 0, s.now), receive_result::dropped_foreign);
  ASSERT_EQ(s[a].count(heartbeat_events::rejected_cluster), 1u);
  EXPECT_NE(s[a].first(heartbeat_events::rejected_cluster)->message.find("another cluster"),
            std::string::npos);
  EXPECT_EQ(s[a].m->unattributed_counters().dropped_foreign, 1u);

  // A node id this node's configuration does not have.
  membership stranger(config_for(7, {{a, "node-a"}, {7, "node-x"}}), codec(), 78, s.now, nullptr);
  EXPECT_EQ(s[a].m->receive(packet(stranger, a, 0, s.now), 0, s.now),
            receive_result::dropped_foreign);
  ASSERT_EQ(s[a].count(heartbeat_events::rejected_node), 1u);
  EXPECT_NE(s[a].first(heartbeat_events::rejected_node)->message.find("not in this node's"),
            std::string::npos);

  // Id 1 under another name: the two configurations differ.
  membership renamed(config_for(b, {{a, "node-a"}, {b, "node-z"}}), codec(), 79, s.now, nullptr);
  EXPECT_EQ(s[a].m->receive(packet(renamed, a, 1, s.now), 1, s.now),
            receive_result::dropped_foreign);
  EXPECT_EQ(s[a].count(heartbeat_events::rejected_node, b), 1u);
  EXPECT_NE(s[a].first(heartbeat_events::rejected_node, b)->message.find("another name"),
            std::string::npos);

  // Another daemon started with this node's own id.
  membership twin(config_for(a, {{a, "node-a"}, {b, "node-b"}}), codec(), 80, s.now, nullptr);
  heartbeat_codec cc = codec();
  heartbeat hb = twin.make_heartbeat(b, 0, s.now);
  hb.dest = a;
  std::vector<uint8_t> buf(max_heartbeat_size);
  buf.resize(static_cast<size_t>(cc.encode(hb, buf)));
  EXPECT_EQ(s[a].m->receive(buf, 0, s.now), receive_result::dropped_foreign);
  EXPECT_NE(s[a].first(heartbeat_events::rejected_node, a)->message.find("this node's id"),
            std::string::npos);
}

TEST(membership, misdirected_packets_are_dropped) {
  sim s;
  s.run(t0 + 1s);
  s[b].m->begin_round();
  // Meant for C, delivered to A.
  EXPECT_EQ(s[a].m->receive(packet(*s[b].m, c, 0, s.now), 0, s.now),
            receive_result::dropped_foreign);
  EXPECT_NE(s[a].first(heartbeat_events::rejected_misdirected, b)->message.find("addressed to"),
            std::string::npos);
  // Sent on lan0, arrived on lan1: a capture moved to another link is refused too.
  EXPECT_EQ(s[a].m->receive(packet(*s[b].m, a, 0, s.now), 1, s.now),
            receive_result::dropped_foreign);
  EXPECT_EQ(s[a].count(heartbeat_events::rejected_misdirected, b), 2u);
  EXPECT_EQ(s[a].m->node_counters(b).dropped_foreign, 2u);
  EXPECT_EQ(s[a].m->link_counters(1).dropped_foreign, 1u);
  EXPECT_EQ(s[a].m->receive(packet(*s[b].m, a, 0, s.now), 0, s.now), receive_result::accepted);
  EXPECT_THROW(s[a].m->receive(packet(*s[b].m, a, 0, s.now), 2, s.now), std::invalid_argument);
}

TEST(membership, garbage_and_other_versions_are_counted_and_reported) {
  sim s(2);
  const std::vector<uint8_t> junk(200, 0x5a);
  EXPECT_EQ(s[a].m->receive(junk, 1, s.now), receive_result::dropped_malformed);
  EXPECT_EQ(s[a].m->receive(std::vector<uint8_t>(3, 0), 1, s.now),
            receive_result::dropped_malformed);
  EXPECT_EQ(s[a].count(heartbeat_events::rejected_malformed), 1u);  // rate-limited per link
  std::vector<uint8_t> v2 = packet(*s[b].m, a, 0, s.now);
  v2[4] = 3;
  EXPECT_EQ(s[a].m->receive(v2, 0, s.now), receive_result::dropped_malformed);
  ASSERT_EQ(s[a].count(heartbeat_events::rejected_version), 1u);
  EXPECT_NE(s[a].first(heartbeat_events::rejected_version)->message.find("version 3"),
            std::string::npos);
  EXPECT_EQ(s[a].m->unattributed_counters().dropped_malformed, 3u);
  EXPECT_EQ(s[a].m->link_counters(1).dropped_malformed, 2u);
}

TEST(membership, delay_warning_on_a_late_heartbeat) {
  sim s(2);
  s.round();
  s.round();
  s.now += 4500ms;  // no tick in between: the late packet itself raises the warning
  s.round();
  ASSERT_EQ(s[a].count(heartbeat_events::delay, b), 1u);
  const event& e = *s[a].first(heartbeat_events::delay, b);
  EXPECT_EQ(e.level, severity::warning);
  EXPECT_NE(e.message.find("4500 ms since the previous one"), std::string::npos) << e.message;
  s.now += 1s;
  s.round();
  EXPECT_EQ(s[a].count(heartbeat_events::delay, b), 1u);  // a normal gap again
  EXPECT_EQ(s[a].m->state_of(b), peer_state::up);
}

TEST(membership, delay_warning_can_be_turned_off) {
  auto cfg = config_for(a, {{a, "node-a"}, {b, "node-b"}});
  cfg.delay_warning_percent = 100;
  std::vector<event> events;
  membership m(cfg, codec(), 5, t0, [&](const event& e) { events.push_back(e); });
  membership peer(config_for(b, {{a, "node-a"}, {b, "node-b"}}), codec(), 6, t0, nullptr);
  peer.receive(packet(m, b, 0, t0), 0, t0);
  peer.begin_round();
  EXPECT_EQ(m.receive(packet(peer, a, 0, t0), 0, t0), receive_result::accepted);
  m.tick(t0 + 4900ms);
  peer.begin_round();
  EXPECT_EQ(m.receive(packet(peer, a, 0, t0 + 4900ms), 0, t0 + 4900ms), receive_result::accepted);
  for (const event& e : events)
    EXPECT_NE(e.id, heartbeat_events::delay) << e.message;
}

TEST(membership, never_heard_nodes_are_down_after_one_timeout) {
  sim s;
  s[b].alive = false;
  s[c].alive = false;
  EXPECT_EQ(s[a].m->next_deadline(), t0 + 5s);
  s.now = t0 + 5s - 1ms;
  s.tick();
  EXPECT_EQ(s[a].m->state_of(b), peer_state::unknown);
  s.now = t0 + 5s;
  s.tick();
  EXPECT_EQ(s[a].m->state_of(b), peer_state::down);
  EXPECT_EQ(s[a].m->state_of(c), peer_state::down);
  EXPECT_EQ(s[a].m->up_count(), 1u);
  EXPECT_NE(s[a].first(heartbeat_events::node_down, b)->message.find("since this node started"),
            std::string::npos);
  // Its first heartbeat later is a join, not a rejoin.
  s[b].alive = true;
  s.round();
  s.round();
  EXPECT_NE(s[a].first(heartbeat_events::node_up, b)->message.find("joined"), std::string::npos);
  EXPECT_EQ(s[a].first(heartbeat_events::node_up, b)->message.find("rejoined"), std::string::npos);
}

TEST(membership, a_link_that_never_comes_up_is_reported) {
  sim s(2);
  s.cut.insert({b, a, 1});
  s.run(t0 + 8s);
  const event* e = s[a].first(heartbeat_events::link_down, b);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->time, t0 + 5s);  // B came up at 0 s over lan0; lan1 had the full timeout
  EXPECT_NE(e->message.find("has not come up"), std::string::npos) << e->message;
  EXPECT_EQ(s[a].m->state_of(b), peer_state::up);
}

TEST(membership, round_trip_time_from_the_echo) {
  sim s(2);
  s.round();
  s.round();
  // A -> B takes 3 ms, B holds the timestamp 1 s, B -> A takes 2 ms.
  s[a].m->begin_round();
  const time_point sent = s.now;
  ASSERT_EQ(s[b].m->receive(packet(*s[a].m, b, 1, sent), 1, sent + 3ms), receive_result::accepted);
  s[b].m->begin_round();
  const auto reply = packet(*s[b].m, a, 1, sent + 1003ms);
  ASSERT_EQ(s[a].m->receive(reply, 1, sent + 1005ms), receive_result::accepted);
  const auto rtt = s[a].m->view()[b].link[1].rtt;
  ASSERT_TRUE(rtt);
  EXPECT_EQ(*rtt, (7 * 0ns + 5ms) / 8);  // smoothed: the first sample on lan1 was 0 (sim)
}

TEST(membership, peers_on_fewer_interconnects) {
  membership_config cfg = config_for(a, {{a, "node-a"}, {b, "node-b", 0b01}});
  std::vector<event> events;
  membership m(cfg, codec(), 5, t0, [&](const event& e) { events.push_back(e); });
  membership peer(config_for(b, {{a, "node-a"}, {b, "node-b", 0b01}}), codec(), 6, t0, nullptr);
  EXPECT_THROW((void)m.make_heartbeat(b, 1, t0), std::invalid_argument);
  EXPECT_THROW((void)m.make_heartbeat(a, 0, t0), std::invalid_argument);
  peer.receive(packet(m, b, 0, t0), 0, t0);
  peer.begin_round();
  EXPECT_EQ(m.receive(packet(peer, a, 0, t0), 0, t0), receive_result::accepted);
  EXPECT_EQ(m.view()[b].links, 0b01);
  m.tick(t0 + 4999ms);
  EXPECT_EQ(m.state_of(b), peer_state::up);
  m.tick(t0 + 5s);  // its only link is gone: the node is down, no link warning
  EXPECT_EQ(m.state_of(b), peer_state::down);
  for (const event& e : events)
    EXPECT_NE(e.id, heartbeat_events::link_down);
}

TEST(membership, config_digest_mismatch_is_a_warning) {
  sim s(2);
  s[a].m->set_local_status({node_state::online, false, 0x1111, {}});
  s[b].m->set_local_status({node_state::online, false, 0x2222, {}});
  s.run(t0 + 5s);
  EXPECT_EQ(s[a].count(heartbeat_events::config_differs, b), 1u);
  EXPECT_EQ(s[b].count(heartbeat_events::config_differs, a), 1u);
  s[b].m->set_local_status({node_state::online, false, 0x1111, {}});
  s.run(t0 + 8s);
  EXPECT_EQ(s[a].count(heartbeat_events::config_differs, b), 1u);
}

TEST(membership, local_status_is_validated) {
  sim s(2);
  EXPECT_THROW(
      s[a].m->set_local_status(
          {node_state::online, false, 0, {{1, group_state::online}, {1, group_state::offline}}}),
      std::invalid_argument);
  local_status many;
  for (uint16_t g = 0; g <= max_groups; ++g)
    many.groups.push_back({g, group_state::online});
  EXPECT_THROW(s[a].m->set_local_status(many), std::invalid_argument);
  many.groups.pop_back();
  EXPECT_NO_THROW(s[a].m->set_local_status(many));
  std::vector<uint8_t> buf(max_heartbeat_size);
  EXPECT_EQ(s[a].m->build(b, 0, s.now, buf),
            static_cast<int>(max_heartbeat_size) - 29 * 4);  // 3 of 32 nodes (4 bytes each)
}

TEST(membership, configuration_errors) {
  const auto bad = [](membership_config cfg, uint64_t inc = 5) {
    EXPECT_THROW(membership(std::move(cfg), codec(), inc, t0, nullptr), std::invalid_argument);
  };
  bad(config_for(a), 0);
  bad(config_for(5));  // self not listed
  bad(config_for(a, {{a, "node-a"}, {a, "node-b"}}));
  bad(config_for(a, {{a, "node-a"}, {b, "node-a"}}));
  bad(config_for(a, {{a, "node-a"}, {b, ""}}));
  bad(config_for(a, {{a, "node-a"}, {40, "node-b"}}));
  bad(config_for(a, {{a, "node-a", 0b01}, {b, "node-b", 0b10}}));  // nothing shared
  bad(config_for(a, {{a, "node-a", 0b100}, {b, "node-b"}}));       // self on no configured link
  membership_config cfg = config_for(a);
  cfg.link_names.clear();
  bad(cfg);
  cfg = config_for(a);
  cfg.timeout = 1500ms;  // less than two intervals
  bad(cfg);
  cfg = config_for(a);
  cfg.delay_warning_percent = 101;
  bad(cfg);
  EXPECT_NO_THROW(membership(config_for(a), codec(), 5, t0, nullptr));
}

TEST(membership, new_incarnation_grows) {
  const uint64_t first = new_incarnation();
  EXPECT_GT(first, 1'600'000'000'000'000'000u);  // realtime ns, after 2020
  EXPECT_EQ(new_incarnation(UINT64_MAX - 1), UINT64_MAX);
  EXPECT_GT(new_incarnation(first), first);
}

}  // namespace
}  // namespace tandem::ctl::cluster
