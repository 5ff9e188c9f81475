// SPDX-License-Identifier: Apache-2.0
// prober (control/quorum/prober.h): ICMP reply matching on crafted packets, pings of 127.0.0.1
// and ::1, HTTP probes against witness servers on loopback, and the periodic prober on a real
// io_context. No packet leaves the machine.
#include "control/quorum/prober.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <gtest/gtest.h>

#include "control/witness/server.h"

namespace tandem::ctl::quorum {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// --- crafted packets ---

void put16(std::vector<uint8_t>& p, size_t at, uint16_t v) {
  p[at] = static_cast<uint8_t>(v >> 8);
  p[at + 1] = static_cast<uint8_t>(v);
}

// Sets the IPv4 ICMP checksum of `p` (an ICMP message) afresh.
void fix_checksum(std::vector<uint8_t>& p) {
  put16(p, 2, 0);
  put16(p, 2, icmp_checksum(p));
}

const std::vector<uint8_t> payload = {1, 2, 3, 4, 5, 6, 7, 8};

std::vector<uint8_t> echo_reply(bool v6, uint16_t id, uint16_t seq) {
  auto p = make_echo_request(v6, id, seq, payload);
  p[0] = v6 ? 129 : 0;
  if (!v6) fix_checksum(p);
  return p;
}

// A 20-byte IPv4 header (or longer, with `options` bytes of options) before `icmp`.
std::vector<uint8_t> with_ipv4_header(const std::vector<uint8_t>& icmp, uint8_t proto = 1,
                                      size_t options = 0) {
  std::vector<uint8_t> p(20 + options, 0);
  p[0] = static_cast<uint8_t>(0x40 | (20 + options) / 4);
  put16(p, 2, static_cast<uint16_t>(p.size() + icmp.size()));
  p[8] = 64;
  p[9] = proto;
  p[12] = 127;
  p[15] = 1;
  p[16] = 127;
  p[19] = 1;
  p.insert(p.end(), icmp.begin(), icmp.end());
  return p;
}

std::vector<uint8_t> with_ipv6_header(const std::vector<uint8_t>& icmp, uint8_t next = 58) {
  std::vector<uint8_t> p(40, 0);
  p[0] = 0x60;
  put16(p, 4, static_cast<uint16_t>(icmp.size()));
  p[6] = next;
  p[7] = 64;
  p.insert(p.end(), icmp.begin(), icmp.end());
  return p;
}

// An ICMP error of `type`/`code` quoting `quoted` (an IP packet), as a router sends it.
std::vector<uint8_t> icmp_error(bool v6, uint8_t type, uint8_t code,
                                const std::vector<uint8_t>& quoted) {
  std::vector<uint8_t> p(8, 0);
  p[0] = type;
  p[1] = code;
  p.insert(p.end(), quoted.begin(), quoted.end());
  if (!v6) fix_checksum(p);
  return p;
}

icmp_echo sent_v4(bool ip_header = false, bool match_id = true) {
  icmp_echo e;
  e.ip_header = ip_header;
  e.match_id = match_id;
  e.id = 0x1234;
  e.seq = 7;
  return e;
}

icmp_echo sent_v6(bool match_id = true) {
  icmp_echo e = sent_v4(false, match_id);
  e.v6 = true;
  return e;
}

TEST(icmp, checksum_is_rfc_1071s_and_echo_requests_carry_id_seq_and_a_valid_checksum) {
  const std::vector<uint8_t> rfc = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(icmp_checksum(rfc), 0x220d);  // RFC 1071 section 3: sum ddf2, complemented
  const std::vector<uint8_t> odd = {0x01, 0x02, 0x03};
  EXPECT_EQ(icmp_checksum(odd), static_cast<uint16_t>(~(0x0102 + 0x0300)));

  const auto v4 = make_echo_request(false, 0xabcd, 0x0102, payload);
  ASSERT_EQ(v4.size(), 8 + payload.size());
  EXPECT_EQ(v4[0], 8);
  EXPECT_EQ(v4[1], 0);
  EXPECT_EQ(v4[4], 0xab);
  EXPECT_EQ(v4[5], 0xcd);
  EXPECT_EQ(v4[6], 0x01);
  EXPECT_EQ(v4[7], 0x02);
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), v4.begin() + 8));
  EXPECT_EQ(icmp_checksum(v4), 0) << "a packet with its checksum sums to zero";

  const auto v6 = make_echo_request(true, 0xabcd, 0x0102, payload);
  EXPECT_EQ(v6[0], 128);
  EXPECT_EQ(v6[2], 0);
  EXPECT_EQ(v6[3], 0) << "the kernel fills in the ICMPv6 checksum";
}

TEST(icmp, an_echo_reply_matches_by_id_and_sequence) {
  const auto a = match_icmp(echo_reply(false, 0x1234, 7), sent_v4());
  EXPECT_EQ(a.match, icmp_match::reply);
  EXPECT_EQ(a.type, 0);
  EXPECT_EQ(match_icmp(echo_reply(false, 0x1234, 8), sent_v4()).match, icmp_match::unrelated)
      << "another sequence number";
  EXPECT_EQ(match_icmp(echo_reply(false, 0x1235, 7), sent_v4()).match, icmp_match::unrelated)
      << "another identifier (someone else's ping)";
  EXPECT_EQ(match_icmp(echo_reply(false, 0x9999, 7), sent_v4(false, false)).match,
            icmp_match::reply)
      << "datagram sockets: the kernel chose the identifier, the sequence decides";
  EXPECT_EQ(match_icmp(echo_reply(false, 0x9999, 8), sent_v4(false, false)).match,
            icmp_match::unrelated);
}

TEST(icmp, other_types_truncated_packets_and_bad_checksums_are_ignored) {
  // Our own request, seen by a raw socket on loopback.
  EXPECT_EQ(match_icmp(make_echo_request(false, 0x1234, 7, payload), sent_v4()).match,
            icmp_match::unrelated);
  auto timestamp = echo_reply(false, 0x1234, 7);
  timestamp[0] = 14;  // timestamp reply
  fix_checksum(timestamp);
  EXPECT_EQ(match_icmp(timestamp, sent_v4()).match, icmp_match::unrelated);

  const auto reply = echo_reply(false, 0x1234, 7);
  for (size_t n = 0; n < 8; ++n)
    EXPECT_EQ(match_icmp(std::span(reply.data(), n), sent_v4()).match, icmp_match::unrelated)
        << n << " bytes";
  EXPECT_EQ(match_icmp(std::span<const uint8_t>(), sent_v4()).match, icmp_match::unrelated);

  auto corrupt = reply;
  corrupt.back() ^= 0x40;
  EXPECT_EQ(match_icmp(corrupt, sent_v4()).match, icmp_match::unrelated) << "bad checksum";

  // An IPv4 reply given to an IPv6 matcher and the other way round.
  EXPECT_EQ(match_icmp(reply, sent_v6()).match, icmp_match::unrelated);
  EXPECT_EQ(match_icmp(echo_reply(true, 0x1234, 7), sent_v4()).match, icmp_match::unrelated);
}

TEST(icmp, raw_ipv4_packets_are_matched_after_their_ip_header) {
  const auto reply = echo_reply(false, 0x1234, 7);
  EXPECT_EQ(match_icmp(with_ipv4_header(reply), sent_v4(true)).match, icmp_match::reply);
  EXPECT_EQ(match_icmp(with_ipv4_header(reply, 1, 8), sent_v4(true)).match, icmp_match::reply)
      << "a header with options (IHL 7)";
  EXPECT_EQ(match_icmp(with_ipv4_header(reply, 6), sent_v4(true)).match, icmp_match::unrelated)
      << "not ICMP";
  EXPECT_EQ(match_icmp(reply, sent_v4(true)).match, icmp_match::unrelated)
      << "no IP header where one is expected";
  auto bad_ihl = with_ipv4_header(reply);
  bad_ihl[0] = 0x4f;  // 60-byte header in a 36-byte packet
  EXPECT_EQ(match_icmp(std::span(bad_ihl.data(), 30), sent_v4(true)).match, icmp_match::unrelated);
  bad_ihl[0] = 0x44;  // IHL 4: shorter than the minimum
  EXPECT_EQ(match_icmp(bad_ihl, sent_v4(true)).match, icmp_match::unrelated);
  const auto full = with_ipv4_header(reply);
  EXPECT_EQ(match_icmp(std::span(full.data(), 27), sent_v4(true)).match, icmp_match::unrelated)
      << "ICMP header cut short";
}

TEST(icmp, errors_quoting_our_request_are_recognised) {
  const auto request = make_echo_request(false, 0x1234, 7, payload);
  const auto quoted = with_ipv4_header(request);
  const auto host_unreachable = icmp_error(false, 3, 1, quoted);
  const auto a = match_icmp(with_ipv4_header(host_unreachable), sent_v4(true));
  EXPECT_EQ(a.match, icmp_match::error);
  EXPECT_EQ(a.type, 3);
  EXPECT_EQ(a.code, 1);
  EXPECT_EQ(icmp_error_text(false, a.type, a.code), "host unreachable");

  // Routers quote only 8 bytes after the IP header: enough.
  auto short_quote = quoted;
  short_quote.resize(28);
  EXPECT_EQ(
      match_icmp(with_ipv4_header(icmp_error(false, 11, 0, short_quote)), sent_v4(true)).match,
      icmp_match::error);
  short_quote.resize(27);
  EXPECT_EQ(
      match_icmp(with_ipv4_header(icmp_error(false, 11, 0, short_quote)), sent_v4(true)).match,
      icmp_match::unrelated);

  // About someone else's request, or not about an echo request at all.
  const auto other = with_ipv4_header(make_echo_request(false, 0x1234, 8, payload));
  EXPECT_EQ(match_icmp(with_ipv4_header(icmp_error(false, 3, 1, other)), sent_v4(true)).match,
            icmp_match::unrelated);
  const auto udp = with_ipv4_header(request, 17);
  EXPECT_EQ(match_icmp(with_ipv4_header(icmp_error(false, 3, 3, udp)), sent_v4(true)).match,
            icmp_match::unrelated);
  // A redirect (type 5) is no error about reachability.
  EXPECT_EQ(match_icmp(with_ipv4_header(icmp_error(false, 5, 1, quoted)), sent_v4(true)).match,
            icmp_match::unrelated);
}

TEST(icmp, icmpv6_replies_and_errors) {
  EXPECT_EQ(match_icmp(echo_reply(true, 0x1234, 7), sent_v6()).match, icmp_match::reply);
  EXPECT_EQ(match_icmp(echo_reply(true, 0x1234, 9), sent_v6()).match, icmp_match::unrelated);
  EXPECT_EQ(match_icmp(echo_reply(true, 0x4321, 7), sent_v6(false)).match, icmp_match::reply);
  EXPECT_EQ(match_icmp(make_echo_request(true, 0x1234, 7, payload), sent_v6()).match,
            icmp_match::unrelated);

  const auto quoted = with_ipv6_header(make_echo_request(true, 0x1234, 7, payload));
  const auto a = match_icmp(icmp_error(true, 1, 3, quoted), sent_v6());
  EXPECT_EQ(a.match, icmp_match::error);
  EXPECT_EQ(icmp_error_text(true, a.type, a.code), "address unreachable");
  EXPECT_EQ(match_icmp(icmp_error(true, 3, 0, quoted), sent_v6()).match, icmp_match::error);
  const auto not_icmp = with_ipv6_header(make_echo_request(true, 0x1234, 7, payload), 17);
  EXPECT_EQ(match_icmp(icmp_error(true, 1, 3, not_icmp), sent_v6()).match, icmp_match::unrelated);
  auto cut = quoted;
  cut.resize(40 + 7);
  EXPECT_EQ(match_icmp(icmp_error(true, 1, 3, cut), sent_v6()).match, icmp_match::unrelated);
}

TEST(icmp, error_texts) {
  EXPECT_EQ(icmp_error_text(false, 3, 0), "network unreachable");
  EXPECT_EQ(icmp_error_text(false, 3, 13), "communication administratively prohibited");
  EXPECT_EQ(icmp_error_text(false, 11, 0), "TTL exceeded in transit");
  EXPECT_EQ(icmp_error_text(true, 1, 0), "no route to destination");
  EXPECT_EQ(icmp_error_text(true, 3, 0), "hop limit exceeded in transit");
  EXPECT_EQ(icmp_error_text(false, 3, 15), "type 3 code 15");
}

// --- pings on loopback ---

bool have_ipv6_loopback() {
  const int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

TEST(ping, loopback_ipv4_answers) {
  const auto start = steady_clock::now();
  const probe_result r = probe_once({probe_kind::ping, "127.0.0.1"}, 1000ms);
  EXPECT_TRUE(r.reachable) << r.detail;
  EXPECT_TRUE(starts_with(r.detail, "reply in ")) << r.detail;
  EXPECT_TRUE(ends_with(r.detail, " ms")) << r.detail;
  EXPECT_GE(r.at, start);
  EXPECT_LE(r.at, steady_clock::now());
  EXPECT_EQ(r.target, 0u);
}

TEST(ping, loopback_ipv6_answers) {
  if (!have_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  const probe_result r = probe_once({probe_kind::ping, "::1"}, 1000ms);
  EXPECT_TRUE(r.reachable) << r.detail;
  EXPECT_TRUE(starts_with(r.detail, "reply in ")) << r.detail;
}

TEST(ping, both_socket_types_work_where_the_system_allows_them) {
  const ping_outcome any = ping("127.0.0.1", 1000ms);
  EXPECT_TRUE(any.reachable) << any.detail;
  EXPECT_NE(any.used, icmp_socket::automatic);

  const ping_outcome raw = ping("127.0.0.1", 1000ms, icmp_socket::raw);
  if (starts_with(raw.detail, "cannot open a raw ICMP socket")) {
    EXPECT_EQ(any.used, icmp_socket::datagram) << "without CAP_NET_RAW only ping sockets work";
  } else {
    EXPECT_TRUE(raw.reachable) << raw.detail;
    EXPECT_EQ(raw.used, icmp_socket::raw);
  }

  const ping_outcome dgram = ping("127.0.0.1", 1000ms, icmp_socket::datagram);
  if (starts_with(dgram.detail, "cannot open an ICMP datagram socket")) {
    EXPECT_EQ(any.used, icmp_socket::raw) << "the fallback took over: " << dgram.detail;
    GTEST_SKIP() << "ping sockets are not allowed for this group (net.ipv4.ping_group_range): "
                 << dgram.detail << "; the raw socket fallback was tested";
  }
  EXPECT_TRUE(dgram.reachable) << dgram.detail;
  EXPECT_EQ(dgram.used, icmp_socket::datagram);
  EXPECT_EQ(any.used, icmp_socket::datagram) << "the ping socket is preferred";
}

TEST(ping, parallel_probes_do_not_take_each_others_replies) {
  // Raw sockets see every reply on the host: each probe must pick its own by id and sequence.
  std::vector<ping_outcome> out(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < out.size(); ++i)
    threads.emplace_back([&out, i] { out[i] = ping(i % 2 ? "::1" : "127.0.0.1", 1000ms); });
  for (auto& t : threads)
    t.join();
  const bool v6 = have_ipv6_loopback();
  for (size_t i = 0; i < out.size(); ++i) {
    if (i % 2 == 0 || v6) {
      EXPECT_TRUE(out[i].reachable) << i << ": " << out[i].detail;
    }
  }
}

TEST(ping, names_and_malformed_addresses_fail_without_a_lookup) {
  for (const std::string a :
       {"localhost", "router.example", "", "127.0.0.1:80", "[::1]", "10.0.0.256", " 127.0.0.1"}) {
    const auto start = steady_clock::now();
    const probe_result r = probe_once({probe_kind::ping, a}, 1000ms);
    EXPECT_FALSE(r.reachable) << a;
    EXPECT_EQ(r.detail, "not an IP address: \"" + a + "\" (ping targets are never resolved)");
    EXPECT_LT(steady_clock::now() - start, 100ms) << a << ": nothing waited for";
  }
}

// The brief's no-route case, only where the kernel itself says there is no route (a UDP
// connect looks the route up without sending anything); elsewhere the packet could leave.
TEST(ping, an_address_without_a_route_is_unreachable_at_once) {
  const char* address = "2001:db8::1";
  const int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) GTEST_SKIP() << "no IPv6";
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(9);
  ASSERT_EQ(inet_pton(AF_INET6, address, &a.sin6_addr), 1);
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  const int err = errno;
  ::close(fd);
  if (rc == 0 || (err != ENETUNREACH && err != EHOSTUNREACH))
    GTEST_SKIP() << "this machine has a route to " << address
                 << " (a default route): pinging it would send traffic off the machine";
  const probe_result r = probe_once({probe_kind::ping, address}, 1000ms);
  EXPECT_FALSE(r.reachable);
  EXPECT_TRUE(starts_with(r.detail, "unreachable: ")) << r.detail;
}

// --- HTTP on loopback ---

// A witness server answering 200 on /ok and 503 elsewhere, in a thread.
class http_on_loopback {
 public:
  http_on_loopback() {
    witness::server_options o;
    o.listen = "127.0.0.1:0";
    srv_ = std::make_unique<witness::server>(
        io_, o, [](const witness::http_request& r, witness::time_point) {
          witness::http_response resp;
          resp.status = r.path() == "/ok" ? 200 : 503;
          resp.body = "{}";
          return resp;
        });
    srv_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~http_on_loopback() {
    io_.stop();
    thread_.join();
    srv_->stop();
  }
  http_on_loopback(const http_on_loopback&) = delete;
  http_on_loopback& operator=(const http_on_loopback&) = delete;
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(srv_->local_endpoint().port()) + path;
  }

 private:
  asio::io_context io_;
  std::unique_ptr<witness::server> srv_;
  std::thread thread_;
};

// A TCP socket on 127.0.0.1 that listens and never accepts: the kernel completes connections,
// nobody ever answers. bound_only: bound but not listening, so connections are refused.
class silent_port {
 public:
  explicit silent_port(bool listening = true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        (listening && ::listen(fd_, 64) != 0) ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("silent_port: cannot bind on 127.0.0.1");
    port_ = ntohs(a.sin_port);
  }
  ~silent_port() {
    if (fd_ >= 0) ::close(fd_);
  }
  silent_port(const silent_port&) = delete;
  silent_port& operator=(const silent_port&) = delete;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

TEST(http_probe, any_http_answer_counts_as_reachable) {
  http_on_loopback srv;
  const probe_result ok = probe_once({probe_kind::http, srv.url("/ok")}, 1000ms);
  EXPECT_TRUE(ok.reachable) << ok.detail;
  EXPECT_TRUE(starts_with(ok.detail, "HTTP 200 in ")) << ok.detail;
  const probe_result busy = probe_once({probe_kind::http, srv.url("/busy")}, 1000ms);
  EXPECT_TRUE(busy.reachable) << busy.detail;
  EXPECT_TRUE(starts_with(busy.detail, "HTTP 503 in ")) << busy.detail;

  http_client client;  // a reused client keeps its connection and still counts every answer
  for (int i = 0; i < 3; ++i) {
    const probe_result r = probe_once({probe_kind::http, srv.url("/ok")}, 1000ms, &client);
    EXPECT_TRUE(r.reachable) << r.detail;
  }
}

TEST(http_probe, a_closed_port_is_unreachable_with_curls_error) {
  silent_port closed(false);  // bound, not listening: the port refuses connections
  const auto start = steady_clock::now();
  const probe_result r = probe_once({probe_kind::http, closed.url()}, 1000ms);
  EXPECT_FALSE(r.reachable);
  EXPECT_FALSE(r.detail.empty());
  EXPECT_FALSE(starts_with(r.detail, "HTTP")) << r.detail;
  EXPECT_NE(r.detail.find("127.0.0.1"), std::string::npos) << r.detail;
  EXPECT_LT(steady_clock::now() - start, 500ms) << "refused at once, not timed out";
}

TEST(http_probe, a_server_that_never_answers_times_out) {
  silent_port silent;
  const auto start = steady_clock::now();
  const probe_result r = probe_once({probe_kind::http, silent.url()}, 100ms);
  const auto took = steady_clock::now() - start;
  EXPECT_FALSE(r.reachable);
  EXPECT_EQ(r.detail, "timeout after 100 ms");
  EXPECT_GE(took, 100ms);
  EXPECT_LT(took, 600ms);
}

// --- the periodic prober ---

struct seen {
  probe_result r;
  std::thread::id thread;
};

TEST(prober, refuses_a_zero_timeout_or_interval) {
  asio::io_context io;
  const std::vector<probe_target> t = {{probe_kind::ping, "127.0.0.1"}};
  EXPECT_THROW(prober(io.get_executor(), t, 0ms, 50ms, [](const probe_result&) {}),
               std::invalid_argument);
  EXPECT_THROW(prober(io.get_executor(), t, 50ms, -1ms, [](const probe_result&) {}),
               std::invalid_argument);
}

TEST(prober, every_target_reports_every_round_on_the_executor_and_a_slow_one_delays_nobody) {
  http_on_loopback srv;
  silent_port slow;
  const bool v6 = have_ipv6_loopback();
  std::vector<probe_target> targets = {
      {probe_kind::ping, "127.0.0.1"},      {probe_kind::http, srv.url("/ok")},
      {probe_kind::http, srv.url("/x")},    {probe_kind::http, slow.url()},
      {probe_kind::ping, "not-an-address"}, {probe_kind::ping, v6 ? "::1" : "127.0.0.2"},
  };
  asio::io_context io;
  std::vector<seen> results;
  prober p(io.get_executor(), targets, 120ms, 50ms, [&](const probe_result& r) {
    results.push_back({r, std::this_thread::get_id()});
  });
  const auto start = steady_clock::now();
  p.start();
  io.run_for(330ms);  // rounds at 0, 50, ... 300 ms: 7

  std::map<size_t, std::vector<probe_result>> by_target;
  for (const auto& s : results) {
    EXPECT_EQ(s.thread, std::this_thread::get_id()) << "callbacks run on the io_context";
    by_target[s.r.target].push_back(s.r);
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    ASSERT_FALSE(by_target[i].empty()) << targets[i].address << " never reported";
    for (size_t k = 1; k < by_target[i].size(); ++k)
      EXPECT_GE(by_target[i][k].at, by_target[i][k - 1].at);
    EXPECT_GE(by_target[i].front().at, start);
  }
  // The fast targets report in every round although the slow one hangs for 120 ms each time.
  for (size_t i : {0u, 1u, 2u, 4u, 5u}) {
    EXPECT_GE(by_target[i].size(), 5u) << targets[i].address;
    EXPECT_LE(by_target[i].size(), 8u) << targets[i].address;
    for (size_t k = 1; k < by_target[i].size(); ++k)
      EXPECT_LT(by_target[i][k].at - by_target[i][k - 1].at, 130ms)
          << targets[i].address << ": round " << k << " was held up";
  }
  for (size_t i : {0u, 1u, 2u, 5u})
    for (const auto& r : by_target[i])
      EXPECT_TRUE(r.reachable) << targets[i].address << ": " << r.detail;
  EXPECT_TRUE(starts_with(by_target[2].front().detail, "HTTP 503")) << by_target[2].front().detail;
  for (const auto& r : by_target[4])
    EXPECT_FALSE(r.reachable);
  // The slow target: skipped while in flight, so at most one result per 120 ms, all timeouts.
  EXPECT_LE(by_target[3].size(), 3u);
  for (const auto& r : by_target[3]) {
    EXPECT_FALSE(r.reachable);
    EXPECT_EQ(r.detail, "timeout after 120 ms");
  }

  // stop() waits for the slow probe in flight (bounded by its timeout); nothing after it.
  const auto stop_start = steady_clock::now();
  p.stop();
  EXPECT_LT(steady_clock::now() - stop_start, 120ms + 200ms);
  const size_t count = results.size();
  io.restart();
  io.run_for(150ms);
  EXPECT_EQ(results.size(), count) << "no callback after stop()";
}

TEST(prober, a_target_still_in_flight_is_skipped_not_queued) {
  silent_port slow;
  asio::io_context io;
  std::vector<probe_result> results;
  prober p(io.get_executor(), {{probe_kind::http, slow.url()}}, 150ms, 20ms,
           [&](const probe_result& r) { results.push_back(r); });
  p.start();
  io.run_for(400ms);  // 20 rounds due; each probe takes 150 ms
  p.stop();
  ASSERT_GE(results.size(), 1u);
  EXPECT_LE(results.size(), 3u) << "rounds due while the probe ran were skipped";
  for (size_t k = 1; k < results.size(); ++k)
    EXPECT_GE(results[k].at - results[k - 1].at, 150ms) << "no queued probes back to back";
}

TEST(prober, results_already_posted_are_dropped_by_stop_and_by_the_destructor) {
  asio::io_context io;
  size_t calls = 0;
  {
    prober p(io.get_executor(), {{probe_kind::ping, "127.0.0.1"}}, 500ms, 50ms,
             [&](const probe_result&) { ++calls; });
    p.start();                          // the ping runs on the worker while io is not running
    std::this_thread::sleep_for(50ms);  // its result is posted to io by now
    p.stop();
  }
  {
    prober p(io.get_executor(), {{probe_kind::ping, "127.0.0.1"}}, 500ms, 50ms,
             [&](const probe_result&) { ++calls; });
    p.start();
    std::this_thread::sleep_for(50ms);
  }  // the destructor stops it
  io.run_for(100ms);
  EXPECT_EQ(calls, 0u);
}

TEST(prober, retire_returns_at_once_with_a_probe_in_flight_and_stop_waits_later) {
  silent_port slow;
  asio::io_context io;
  size_t calls = 0;
  prober p(io.get_executor(), {{probe_kind::http, slow.url()}, {probe_kind::ping, "127.0.0.1"}},
           300ms, 50ms, [&](const probe_result&) { ++calls; });
  p.start();
  io.run_for(100ms);  // the ping reported; the HTTP probe hangs for 300 ms
  const size_t before = calls;
  EXPECT_GE(before, 1u);
  const auto t0 = std::chrono::steady_clock::now();
  p.retire();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 50ms) << "retire() must not wait";
  io.run_for(400ms);  // the hanging probe ends meanwhile: its result is dropped
  EXPECT_EQ(calls, before) << "no callback after retire()";
  p.stop();  // joins what is left; idempotent with the destructor
  p.stop();
}

TEST(prober, without_targets_it_does_nothing) {
  asio::io_context io;
  size_t calls = 0;
  prober p(io.get_executor(), {}, 100ms, 10ms, [&](const probe_result&) { ++calls; });
  p.start();
  io.run_for(50ms);
  p.stop();
  EXPECT_EQ(calls, 0u);
}

}  // namespace
}  // namespace tandem::ctl::quorum
