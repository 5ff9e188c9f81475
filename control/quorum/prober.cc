// SPDX-License-Identifier: Apache-2.0
// prober: ICMP echo over ping or raw sockets, HTTP GETs over libcurl, on one thread per target.
#include "control/quorum/prober.h"

#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <linux/icmp.h>
#include <netdb.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <utility>

#include <asio/post.hpp>

#include "dataplane/base/fd_guard.h"

namespace tandem::ctl::quorum {
namespace {

using dp::fd_guard;

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr uint8_t icmp4_echo_reply = 0;
constexpr uint8_t icmp4_dest_unreachable = 3;
constexpr uint8_t icmp4_echo_request = 8;
constexpr uint8_t icmp4_time_exceeded = 11;
constexpr uint8_t icmp4_parameter_problem = 12;
constexpr uint8_t icmp6_dest_unreachable = 1;
constexpr uint8_t icmp6_packet_too_big = 2;
constexpr uint8_t icmp6_time_exceeded = 3;
constexpr uint8_t icmp6_parameter_problem = 4;
constexpr uint8_t icmp6_echo_request = 128;
constexpr uint8_t icmp6_echo_reply = 129;
constexpr uint8_t ipproto_icmp = 1;
constexpr uint8_t ipproto_icmpv6 = 58;
constexpr size_t icmp_header = 8;
constexpr size_t ipv6_header = 40;

uint16_t be16(std::span<const uint8_t> p, size_t at) {
  return static_cast<uint16_t>(p[at] << 8 | p[at + 1]);
}

bool is_error_type(bool v6, uint8_t type) {
  if (v6)
    return type == icmp6_dest_unreachable || type == icmp6_packet_too_big ||
           type == icmp6_time_exceeded || type == icmp6_parameter_problem;
  return type == icmp4_dest_unreachable || type == icmp4_time_exceeded ||
         type == icmp4_parameter_problem;
}

// The ICMP message inside an IPv4 packet (empty when it is not a well-formed ICMP one).
std::span<const uint8_t> ipv4_payload(std::span<const uint8_t> p) {
  if (p.size() < 20 || (p[0] >> 4) != 4) return {};
  const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
  if (ihl < 20 || p.size() < ihl || p[9] != ipproto_icmp) return {};
  return p.subspan(ihl);
}

// Is `inner` (the start of a quoted ICMP message) our echo request?
bool is_our_request(std::span<const uint8_t> inner, const icmp_echo& sent) {
  if (inner.size() < icmp_header) return false;
  if (inner[0] != (sent.v6 ? icmp6_echo_request : icmp4_echo_request)) return false;
  if (sent.match_id && be16(inner, 4) != sent.id) return false;
  return be16(inner, 6) == sent.seq;
}

std::string errno_text(int e) {
  return std::strerror(e);
}

// "0.04 ms", "12.3 ms".
std::string ms_text(steady_clock::duration d) {
  const double ms = std::chrono::duration<double, std::milli>(d).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, ms < 1 ? "%.2f ms" : "%.1f ms", ms);
  return buf;
}

std::string address_text(const sockaddr_storage& a) {
  char host[NI_MAXHOST] = {};
  const socklen_t len = a.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&a), len, host, sizeof host, nullptr, 0,
                  NI_NUMERICHOST) != 0)
    return "?";
  return host;
}

bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET)
    return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in&>(b).sin_addr.s_addr;
  const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
  const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
  return std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
}

// An IP literal only: AI_NUMERICHOST never asks a resolver. Scope ids ("fe80::1%eth0") work.
bool parse_literal(const std::string& s, sockaddr_storage& out) {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_RAW;
  addrinfo* res = nullptr;
  if (s.empty() || getaddrinfo(s.c_str(), nullptr, &hints, &res) != 0) return false;
  const bool ok = res != nullptr && res->ai_addrlen <= sizeof out &&
                  (res->ai_family == AF_INET || res->ai_family == AF_INET6);
  if (ok) {
    out = {};
    std::memcpy(&out, res->ai_addr, res->ai_addrlen);
  }
  freeaddrinfo(res);
  return ok;
}

// Raw sockets see every ICMP packet the host receives: let the kernel drop what can never be
// an answer (our own requests on loopback, other hosts' traffic). Best effort.
void filter_raw(int fd, bool v6) {
  if (v6) {
    icmp6_filter f;
    ICMP6_FILTER_SETBLOCKALL(&f);
    ICMP6_FILTER_SETPASS(icmp6_echo_reply, &f);
    ICMP6_FILTER_SETPASS(icmp6_dest_unreachable, &f);
    ICMP6_FILTER_SETPASS(icmp6_packet_too_big, &f);
    ICMP6_FILTER_SETPASS(icmp6_time_exceeded, &f);
    ICMP6_FILTER_SETPASS(icmp6_parameter_problem, &f);
    (void)setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f);
  } else {
    icmp_filter f{};  // a set bit blocks that type
    f.data = ~((1U << icmp4_echo_reply) | (1U << icmp4_dest_unreachable) |
               (1U << icmp4_time_exceeded) | (1U << icmp4_parameter_problem));
    (void)setsockopt(fd, SOL_RAW, ICMP_FILTER, &f, sizeof f);
  }
}

// A datagram socket with IP_RECVERR queues the ICMP errors about its requests: "host
// unreachable from 10.0.0.254", or the errno text for a local error. Empty when none is queued.
std::string queued_error(int fd, bool v6) {
  uint8_t data[256];
  iovec iov{data, sizeof data};
  alignas(cmsghdr) char control[512];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  if (::recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return {};
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (!(c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) &&
        !(c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR))
      continue;
    sock_extended_err ee;
    std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
    if (ee.ee_origin != SO_EE_ORIGIN_ICMP && ee.ee_origin != SO_EE_ORIGIN_ICMP6)
      return errno_text(static_cast<int>(ee.ee_errno));
    std::string text = icmp_error_text(v6, ee.ee_type, ee.ee_code);
    // The offender's address follows the extended error in the same control message.
    const size_t len = c->cmsg_len - CMSG_LEN(0);
    const size_t off_len = v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (len >= sizeof ee + off_len) {
      sockaddr_storage from{};
      std::memcpy(&from, CMSG_DATA(c) + sizeof ee, off_len);
      if (from.ss_family == AF_INET || from.ss_family == AF_INET6)
        text += " from " + address_text(from);
    }
    return text;
  }
  return {};
}

// Identifiers for raw sockets: random per process (other pings use their PID), and a sequence
// number per probe, so that parallel probes never take each other's replies.
uint16_t process_id() {
  static const uint16_t id = static_cast<uint16_t>(std::random_device{}());
  return id;
}

std::atomic<uint16_t> next_seq{0};

ping_outcome fail(std::string detail, icmp_socket used = icmp_socket::automatic) {
  return {false, std::move(detail), used};
}

}  // namespace

// --- ICMP, pure ---

uint16_t icmp_checksum(std::span<const uint8_t> data) noexcept {
  uint32_t sum = 0;
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2)
    sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (i < data.size()) sum += static_cast<uint32_t>(data[i] << 8);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

std::vector<uint8_t> make_echo_request(bool v6, uint16_t id, uint16_t seq,
                                       std::span<const uint8_t> payload) {
  std::vector<uint8_t> p(icmp_header + payload.size());
  p[0] = v6 ? icmp6_echo_request : icmp4_echo_request;
  p[4] = static_cast<uint8_t>(id >> 8);
  p[5] = static_cast<uint8_t>(id);
  p[6] = static_cast<uint8_t>(seq >> 8);
  p[7] = static_cast<uint8_t>(seq);
  std::copy(payload.begin(), payload.end(), p.begin() + icmp_header);
  if (!v6) {
    const uint16_t c = icmp_checksum(p);
    p[2] = static_cast<uint8_t>(c >> 8);
    p[3] = static_cast<uint8_t>(c);
  }
  return p;
}

icmp_answer match_icmp(std::span<const uint8_t> packet, const icmp_echo& sent) noexcept {
  std::span<const uint8_t> p = packet;
  if (!sent.v6 && sent.ip_header) p = ipv4_payload(p);
  if (p.size() < icmp_header) return {};
  if (!sent.v6 && icmp_checksum(p) != 0) return {};
  icmp_answer a;
  a.type = p[0];
  a.code = p[1];
  if (a.type == (sent.v6 ? icmp6_echo_reply : icmp4_echo_reply)) {
    if (sent.match_id && be16(p, 4) != sent.id) return {};
    if (be16(p, 6) != sent.seq) return {};
    a.match = icmp_match::reply;
    return a;
  }
  if (!is_error_type(sent.v6, a.type)) return {};
  // An error quotes the packet that caused it: its IP header and at least 8 bytes after it.
  const std::span<const uint8_t> quoted = p.subspan(icmp_header);
  std::span<const uint8_t> inner;
  if (sent.v6) {
    if (quoted.size() < ipv6_header || (quoted[0] >> 4) != 6 || quoted[6] != ipproto_icmpv6)
      return {};
    inner = quoted.subspan(ipv6_header);
  } else {
    inner = ipv4_payload(quoted);
  }
  if (!is_our_request(inner, sent)) return {};
  a.match = icmp_match::error;
  return a;
}

std::string icmp_error_text(bool v6, uint8_t type, uint8_t code) {
  if (v6) {
    if (type == icmp6_dest_unreachable) {
      switch (code) {
        case 0:
          return "no route to destination";
        case 1:
          return "communication administratively prohibited";
        case 3:
          return "address unreachable";
        case 4:
          return "port unreachable";
        case 5:
          return "source address failed policy";
        case 6:
          return "reject route to destination";
        default:
          break;
      }
    }
    if (type == icmp6_packet_too_big) return "packet too big";
    if (type == icmp6_time_exceeded) return "hop limit exceeded in transit";
    if (type == icmp6_parameter_problem) return "parameter problem";
  } else {
    if (type == icmp4_dest_unreachable) {
      switch (code) {
        case 0:
          return "network unreachable";
        case 1:
          return "host unreachable";
        case 2:
          return "protocol unreachable";
        case 3:
          return "port unreachable";
        case 4:
          return "fragmentation needed";
        case 6:
          return "destination network unknown";
        case 7:
          return "destination host unknown";
        case 9:
        case 10:
        case 13:
          return "communication administratively prohibited";
        default:
          break;
      }
    }
    if (type == icmp4_time_exceeded) return "TTL exceeded in transit";
    if (type == icmp4_parameter_problem) return "parameter problem";
  }
  return "type " + std::to_string(type) + " code " + std::to_string(code);
}

// --- blocking probes ---

ping_outcome ping(const std::string& address, milliseconds timeout, icmp_socket sock) {
  const auto start = steady_clock::now();
  timeout = std::max(timeout, milliseconds(1));
  const auto deadline = start + timeout;
  sockaddr_storage target{};
  if (!parse_literal(address, target))
    return fail("not an IP address: \"" + address + "\" (ping targets are never resolved)");
  const bool v6 = target.ss_family == AF_INET6;
  const int family = v6 ? AF_INET6 : AF_INET;
  const int proto = v6 ? static_cast<int>(IPPROTO_ICMPV6) : static_cast<int>(IPPROTO_ICMP);
  const socklen_t target_len = v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  const auto* target_sa = reinterpret_cast<const sockaddr*>(&target);

  int fd = -1;
  icmp_socket used = icmp_socket::datagram;
  if (sock != icmp_socket::raw) {
    fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (fd < 0 && (sock == icmp_socket::datagram || (errno != EACCES && errno != EPERM)))
      return fail("cannot open an ICMP datagram socket: " + errno_text(errno));
  }
  if (fd < 0) {
    used = icmp_socket::raw;
    fd = ::socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (fd < 0) return fail("cannot open a raw ICMP socket: " + errno_text(errno));
  }
  const fd_guard guard(fd);
  const bool raw = used == icmp_socket::raw;

  // Datagram sockets are connected (only this peer's replies) and queue the ICMP errors about
  // our request (IP_RECVERR: otherwise the kernel drops "host unreachable" as a soft error).
  // Raw ones see the errors as packets, whoever sends them.
  if (raw) {
    filter_raw(fd, v6);
  } else {
    const int on = 1;
    (void)setsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_RECVERR : IP_RECVERR, &on, sizeof on);
    if (::connect(fd, target_sa, target_len) != 0)
      return fail("unreachable: " + errno_text(errno), used);
  }

  icmp_echo sent;
  sent.v6 = v6;
  sent.ip_header = raw && !v6;
  sent.match_id = raw;  // the kernel puts its own identifier on datagram sockets' requests
  sent.id = raw ? process_id() : 0;
  sent.seq = next_seq.fetch_add(1, std::memory_order_relaxed);
  static constexpr uint8_t payload[] = {'t', 'a', 'n', 'd', 'e', 'm', '-', 'p',
                                        'r', 'o', 'b', 'e', 0,   0,   0,   0};
  const std::vector<uint8_t> req = make_echo_request(v6, sent.id, sent.seq, payload);
  const ssize_t n = raw ? ::sendto(fd, req.data(), req.size(), 0, target_sa, target_len)
                        : ::send(fd, req.data(), req.size(), 0);
  if (n < 0) return fail("unreachable: " + errno_text(errno), used);
  const auto sent_at = steady_clock::now();

  uint8_t buf[2048];
  for (;;) {
    const auto now = steady_clock::now();
    if (now >= deadline)
      return fail("timeout after " + std::to_string(timeout.count()) + " ms", used);
    const auto left = std::chrono::ceil<milliseconds>(deadline - now);
    pollfd pfd{fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return fail("poll failed: " + errno_text(errno), used);
    }
    if (ready == 0) continue;  // the deadline check above ends it
    for (;;) {                 // everything queued, then poll again
      sockaddr_storage from{};
      socklen_t from_len = sizeof from;
      const ssize_t got =
          ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        const int e = errno;  // an ICMP error about our request (datagram sockets)
        std::string why = queued_error(fd, v6);
        return fail("unreachable: " + (why.empty() ? errno_text(e) : why), used);
      }
      const icmp_answer a =
          match_icmp(std::span<const uint8_t>(buf, static_cast<size_t>(got)), sent);
      if (a.match == icmp_match::reply && (!raw || same_address(from, target)))
        return {true, "reply in " + ms_text(steady_clock::now() - sent_at), used};
      if (a.match == icmp_match::error)
        return fail(
            "unreachable: " + icmp_error_text(v6, a.type, a.code) + " from " + address_text(from),
            used);
    }
  }
}

probe_result probe_once(const probe_target& t, milliseconds timeout, http_client* client) {
  timeout = std::max(timeout, milliseconds(1));
  probe_result r;
  if (t.kind == probe_kind::ping) {
    ping_outcome o = ping(t.address, timeout);
    r.reachable = o.reachable;
    r.detail = std::move(o.detail);
  } else {
    std::unique_ptr<http_client> own;
    if (client == nullptr) {
      own = std::make_unique<http_client>();
      client = own.get();
    }
    const auto start = steady_clock::now();
    const http_reply reply = client->get(t.address, timeout);
    if (reply.error.empty() && reply.status != 0) {
      r.reachable = true;  // any answer: the endpoint is there, whatever it thinks of us
      r.detail =
          "HTTP " + std::to_string(reply.status) + " in " + ms_text(steady_clock::now() - start);
    } else {
      r.detail = reply.error.empty() ? "no answer" : reply.error;
    }
  }
  r.at = steady_clock::now();
  return r;
}

// --- prober ---

prober::prober(asio::any_io_executor ex, std::vector<probe_target> targets, milliseconds timeout,
               milliseconds interval, callback cb)
    : ex_(std::move(ex)),
      targets_(std::move(targets)),
      timeout_(timeout),
      interval_(interval),
      cb_(std::move(cb)),
      timer_(ex_),
      in_flight_(targets_.size(), false),
      workers_(std::max<size_t>(targets_.size(), 1)) {
  if (timeout_ <= milliseconds::zero())
    throw std::invalid_argument("prober: the probe timeout must be positive");
  if (interval_ <= milliseconds::zero())
    throw std::invalid_argument("prober: the probe interval must be positive");
  clients_.resize(targets_.size());
  for (size_t i = 0; i < targets_.size(); ++i)
    if (targets_[i].kind == probe_kind::http) clients_[i] = std::make_unique<http_client>();
}

prober::~prober() {
  try {
    stop();
  } catch (...) {  // cancel() and join() only throw on broken invariants; never from here
  }
}

void prober::start() {
  if (started_ || shared_->stopped || targets_.empty()) return;
  started_ = true;
  next_ = steady_clock::now();
  round();
}

void prober::stop() {
  if (joined_) return;
  joined_ = true;
  retire();
  workers_.join();
}

void prober::retire() {
  shared_->stopped = true;
  timer_.cancel();
}

void prober::round() {
  for (size_t i = 0; i < targets_.size(); ++i) {
    if (in_flight_[i]) continue;  // still probing since an earlier round: skipped, not queued
    in_flight_[i] = true;
    asio::post(workers_, [this, s = shared_, i] {
      if (s->stopped) return;
      probe_result r = probe_once(targets_[i], timeout_, clients_[i].get());
      r.target = i;
      asio::post(ex_, [this, s, r = std::move(r)] {
        if (s->stopped) return;
        in_flight_[r.target] = false;
        cb_(r);
      });
    });
  }
  arm();
}

void prober::arm() {
  // A fixed rate; after a stall (the executor was busy) the next round starts at once, and
  // the missed ones are not made up.
  next_ = std::max(next_ + interval_, steady_clock::now());
  timer_.expires_at(next_);
  timer_.async_wait([this, s = shared_](const std::error_code& ec) {
    if (ec || s->stopped) return;
    round();
  });
}

}  // namespace tandem::ctl::quorum
