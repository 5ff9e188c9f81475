// SPDX-License-Identifier: Apache-2.0
// The nic_link monitor inside a lab host: a live link is healthy; cutting the host's switch port,
// taking the interface down, renaming and deleting it each wake the monitor's owner within a
// couple of seconds (link notifications, no polling) and the check then names what is wrong;
// restoring wakes it again and the check is healthy. Also the set-up errors and a clean
// destruction right after creation.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "control/config/groups_config.h"
#include "control/groups/monitor.h"
#include "tests/lab/netns.h"

namespace tandem::ctl::groups {
namespace {

using namespace std::chrono_literals;
using config::monitor_type;
using config::param_value;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// The lab changes links with `ip` and the switch port; the kernel's notification follows within
// milliseconds, so two seconds is far more than a working monitor needs.
constexpr milliseconds wake_limit = 2s;

config::monitor_config nic_config(const std::string& iface) {
  config::monitor_config mc;
  mc.name = "nicw";
  mc.type = monitor_type::nic_link;
  mc.group = "g";
  if (!iface.empty()) mc.params.values["interface"] = param_value{iface};
  return mc;
}

monitor_env env_in(lab::lab& l, const std::string& host) {
  monitor_env env;
  env.node = host;
  env.netns = l.netns(host);
  return env;
}

// Counts the monitor's wake calls (made from its event thread).
class wake_counter {
 public:
  std::function<void()> fn() {
    return [this] {
      {
        const std::lock_guard lock(mu_);
        ++n_;
      }
      cv_.notify_all();
    };
  }
  int count() {
    const std::lock_guard lock(mu_);
    return n_;
  }
  // True when a call arrives after `seen` calls within `limit`.
  bool wait_past(int seen, milliseconds limit = wake_limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return n_ > seen; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_ = 0;
};

TEST(nic_link_monitor_netns, carrier_loss_and_return_wake_the_owner_and_change_the_verdict) {
  lab::lab l(lab::cluster_options(1, 0, false));
  wake_counter wakes;  // outlives the monitor
  const auto m = make_monitor(nic_config("eth0"), env_in(l, "node1"));
  EXPECT_EQ(m->type(), monitor_type::nic_link);
  EXPECT_EQ(m->name(), "nicw");
  m->set_wake(wakes.fn());
  for (int i = 0; i < 3; ++i) {
    const check_result r = m->check(1s);
    EXPECT_TRUE(r.ok) << r.message;
    EXPECT_EQ(r.message, "");
  }

  int seen = wakes.count();
  const auto cut = steady_clock::now();
  l.set_link("node1", 0, false);
  ASSERT_TRUE(wakes.wait_past(seen)) << "no wake within 2 s of the carrier loss";
  EXPECT_LT(steady_clock::now() - cut, wake_limit);
  check_result r = m->check(1s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "interface eth0 has no carrier (link down)");

  seen = wakes.count();
  l.set_link("node1", 0, true);
  ASSERT_TRUE(wakes.wait_past(seen)) << "no wake within 2 s of the carrier's return";
  r = m->check(1s);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(nic_link_monitor_netns, administrative_down_and_up_wake_the_owner) {
  lab::lab l(lab::cluster_options(1, 0, false));
  wake_counter wakes;
  const auto m = make_monitor(nic_config("eth0"), env_in(l, "node1"));
  m->set_wake(wakes.fn());
  ASSERT_TRUE(m->check(1s).ok);

  int seen = wakes.count();
  l.exec_checked("node1", {"ip", "link", "set", "eth0", "down"});
  ASSERT_TRUE(wakes.wait_past(seen)) << "no wake within 2 s of ip link set down";
  check_result r = m->check(1s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "interface eth0 is administratively down");

  seen = wakes.count();
  l.exec_checked("node1", {"ip", "link", "set", "eth0", "up"});
  ASSERT_TRUE(wakes.wait_past(seen)) << "no wake within 2 s of ip link set up";
  // Administratively up at once; the carrier follows when the link negotiates (a veth: at once,
  // announced by a later notification, which wakes the owner again).
  const auto deadline = steady_clock::now() + wake_limit;
  do {
    r = m->check(1s);
    if (r.ok) break;
    seen = wakes.count();
    wakes.wait_past(seen, 200ms);
  } while (steady_clock::now() < deadline);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(nic_link_monitor_netns, rename_and_deletion_are_noticed) {
  lab::lab l(lab::cluster_options(1, 0, false));
  l.exec_checked("node1", {"ip", "link", "add", "tw0", "type", "veth", "peer", "name", "tw1"});
  l.exec_checked("node1", {"ip", "link", "set", "tw1", "up"});
  l.exec_checked("node1", {"ip", "link", "set", "tw0", "up"});
  wake_counter wakes;
  const auto m = make_monitor(nic_config("tw0"), env_in(l, "node1"));
  m->set_wake(wakes.fn());
  const auto deadline = steady_clock::now() + wake_limit;
  check_result r;
  while (!(r = m->check(1s)).ok && steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(r.ok) << r.message;

  // A link is renamed only while it is down.
  int seen = wakes.count();
  l.exec_checked("node1", {"ip", "link", "set", "tw0", "down"});
  ASSERT_TRUE(wakes.wait_past(seen)) << "no wake for tw0 going down";
  seen = wakes.count();
  l.exec_checked("node1", {"ip", "link", "set", "tw0", "name", "tw9"});
  ASSERT_TRUE(wakes.wait_past(seen)) << "no wake for tw0 renamed to tw9";
  r = m->check(1s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "interface tw0 does not exist");

  seen = wakes.count();
  l.exec_checked("node1", {"ip", "link", "set", "tw9", "name", "tw0"});
  ASSERT_TRUE(wakes.wait_past(seen)) << "no wake for tw9 renamed back to tw0";
  r = m->check(1s);
  EXPECT_EQ(r.message, "interface tw0 is administratively down");

  seen = wakes.count();
  l.exec_checked("node1", {"ip", "link", "del", "tw0"});
  ASSERT_TRUE(wakes.wait_past(seen)) << "no wake for tw0 deleted";
  r = m->check(1s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "interface tw0 does not exist");
}

TEST(nic_link_monitor_netns, a_missing_interface_fails_naming_it) {
  lab::lab l(lab::cluster_options(1, 0, false));
  const auto m = make_monitor(nic_config("eth7"), env_in(l, "node1"));
  const check_result r = m->check(1s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "interface eth7 does not exist");
}

TEST(nic_link_monitor_netns, set_up_errors_name_the_monitor) {
  lab::lab l(lab::cluster_options(1, 0, false));
  try {
    (void)make_monitor(nic_config(""), env_in(l, "node1"));
    ADD_FAILURE() << "a monitor without interface was made";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "monitor nicw: parameter interface is missing");
  }
  monitor_env env = env_in(l, "node1");
  env.netns = "tdm-no-such-netns";
  try {
    (void)make_monitor(nic_config("eth0"), env);
    ADD_FAILURE() << "a monitor in a missing namespace was made";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_TRUE(what.starts_with("monitor nicw: cannot watch the link of interface eth0: "))
        << what;
    EXPECT_NE(what.find("tdm-no-such-netns"), std::string::npos) << what;
  }
}

TEST(nic_link_monitor_netns, destroys_at_once_whatever_it_was_doing) {
  lab::lab l(lab::cluster_options(1, 0, false));
  const auto start = steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto m = make_monitor(nic_config("eth0"), env_in(l, "node1"));
    m.reset();  // right after creation: the thread may not have reached poll yet
  }
  EXPECT_LT(steady_clock::now() - start, 10s);

  // Events while nobody set a wake function, then destruction with notifications unread.
  auto m = make_monitor(nic_config("eth0"), env_in(l, "node1"));
  l.set_link("node1", 0, false);
  std::this_thread::sleep_for(200ms);
  l.set_link("node1", 0, true);
  const auto t0 = steady_clock::now();
  m.reset();
  EXPECT_LT(steady_clock::now() - t0, 1s);
}

}  // namespace
}  // namespace tandem::ctl::groups
