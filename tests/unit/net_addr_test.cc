// SPDX-License-Identifier: Apache-2.0
// Tests for dataplane/net/addr.h: MAC and IPv4 address parsing and formatting.
#include <gtest/gtest.h>

#include "dataplane/net/addr.h"

namespace tandem::dp {
namespace {

TEST(mac_addr, parses_and_formats) {
  const auto mac = mac_addr::parse("02:00:00:00:00:01");
  ASSERT_TRUE(mac.has_value());
  EXPECT_EQ(mac->bytes, (std::array<uint8_t, 6>{2, 0, 0, 0, 0, 1}));
  EXPECT_EQ(mac->to_string(), "02:00:00:00:00:01");
  const auto upper = mac_addr::parse("AA:bb:Cc:dD:EE:ff");
  ASSERT_TRUE(upper.has_value());
  EXPECT_EQ(upper->to_string(), "aa:bb:cc:dd:ee:ff");
}

TEST(mac_addr, rejects_malformed_text) {
  for (const char* bad : {"", "02:00:00:00:00", "02:00:00:00:00:01:", "02-00-00-00-00-01",
                          "02:00:00:00:00:0g", "2:00:00:00:00:001", "02:00:00:00:00:01 ",
                          " 02:00:00:00:00:01", "02:00:00:00:0:001", "0x:00:00:00:00:01"}) {
    EXPECT_FALSE(mac_addr::parse(bad).has_value()) << bad;
  }
}

TEST(mac_addr, classifies) {
  EXPECT_TRUE(mac_addr{}.is_zero());
  EXPECT_TRUE(mac_addr::broadcast().is_broadcast());
  EXPECT_TRUE(mac_addr::broadcast().is_multicast());
  EXPECT_TRUE(mac_addr::parse("01:00:5e:00:00:01")->is_multicast());
  EXPECT_FALSE(mac_addr::parse("02:00:00:00:00:01")->is_multicast());
  EXPECT_LT(*mac_addr::parse("02:00:00:00:00:01"), *mac_addr::parse("02:00:00:00:00:02"));
}

TEST(ipv4_addr, parses_and_formats) {
  const auto ip = ipv4_addr::parse("10.0.0.1");
  ASSERT_TRUE(ip.has_value());
  EXPECT_EQ(ip->value, 0x0a000001U);
  EXPECT_EQ(*ip, ipv4_addr::from_octets(10, 0, 0, 1));
  EXPECT_EQ(ip->to_string(), "10.0.0.1");
  EXPECT_EQ(ipv4_addr::parse("255.255.255.255")->value, 0xffffffffU);
  EXPECT_EQ(ipv4_addr::parse("0.0.0.0")->value, 0U);
  EXPECT_EQ(ipv4_addr::parse("192.168.100.254")->to_string(), "192.168.100.254");
  EXPECT_EQ(ipv4_addr::from_octets(1, 2, 3, 4).octets(), (std::array<uint8_t, 4>{1, 2, 3, 4}));
}

TEST(ipv4_addr, rejects_malformed_text) {
  for (const char* bad : {"", "10", "10.0.0", "10.0.0.1.", ".10.0.0.1", "10..0.1", "256.0.0.1",
                          "10.0.0.1000", "10.0.0.01", "010.0.0.1", "10.0.0.-1", "10.0.0.1 ",
                          "a.b.c.d", "10.0.0.1/24", "1.2.3.4.5", "4294967295"}) {
    EXPECT_FALSE(ipv4_addr::parse(bad).has_value()) << bad;
  }
}

TEST(ipv4_addr, classifies) {
  EXPECT_TRUE(ipv4_addr{}.is_unspecified());
  EXPECT_TRUE(ipv4_addr::parse("255.255.255.255")->is_limited_broadcast());
  EXPECT_TRUE(ipv4_addr::parse("224.0.0.1")->is_multicast());
  EXPECT_TRUE(ipv4_addr::parse("239.255.255.255")->is_multicast());
  EXPECT_FALSE(ipv4_addr::parse("240.0.0.1")->is_multicast());
}

}  // namespace
}  // namespace tandem::dp
