// SPDX-License-Identifier: Apache-2.0
// Lease quorum with the real daemons: two lab hosts run tandemd, a third runs tandem-witness (or
// etcd), and a partition matrix cuts each node's link to the lease server, each interconnect
// link, the pair (every interconnect between the nodes), the server's own link and all of a
// node's links, then drops packets at random. A probe thread samples both daemons' quorum
// through their API every 20 ms, stamped with the CLOCK_MONOTONIC all namespaces share.
// Asserted: never two holders at the same moment (nor within the safety margin of each other's
// lease), holds and losses follow the cuts, and a node that loses the lease raises quorum.lost
// before the lease can end on the server (for the witness: before the expiry the witness itself
// logged for that node's last renewal).
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/lab/etcd.h"
#include "tests/lab/tandemd_cluster.h"

namespace tandem::lab {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// Lease 3 s renewed every 1 s: the daemon's safety margin is a third of the lease (1 s), so a
// node that cannot renew holds quorum for at most 2 s after its last renewal was sent.
constexpr const char* lease = "3s";
constexpr const char* renew = "1s";
constexpr int64_t margin_ns = 1'000'000'000;
constexpr int64_t ms_ns = 1'000'000;

int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// One answer of one daemon to {"cmd":"quorum"}, on its own clock (now_mono_ns).
struct sample {
  int64_t at = 0;
  bool holds = false;
  int64_t valid_until = 0;  // valid_until_mono_ns; 0 when the answer had none
};

// The witness's own record of what it granted: node -> (handled at, expires) per grant/renew,
// in the order it handled them.
using grant_map = std::map<std::string, std::vector<std::pair<int64_t, int64_t>>>;

grant_map parse_witness_log(const std::string& text) {
  grant_map out;
  static const std::regex re(
      R"((grant|renew) cluster=\S+ node=(\S+) .*now_mono_ns=(\d+) expires_mono_ns=(\d+))");
  std::istringstream in(text);
  std::string line;
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_search(line, m, re)) out[m[2]].emplace_back(std::stoll(m[3]), std::stoll(m[4]));
  return out;
}

// The latest expiry the witness had set for `node` by a request it handled before `t` (0: none).
int64_t witness_expiry_before(const grant_map& g, const std::string& node, int64_t t) {
  int64_t expiry = 0;
  const auto it = g.find(node);
  if (it == g.end()) return 0;
  for (const auto& [at, exp] : it->second)
    if (at < t) expiry = std::max(expiry, exp);
  return expiry;
}

// The witness logged `node` giving a valid lease back at `since` or later
// ("release cluster=C node=N epoch=E now_mono_ns=T").
bool witness_saw_release(const std::string& text, const std::string& node, int64_t since) {
  static const std::regex re(R"(release cluster=\S+ node=(\S+) .*now_mono_ns=(\d+))");
  std::istringstream in(text);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, re) && m[1] == node && std::stoll(m[2]) >= since) return true;
  }
  return false;
}

std::string ms(int64_t ns) {
  return std::to_string(ns / ms_ns) + " ms";
}

// Two tandemd nodes (public lan 0 to reach the server; interconnects on lans 1 and 2) and the
// lease server's host on lan 0 only, plus the probe.
class lease_lab {
 public:
  lease_lab(const std::string& server, std::function<std::string(const lab&)> quorum_of)
      : server_(server), c_(options(server, std::move(quorum_of))) {}
  ~lease_lab() { stop_probe(); }

  tandemd_cluster& c() { return c_; }
  lab& net() { return c_.net(); }
  const std::string& server() const { return server_; }
  std::string server_address() { return net().address(server_, 0); }
  static std::string node(int i) { return tandemd_cluster::node(i); }

  // Starts both daemons, then the probe.
  void start() {
    c_.start(0);
    c_.start(1);
    probe_ = std::thread([this] { probe(); });
  }

  bool holds(int i) { return c_.call(i, {{"cmd", "quorum"}})["quorum"].value("holds", false); }

  // The node holding quorum now (asked one after the other), -1 for none, 2 for both.
  int holder() {
    const bool a = holds(0);
    const bool b = holds(1);
    return a && b ? 2 : a ? 0 : b ? 1 : -1;
  }

  // Waits until exactly one node holds quorum, and not `not_this`; returns it, or -1.
  int wait_for_holder(std::chrono::milliseconds limit, int not_this = -1) {
    int h = -1;
    const bool ok = tandemd_cluster::wait_until(
        [&] {
          h = holder();
          return (h == 0 || h == 1) && h != not_this;
        },
        limit, 20ms);
    return ok ? h : -1;
  }

  // node i's events named `name` raised at or after `since` (CLOCK_MONOTONIC).
  std::vector<json> events_named(int i, const std::string& name, int64_t since = 0) {
    std::vector<json> out;
    for (const json& e : c_.events(i))
      if (e.value("name", "") == name && e.value("mono_ns", int64_t{0}) >= since) out.push_back(e);
    return out;
  }

  // Whether the probe saw node i hold quorum at any moment in [from, to].
  bool held_between(int i, int64_t from, int64_t to) {
    std::lock_guard<std::mutex> g(mu_);
    for (const sample& s : samples_[i])
      if (s.holds && s.at >= from && s.at <= to) return true;
    return false;
  }

  // Every sample of node i so far, in the order taken.
  std::vector<sample> samples(int i) {
    std::lock_guard<std::mutex> g(mu_);
    return samples_[i];
  }
  void stop_probe() {
    if (probe_.joinable()) {
      stop_ = true;
      probe_.join();
    }
  }
  uint64_t probe_errors() const { return errors_; }

  // Every log of the run (the daemons', the server's), for failure reports.
  std::string logs() { return c_.logs() + "==== " + server_ + " ====\n" + server_log(); }
  std::string server_log() { return net().read_log(server_, server_); }

 private:
  static tandemd_cluster_options options(const std::string& server,
                                         std::function<std::string(const lab&)> quorum_of) {
    tandemd_cluster_options o;
    o.nodes = 2;
    o.interconnects = 2;
    o.public_lan = true;
    o.interval = "200ms";
    o.timeout = "1s";
    o.extra_hosts = {{server, {0}}};
    o.quorum_of = std::move(quorum_of);
    return o;
  }

  void probe() {
    while (!stop_) {
      for (int i = 0; i < 2; ++i) {
        try {
          const json q = c_.call(i, {{"cmd", "quorum"}})["quorum"];
          sample s;
          s.at = q.at("now_mono_ns").get<int64_t>();
          s.holds = q.value("holds", false);
          s.valid_until = q.value("valid_until_mono_ns", int64_t{0});
          std::lock_guard<std::mutex> g(mu_);
          samples_[i].push_back(s);
        } catch (const std::exception&) {
          ++errors_;  // a daemon that does not answer shows in the report, not as a hold
        }
      }
      std::this_thread::sleep_for(20ms);
    }
  }

  std::string server_;
  tandemd_cluster c_;
  std::thread probe_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> errors_{0};
  std::mutex mu_;
  std::vector<sample> samples_[2];
};

// The partition matrix, the same for both servers. Each step restores what it cut and ends with
// one node holding quorum.
void run_matrix(lease_lab& q) {
  tandemd_cluster& c = q.c();
  lab& net = q.net();
  int h = q.wait_for_holder(20s);
  ASSERT_GE(h, 0) << "nobody got the lease";

  // 1. Each node in turn, while it holds, loses its public link: its only way to the server (the
  //    heartbeats still flow). It gives quorum up, only then the other node gets the lease, and
  //    when the link is back it does not take the lease back while the other renews it.
  for (int round = 0; round < 2; ++round) {
    const int o = 1 - h;
    const int64_t t0 = mono_ns();
    net.set_link(q.node(h), 0, false);
    const int next = q.wait_for_holder(10s, h);
    EXPECT_EQ(next, o) << q.node(h) << " lost its link to the server";
    EXPECT_FALSE(q.events_named(h, "quorum.lost", t0).empty())
        << q.node(h) << " raised no quorum.lost after losing the server";
    EXPECT_FALSE(q.events_named(h, "tandemd.groups_stop", t0).empty()) << q.node(h);
    net.set_link(q.node(h), 0, true);
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(q.holder(), o) << "the old holder must not take the lease back while it is held";
    ASSERT_EQ(next, o);
    h = o;
  }

  // 2. Each interconnect link alone: one link of two down is a warning; the lease stays put.
  for (int n = 0; n < 2; ++n) {
    for (int k = 0; k < 2; ++k) {
      const int64_t t0 = mono_ns();
      net.set_link(q.node(n), c.interconnect_lan(k), false);
      std::this_thread::sleep_for(1200ms);
      net.set_link(q.node(n), c.interconnect_lan(k), true);
      EXPECT_EQ(q.holder(), h) << q.node(n) << " interconnect " << k << " cut";
      EXPECT_FALSE(q.held_between(1 - h, t0, mono_ns()))
          << q.node(1 - h) << " held quorum while " << q.node(n) << " lost interconnect " << k;
    }
  }

  // 3. The pair: every interconnect between the nodes cut. Each sees the other down, both still
  //    reach the server: the holder keeps the lease, for longer than a lease, and the other never
  //    gets it.
  {
    const int64_t t0 = mono_ns();
    for (int k = 0; k < 2; ++k)
      net.set_link(q.node(0), c.interconnect_lan(k), false);
    EXPECT_TRUE(tandemd_cluster::wait_until(
        [&] { return c.state_of(0, 1) == "down" && c.state_of(1, 0) == "down"; }, 5s, 20ms))
        << "the nodes did not see each other down";
    std::this_thread::sleep_for(3500ms);
    EXPECT_EQ(q.holder(), h) << "the interconnects were cut";
    EXPECT_FALSE(q.held_between(1 - h, t0, mono_ns()))
        << q.node(1 - h) << " held quorum while the nodes were partitioned from each other";
    EXPECT_TRUE(q.events_named(h, "quorum.lost", t0).empty())
        << q.node(h) << " lost quorum though it still reached the server";
    for (int k = 0; k < 2; ++k)
      net.set_link(q.node(0), c.interconnect_lan(k), true);
    EXPECT_TRUE(c.wait_all_up(10s)) << "the nodes did not see each other again";
  }

  // 4. The server's own link: nobody can renew, so within a lease nobody holds quorum, and
  //    nobody gets it while the server is away; when it is back one node gets the lease.
  {
    const int64_t t0 = mono_ns();
    net.set_link(q.server(), 0, false);
    EXPECT_TRUE(tandemd_cluster::wait_until([&] { return q.holder() == -1; }, 4s, 20ms))
        << "a node kept quorum without the server";
    EXPECT_FALSE(q.events_named(h, "quorum.lost", t0).empty()) << q.node(h);
    const int64_t t1 = mono_ns();
    std::this_thread::sleep_for(1500ms);
    EXPECT_FALSE(q.held_between(0, t1, mono_ns()));
    EXPECT_FALSE(q.held_between(1, t1, mono_ns()));
    net.set_link(q.server(), 0, true);
    h = q.wait_for_holder(10s);
    ASSERT_GE(h, 0) << "nobody got the lease after the server came back";
  }

  // 5. The holder cut off from everything (its public link and both interconnects): it gives
  //    quorum up and the other node takes over; once back it rejoins without taking the lease.
  {
    const int64_t t0 = mono_ns();
    for (int lan = 0; lan < 3; ++lan)
      net.set_link(q.node(h), lan, false);
    const int next = q.wait_for_holder(10s, h);
    EXPECT_EQ(next, 1 - h) << q.node(h) << " was cut off from everything";
    EXPECT_FALSE(q.events_named(h, "quorum.lost", t0).empty()) << q.node(h);
    for (int lan = 0; lan < 3; ++lan)
      net.set_link(q.node(h), lan, true);
    EXPECT_TRUE(c.wait_all_up(10s)) << q.node(h) << " did not rejoin";
    EXPECT_EQ(q.holder(), 1 - h) << "the lease moved back to the node that was cut off";
    ASSERT_EQ(next, 1 - h);
    h = next;
  }

  // 6. 40 % of the holder's packets dropped for 4 s: renewals fail now and then, the lease may
  //    move, never to both at once (the probe's checks); afterwards one node holds it.
  net.random_drop(q.node(h), 40);
  std::this_thread::sleep_for(4s);
  net.random_drop(q.node(h), 0);
  EXPECT_GE(q.wait_for_holder(10s), 0) << "nobody holds quorum after the packet loss";
}

// The checks on the probe's samples and the daemons' events after the matrix. With `grants`
// (the witness's log), losses are also checked against the witness's own expiries.
void check_safety(lease_lab& q, const grant_map* grants) {
  q.stop_probe();
  const std::vector<sample> s[2] = {q.samples(0), q.samples(1)};
  uint64_t held[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    for (const sample& x : s[i]) {
      if (!x.holds) continue;
      ++held[i];
      EXPECT_GT(x.valid_until, x.at) << q.node(i) << " holds with no lease left at " << x.at;
    }
  }
  EXPECT_GT(s[0].size(), 500u) << "the probe sampled too rarely";
  EXPECT_GT(held[0], 0u) << "node1 never held quorum";
  EXPECT_GT(held[1], 0u) << "node2 never held quorum";

  // Never both: no hold of B at a moment within a hold of A, [at, valid_until); and more: B gets
  // the lease only once A's could have ended on the server, i.e. not before A's valid_until plus
  // the safety margin (the server lets A's lease run out no earlier than that; B's grant comes
  // after that and B's first sample after the grant).
  uint64_t overlaps = 0, inside_margin = 0;
  std::string first_overlap, first_inside_margin;
  for (int a = 0; a < 2; ++a) {
    const int b = 1 - a;
    std::vector<int64_t> b_holds;
    for (const sample& y : s[b])
      if (y.holds) b_holds.push_back(y.at);
    std::sort(b_holds.begin(), b_holds.end());
    for (const sample& x : s[a]) {
      if (!x.holds) continue;
      const auto it = std::lower_bound(b_holds.begin(), b_holds.end(), x.at);
      if (it == b_holds.end()) continue;
      const std::string what = q.node(a) + " held at " + std::to_string(x.at) + " until " +
                               std::to_string(x.valid_until) + ", " + q.node(b) + " held at " +
                               std::to_string(*it);
      if (*it < x.valid_until) {
        if (overlaps++ == 0) first_overlap = what;
      } else if (*it < x.valid_until + margin_ns) {
        if (inside_margin++ == 0) first_inside_margin = what;
      }
    }
  }
  EXPECT_EQ(overlaps, 0u) << "the probe saw both nodes holding quorum at once: " << first_overlap;
  EXPECT_EQ(inside_margin, 0u) << "a node got the lease before the other's could have ended: "
                               << first_inside_margin;

  // The witness's view: every hold the probe saw ends at least the margin before the expiry the
  // witness had set for that node by then (the daemon counts from before it sent the request,
  // the witness from when it handled it, and rounds the time left down).
  if (grants != nullptr) {
    for (int i = 0; i < 2; ++i) {
      for (const sample& x : s[i]) {
        if (!x.holds) continue;
        const int64_t expiry = witness_expiry_before(*grants, q.node(i), x.at);
        EXPECT_GT(expiry, 0) << q.node(i) << " holds at " << x.at << " without a witness grant";
        EXPECT_LE(x.valid_until + margin_ns, expiry)
            << q.node(i) << " at " << x.at << ": valid until " << x.valid_until
            << ", the witness's lease ends at " << expiry;
        if (expiry == 0 || x.valid_until + margin_ns > expiry) break;  // one report is enough
      }
    }
  }

  // Every loss: quorum.lost and tandemd.groups_stop (raised right after it) came before the lease
  // could end on the server: before the last valid_until the probe saw in that hold plus the
  // safety margin (the node's own lease end; a lapse is raised by the daemon's timer at
  // valid_until, so the margin is also the scheduling slack), and for the witness before the
  // expiry it logged for that node's last renewal.
  int64_t latest_after_lapse = 0, least_headroom = std::numeric_limits<int64_t>::max();
  int unseen = 0;
  for (int i = 0; i < 2; ++i) {
    const auto lost = q.events_named(i, "quorum.lost");
    const auto stops = q.events_named(i, "tandemd.groups_stop");
    EXPECT_FALSE(lost.empty()) << q.node(i) << " never lost quorum, though the matrix cut it";
    EXPECT_EQ(stops.size(), lost.size()) << q.node(i) << ": one groups_stop per loss";
    int64_t previous = 0;  // the hold that ended with loss k started after loss k - 1
    for (size_t k = 0; k < lost.size(); ++k) {
      const int64_t lost_at = lost[k].at("mono_ns").get<int64_t>();
      int64_t valid_until = 0;
      for (const sample& x : s[i])
        if (x.holds && x.at > previous && x.at < lost_at)
          valid_until = std::max(valid_until, x.valid_until);
      previous = lost_at;
      if (valid_until == 0) {
        ++unseen;  // a hold too short for the probe to see
        continue;
      }
      std::vector<json> events = {lost[k]};
      if (k < stops.size()) events.push_back(stops[k]);
      for (const json& e : events) {
        const int64_t at = e.at("mono_ns").get<int64_t>();
        latest_after_lapse = std::max(latest_after_lapse, at - valid_until);
        EXPECT_LT(at, valid_until + margin_ns)
            << q.node(i) << " raised " << e.value("name", "") << " at " << at
            << ", its lease (valid until " << valid_until
            << ") could have ended on the server by then: " << e.dump();
        if (grants != nullptr) {
          const int64_t expiry = witness_expiry_before(*grants, q.node(i), at);
          EXPECT_GT(expiry, 0) << q.node(i) << " lost a lease the witness never granted";
          EXPECT_LT(at, expiry) << q.node(i) << " raised " << e.value("name", "")
                                << " after the witness's lease ended: " << e.dump();
          least_headroom = std::min(least_headroom, expiry - at);
        }
      }
    }
  }
  EXPECT_EQ(unseen, 0) << "the probe missed holds that ended in a loss";
  std::printf(
      "probe: %zu + %zu samples (%llu failed calls), node1 held in %llu, node2 in %llu; "
      "quorum.lost / groups_stop at most %s after the lease's valid_until%s%s\n",
      s[0].size(), s[1].size(), static_cast<unsigned long long>(q.probe_errors()),
      static_cast<unsigned long long>(held[0]), static_cast<unsigned long long>(held[1]),
      ms(latest_after_lapse).c_str(), grants != nullptr ? ", at least " : "",
      grants != nullptr ? (ms(least_headroom) + " before the witness's expiry").c_str() : "");
}

class tandemd_quorum_netns : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && q_) std::fprintf(stderr, "%s\n", q_->logs().c_str());
  }
  std::unique_ptr<lease_lab> q_;
};

TEST_F(tandemd_quorum_netns, two_daemons_and_a_witness_never_both_hold_quorum) {
  std::string token;
  q_ = std::make_unique<lease_lab>("witness", [&token](const lab& l) {
    token = l.log_dir() + "/witness.token";
    return "{mode: witness, witness: {url: \"http://" + l.address("witness", 0) +
           ":29080\", token_file: " + token + ", lease: " + lease + ", renew: " + renew + "}}";
  });
  lease_lab& q = *q_;
  {
    std::ofstream out(token);
    out << "lab-secret-token\n";
  }
  ASSERT_EQ(::chmod(token.c_str(), 0600), 0);
  // The witness grants nothing for its quiet period (its max ttl, 3 s) after it starts.
  q.net().spawn("witness", "witness",
                {TANDEM_WITNESS, "--listen", q.server_address() + ":29080", "--max-ttl", lease,
                 "--token-file", token, "--verbose"});
  const int64_t started = mono_ns();
  q.start();
  run_matrix(q);
  if (HasFatalFailure()) return;

  const grant_map grants = parse_witness_log(q.server_log());
  ASSERT_EQ(grants.size(), 2u) << "the witness did not grant both nodes";
  for (const auto& [n, list] : grants) {
    for (const auto& [at, exp] : list)
      EXPECT_GE(at, started + 2'900'000'000) << n << " was granted during the quiet period";
  }
  check_safety(q, &grants);
  if (HasFailure()) return;

  // A clean stop (SIGTERM) of the holder gives the lease back: the witness logs the release
  // (it logs one only for a lease still valid, so the other node did not wait for it to run
  // out), the other node then holds, and leaving raised no groups_stop on the holder. How long
  // the hand-over took is printed, not asserted: on a loaded 2-core host the other node's next
  // attempt, a second later, may itself time out.
  q.stop_probe();
  const int h = q.wait_for_holder(10s);
  ASSERT_GE(h, 0);
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t t0_ns = mono_ns();
  q.c().terminate(h);
  EXPECT_TRUE(tandemd_cluster::wait_until([&] { return q.holds(1 - h); }, 10s, 20ms));
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  EXPECT_TRUE(witness_saw_release(q.server_log(), lease_lab::node(h), t0_ns))
      << "the stopped holder did not give the lease back:\n"
      << q.server_log();
  const std::string log = q.c().log(h);
  const size_t stopping = log.find("tandemd.stopping");
  ASSERT_NE(stopping, std::string::npos) << log;
  EXPECT_EQ(log.find("tandemd.groups_stop", stopping), std::string::npos) << log.substr(stopping);
  EXPECT_NE(log.find("quorum.released", stopping), std::string::npos) << log.substr(stopping);
  std::fprintf(stderr, "clean stop of the holder: the other node held after %lld ms\n",
               static_cast<long long>(took.count()));
}

TEST_F(tandemd_quorum_netns, two_daemons_and_etcd_never_both_hold_quorum) {
  if (::access(etcd_binary, X_OK) != 0)
    GTEST_SKIP() << "etcd is not installed (Debian package etcd-server; scripts/install-deps.sh)";
  q_ = std::make_unique<lease_lab>("store", [](const lab& l) {
    return "{mode: etcd, etcd: {endpoints: [\"http://" + l.address("store", 0) +
           ":2379\"], lease: " + lease + ", renew: " + renew + "}}";
  });
  lease_lab& q = *q_;
  (void)spawn_etcd(q.net(), "store", "store");
  q.start();
  run_matrix(q);
  if (HasFatalFailure()) return;
  check_safety(q, nullptr);
}

}  // namespace
}  // namespace tandem::lab
