// SPDX-License-Identifier: Apache-2.0
// The nic_link monitor: one network interface must exist, be administratively up and have a
// carrier. Checks read the link's state fresh through rtnetlink; between checks a thread follows
// the kernel's link notifications and wakes the group manager on every change, so a cut cable is
// acted on at once rather than at the next interval.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "control/config/groups_config.h"
#include "control/groups/monitor.h"
#include "netlink/link_watch.h"
#include "netlink/rt_link.h"
#include "netlink/rt_socket.h"

namespace tandem::ctl::groups {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// How long the event thread waits before it opens a new link watch after the old one failed.
constexpr auto watch_retry = 1s;

// What the monitor judges, as last seen by the event thread.
struct link_state {
  bool exists = false;
  bool up = false;
  bool running = false;
  bool carrier = false;
  bool operator==(const link_state&) const = default;
};

class nic_link_monitor final : public monitor {
 public:
  nic_link_monitor(std::string name, std::string ifname, std::string netns)
      : monitor(std::move(name)), ifname_(std::move(ifname)), netns_(std::move(netns)) {
    // The subscription exists before the first state is read: no change in between goes unseen.
    try {
      watch_.emplace(netns_);
    } catch (const std::exception& e) {
      throw std::runtime_error("monitor " + this->name() + ": cannot watch the link of interface " +
                               ifname_ + ": " + e.what());
    }
    try {
      last_ = read_state();
    } catch (const std::exception&) {
      // Unknown: the first notification about the interface counts as a change.
    }
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) {
      throw std::runtime_error("monitor " + this->name() +
                               ": eventfd: " + std::system_category().message(errno));
    }
    try {
      thread_ = std::thread([this] { run(); });
    } catch (const std::system_error& e) {
      ::close(stop_fd_);
      throw std::runtime_error("monitor " + this->name() +
                               ": cannot start its thread: " + e.what());
    }
  }

  ~nic_link_monitor() override {
    const uint64_t one = 1;
    // Cannot fail: the counter is far from overflowing.
    [[maybe_unused]] const ssize_t n = ::write(stop_fd_, &one, sizeof(one));
    thread_.join();
    ::close(stop_fd_);
  }

  config::monitor_type type() const noexcept override { return config::monitor_type::nic_link; }

  check_result check(milliseconds /*timeout*/) override {
    std::optional<nl::link_info> l;
    try {
      if (!sk_) sk_.emplace(nl::socket::open(netns_));
      l = nl::find_link(*sk_, ifname_);
    } catch (const std::exception& e) {
      sk_.reset();  // the next check starts on a fresh socket
      return {false, "cannot read the state of interface " + ifname_ + ": " + e.what()};
    }
    const std::string which = "interface " + ifname_;
    if (!l) return {false, which + " does not exist"};
    if (!l->up) return {false, which + " is administratively down"};
    if (!l->carrier) return {false, which + " has no carrier (link down)"};
    if (!l->running) return {false, which + " has a carrier but is not running (operstate not up)"};
    return {true, {}};
  }

  void set_wake(std::function<void()> wake) override {
    const std::lock_guard lock(wake_mu_);
    wake_ = std::move(wake);
  }

 private:
  // On a socket of its own: the check's belongs to the check thread. Throws.
  link_state read_state() {
    nl::socket sk = nl::socket::open(netns_);
    const auto l = nl::find_link(sk, ifname_);
    if (!l) {
      index_ = 0;
      return {};
    }
    index_ = l->index;
    return {true, l->up, l->running, l->carrier};
  }

  void notify() noexcept {
    const std::lock_guard lock(wake_mu_);
    if (!wake_) return;
    try {
      wake_();
    } catch (...) {
      // The manager could not be told; its next interval check sees the change anyway.
    }
  }

  // Records `s` as the interface's state; true when it differs from the last one seen.
  bool observe(const link_state& s) {
    if (last_ && *last_ == s) return false;
    last_ = s;
    return true;
  }

  // Whether the notifications change what the interface looks like. A notification is about
  // this interface when it carries its name, or the index it had when last seen (so a rename or
  // a deletion is noticed whatever name the notification carries).
  bool apply(const std::vector<nl::link_event>& events) {
    bool changed = false;
    for (const nl::link_event& e : events) {
      const bool by_name = e.name == ifname_;
      const bool by_index = index_ != 0 && e.ifindex == index_;
      if (!by_name && !by_index) continue;
      if (by_name && !e.deleted) {
        index_ = e.ifindex;
        changed |= observe({true, e.up, e.running, e.carrier});
        continue;
      }
      // The deletion of an older interface of that name says nothing about the current one.
      if (!by_index && index_ != 0) continue;
      // Deleted, or renamed away: no interface of this name any more.
      index_ = 0;
      changed |= observe({});
    }
    return changed;
  }

  // A new watch after a failure; what changed without one is found by comparing the current
  // state with the last one seen. False when the watch cannot be opened.
  bool reopen() {
    try {
      watch_.emplace(netns_);
    } catch (const std::exception&) {
      return false;
    }
    bool changed = true;  // the state cannot be read: let a check find out why
    try {
      changed = observe(read_state());
    } catch (const std::exception&) {
    }
    if (changed) notify();
    return true;
  }

  void run() noexcept {
    auto retry_at = steady_clock::time_point{};
    for (;;) {
      try {
        if (!watch_ && steady_clock::now() >= retry_at && !reopen())
          retry_at = steady_clock::now() + watch_retry;
        int wait = -1;
        if (!watch_) {
          wait = static_cast<int>(
              std::chrono::ceil<milliseconds>(retry_at - steady_clock::now()).count());
          if (wait < 0) wait = 0;
        }
        pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {watch_ ? watch_->fd() : -1, POLLIN, 0}};
        if (::poll(fds, 2, wait) < 0) {
          if (errno != EINTR) std::this_thread::sleep_for(100ms);  // ENOMEM: try again later
          continue;
        }
        if (fds[0].revents != 0) return;
        if (watch_ && fds[1].revents != 0 && apply(watch_->drain())) notify();
      } catch (...) {
        // The watch failed (nl::error from drain) or memory ran out: checks go on reading fresh
        // state; a new watch is opened after a pause.
        watch_.reset();
        retry_at = steady_clock::now() + watch_retry;
      }
    }
  }

  const std::string ifname_;
  const std::string netns_;

  // The check thread's.
  std::optional<nl::socket> sk_;

  // The event thread's (the constructor's before it starts).
  std::optional<nl::link_watch> watch_;
  std::optional<link_state> last_;
  int index_ = 0;  // of the interface when last seen; 0: unknown or gone

  std::mutex wake_mu_;
  std::function<void()> wake_;

  int stop_fd_ = -1;
  std::thread thread_;  // last: started once everything it uses exists
};

}  // namespace

std::unique_ptr<monitor> make_nic_link_monitor(const config::monitor_config& mc,
                                               const monitor_env& env) {
  const config::param_map p = mc.params_for(env.node);
  const std::string* ifname = p.str("interface");
  if (ifname == nullptr || ifname->empty())
    throw std::runtime_error("monitor " + mc.name + ": parameter interface is missing");
  return std::make_unique<nic_link_monitor>(mc.name, *ifname, env.netns);
}

}  // namespace tandem::ctl::groups
