// SPDX-License-Identifier: Apache-2.0
// The namespace lab: topology, addressing, processes, link cuts, drops and cleanup on any exit.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "control/exec/process.h"
#include "tests/lab/janitor.h"
#include "tests/lab/netns.h"
#include "tests/support/proc.h"

namespace tandem::lab {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool netns_exists(const std::string& name) {
  return fs::exists("/run/netns/" + name);
}

TEST(lab, two_nodes_client_and_interconnect_reach_each_other) {
  lab l(cluster_options(2, 1, true));
  EXPECT_EQ(l.hosts(), (std::vector<std::string>{"node1", "node2", "client"}));
  EXPECT_EQ(l.address("node1", 0), "10.99.0.10");
  EXPECT_EQ(l.address("node2", 1), "10.99.1.11");
  EXPECT_EQ(l.address("client", 0), "10.99.0.12");

  EXPECT_TRUE(l.ping("node1", l.address("node2", 0)));
  EXPECT_TRUE(l.ping("node1", l.address("node2", 1)));
  EXPECT_TRUE(l.ping("client", l.address("node1", 0)));
  EXPECT_TRUE(l.ping("client", l.address("node2", 0)));
  // The client is only on the public lan.
  EXPECT_FALSE(l.ping("client", l.address("node1", 1)));

  // The configured MAC is what the host's interface carries.
  const auto link = l.exec_checked("node2", {"ip", "-o", "link", "show", "eth1"});
  EXPECT_NE(link.find(l.mac("node2", 1)), std::string::npos) << link;
}

std::string root_link_names() {
  std::string names;
  for (const auto& e : fs::directory_iterator("/sys/class/net"))
    names += e.path().filename().string() + " ";
  return names;
}

TEST(lab, nothing_is_added_to_the_machines_own_namespace) {
  const auto before = root_link_names();
  lab l(cluster_options(2, 1, true));
  EXPECT_EQ(root_link_names(), before);
}

TEST(lab, cut_and_restore_a_link) {
  lab l(cluster_options(2, 1, false));
  ASSERT_TRUE(l.ping("node1", l.address("node2", 0)));
  l.set_link("node2", 0, false);
  EXPECT_FALSE(l.ping("node1", l.address("node2", 0)));
  // The other interconnect still works: one path down is not a partition.
  EXPECT_TRUE(l.ping("node1", l.address("node2", 1)));
  const auto link = l.exec_checked("node2", {"ip", "-o", "link", "show", "eth0"});
  EXPECT_NE(link.find("NO-CARRIER"), std::string::npos) << link;
  l.set_link("node2", 0, true);
  bool back = false;
  for (int i = 0; i < 20 && !back; ++i)
    back = l.ping("node1", l.address("node2", 0));
  EXPECT_TRUE(back);
}

TEST(lab, random_drop_loses_packets_then_clears) {
  lab l(cluster_options(2, 0, false));
  l.random_drop("node2", 100);
  EXPECT_FALSE(l.ping("node1", l.address("node2", 0)));
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
  EXPECT_TRUE(l.ping("node1", l.address("node2", 0)));
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
  EXPECT_FALSE(test::running(pid));
}

// Makes a file-backed loop device and a tmpfs mount for the janitor tests.
struct disk_things {
  std::string dir, mnt, img, loop;
  explicit disk_things(const std::string& tag) {
    dir = (fs::temp_directory_path() / ("tandem-lab-" + tag + "-" + std::to_string(getpid())))
              .string();
    mnt = dir + "/mnt";
    img = dir + "/disk.img";
    fs::create_directories(mnt);
    ctl::run_checked({"truncate", "-s", "4M", img});
    loop = ctl::run_checked({"losetup", "--find", "--show", img});
    loop.erase(loop.find_last_not_of("\n") + 1);
    ctl::run_checked({"mount", "-t", "tmpfs", "tandem-lab-test", mnt});
  }
  void register_with(lab& l) const {
    l.register_path(dir);
    l.register_loop(loop);
    l.register_mount(mnt);
  }
  bool mounted() const {
    return ctl::run_checked({"cat", "/proc/self/mounts"}).find(" " + mnt + " ") !=
           std::string::npos;
  }
  bool loop_attached() const {
    return ctl::run({"losetup", loop}).output.find(img) != std::string::npos;
  }
};

TEST(lab, registered_mounts_loops_and_paths_are_removed) {
  disk_things d("reg");
  {
    lab l(cluster_options(1, 0, false));
    d.register_with(l);
    ASSERT_TRUE(d.mounted());
    ASSERT_TRUE(d.loop_attached());
  }
  EXPECT_FALSE(d.mounted());
  EXPECT_FALSE(d.loop_attached());
  EXPECT_FALSE(fs::exists(d.dir));
}

// A test process killed by SIGKILL cannot clean up itself: the janitor must notice and do it.
TEST(lab, sigkilled_owner_leaves_nothing_behind) {
  disk_things d("kill");
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipefd[0]);
    try {
      auto l = std::make_unique<lab>(cluster_options(2, 0, false));
      d.register_with(*l);
      const pid_t sleeper = l->spawn("node1", "sleeper", {"sleep", "600"}).pid();
      const std::string names =
          l->netns("node1") + " " + l->switch_netns() + " " + std::to_string(sleeper) + "\n";
      (void)!::write(pipefd[1], names.data(), names.size());
      ::pause();  // wait for SIGKILL with the lab alive
    } catch (...) {
    }
    ::_exit(1);
  }
  // Whatever happens below, the child does not outlive the test.
  std::unique_ptr<pid_t, void (*)(pid_t*)> reap(new pid_t(child), [](pid_t* p) {
    ::kill(*p, SIGKILL);
    ::waitpid(*p, nullptr, 0);
    delete p;
  });
  ::close(pipefd[1]);
  char buf[256] = {};
  const ssize_t n = ::read(pipefd[0], buf, sizeof(buf) - 1);
  ::close(pipefd[0]);
  ASSERT_GT(n, 0);
  std::istringstream in(std::string(buf, static_cast<size_t>(n)));
  std::string node_ns, sw_ns;
  pid_t sleeper = -1;
  in >> node_ns >> sw_ns >> sleeper;
  ASSERT_TRUE(netns_exists(node_ns));
  ASSERT_GT(sleeper, 0);
  ASSERT_TRUE(test::running(sleeper));
  reap.reset();  // SIGKILL the owner
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = !netns_exists(node_ns) && !netns_exists(sw_ns) && !test::running(sleeper) &&
           !fs::exists(d.dir);
    if (!gone) std::this_thread::sleep_for(100ms);
  }
  EXPECT_FALSE(netns_exists(node_ns));
  EXPECT_FALSE(netns_exists(sw_ns));
  EXPECT_FALSE(test::running(sleeper)) << "process " << sleeper << " survived its lab";
  EXPECT_FALSE(d.mounted());
  EXPECT_FALSE(d.loop_attached());
  EXPECT_FALSE(fs::exists(d.dir));
}

// A namespace whose creation failed may be somebody else's: it is forgotten, never removed.
TEST(janitor, forgotten_names_survive_cleanup) {
  const std::string foreign = "tandem-foreign-" + std::to_string(getpid());
  ctl::run_checked({"ip", "netns", "add", foreign});
  {
    janitor j;
    j.add("netns", foreign);
    j.forget("netns", foreign);
    j.cleanup();
  }
  EXPECT_TRUE(netns_exists(foreign));
  ctl::run_checked({"ip", "netns", "delete", foreign});
}

TEST(lab, rejects_bad_topologies) {
  EXPECT_THROW(lab(lab_options{{{"node1", {0}}, {"node1", {0}}}, 1, ""}), std::invalid_argument);
  EXPECT_THROW(lab(lab_options{{{"Node_1", {0}}}, 1, ""}), std::invalid_argument);
  EXPECT_THROW(lab(lab_options{{{"node1", {2}}}, 1, ""}), std::invalid_argument);
}

}  // namespace
}  // namespace tandem::lab
