// SPDX-License-Identifier: Apache-2.0
// Lease quorum between lab hosts: two nodes (tandem-lab-quorum-agent, the quorum as tandemd runs
// it) and a real tandem-witness, or a real etcd, in a third namespace. While links are cut
// (a node's, the lease server's) and packets dropped, a probe samples from outside who holds
// quorum, and every node's transitions are read back from its log, stamped with the
// CLOCK_MONOTONIC all namespaces share. Asserted: never two holders at the same moment, and a
// node that loses the lease server gives quorum up before its lease can expire (for the
// witness: before the expiry the witness itself logged for that node's last renewal).
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/lab/etcd.h"
#include "tests/lab/netns.h"

namespace tandem::lab {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int64_t ttl_ms = 3000;  // renew every 1 s, give up 1 s before the lease ends
constexpr int64_t margin_ns = 1'000'000'000;
const std::vector<std::string> nodes = {"node1", "node2"};

int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct hold {
  int64_t from = 0;
  int64_t to = std::numeric_limits<int64_t>::max();  // still held
};

struct loss_line {
  int64_t at = 0;   // when the agent's timer noticed
  int64_t end = 0;  // when holds() turned false (valid_until, or `at`)
  int64_t stop_by = 0;
  std::optional<int64_t> lease_end;  // none when the server revoked it
  std::string reason;
};

struct node_record {
  std::vector<hold> holds;
  std::vector<loss_line> losses;
  bool holding() const { return !holds.empty() && holds.back().to == hold().to; }
};

// One agent's log, parsed.
node_record parse_agent_log(const std::string& text) {
  node_record r;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("t_ns")) continue;
    const int64_t t = j["t_ns"].get<int64_t>();
    if (j.contains("event") && j["event"] == 1) {
      r.holds.push_back({t});
    } else if (j.contains("event") && j["event"] == 2) {
      if (!r.holds.empty() && r.holding()) r.holds.back().to = t;
    } else if (j.contains("lost")) {
      loss_line l;
      l.at = t;
      l.stop_by = j["stop_by_ns"].get<int64_t>();
      if (!j["lease_end_ns"].is_null()) l.lease_end = j["lease_end_ns"].get<int64_t>();
      l.end = j["valid_until_ns"].is_null() ? t : std::min(t, j["valid_until_ns"].get<int64_t>());
      l.reason = j["reason"].get<std::string>();
      // The hold ended when holds() turned false, even if the timer fired later.
      if (!r.holds.empty() && r.holds.back().to == t) r.holds.back().to = l.end;
      r.losses.push_back(l);
    }
  }
  return r;
}

// The witness's own record of what it granted: node -> (handled at, expires) per grant/renew.
std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> parse_witness_log(
    const std::string& text) {
  std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> out;
  static const std::regex re(
      R"((grant|renew) cluster=\S+ node=(\S+) .*now_mono_ns=(\d+) expires_mono_ns=(\d+))");
  std::istringstream in(text);
  std::string line;
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_search(line, m, re)) out[m[2]].emplace_back(std::stoll(m[3]), std::stoll(m[4]));
  return out;
}

// A lab with node1, node2 (public lan 0 and interconnect lan 1) and a server host on lan 0,
// the two agents, and a probe thread sampling their state files every 20 ms.
class quorum_lab {
 public:
  explicit quorum_lab(const std::string& server_host)
      : server_(server_host), l_(options(server_host)) {}
  ~quorum_lab() { stop_probe(); }

  lab& l() { return l_; }
  std::string server_address() { return l_.address(server_, 0); }

  void start_agents(const std::vector<std::string>& mode_args) {
    for (size_t i = 0; i < nodes.size(); ++i) {
      const std::string& n = nodes[i];
      std::vector<std::string> argv = {TANDEM_QUORUM_AGENT,
                                       "--cluster",
                                       "lab",
                                       "--node",
                                       n,
                                       "--id",
                                       std::to_string(i),
                                       "--peer",
                                       std::to_string(1 - i) + ":" + nodes[1 - i],
                                       "--ttl-ms",
                                       std::to_string(ttl_ms),
                                       "--state",
                                       state_path(n)};
      argv.insert(argv.end(), mode_args.begin(), mode_args.end());
      l_.spawn(n, "agent", argv);
    }
    probe_ = std::thread([this] { probe(); });
  }

  std::map<std::string, node_record> records() {
    std::map<std::string, node_record> out;
    for (const auto& n : nodes)
      out[n] = parse_agent_log(l_.read_log(n, "agent"));
    return out;
  }

  // The node holding quorum now according to its log, or "".
  std::string holder() {
    std::string h;
    for (const auto& [n, r] : records())
      if (r.holding()) h = h.empty() ? n : h + "+" + n;
    return h;
  }

  bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return pred();
  }

  std::string wait_for_holder(std::chrono::milliseconds timeout, const std::string& not_this = {}) {
    std::string h;
    wait_for(
        [&] {
          h = holder();
          return !h.empty() && h != not_this;
        },
        timeout);
    return h;
  }

  // Stops the probe; returns its findings.
  struct probe_report {
    uint64_t samples = 0;
    uint64_t both = 0;
    uint64_t held_samples[2] = {0, 0};
  };
  probe_report stop_probe() {
    if (probe_.joinable()) {
      stop_ = true;
      probe_.join();
    }
    return report_;
  }

  // The checks every scenario ends with.
  void check_safety(
      const std::map<std::string, std::vector<std::pair<int64_t, int64_t>>>* witness_grants) {
    const auto rec = records();
    const auto& a = rec.at("node1");
    const auto& b = rec.at("node2");
    EXPECT_FALSE(a.holds.empty()) << "node1 never held quorum\n" << l_.collect_logs();
    EXPECT_FALSE(b.holds.empty()) << "node2 never held quorum\n" << l_.collect_logs();
    for (const auto& x : a.holds) {
      for (const auto& y : b.holds) {
        EXPECT_TRUE(x.to <= y.from || y.to <= x.from)
            << "node1 held [" << x.from << ", " << x.to << ") and node2 [" << y.from << ", " << y.to
            << ")\n"
            << l_.collect_logs();
      }
    }
    int64_t late_ns = 0;  // how long after holds() turned false the agents' timers noticed
    for (const auto& [n, r] : rec) {
      for (const auto& loss : r.losses) {
        late_ns = std::max(late_ns, loss.at - loss.end);
        if (!loss.lease_end) continue;  // revoked by the server: nothing left to outlive
        // Quorum ends one safety margin before the lease can end on the server.
        EXPECT_EQ(loss.end + margin_ns, *loss.lease_end) << n << ": " << loss.reason;
        EXPECT_LT(loss.end, *loss.lease_end) << n << ": " << loss.reason;
        EXPECT_LT(loss.stop_by, *loss.lease_end) << n;
        if (witness_grants != nullptr) {
          // The witness's own expiry for this node's last renewal before the loss.
          int64_t expiry = 0;
          const auto it = witness_grants->find(n);
          if (it != witness_grants->end()) {
            for (const auto& [at, exp] : it->second)
              if (at < loss.at) expiry = std::max(expiry, exp);
          }
          EXPECT_GT(expiry, 0) << n << " lost a lease the witness never granted";
          EXPECT_LT(loss.end, expiry) << n << " held quorum past the witness's lease";
          EXPECT_GE(expiry - loss.end, margin_ns) << n << ": the margin is kept";
          EXPECT_LE(loss.stop_by, expiry) << n;
        }
      }
    }
    const auto p = stop_probe();
    EXPECT_GT(p.samples, 100u);
    EXPECT_EQ(p.both, 0u) << "the probe saw both nodes holding quorum\n" << l_.collect_logs();
    EXPECT_GT(p.held_samples[0], 0u);
    EXPECT_GT(p.held_samples[1], 0u);
    std::printf(
        "probe: %llu samples, node1 held in %llu, node2 in %llu, both in %llu; loss events "
        "raised at most %lld ms after quorum ended\n",
        static_cast<unsigned long long>(p.samples),
        static_cast<unsigned long long>(p.held_samples[0]),
        static_cast<unsigned long long>(p.held_samples[1]), static_cast<unsigned long long>(p.both),
        static_cast<long long>(late_ns / 1'000'000));
  }

 private:
  static lab_options options(const std::string& server_host) {
    lab_options o;
    o.lans = 2;
    o.hosts = {{"node1", {0, 1}}, {"node2", {0, 1}}, {server_host, {0}}};
    return o;
  }
  std::string state_path(const std::string& n) const { return l_.log_dir() + "/" + n + ".state"; }

  void probe() {
    while (!stop_) {
      bool h[2] = {false, false};
      for (size_t i = 0; i < 2; ++i) {
        // "<holds> <written at> <valid until>": a node holds while its last word says so and
        // its quorum has not run out since (even if the agent was not scheduled to say so).
        std::istringstream in(read_file(state_path(nodes[i])));
        const int64_t now = mono_ns();
        int v = 0;
        int64_t written = 0, valid_until = 0;
        in >> v >> written >> valid_until;
        h[i] = v == 1 && (valid_until == 0 || now < valid_until);
        report_.held_samples[i] += h[i] ? 1 : 0;
      }
      ++report_.samples;
      report_.both += h[0] && h[1] ? 1 : 0;
      std::this_thread::sleep_for(20ms);
    }
  }

  std::string server_;
  lab l_;
  std::thread probe_;
  std::atomic<bool> stop_{false};
  probe_report report_;
};

std::string other(const std::string& n) {
  return n == "node1" ? "node2" : "node1";
}

// The partition matrix shared by both servers: cut the holder, restore it, cut the server,
// restore it, cut the interconnect, drop packets at random.
void run_matrix(quorum_lab& q, const std::string& server) {
  lab& l = q.l();
  std::string h = q.wait_for_holder(10s);
  ASSERT_FALSE(h.empty()) << "nobody got the lease\n" << l.collect_logs();
  ASSERT_EQ(h.find('+'), std::string::npos) << l.collect_logs();

  // 1. The holder loses the server (its public link): it must give quorum up, then the other
  //    node gets the lease.
  l.set_link(h, 0, false);
  const std::string next = q.wait_for_holder(8s, h);
  EXPECT_EQ(next, other(h)) << l.collect_logs();
  l.set_link(h, 0, true);
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(q.holder(), next) << "the old holder must not take the lease back while it is held";

  // 2. The server is cut off: nobody may hold quorum once the lease ran out; then it comes back.
  l.set_link(server, 0, false);
  EXPECT_TRUE(q.wait_for([&] { return q.holder().empty(); }, 4s)) << l.collect_logs();
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(q.holder(), "");
  l.set_link(server, 0, true);
  h = q.wait_for_holder(8s);
  EXPECT_FALSE(h.empty()) << l.collect_logs();

  // 3. The interconnect is irrelevant to the lease; 40 % loss on the holder makes it flap.
  l.set_link("node1", 1, false);
  l.set_link("node2", 1, false);
  l.random_drop(h.empty() ? "node1" : h, 40);
  std::this_thread::sleep_for(4s);
  l.random_drop(h.empty() ? "node1" : h, 0);
  std::this_thread::sleep_for(1s);
}

TEST(quorum_netns, two_nodes_and_a_witness_never_both_hold_quorum) {
  quorum_lab q("witness");
  lab& l = q.l();
  const std::string url = "http://" + q.server_address() + ":29080";
  const std::string token = l.log_dir() + "/witness.token";
  {
    std::ofstream out(token);
    out << "lab-secret-token\n";
  }
  std::filesystem::permissions(
      token, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  // The witness starts with its quiet period (one max ttl): nobody holds for 3 s.
  l.spawn("witness", "witness",
          {TANDEM_WITNESS, "--listen", q.server_address() + ":29080", "--max-ttl", "3s",
           "--token-file", token, "--verbose"});
  const int64_t started = mono_ns();
  q.start_agents({"--mode", "witness", "--url", url, "--token-file", token});
  run_matrix(q, "witness");
  if (HasFatalFailure()) return;

  const auto grants = parse_witness_log(l.read_log("witness", "witness"));
  ASSERT_FALSE(grants.empty()) << l.read_log("witness", "witness");
  for (const auto& [n, list] : grants) {
    for (const auto& [at, exp] : list)
      EXPECT_GE(at, started + 2'900'000'000) << "granted during the quiet period";
  }
  q.check_safety(&grants);
}

TEST(quorum_netns, two_nodes_and_etcd_never_both_hold_quorum) {
  if (::access(etcd_binary, X_OK) != 0)
    GTEST_SKIP() << "etcd is not installed (Debian package etcd-server; scripts/install-deps.sh)";
  quorum_lab q("store");
  lab& l = q.l();
  const etcd_server etcd = spawn_etcd(l, "store", "etcd");
  struct remove_dir {
    std::string path;
    ~remove_dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } cleanup{etcd.dir};
  q.start_agents({"--mode", "etcd", "--endpoint", etcd.client_url});
  run_matrix(q, "store");
  if (HasFatalFailure()) return;
  q.check_safety(nullptr);
}

}  // namespace
}  // namespace tandem::lab
