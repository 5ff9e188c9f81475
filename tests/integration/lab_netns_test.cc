// SPDX-License-Identifier: Apache-2.0
// The namespace lab: topology, addressing, processes, link cuts, drops and cleanup on any exit.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "control/exec/process.h"
#include "tests/lab/netns.h"

namespace tandem::lab {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool ping(lab& l, const std::string& from, const std::string& to_addr) {
  return l.exec(from, {"ping", "-c", "1", "-W", "1", to_addr}, 5s).status.ok();
}

bool netns_exists(const std::string& name) {
  return fs::exists("/run/netns/" + name);
}

TEST(lab, two_nodes_client_and_interconnect_reach_each_other) {
  lab l(cluster_options(2, 1, true));
  EXPECT_EQ(l.hosts(), (std::vector<std::string>{"node1", "node2", "client"}));
  EXPECT_EQ(l.address("node1", 0), "10.99.0.10");
  EXPECT_EQ(l.address("node2", 1), "10.99.1.11");
  EXPECT_EQ(l.address("client", 0), "10.99.0.12");

  EXPECT_TRUE(ping(l, "node1", l.address("node2", 0)));
  EXPECT_TRUE(ping(l, "node1", l.address("node2", 1)));
  EXPECT_TRUE(ping(l, "client", l.address("node1", 0)));
  EXPECT_TRUE(ping(l, "client", l.address("node2", 0)));
  // The client is only on the public lan.
  EXPECT_FALSE(ping(l, "client", l.address("node1", 1)));

  // The configured MAC is what the host's interface carries.
  const auto link = l.exec_checked("node2", {"ip", "-o", "link", "show", "eth1"});
  EXPECT_NE(link.find(l.mac("node2", 1)), std::string::npos) << link;
  // Nothing is added to the host's own namespace.
  const auto root_links = ctl::run_checked({"ip", "-o", "link"});
  EXPECT_EQ(root_links.find("h0l0"), std::string::npos);
}

TEST(lab, cut_and_restore_a_link) {
  lab l(cluster_options(2, 1, false));
  ASSERT_TRUE(ping(l, "node1", l.address("node2", 0)));
  l.set_link("node2", 0, false);
  EXPECT_FALSE(ping(l, "node1", l.address("node2", 0)));
  // The other interconnect still works: one path down is not a partition.
  EXPECT_TRUE(ping(l, "node1", l.address("node2", 1)));
  const auto link = l.exec_checked("node2", {"ip", "-o", "link", "show", "eth0"});
  EXPECT_NE(link.find("NO-CARRIER"), std::string::npos) << link;
  l.set_link("node2", 0, true);
  bool back = false;
  for (int i = 0; i < 20 && !back; ++i)
    back = ping(l, "node1", l.address("node2", 0));
  EXPECT_TRUE(back);
}

TEST(lab, random_drop_loses_packets_then_clears) {
  lab l(cluster_options(2, 0, false));
  l.random_drop("node2", 100);
  EXPECT_FALSE(ping(l, "node1", l.address("node2", 0)));
  l.random_drop("node2", 50);
  // 200 pings at 50% loss each way: the chance that all or none get through is negligible.
  const auto out =
      l.exec("node1", {"ping", "-q", "-c", "200", "-i", "0.002", "-W", "1", l.address("node2", 0)},
             30s)
          .output;
  const auto pos = out.find("% packet loss");
  ASSERT_NE(pos, std::string::npos) << out;
  const auto start = out.rfind(' ', pos) + 1;
  const double loss = std::stod(out.substr(start, pos - start));
  EXPECT_GT(loss, 40.0) << out;
  EXPECT_LT(loss, 100.0) << out;
  l.random_drop("node2", 0);
  EXPECT_TRUE(ping(l, "node1", l.address("node2", 0)));
}

TEST(lab, processes_run_inside_hosts_and_log) {
  lab l(cluster_options(1, 0, true));
  auto& p =
      l.spawn("node1", "echo", {"sh", "-c", "ip -o -4 addr show eth0; echo marker-$X"}, {"X=42"});
  auto st = p.wait(10s);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->ok()) << st->describe();
  const auto log = l.read_log("node1", "echo");
  EXPECT_NE(log.find(l.address("node1", 0)), std::string::npos) << log;
  EXPECT_NE(log.find("marker-42"), std::string::npos) << log;
  EXPECT_NE(l.collect_logs().find("node1.echo.log"), std::string::npos);
}

TEST(lab, destructor_removes_namespaces_and_processes) {
  std::string node_ns, sw_ns;
  pid_t pid = -1;
  {
    lab l(cluster_options(2, 0, false));
    node_ns = l.netns("node1");
    sw_ns = l.switch_netns();
    pid = l.spawn("node1", "sleeper", {"sleep", "600"}).pid();
    EXPECT_TRUE(netns_exists(node_ns));
    EXPECT_TRUE(netns_exists(sw_ns));
  }
  EXPECT_FALSE(netns_exists(node_ns));
  EXPECT_FALSE(netns_exists(sw_ns));
  EXPECT_NE(::kill(pid, 0), 0);
}

// A test process killed by SIGKILL cannot clean up itself: the janitor must notice and do it.
TEST(lab, sigkilled_owner_leaves_nothing_behind) {
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipefd[0]);
    try {
      auto l = std::make_unique<lab>(cluster_options(2, 0, false));
      l->spawn("node1", "sleeper", {"sleep", "600"});
      const std::string names = l->netns("node1") + " " + l->switch_netns() + "\n";
      (void)!::write(pipefd[1], names.data(), names.size());
      ::pause();  // wait for SIGKILL with the lab alive
    } catch (...) {
    }
    ::_exit(1);
  }
  ::close(pipefd[1]);
  char buf[256] = {};
  ssize_t n = ::read(pipefd[0], buf, sizeof(buf) - 1);
  ::close(pipefd[0]);
  ASSERT_GT(n, 0);
  std::string names(buf, static_cast<size_t>(n));
  const std::string node_ns = names.substr(0, names.find(' '));
  const std::string sw_ns =
      names.substr(names.find(' ') + 1, names.find('\n') - names.find(' ') - 1);
  ASSERT_TRUE(netns_exists(node_ns));
  ::kill(child, SIGKILL);
  int st;
  ::waitpid(child, &st, 0);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = !netns_exists(node_ns) && !netns_exists(sw_ns);
    if (!gone) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(gone) << node_ns << " / " << sw_ns << " survived their owner";
}

TEST(lab, rejects_bad_topologies) {
  EXPECT_THROW(lab(lab_options{{{"node1", {0}}, {"node1", {0}}}, 1, ""}), std::invalid_argument);
  EXPECT_THROW(lab(lab_options{{{"Node_1", {0}}}, 1, ""}), std::invalid_argument);
  EXPECT_THROW(lab(lab_options{{{"node1", {2}}}, 1, ""}), std::invalid_argument);
}

}  // namespace
}  // namespace tandem::lab
