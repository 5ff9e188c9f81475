// SPDX-License-Identifier: Apache-2.0
// Text parsing and formatting of MAC and IPv4 addresses.
#include "dataplane/net/addr.h"

#include <cstdio>

namespace tandem::dp {
namespace {

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<mac_addr> mac_addr::parse(std::string_view text) noexcept {
  // Six groups of two hex digits and five separators.
  if (text.size() != 17) return std::nullopt;
  mac_addr mac;
  for (size_t i = 0; i < 6; ++i) {
    const size_t at = i * 3;
    if (i > 0 && text[at - 1] != ':') return std::nullopt;
    const int hi = hex_digit(text[at]);
    const int lo = hex_digit(text[at + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    mac.bytes[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return mac;
}

std::string mac_addr::to_string() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return buf;
}

std::optional<ipv4_addr> ipv4_addr::parse(std::string_view text) noexcept {
  uint32_t value = 0;
  size_t pos = 0;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (pos >= text.size() || text[pos] != '.') return std::nullopt;
      ++pos;
    }
    const size_t start = pos;
    unsigned v = 0;
    while (pos < text.size() && pos - start < 4 && text[pos] >= '0' && text[pos] <= '9') {
      v = v * 10 + static_cast<unsigned>(text[pos] - '0');
      ++pos;
    }
    const size_t digits = pos - start;
    if (digits == 0 || digits > 3 || v > 255) return std::nullopt;
    if (digits > 1 && text[start] == '0') return std::nullopt;  // "01" could mean octal
    value = (value << 8) | v;
  }
  if (pos != text.size()) return std::nullopt;
  return ipv4_addr{value};
}

std::string ipv4_addr::to_string() const {
  char buf[16];
  const auto o = octets();
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", o[0], o[1], o[2], o[3]);
  return buf;
}

}  // namespace tandem::dp
