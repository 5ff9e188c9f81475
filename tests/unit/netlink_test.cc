// SPDX-License-Identifier: Apache-2.0
// tandem::nl in the test's own namespace: loopback is always there to read back. The DAD frame
// builder and parser (nd_frame.h) are checked against frames built here, with a checksum computed
// independently of theirs.
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include <gtest/gtest.h>

#include "netlink/link_watch.h"
#include "netlink/nd_frame.h"
#include "netlink/rt_addr.h"
#include "netlink/rt_link.h"
#include "netlink/rt_socket.h"

namespace tandem::nl {
namespace {

TEST(netlink, reads_loopback_link_and_address) {
  auto sk = socket::open();
  const auto all = links(sk);
  ASSERT_FALSE(all.empty());
  const auto lo = find_link(sk, "lo");
  ASSERT_TRUE(lo.has_value());
  EXPECT_TRUE(lo->up);
  EXPECT_GT(lo->index, 0);
  EXPECT_GT(lo->mtu, 0u);
  EXPECT_TRUE(
      std::any_of(all.begin(), all.end(), [](const link_info& l) { return l.name == "lo"; }));
  const auto addrs = addresses(sk, "lo");
  const auto v4 = std::find_if(addrs.begin(), addrs.end(),
                               [](const address_info& a) { return a.family == AF_INET; });
  ASSERT_NE(v4, addrs.end());
  EXPECT_EQ(v4->address, "127.0.0.1");
  EXPECT_EQ(v4->prefix_len, 8);
  EXPECT_EQ(v4->label, "lo");
  EXPECT_EQ(v4->ifindex, lo->index);
}

TEST(netlink, unknown_names_are_clear) {
  auto sk = socket::open();
  EXPECT_FALSE(find_link(sk, "tandem-nope0").has_value());
  EXPECT_THROW(addresses(sk, "tandem-nope0"), std::invalid_argument);
  try {
    socket::open("tandem-no-such-netns");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/run/netns/tandem-no-such-netns"), std::string::npos);
  }
}

TEST(netlink, socket_moves) {
  auto a = socket::open();
  auto b = std::move(a);
  EXPECT_EQ(a.get(), nullptr);
  EXPECT_NE(b.get(), nullptr);
  EXPECT_TRUE(find_link(b, "lo").has_value());
}

// Only reads and refused requests here: the test's own namespace is never changed.
TEST(netlink, has_address_reads_loopback) {
  auto sk = socket::open();
  EXPECT_TRUE(has_address(sk, "lo", "127.0.0.1"));
  EXPECT_FALSE(has_address(sk, "lo", "127.0.0.2"));
  EXPECT_THROW(has_address(sk, "lo", "127.0.0.1/8"), std::invalid_argument);
  EXPECT_THROW(has_address(sk, "tandem-nope0", "127.0.0.1"), std::invalid_argument);
}

TEST(netlink, address_arguments_are_checked_before_the_kernel_is_asked) {
  auto sk = socket::open();
  EXPECT_THROW(add_address(sk, "lo", "127.0.0.1"), std::invalid_argument);     // no prefix
  EXPECT_THROW(add_address(sk, "lo", "127.0.0.1/"), std::invalid_argument);    // empty prefix
  EXPECT_THROW(add_address(sk, "lo", "127.0.0.1/-1"), std::invalid_argument);  // not a number
  EXPECT_THROW(add_address(sk, "lo", "::1/129"), std::invalid_argument);       // too long
  EXPECT_THROW(add_address(sk, "lo", "localhost/8"), std::invalid_argument);   // not numeric
  EXPECT_THROW(add_address(sk, "lo", "127.0.0.9/8", "eth0"), std::invalid_argument);
  EXPECT_THROW(add_address(sk, "lo", "::9/128", "lo:x"), std::invalid_argument);
  EXPECT_THROW(add_address(sk, "tandem-nope0", "127.0.0.9/8"), std::invalid_argument);
  EXPECT_THROW(remove_address(sk, "tandem-nope0", "127.0.0.9/8"), std::invalid_argument);
  EXPECT_THROW(remove_address(sk, "lo", "127.0.0.9"), std::invalid_argument);
  // Removing an address that is not there reports it and changes nothing.
  EXPECT_FALSE(remove_address(sk, "lo", "127.0.0.9/8"));
  EXPECT_TRUE(has_address(sk, "lo", "127.0.0.1"));
}

TEST(netlink, link_watch_opens_in_the_callers_namespace) {
  link_watch w;
  EXPECT_GE(w.fd(), 0);
  EXPECT_TRUE(w.netns().empty());
  EXPECT_NO_THROW(w.drain());  // whatever the host did meanwhile, it never blocks
  EXPECT_THROW(link_watch("tandem-no-such-netns"), std::runtime_error);
}

// ---- DAD frames (nd_frame.h) ----------------------------------------------------------------

// fd00:99::12:3456 is probed; we are 02:..:02, the holder 02:..:01.
constexpr nd::ip6 dad_target{0xfd, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56};
constexpr nd::mac dad_own{0x02, 0, 0, 0, 0, 0x02};
constexpr nd::mac dad_holder{0x02, 0, 0, 0, 0, 0x01};
constexpr nd::ip6 holder_ll{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
constexpr nd::ip6 all_nodes{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};

// RFC 1071 over the IPv6 pseudo-header and the ICMPv6 message at `icmp_off`, written out plainly:
// 0xffff when the stored checksum is right.
uint16_t icmp6_sum(const std::vector<uint8_t>& f, size_t icmp_off, size_t icmp_len) {
  uint32_t sum = 0;
  auto add = [&](const uint8_t* p, size_t n) {
    for (size_t k = 0; k < n; k += 2)
      sum += static_cast<uint32_t>(p[k] << 8) | (k + 1 < n ? p[k + 1] : 0U);
  };
  add(&f[nd::eth_len + 8], 32);  // source and destination
  sum += static_cast<uint32_t>(icmp_len) + 58;
  add(&f[icmp_off], icmp_len);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// A neighbour solicitation (135) or advertisement (136) for dad_target with `options`.
std::vector<uint8_t> nd_message(uint8_t type, const nd::mac& src_mac, const nd::ip6& src,
                                const std::vector<uint8_t>& options, uint8_t hops = 255) {
  const size_t icmp_off = nd::eth_len + nd::ip6_len;
  const size_t len = nd::nd_len + options.size();
  std::vector<uint8_t> f(icmp_off + len);
  const std::vector<uint8_t> head{0x33, 0x33, 0, 0, 0, 1};
  std::copy(head.begin(), head.end(), f.begin());
  std::copy(src_mac.begin(), src_mac.end(), f.begin() + 6);
  f[12] = 0x86;
  f[13] = 0xdd;
  f[14] = 0x60;
  f[18] = static_cast<uint8_t>(len >> 8);
  f[19] = static_cast<uint8_t>(len);
  f[20] = 58;
  f[21] = hops;
  std::copy(src.begin(), src.end(), f.begin() + 22);
  std::copy(all_nodes.begin(), all_nodes.end(), f.begin() + 38);
  f[icmp_off] = type;
  if (type == 136) f[icmp_off + 4] = 0x20;  // override
  std::copy(dad_target.begin(), dad_target.end(), f.begin() + icmp_off + 8);
  std::copy(options.begin(), options.end(), f.begin() + icmp_off + nd::nd_len);
  const uint16_t sum = static_cast<uint16_t>(~icmp6_sum(f, icmp_off, len));
  f[icmp_off + 2] = static_cast<uint8_t>(sum >> 8);
  f[icmp_off + 3] = static_cast<uint8_t>(sum);
  return f;
}

std::vector<uint8_t> tlla(const nd::mac& m) {
  return {2, 1, m[0], m[1], m[2], m[3], m[4], m[5]};
}

std::optional<nd::mac> claim(const std::vector<uint8_t>& f, const nd::mac& own = dad_own) {
  return nd::claimant(f, dad_target, own);
}

TEST(nd_frame, dad_solicitation_fields) {
  const auto a = nd::dad_solicitation(dad_own, dad_target);
  const std::vector<uint8_t> f(a.begin(), a.end());
  ASSERT_EQ(f.size(), 78u);
  EXPECT_EQ(std::vector<uint8_t>(f.begin(), f.begin() + 6),
            (std::vector<uint8_t>{0x33, 0x33, 0xff, 0x12, 0x34, 0x56}));
  EXPECT_EQ(nd::solicited_node_mac(dad_target), (nd::mac{0x33, 0x33, 0xff, 0x12, 0x34, 0x56}));
  EXPECT_TRUE(std::equal(dad_own.begin(), dad_own.end(), f.begin() + 6));
  EXPECT_EQ(f[12], 0x86);
  EXPECT_EQ(f[13], 0xdd);
  EXPECT_EQ(f[14], 0x60);
  EXPECT_EQ(f[18] << 8 | f[19], 24);  // payload length
  EXPECT_EQ(f[20], 58);               // next header ICMPv6
  EXPECT_EQ(f[21], 255);              // hop limit
  EXPECT_TRUE(std::all_of(f.begin() + 22, f.begin() + 38, [](uint8_t b) { return b == 0; }));
  const std::vector<uint8_t> group{0xff, 0x02, 0, 0,    0,    0,    0,    0,
                                   0,    0,    0, 0x01, 0xff, 0x12, 0x34, 0x56};
  EXPECT_EQ(std::vector<uint8_t>(f.begin() + 38, f.begin() + 54), group);
  EXPECT_EQ(nd::solicited_node(dad_target),
            (nd::ip6{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0x12, 0x34, 0x56}));
  EXPECT_EQ(f[54], 135);  // neighbour solicitation
  EXPECT_EQ(f[55], 0);
  EXPECT_TRUE(std::all_of(f.begin() + 58, f.begin() + 62, [](uint8_t b) { return b == 0; }));
  EXPECT_TRUE(std::equal(dad_target.begin(), dad_target.end(), f.begin() + 62));
  EXPECT_EQ(icmp6_sum(f, 54, 24), 0xffff);
  // Another host sees it as a claim by its sender; the sender itself does not.
  EXPECT_EQ(claim(f, dad_holder), dad_own);
  EXPECT_EQ(claim(f), std::nullopt);
}

TEST(nd_frame, advertisement_names_the_holder) {
  // The target link-layer address option wins over the Ethernet source (a proxy may send it).
  const nd::mac proxy{0x02, 0, 0, 0, 0, 0x03};
  EXPECT_EQ(claim(nd_message(136, proxy, holder_ll, tlla(dad_holder))), dad_holder);
  // Without it, the Ethernet source is the holder; an unknown option before it is skipped.
  EXPECT_EQ(claim(nd_message(136, dad_holder, holder_ll, {})), dad_holder);
  const std::vector<uint8_t> other{14, 1, 0, 0, 0, 0, 0, 0};  // nonce option
  auto opts = other;
  const auto t = tlla(proxy);
  opts.insert(opts.end(), t.begin(), t.end());
  EXPECT_EQ(claim(nd_message(136, dad_holder, holder_ll, opts)), proxy);
  EXPECT_EQ(claim(nd_message(136, dad_holder, holder_ll, other)), dad_holder);
  // Ethernet padding after the payload is ignored.
  auto padded = nd_message(136, dad_holder, holder_ll, {});
  padded.resize(padded.size() + 10, 0xee);
  EXPECT_EQ(claim(padded), dad_holder);
}

TEST(nd_frame, malformed_frames_are_dropped) {
  // A zero-length option is invalid (RFC 4861 4.6): the whole message is dropped.
  auto zero = tlla(dad_holder);
  zero[1] = 0;
  EXPECT_EQ(claim(nd_message(136, dad_holder, holder_ll, zero)), std::nullopt);
  // An option longer than the message.
  auto longer = tlla(dad_holder);
  longer[1] = 2;
  EXPECT_EQ(claim(nd_message(136, dad_holder, holder_ll, longer)), std::nullopt);
  // Hop limit below 255: forwarded or forged (the hop limit is not checksummed).
  EXPECT_EQ(claim(nd_message(136, dad_holder, holder_ll, {}, 254)), std::nullopt);
  auto bad_sum = nd_message(136, dad_holder, holder_ll, {});
  bad_sum[56] ^= 0x01;
  EXPECT_EQ(claim(bad_sum), std::nullopt);
  auto truncated = nd_message(136, dad_holder, holder_ll, tlla(dad_holder));
  truncated.pop_back();
  EXPECT_EQ(claim(truncated), std::nullopt);
  truncated.resize(77);
  EXPECT_EQ(claim(truncated), std::nullopt);
  EXPECT_EQ(claim({}), std::nullopt);
  // Another address.
  EXPECT_EQ(nd::claimant(nd_message(136, dad_holder, holder_ll, {}), all_nodes, dad_own),
            std::nullopt);
}

TEST(nd_frame, own_and_impossible_sources_are_ignored) {
  // Our own advertisement (or probe) looped back to the packet socket.
  EXPECT_EQ(claim(nd_message(136, dad_own, holder_ll, {})), std::nullopt);
  EXPECT_EQ(claim(nd_message(136, dad_own, holder_ll, tlla(dad_holder))), std::nullopt);
  EXPECT_EQ(claim(nd_message(135, dad_own, {}, {})), std::nullopt);
  // Group and zero Ethernet sources.
  EXPECT_EQ(claim(nd_message(136, {0x33, 0x33, 0, 0, 0, 1}, holder_ll, {})), std::nullopt);
  EXPECT_EQ(claim(nd_message(136, {}, holder_ll, {})), std::nullopt);
}

TEST(nd_frame, solicitation_claims_only_from_the_unspecified_address) {
  // Another host's DAD for the same address: a claim.
  EXPECT_EQ(claim(nd_message(135, dad_holder, {}, {})), dad_holder);
  // Address resolution from a real address: the sender wants to reach it, not hold it.
  EXPECT_EQ(claim(nd_message(135, dad_holder, holder_ll, {})), std::nullopt);
  const std::vector<uint8_t> slla{1, 1, 0x02, 0, 0, 0, 0, 0x01};  // its source link-layer address
  EXPECT_EQ(claim(nd_message(135, dad_holder, holder_ll, slla)), std::nullopt);
}

}  // namespace
}  // namespace tandem::nl
