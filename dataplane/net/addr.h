// SPDX-License-Identifier: Apache-2.0
// MAC and IPv4 address value types: parse from text, format as text, compare, hash-free.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::dp {

// A 48-bit Ethernet address, stored in wire order.
struct mac_addr {
  std::array<uint8_t, 6> bytes{};

  // "02:00:00:00:00:01" (exactly six two-digit hex groups, ':' separated, any case).
  [[nodiscard]] static std::optional<mac_addr> parse(std::string_view text) noexcept;
  [[nodiscard]] static constexpr mac_addr broadcast() noexcept {
    return mac_addr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  }

  // Lower-case "02:00:00:00:00:01".
  [[nodiscard]] std::string to_string() const;

  [[nodiscard]] constexpr bool is_zero() const noexcept { return *this == mac_addr{}; }
  [[nodiscard]] constexpr bool is_broadcast() const noexcept { return *this == broadcast(); }
  // Group bit (includes broadcast).
  [[nodiscard]] constexpr bool is_multicast() const noexcept { return (bytes[0] & 0x01) != 0; }

  friend constexpr bool operator==(const mac_addr&, const mac_addr&) = default;
  friend constexpr auto operator<=>(const mac_addr&, const mac_addr&) = default;
};

// An IPv4 address held as a host-order integer: 10.0.0.1 is 0x0a000001.
struct ipv4_addr {
  uint32_t value = 0;

  [[nodiscard]] static constexpr ipv4_addr from_octets(uint8_t a, uint8_t b, uint8_t c,
                                                       uint8_t d) noexcept {
    return ipv4_addr{(static_cast<uint32_t>(a) << 24) | (static_cast<uint32_t>(b) << 16) |
                     (static_cast<uint32_t>(c) << 8) | static_cast<uint32_t>(d)};
  }
  // Dotted quad "10.0.0.1": four decimal octets 0..255, no leading zeros, nothing else.
  [[nodiscard]] static std::optional<ipv4_addr> parse(std::string_view text) noexcept;

  [[nodiscard]] std::string to_string() const;

  [[nodiscard]] constexpr std::array<uint8_t, 4> octets() const noexcept {
    return {static_cast<uint8_t>(value >> 24), static_cast<uint8_t>(value >> 16),
            static_cast<uint8_t>(value >> 8), static_cast<uint8_t>(value)};
  }
  [[nodiscard]] constexpr bool is_unspecified() const noexcept { return value == 0; }
  [[nodiscard]] constexpr bool is_limited_broadcast() const noexcept {
    return value == 0xffffffffU;
  }
  [[nodiscard]] constexpr bool is_multicast() const noexcept { return (value >> 28) == 0xe; }

  friend constexpr bool operator==(const ipv4_addr&, const ipv4_addr&) = default;
  friend constexpr auto operator<=>(const ipv4_addr&, const ipv4_addr&) = default;
};

}  // namespace tandem::dp
