// SPDX-License-Identifier: Apache-2.0
// The floating IP benchmark: how fast a client reaches a floating address after it moves, with
// the floating_ip resource (control/groups/resource_floating_ip.cc) against what a shell-script
// agent does, `ip addr add` + `arping -U`, measured in the same run on the same lab.
//
// The lab: node1 and node2 each run a TCP listener on 0.0.0.0:8080 (tandem-lab-fileserver), the
// client sits on the same bridge. Each trial moves the address 10.99.0.100/24 to the other node:
// the holder gives it up (resource stop / `ip addr del`, not timed), then, from t0:
//
//   garp      the first gratuitous ARP for the address from the new node's MAC seen at the client
//             (an AF_PACKET socket in the client's namespace), at the kernel's receive timestamp
//             (SO_TIMESTAMPNS, CLOCK_REALTIME, against t0 read on that clock too): a loaded
//             machine wakes the reading thread late, which would make the ARP look later than
//             the connection it allowed
//   connect   the client's first successful TCP connection to address:8080; the client starts a
//             new non-blocking connect every millisecond, each given up after 50 ms, so the
//             figure is not quantised by the attempt timeout
//   call      when the activation returned (for `ip` + `arping`: both processes exited)
//
// Variants, interleaved in every round (their order rotates):
//   tandem              resource start with the defaults (duplicate check: ARP probe, 300 ms)
//   tandem_no_dupcheck  the same with duplicate_check: false
//   ip_arping           `ip addr add <vip>/24 dev eth0`, then `arping -U -c 1 -I eth0 <vip>`,
//                       each a process started in the node's namespace, as a script would
//
// The client's neighbour entry for the address exists before every trial (the announcement has
// to update it, as in a real failover) and is left alone for 1.2 s, past the kernel's locktime.
// One JSON line per variant and one with the ratios to the baseline measured in the same run:
//
//   {"bench":"floating_ip","variant":"tandem","trials":20,"garp_p50_ms":..,"garp_p99_ms":..,
//    "connect_p50_ms":..,"connect_p99_ms":..,"call_p50_ms":..}
//   {"bench":"floating_ip","baseline":"ip_arping","ratio_garp":..,"ratio_connect":..,
//    "ratio_garp_no_dupcheck":..,"ratio_connect_no_dupcheck":..}
//
// TANDEM_BENCH_TRIALS (default 20) sets the rounds. The exit status is non-zero only when a trial
// fails functionally (an activation fails, no announcement within 5 s, no connection), never
// because of a time.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/groups/resource.h"
#include "netlink/rt_socket.h"
#include "tests/lab/netns.h"

namespace {

using namespace tandem;
using json = nlohmann::ordered_json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr const char* vip = "10.99.0.100";
constexpr uint16_t port = 8080;
constexpr auto give_up = 5s;            // a trial without an announcement or a connection
constexpr auto attempt_every = 1ms;     // the client's connect attempts start this often...
constexpr auto attempt_timeout = 50ms;  // ...and each is given up after this
constexpr auto settle = 1200ms;         // past the neighbour locktime (1 s) before a trial
const std::vector<std::string> nodes = {"node1", "node2"};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

double round2(double x) {
  return std::round(x * 100) / 100;
}

double ms_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::array<uint8_t, 6> parse_mac(const std::string& text) {
  std::array<unsigned, 6> v{};
  if (std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) !=
      6) {
    throw std::runtime_error("not a MAC address: " + text);
  }
  std::array<uint8_t, 6> mac{};
  for (size_t i = 0; i < 6; ++i)
    mac[i] = static_cast<uint8_t>(v[i]);
  return mac;
}

// An owned file descriptor.
class fd_guard {
 public:
  explicit fd_guard(int fd = -1) : fd_(fd) {}
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// A packet socket for ARP on the client's eth0, made inside the client's namespace.
int open_arp_capture(const std::string& netns, const std::string& ifname) {
  int fd = -1;
  int err = 0;
  nl::in_netns(netns, [&] {
    const unsigned index = ::if_nametoindex(ifname.c_str());
    if (index == 0) {
      err = errno;
      return;
    }
    fd = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ARP));
    if (fd < 0) {
      err = errno;
      return;
    }
    // The kernel's receive time, not when this process gets around to reading the frame.
    const int on = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0) {
      err = errno;
      ::close(fd);
      fd = -1;
      return;
    }
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ARP);
    sll.sll_ifindex = static_cast<int>(index);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
      err = errno;
      ::close(fd);
      fd = -1;
    }
  });
  if (fd < 0) {
    throw std::runtime_error("ARP capture on " + ifname + " in " + netns + ": " +
                             std::strerror(err));
  }
  return fd;
}

// Reads everything queued on the capture socket (frames from before a trial).
void drain(int fd) {
  uint8_t buf[256];
  while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

// A gratuitous ARP (request or reply) for `ip` from `mac`: sender and target IP both `ip`.
bool is_garp(const uint8_t* p, ssize_t n, const std::array<uint8_t, 6>& mac, const in_addr& ip) {
  // htype(2) ptype(2) hlen(1) plen(1) op(2) sha(6) spa(4) tha(6) tpa(4)
  if (n < 28) return false;
  if (p[0] != 0 || p[1] != 1 || p[2] != 0x08 || p[3] != 0x00 || p[4] != 6 || p[5] != 4) {
    return false;
  }
  return std::memcmp(p + 8, mac.data(), 6) == 0 && std::memcmp(p + 14, &ip, 4) == 0 &&
         std::memcmp(p + 24, &ip, 4) == 0;
}

struct observation {
  double garp_ms = -1;
  double connect_ms = -1;
  double call_ms = -1;
  std::string error;  // the activation's failure, or a capture / client error
};

// What the trial's threads share: t0 (0 until taken), how many threads wait for it, and the
// abandon flag (the activation failed: stop waiting).
struct trial_clock {
  std::atomic<int64_t> t0_ns{0};           // steady clock
  std::atomic<int64_t> t0_realtime_ns{0};  // the same instant on CLOCK_REALTIME (set first)
  std::atomic<int> armed{0};
  std::atomic<bool> abandon{false};

  [[nodiscard]] steady::time_point t0() const {
    return steady::time_point{steady::duration(t0_ns.load())};
  }
};

// The client's side of one trial, in its namespace (run through nl::in_netns): waits for t0,
// then starts a connect attempt every `attempt_every`, keeping each for `attempt_timeout`, until
// one completes. Returns the time of the first success, or a negative value.
double client_connects(trial_clock& clock, std::string& error) {
  ++clock.armed;
  while (clock.t0_ns.load() == 0)
    std::this_thread::sleep_for(50us);
  const steady::time_point t0 = clock.t0();
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  ::inet_pton(AF_INET, vip, &to.sin_addr);
  struct attempt {
    int fd;
    steady::time_point started;
  };
  std::vector<attempt> open;
  const auto close_all = [&] {
    for (const attempt& a : open)
      ::close(a.fd);
    open.clear();
  };
  auto next = steady::now();
  while (steady::now() - t0 < give_up && !clock.abandon.load()) {
    auto now = steady::now();
    if (now >= next) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        error = std::string("client socket: ") + std::strerror(errno);
        close_all();
        return -1;
      }
      if (::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0) {
        ::close(fd);
        close_all();
        return ms_between(t0, steady::now());
      }
      if (errno == EINPROGRESS) {
        open.push_back({fd, now});
      } else {
        ::close(fd);  // refused at once (no route yet): the next attempt comes soon enough
      }
      next = now + attempt_every;
    }
    std::erase_if(open, [&](const attempt& a) {
      if (now - a.started < attempt_timeout) return false;
      ::close(a.fd);
      return true;
    });
    std::vector<pollfd> fds;
    fds.reserve(open.size());
    for (const attempt& a : open)
      fds.push_back({a.fd, POLLOUT, 0});
    const auto wait = std::max(next - steady::now(), steady::duration::zero());
    const timespec ts{0, static_cast<long>(std::chrono::nanoseconds(wait).count())};
    if (::ppoll(fds.data(), fds.size(), &ts, nullptr) <= 0) continue;
    const auto seen = steady::now();
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      int so_error = 0;
      socklen_t len = sizeof so_error;
      ::getsockopt(fds[i].fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
      if (so_error == 0) {
        close_all();
        return ms_between(t0, seen);
      }
      ::close(fds[i].fd);  // failed (reset, unreachable): dropped below
      open[i].fd = -1;
    }
    std::erase_if(open, [](const attempt& a) { return a.fd < 0; });
  }
  close_all();
  return -1;
}

// One trial: arms the capture and the client, takes t0, runs `activate` (which returns "" or a
// failure) and waits for both observations.
observation observe(const std::string& client_ns, int capture_fd,
                    const std::array<uint8_t, 6>& new_mac,
                    const std::function<std::string()>& activate) {
  observation o;
  in_addr ip{};
  ::inet_pton(AF_INET, vip, &ip);
  trial_clock clock;
  std::string capture_error, client_error;
  drain(capture_fd);

  std::thread capture([&] {
    uint8_t buf[256];
    ++clock.armed;
    for (;;) {
      if (clock.abandon.load() ||
          (clock.t0_ns.load() != 0 && steady::now() - clock.t0() > give_up)) {
        return;
      }
      pollfd p{capture_fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      sockaddr_ll from{};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
      iovec iov{buf, sizeof buf};
      msghdr msg{};
      msg.msg_name = &from;
      msg.msg_namelen = sizeof from;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(capture_fd, &msg, 0);
      const auto read_at = steady::now();
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        capture_error = std::string("capture: ") + std::strerror(errno);
        return;
      }
      if (clock.t0_ns.load() == 0 || from.sll_pkttype == PACKET_OUTGOING) continue;
      if (!is_garp(buf, n, new_mac, ip)) continue;
      o.garp_ms = ms_between(clock.t0(), read_at);
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
        timespec ts{};
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        const int64_t rx = int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
        o.garp_ms = static_cast<double>(rx - clock.t0_realtime_ns.load()) / 1e6;
      }
      return;
    }
  });
  std::thread client([&] {
    try {
      nl::in_netns(client_ns, [&] { o.connect_ms = client_connects(clock, client_error); });
    } catch (const std::exception& e) {
      client_error = e.what();
      ++clock.armed;
    }
  });

  // t0 once both threads wait for it (the client inside its namespace).
  while (clock.armed.load() < 2)
    std::this_thread::sleep_for(100us);
  const auto t0 = steady::now();
  clock.t0_realtime_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
  clock.t0_ns.store(t0.time_since_epoch().count());
  std::string failure;
  try {
    failure = activate();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  o.call_ms = ms_between(t0, steady::now());
  if (!failure.empty()) clock.abandon.store(true);
  capture.join();
  client.join();
  if (!failure.empty()) {
    o.error = "activation failed: " + failure;
  } else if (!capture_error.empty()) {
    o.error = capture_error;
  } else if (!client_error.empty()) {
    o.error = client_error;
  } else if (o.garp_ms < 0) {
    o.error = "no gratuitous ARP from the new node within 5 s";
  } else if (o.connect_ms < 0) {
    o.error = "the client did not connect within 5 s";
  }
  return o;
}

ctl::config::resource_config fip_config(bool duplicate_check) {
  ctl::config::resource_config rc;
  rc.name = "vip";
  rc.type = ctl::config::resource_type::floating_ip;
  rc.params.values["address"] = ctl::config::param_value{std::string(vip) + "/24"};
  rc.params.values["interface"] = ctl::config::param_value{std::string("eth0")};
  rc.params.values["duplicate_check"] = ctl::config::param_value{duplicate_check};
  return rc;
}

ctl::groups::action_context ctx_for(const std::string& node) {
  ctl::groups::action_context ctx;
  ctx.cluster = "lab";
  ctx.node = node;
  ctx.group = "web";
  ctx.resource = "vip";
  ctx.event = "failover";
  ctx.timeout = 10s;
  return ctx;
}

struct variant {
  std::string name;
  std::vector<double> garp, connect, call;
};

}  // namespace

int main() {
  int rounds = 20;
  if (const char* t = std::getenv("TANDEM_BENCH_TRIALS")) rounds = std::max(1, std::atoi(t));
  try {
    if (ctl::run({"arping", "-V"}, 5s).status.code != 0) {
      std::fprintf(stderr,
                   "bench_floating_ip: arping (iputils-arping) is not installed; "
                   "scripts/install-deps.sh installs it\n");
      return 1;
    }
    lab::lab l(lab::cluster_options(2, 0, true));
    for (const std::string& n : nodes) {
      l.spawn(n, "listener",
              {TANDEM_LAB_FILESERVER, "--listen", "0.0.0.0:" + std::to_string(port), "--root",
               l.log_dir(), "--name", n});
    }
    for (const std::string& n : nodes) {
      const auto until = steady::now() + 20s;
      while (l.read_log(n, "listener").find("serving") == std::string::npos) {
        if (steady::now() > until) {
          std::fprintf(stderr, "bench_floating_ip: the listener on %s did not start\n%s\n",
                       n.c_str(), l.collect_logs().c_str());
          return 1;
        }
        std::this_thread::sleep_for(10ms);
      }
    }
    const std::string client_ns = l.netns("client");
    const fd_guard capture(open_arp_capture(client_ns, "eth0"));

    // [node]: the resources of both tandem variants on each node.
    std::vector<std::unique_ptr<ctl::groups::resource>> with_check, without_check;
    for (const std::string& n : nodes) {
      ctl::groups::resource_env env;
      env.node = n;
      env.netns = l.netns(n);
      with_check.push_back(ctl::groups::make_resource(fip_config(true), env));
      without_check.push_back(ctl::groups::make_resource(fip_config(false), env));
    }
    const std::string cidr = std::string(vip) + "/24";
    std::vector<variant> variants(3);
    variants[0].name = "tandem";
    variants[1].name = "tandem_no_dupcheck";
    variants[2].name = "ip_arping";
    const auto start = [&](size_t v, int node) -> std::string {
      const std::string& n = nodes[static_cast<size_t>(node)];
      if (v < 2) {
        auto& r = v == 0 ? with_check : without_check;
        const auto res = r[static_cast<size_t>(node)]->start(ctx_for(n));
        return res.ok ? std::string() : res.message;
      }
      auto add = l.exec(n, {"ip", "addr", "add", cidr, "dev", "eth0"});
      if (!add.status.ok()) return "ip addr add: " + add.output;
      auto announce = l.exec(n, {"arping", "-U", "-c", "1", "-I", "eth0", vip});
      if (!announce.status.ok()) return "arping: " + announce.output;
      return {};
    };
    const auto stop = [&](size_t v, int node) -> std::string {
      const std::string& n = nodes[static_cast<size_t>(node)];
      if (v < 2) {
        auto& r = v == 0 ? with_check : without_check;
        const auto res = r[static_cast<size_t>(node)]->stop(ctx_for(n));
        return res.ok ? std::string() : res.message;
      }
      auto del = l.exec(n, {"ip", "addr", "del", cidr, "dev", "eth0"});
      return del.status.ok() ? std::string() : "ip addr del: " + del.output;
    };

    // The address starts on node1 and the client talks to it, so the client's neighbour entry
    // exists before the first trial.
    int holder = 0;
    size_t held_by = 0;
    if (const std::string e = start(0, holder); !e.empty()) {
      std::fprintf(stderr, "bench_floating_ip: first activation: %s\n", e.c_str());
      return 1;
    }
    // Round 0 is a warm-up (first use of each path: page faults, libnl, the binaries' pages).
    for (int round = 0; round <= rounds; ++round) {
      for (size_t k = 0; k < variants.size(); ++k) {
        const size_t v = (k + static_cast<size_t>(round)) % variants.size();
        const int to = 1 - holder;
        std::this_thread::sleep_for(settle);
        if (const std::string e = stop(held_by, holder); !e.empty()) {
          std::fprintf(stderr, "bench_floating_ip: stop on %s: %s\n",
                       nodes[static_cast<size_t>(holder)].c_str(), e.c_str());
          return 1;
        }
        const observation o =
            observe(client_ns, capture.get(), parse_mac(l.mac(nodes[static_cast<size_t>(to)], 0)),
                    [&] { return start(v, to); });
        holder = to;
        held_by = v;
        if (!o.error.empty()) {
          std::fprintf(stderr, "bench_floating_ip: round %d, %s to %s: %s\n%s\n", round,
                       variants[v].name.c_str(), nodes[static_cast<size_t>(to)].c_str(),
                       o.error.c_str(), l.exec("client", {"ip", "neigh", "show"}).output.c_str());
          return 1;
        }
        std::fprintf(stderr,
                     "round %d%s: %-18s -> %s: garp %7.2f ms, connect %7.2f ms, call %7.2f ms\n",
                     round, round == 0 ? " (warm-up)" : "", variants[v].name.c_str(),
                     nodes[static_cast<size_t>(to)].c_str(), o.garp_ms, o.connect_ms, o.call_ms);
        if (round == 0) continue;
        variants[v].garp.push_back(o.garp_ms);
        variants[v].connect.push_back(o.connect_ms);
        variants[v].call.push_back(o.call_ms);
      }
    }
    (void)stop(held_by, holder);

    for (const variant& v : variants) {
      const json out = {{"bench", "floating_ip"},
                        {"variant", v.name},
                        {"trials", rounds},
                        {"garp_p50_ms", round2(percentile(v.garp, 0.5))},
                        {"garp_p99_ms", round2(percentile(v.garp, 0.99))},
                        {"connect_p50_ms", round2(percentile(v.connect, 0.5))},
                        {"connect_p99_ms", round2(percentile(v.connect, 0.99))},
                        {"call_p50_ms", round2(percentile(v.call, 0.5))}};
      std::printf("%s\n", out.dump().c_str());
    }
    const auto ratio = [&](const variant& a, const variant& b, bool garp) {
      const double num = percentile(garp ? a.garp : a.connect, 0.5);
      const double den = percentile(garp ? b.garp : b.connect, 0.5);
      return den > 0 ? std::round(num / den * 1000) / 1000 : 0.0;
    };
    const json ratios = {{"bench", "floating_ip"},
                         {"baseline", "ip_arping"},
                         {"ratio_garp", ratio(variants[0], variants[2], true)},
                         {"ratio_connect", ratio(variants[0], variants[2], false)},
                         {"ratio_garp_no_dupcheck", ratio(variants[1], variants[2], true)},
                         {"ratio_connect_no_dupcheck", ratio(variants[1], variants[2], false)}};
    std::printf("%s\n", ratios.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_floating_ip: %s\n", e.what());
    return 1;
  }
  return 0;
}
