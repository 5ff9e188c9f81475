// SPDX-License-Identifier: Apache-2.0
// Exact parsing and canonical formatting of sizes, durations and rates.
#include "control/config/units.h"

#include <array>
#include <cctype>
#include <limits>

namespace tandem::ctl::config {
namespace {

using u128 = unsigned __int128;

struct unit {
  std::string_view name;
  u128 scale;  // in the target unit (bytes, milliseconds or bits)
};

constexpr u128 pow_of(u128 base, int n) {
  u128 v = 1;
  for (int i = 0; i < n; ++i)
    v *= base;
  return v;
}

// A decimal number "123" or "1.25": the digits as one integer and how many were after the point.
struct decimal {
  u128 digits = 0;
  int fraction = 0;
};

// Reads a decimal number from the front of `s` (advancing it). Fails on no digits, a bare
// point, or more than 30 significant digits (far beyond any u64 result).
bool read_decimal(std::string_view& s, decimal& out, std::string* error, std::string_view text) {
  size_t i = 0;
  int count = 0;
  bool any = false;
  bool point = false;
  out = {};
  while (i < s.size()) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      if (out.digits != 0 || c != '0') ++count;
      if (count > 30) {
        *error = "\"" + std::string(text) + "\" is too large";
        return false;
      }
      out.digits = out.digits * 10 + static_cast<unsigned>(c - '0');
      if (point) ++out.fraction;
      any = true;
    } else if (c == '.' && !point) {
      point = true;
    } else {
      break;
    }
    ++i;
  }
  if (!any || (point && out.fraction == 0)) {
    *error = "\"" + std::string(text) + "\" does not start with a number";
    return false;
  }
  s.remove_prefix(i);
  return true;
}

void skip_spaces(std::string_view& s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
}

std::string_view trim(std::string_view s) {
  skip_spaces(s);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// value = digits * scale / 10^fraction, exactly; false when that is not a whole number.
bool scale_exact(const decimal& d, u128 scale, u128& out) {
  const u128 div = pow_of(10, d.fraction);
  // digits < 10^30 and scale <= 10^15 * 8 keep the product well inside 128 bits.
  const u128 product = d.digits * scale;
  if (product % div != 0) return false;
  out = product / div;
  return true;
}

constexpr std::array<unit, 13> size_units = {{
    {"B", 1},
    {"KiB", pow_of(1024, 1)},
    {"MiB", pow_of(1024, 2)},
    {"GiB", pow_of(1024, 3)},
    {"TiB", pow_of(1024, 4)},
    {"PiB", pow_of(1024, 5)},
    {"kB", pow_of(1000, 1)},
    {"KB", pow_of(1000, 1)},
    {"MB", pow_of(1000, 2)},
    {"GB", pow_of(1000, 3)},
    {"TB", pow_of(1000, 4)},
    {"PB", pow_of(1000, 5)},
    {"", 1},
}};

constexpr std::array<unit, 6> bit_units = {{
    {"bit", 1},
    {"kbit", pow_of(1000, 1)},
    {"Kbit", pow_of(1000, 1)},
    {"Mbit", pow_of(1000, 2)},
    {"Gbit", pow_of(1000, 3)},
    {"Tbit", pow_of(1000, 4)},
}};

const unit* find_unit(std::string_view name, const auto& table) {
  for (const unit& u : table)
    if (u.name == name) return &u;
  return nullptr;
}

bool ambiguous_size_unit(std::string_view u) {
  return u == "K" || u == "k" || u == "M" || u == "G" || u == "T" || u == "P";
}

std::string quote(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text, std::string* error) {
  std::string_view s = trim(text);
  decimal d;
  if (!read_decimal(s, d, error, text)) return std::nullopt;
  skip_spaces(s);
  const unit* u = find_unit(s, size_units);
  if (u == nullptr) {
    if (ambiguous_size_unit(s)) {
      *error = quote(text) + ": \"" + std::string(s) + "\" is ambiguous, write " + std::string(s) +
               "iB (powers of 1024) or " + std::string(s) + "B (powers of 1000)";
    } else {
      *error = quote(text) +
               " is not a size: use bytes (4096) or a unit B, KiB, MiB, GiB, TiB, "
               "kB, MB, GB, TB (e.g. 64KiB)";
    }
    return std::nullopt;
  }
  u128 v = 0;
  if (!scale_exact(d, u->scale, v)) {
    *error = quote(text) + " is not a whole number of bytes";
    return std::nullopt;
  }
  if (v > std::numeric_limits<int64_t>::max()) {
    *error = quote(text) + " is too large";
    return std::nullopt;
  }
  return static_cast<uint64_t>(v);
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, std::string* error) {
  static constexpr std::array<unit, 4> units = {{
      {"h", 3'600'000},
      {"m", 60'000},
      {"s", 1'000},
      {"ms", 1},
  }};
  std::string_view s = trim(text);
  if (s == "0") return std::chrono::milliseconds(0);
  u128 total = 0;
  size_t last_rank = units.size();  // the next part must use a smaller unit
  int parts = 0;
  while (parts == 0 || !s.empty()) {
    decimal d;
    if (!read_decimal(s, d, error, text)) {
      if (parts != 0) *error = quote(text) + " is not a duration: e.g. 200ms, 1s, 2m, 1h, 1m30s";
      return std::nullopt;
    }
    ++parts;
    size_t len = 0;
    while (len < s.size() && std::isalpha(static_cast<unsigned char>(s[len])) != 0)
      ++len;
    const std::string_view name = s.substr(0, len);
    if (name.empty()) {
      *error = quote(text) + " has no unit: write e.g. " + std::string(trim(text)) + "s or " +
               std::string(trim(text)) + "ms";
      return std::nullopt;
    }
    size_t rank = units.size();
    for (size_t i = 0; i < units.size(); ++i)
      if (units[i].name == name) rank = i;
    if (rank == units.size()) {
      *error = quote(text) + ": unknown unit \"" + std::string(name) + "\" (use ms, s, m or h)";
      return std::nullopt;
    }
    if (last_rank != units.size() && rank <= last_rank) {
      *error = quote(text) + ": units must go from largest to smallest, each once (e.g. 1m30s)";
      return std::nullopt;
    }
    last_rank = rank;
    u128 v = 0;
    if (!scale_exact(d, units[rank].scale, v)) {
      *error = quote(text) + " is finer than a millisecond";
      return std::nullopt;
    }
    total += v;
    if (total > static_cast<u128>(std::numeric_limits<int64_t>::max() / 2)) {
      *error = quote(text) + " is too long";
      return std::nullopt;
    }
    s.remove_prefix(len);
  }
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

std::optional<uint64_t> parse_rate(std::string_view text, std::string* error) {
  std::string_view s = trim(text);
  if (s == "0") return 0;
  decimal d;
  if (!read_decimal(s, d, error, text)) return std::nullopt;
  skip_spaces(s);
  if (s.size() >= 2 && s.substr(s.size() - 2) == "/s") s.remove_suffix(2);
  u128 v = 0;
  if (const unit* b = find_unit(s, bit_units); b != nullptr) {
    u128 bits = 0;
    if (!scale_exact(d, b->scale, bits) || bits % 8 != 0) {
      *error = quote(text) + " is not a whole number of bytes per second";
      return std::nullopt;
    }
    v = bits / 8;
  } else if (const unit* u = find_unit(s, size_units); u != nullptr && !s.empty()) {
    if (!scale_exact(d, u->scale, v)) {
      *error = quote(text) + " is not a whole number of bytes per second";
      return std::nullopt;
    }
  } else if (s.empty()) {
    *error = quote(text) +
             " has no unit: write e.g. 100MiB (bytes per second) or 1Gbit (bits "
             "per second); 0 means unlimited";
    return std::nullopt;
  } else {
    *error = quote(text) +
             " is not a rate: use a byte unit (B, KiB, MiB, GiB, MB, GB) or a bit "
             "unit (kbit, Mbit, Gbit), per second, e.g. 200MiB or 1Gbit";
    return std::nullopt;
  }
  if (v > std::numeric_limits<int64_t>::max()) {
    *error = quote(text) + " is too large";
    return std::nullopt;
  }
  return static_cast<uint64_t>(v);
}

std::string format_size(uint64_t bytes) {
  if (bytes == 0) return "0";
  static constexpr std::array<std::string_view, 5> names = {"PiB", "TiB", "GiB", "MiB", "KiB"};
  for (size_t i = 0; i < names.size(); ++i) {
    const uint64_t scale = uint64_t{1} << (10 * (names.size() - i));
    if (bytes % scale == 0) return std::to_string(bytes / scale) + std::string(names[i]);
  }
  return std::to_string(bytes);
}

std::string format_duration(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  if (ms == 0) return "0";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1'000 == 0) return std::to_string(ms / 1'000) + "s";
  return std::to_string(ms) + "ms";
}

std::string format_rate(uint64_t bytes_per_second) {
  if (bytes_per_second == 0) return "0";
  std::string binary = format_size(bytes_per_second);
  if (binary.back() == 'B') return binary;
  const u128 bits = static_cast<u128>(bytes_per_second) * 8;
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 4> bit_names = {{
      {"Tbit", 1'000'000'000'000},
      {"Gbit", 1'000'000'000},
      {"Mbit", 1'000'000},
      {"kbit", 1'000},
  }};
  for (const auto& [name, scale] : bit_names) {
    if (bits % scale == 0)
      return std::to_string(static_cast<uint64_t>(bits / scale)) + std::string(name);
  }
  return std::to_string(bytes_per_second) + "B";
}

}  // namespace tandem::ctl::config
