// SPDX-License-Identifier: Apache-2.0
// The floating_ip resource and its monitor: an IPv4 or IPv6 address that follows the group.
// Activation checks that nobody else answers for the address (ARP probe / hand-made DAD), adds
// it through rtnetlink and announces it (gratuitous ARP / unsolicited neighbour advertisements);
// while active, a worker thread announces it again whenever the interface's link comes back and
// when the group manager asks (reassert: a peer came back after a partition). Deactivation
// removes it. Everything goes through tandem::nl (libnl-route-3 and packet sockets), never `ip`.
#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/groups/monitor.h"
#include "control/groups/resource.h"
#include "netlink/announce.h"
#include "netlink/link_watch.h"
#include "netlink/rt_addr.h"
#include "netlink/rt_link.h"
#include "netlink/rt_socket.h"

namespace tandem::ctl::groups {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;
using json = nlohmann::json;

// How long the duplicate-address check listens for an answer when the configuration does not
// say. A host on the same segment answers an ARP probe or a DAD solicitation within a
// millisecond or two; RFC 5227's full 1-2 s probe schedule is made for hosts joining a network,
// not for a takeover that clients are waiting for.
constexpr milliseconds default_probe_wait{300};
// How old a duplicate check begun by prepare() may be when start() wants its answer; an older
// one is done again.
constexpr milliseconds max_probe_age{1000};

bool is_ipv6(const std::string& literal) {
  return literal.find(':') != std::string::npos;
}

// An owned eventfd (stop and wake-up signals for the worker thread).
class event_fd {
 public:
  event_fd() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  }
  ~event_fd() { ::close(fd_); }
  event_fd(const event_fd&) = delete;
  event_fd& operator=(const event_fd&) = delete;
  int fd() const { return fd_; }
  void signal() const noexcept {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd_, &one, sizeof one);
  }
  void clear() const noexcept {
    uint64_t v = 0;
    [[maybe_unused]] const ssize_t n = ::read(fd_, &v, sizeof v);
  }

 private:
  int fd_;
};

class floating_ip_resource final : public resource {
 public:
  floating_ip_resource(const config::resource_config& rc, const resource_env& env)
      : resource(rc.name), netns_(env.netns) {
    const config::param_map p = rc.params_for(env.node);
    const std::string* a = p.str("address");
    if (a == nullptr || a->empty())
      throw std::runtime_error("resource " + rc.name + ": parameter address is missing");
    const auto slash = a->find('/');
    address_ = a->substr(0, slash);
    if (slash != std::string::npos) prefix_ = std::stoi(a->substr(slash + 1));
    v6_ = is_ipv6(address_);
    unsigned char bytes[16];
    if (inet_pton(v6_ ? AF_INET6 : AF_INET, address_.c_str(), bytes) != 1)
      throw std::runtime_error("resource " + rc.name + ": address " + *a + " is not an address");
    if (const std::string* s = p.str("interface")) interface_ = *s;
    if (auto n = p.integer("announce_count")) announce_count_ = static_cast<int>(*n);
    if (auto d = p.duration("announce_interval")) announce_interval_ = *d;
    if (auto f = p.flag("duplicate_check")) duplicate_check_ = *f;
    if (auto d = p.duration("duplicate_check_time")) probe_wait_ = *d;
  }

  ~floating_ip_resource() override { stop_worker(); }

  [[nodiscard]] config::resource_type type() const noexcept override {
    return config::resource_type::floating_ip;
  }

  [[nodiscard]] json describe() const override {
    const std::lock_guard lock(mu_);
    json j = {{"address", active_cidr_.empty() ? address_ : active_cidr_},
              {"interface", active_if_.empty() ? interface_ : active_if_},
              {"announcements", announcements_.load()}};
    if (!announce_error_.empty()) j["announce_error"] = announce_error_;
    return j;
  }

  void reassert(const action_context& /*ctx*/) noexcept override {
    if (reassert_) reassert_->signal();
  }

  // The duplicate check listens for duplicate_check_time: begin it while the group's earlier
  // resources start, so a failover does not wait for it twice.
  void prepare(const action_context& ctx) noexcept override;

  // The floating_ip monitor's check: the address is still on the interface it was added to.
  check_result verify() const {
    std::string ifname, cidr;
    {
      const std::lock_guard lock(mu_);
      ifname = active_if_;
      cidr = active_cidr_;
    }
    if (ifname.empty()) return {false, "resource " + name() + " is not active on this node"};
    try {
      nl::socket sk = nl::socket::open(netns_);
      if (!nl::find_link(sk, ifname)) return {false, "interface " + ifname + " is gone"};
      if (nl::has_address(sk, ifname, address_)) return {true, {}};
    } catch (const std::exception& e) {
      return {false, "cannot read the addresses of " + ifname + ": " + e.what()};
    }
    return {false, "address " + cidr + " is no longer on " + ifname};
  }

 private:
  action_result do_start(const action_context& ctx) override;
  action_result do_stop(const action_context& ctx) override;

  // The interface and prefix to use: the configured interface, else the one whose network holds
  // the address. Throws std::runtime_error with the reason.
  std::pair<std::string, int> placement(nl::socket& sk) const;
  // The duplicate-address check on `ifname`: the MAC of a host that answers for the address.
  std::optional<std::string> probe(const std::string& ifname, milliseconds wait) const {
    return v6_ ? nl::nd_probe(netns_, ifname, address_, wait)
               : nl::arp_probe(netns_, ifname, address_, wait);
  }
  // The answer of the check prepare() began on `ifname`, if there is one and it is recent.
  std::optional<std::optional<std::string>> prepared_answer(const std::string& ifname);
  // One announcement (gratuitous ARP or unsolicited NA) on `ifname`. Throws.
  void announce_once(const std::string& ifname) const {
    if (v6_) {
      nl::unsolicited_na(netns_, ifname, address_, 1, 0ms);
    } else {
      nl::gratuitous_arp(netns_, ifname, address_, 1, 0ms);
    }
    ++announcements_;
  }
  void start_worker(const std::string& ifname, nl::link_watch watch);
  void stop_worker() noexcept;
  void run_worker(const std::string& ifname, nl::link_watch& watch) noexcept;
  void note_announce_error(const std::string& what) {
    const std::lock_guard lock(mu_);
    announce_error_ = what;
  }

  // Configuration.
  std::string netns_;
  std::string address_;  // the literal, without prefix
  std::optional<int> prefix_;
  bool v6_ = false;
  std::string interface_;  // "" : found from the address's network
  int announce_count_ = 3;
  milliseconds announce_interval_{200};
  bool duplicate_check_ = true;
  milliseconds probe_wait_{default_probe_wait};

  // State while active (start / stop on the group's worker; the probes read it under mu_).
  mutable std::mutex mu_;
  std::string active_if_;
  std::string active_cidr_;
  std::string announce_error_;
  mutable std::atomic<uint64_t> announcements_{0};

  std::unique_ptr<event_fd> stop_;
  std::unique_ptr<event_fd> reassert_;
  std::thread worker_;

  // A duplicate check begun by prepare() (group worker thread only). Last: destroyed first,
  // waiting for the check, which reads the configuration above.
  struct prepared_check {
    std::string ifname;
    std::shared_ptr<std::atomic<int64_t>> done_ns;  // steady clock, when it answered
    std::future<std::optional<std::string>> answer;
  };
  std::optional<prepared_check> prepared_;
};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
      .count();
}

void floating_ip_resource::prepare(const action_context& ctx) noexcept {
  prepared_.reset();
  if (!duplicate_check_) return;
  try {
    nl::socket sk = nl::socket::open(netns_);
    const std::string ifname = placement(sk).first;
    const auto link = nl::find_link(sk, ifname);
    // Nothing to check (already here), or start() will refuse the link anyway.
    if (!link || !link->up || !link->running || nl::has_address(sk, ifname, address_)) return;
    const milliseconds wait = std::min(probe_wait_, ctx.timeout);
    auto done = std::make_shared<std::atomic<int64_t>>(0);
    auto answer = std::async(std::launch::async, [this, ifname, wait, done] {
      try {
        auto holder = probe(ifname, wait);
        done->store(now_ns());
        return holder;
      } catch (...) {
        done->store(now_ns());
        throw;
      }
    });
    prepared_ = prepared_check{ifname, std::move(done), std::move(answer)};
  } catch (const std::exception&) {
    prepared_.reset();  // start() checks by itself and reports what is wrong
  }
}

std::optional<std::optional<std::string>> floating_ip_resource::prepared_answer(
    const std::string& ifname) {
  if (!prepared_) return std::nullopt;
  prepared_check p = std::move(*prepared_);
  prepared_.reset();
  p.answer.wait();
  const auto age = std::chrono::nanoseconds(now_ns() - p.done_ns->load());
  if (p.ifname != ifname || age > max_probe_age) {
    try {
      (void)p.answer.get();
    } catch (const std::exception&) {
    }
    return std::nullopt;
  }
  return p.answer.get();  // rethrows what the check threw
}

std::pair<std::string, int> floating_ip_resource::placement(nl::socket& sk) const {
  const int host_prefix = v6_ ? 128 : 32;
  if (!interface_.empty()) {
    if (!nl::find_link(sk, interface_)) {
      throw std::runtime_error("interface " + interface_ + " does not exist on this node");
    }
    if (prefix_) return {interface_, *prefix_};
    // The prefix of the interface's own network that holds the address, else a host address.
    const auto net = nl::covering_address(sk, address_);
    const auto link = nl::find_link(sk, interface_);
    if (net && link && net->ifindex == link->index) return {interface_, net->prefix_len};
    return {interface_, host_prefix};
  }
  const auto net = nl::covering_address(sk, address_);
  if (!net) {
    throw std::runtime_error("no interface of this node has an address in a network that holds " +
                             address_ + "; name one with parameter interface");
  }
  for (const nl::link_info& l : nl::links(sk)) {
    if (l.index == net->ifindex) return {l.name, prefix_.value_or(net->prefix_len)};
  }
  throw std::runtime_error("the interface of " + net->address + " vanished");
}

action_result floating_ip_resource::do_start(const action_context& ctx) {
  const auto t0 = clock_type::now();
  nl::socket sk = nl::socket::open(netns_);
  std::string ifname;
  int prefix = 0;
  try {
    std::tie(ifname, prefix) = placement(sk);
  } catch (const std::runtime_error& e) {
    return {false, e.what()};
  }
  const std::string cidr = address_ + "/" + std::to_string(prefix);
  {
    const std::lock_guard lock(mu_);
    if (active_if_ == ifname && active_cidr_ == cidr && worker_.joinable() &&
        nl::has_address(sk, ifname, address_)) {
      reassert_->signal();  // already active: just announce it again
      return {true, cidr + " on " + ifname + " (already active)"};
    }
  }
  stop_worker();
  const auto link = nl::find_link(sk, ifname);
  if (!link) return {false, "interface " + ifname + " does not exist on this node"};
  if (!link->up) return {false, "interface " + ifname + " is administratively down"};
  if (!link->running) return {false, "interface " + ifname + " has no carrier (link down)"};

  const bool present = nl::has_address(sk, ifname, address_);
  if (present) prepared_.reset();
  if (!present && duplicate_check_) {
    const milliseconds wait = std::min(probe_wait_, ctx.timeout);
    auto early = prepared_answer(ifname);
    const std::optional<std::string> holder = early ? *early : probe(ifname, wait);
    if (holder) {
      return {false, "address " + address_ + " is already in use: " + *holder +
                         " answered for it on " + ifname + " (" +
                         (v6_ ? "duplicate address detection" : "ARP probe") +
                         "); the address was not added"};
    }
  }
  // Link events from before the address exists are of no interest; the subscription must exist
  // before the first announcement, so no link change after it goes unnoticed.
  nl::link_watch watch(netns_);
  bool added = false;
  if (!present) {
    try {
      // DAD was done above by hand (it names the holder); the kernel's would only delay.
      nl::add_address(sk, ifname, cidr, {}, /*nodad=*/true);
      added = true;
    } catch (const nl::error& e) {
      if (!nl::has_address(sk, ifname, address_)) return {false, e.what()};
    }
  }
  try {
    announce_once(ifname);
  } catch (const std::exception& e) {
    if (added) nl::remove_address(sk, ifname, cidr);
    return {false, std::string("announcing ") + address_ + " on " + ifname + ": " + e.what() +
                       (added ? "; the address was removed again" : "")};
  }
  {
    const std::lock_guard lock(mu_);
    active_if_ = ifname;
    active_cidr_ = cidr;
    announce_error_.clear();
  }
  start_worker(ifname, std::move(watch));
  const auto took = std::chrono::duration_cast<milliseconds>(clock_type::now() - t0);
  return {true, cidr + " on " + ifname + (present ? " (was already there)" : "") + ", announced (" +
                    std::to_string(took.count()) + " ms)"};
}

action_result floating_ip_resource::do_stop(const action_context& /*ctx*/) {
  prepared_.reset();
  stop_worker();
  std::string ifname;
  {
    const std::lock_guard lock(mu_);
    ifname = active_if_;
    active_if_.clear();
    active_cidr_.clear();
  }
  nl::socket sk = nl::socket::open(netns_);
  if (ifname.empty()) ifname = interface_;
  // Remove the address wherever this resource may have put it (after a restart of tandemd the
  // address can be left from before, with whatever prefix it had).
  std::vector<std::string> names;
  int removed = 0;
  for (const nl::link_info& l : nl::links(sk)) {
    if (!ifname.empty() && l.name != ifname) continue;
    for (const nl::address_info& a : nl::addresses(sk, l.name)) {
      unsigned char want[16] = {}, got[16] = {};
      const int af = v6_ ? AF_INET6 : AF_INET;
      if (a.family != af || inet_pton(af, address_.c_str(), want) != 1 ||
          inet_pton(af, a.address.c_str(), got) != 1 || std::memcmp(want, got, v6_ ? 16 : 4) != 0) {
        continue;
      }
      if (nl::remove_address(sk, l.name, a.address + "/" + std::to_string(a.prefix_len))) {
        ++removed;
        names.push_back(l.name);
      }
    }
  }
  if (removed == 0) return {true, address_ + " was not configured"};
  std::string where;
  for (const std::string& n : names)
    where += (where.empty() ? "" : ", ") + n;
  return {true, address_ + " removed from " + where};
}

void floating_ip_resource::start_worker(const std::string& ifname, nl::link_watch watch) {
  stop_ = std::make_unique<event_fd>();
  reassert_ = std::make_unique<event_fd>();
  worker_ = std::thread([this, ifname, w = std::move(watch)]() mutable { run_worker(ifname, w); });
}

void floating_ip_resource::stop_worker() noexcept {
  if (!worker_.joinable()) return;
  stop_->signal();
  worker_.join();
  worker_ = std::thread();
}

// Sends the rest of the first announcement round, then waits for link events and reassert
// requests; each link-up (after a down) and each request starts a new round of announce_count.
void floating_ip_resource::run_worker(const std::string& ifname, nl::link_watch& watch) noexcept {
  int pending = announce_count_ - 1;
  auto next = clock_type::now() + announce_interval_;
  bool live = true;  // the link was up when the address was added
  for (;;) {
    int timeout = -1;
    if (pending > 0) {
      const auto left = std::chrono::ceil<milliseconds>(next - clock_type::now());
      timeout = static_cast<int>(std::max<int64_t>(left.count(), 0));
    }
    pollfd fds[3] = {
        {stop_->fd(), POLLIN, 0}, {reassert_->fd(), POLLIN, 0}, {watch.fd(), POLLIN, 0}};
    const int r = ::poll(fds, 3, timeout);
    if (r < 0 && errno != EINTR) {
      note_announce_error(std::string("poll: ") + std::strerror(errno));
      return;
    }
    if (r > 0 && (fds[0].revents & POLLIN) != 0) return;
    if (r > 0 && (fds[1].revents & POLLIN) != 0) {
      reassert_->clear();
      pending = announce_count_;
      next = clock_type::now();
    }
    if (r > 0 && (fds[2].revents & (POLLIN | POLLERR)) != 0) {
      try {
        for (const nl::link_event& ev : watch.drain()) {
          if (ev.name != ifname) continue;
          const bool now_live = !ev.deleted && ev.up && ev.running;
          if (now_live && !live) {
            pending = announce_count_;
            next = clock_type::now();
          }
          live = now_live;
        }
      } catch (const std::exception& e) {
        note_announce_error(std::string("link events: ") + e.what());
      }
    }
    if (pending > 0 && clock_type::now() >= next) {
      if (live) {
        try {
          announce_once(ifname);
        } catch (const std::exception& e) {
          note_announce_error(e.what());
        }
      }
      --pending;
      next = clock_type::now() + announce_interval_;
    }
  }
}

class floating_ip_monitor final : public monitor {
 public:
  floating_ip_monitor(std::string name, std::string resource_name,
                      std::function<resource*(std::string_view)> find)
      : monitor(std::move(name)), resource_(std::move(resource_name)), find_(std::move(find)) {}

  config::monitor_type type() const noexcept override { return config::monitor_type::floating_ip; }

  check_result check(milliseconds /*timeout*/) override {
    resource* r = find_ ? find_(resource_) : nullptr;
    const auto* fip = dynamic_cast<const floating_ip_resource*>(r);
    if (fip == nullptr) return {false, "the group has no floating_ip resource " + resource_};
    return fip->verify();
  }

 private:
  std::string resource_;
  std::function<resource*(std::string_view)> find_;
};

}  // namespace

std::unique_ptr<resource> make_floating_ip_resource(const config::resource_config& rc,
                                                    const resource_env& env) {
  return std::make_unique<floating_ip_resource>(rc, env);
}

std::unique_ptr<monitor> make_floating_ip_monitor(const config::monitor_config& mc,
                                                  const monitor_env& env) {
  const config::param_map p = mc.params_for(env.node);
  const std::string* res = p.str("resource");
  if (res == nullptr || res->empty())
    throw std::runtime_error("monitor " + mc.name + ": parameter resource is missing");
  return std::make_unique<floating_ip_monitor>(mc.name, *res, env.find);
}

}  // namespace tandem::ctl::groups
