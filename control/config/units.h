// SPDX-License-Identifier: Apache-2.0
// Sizes ("64KiB"), durations ("200ms", "1m30s") and rates ("1Gbit", "200MiB/s") in config text.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::ctl::config {

// Each parser returns the value, or nullopt with `*error` set to a sentence that says what is
// wrong and what would be right (the caller adds the file, line and key). Numbers may carry a
// decimal fraction ("1.5GiB", "0.5s") as long as the result is exact in the target unit.

// Bytes. A plain integer is bytes; units: B, KiB, MiB, GiB, TiB, PiB (powers of 1024) and kB,
// KB, MB, GB, TB, PB (powers of 1000). "K", "M", "G" alone are refused as ambiguous.
std::optional<uint64_t> parse_size(std::string_view text, std::string* error);

// Milliseconds. One or more <number><unit> parts, largest unit first ("1m30s"); units ms, s, m,
// h. A bare "0" is zero; other bare numbers are refused (is 5 seconds or milliseconds?).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, std::string* error);

// Bytes per second. "0" means unlimited. Byte units as for sizes (per second), bit units bit,
// kbit (or Kbit), Mbit, Gbit, Tbit (powers of 1000, converted to bytes and rounded down to whole
// bytes); an optional "/s" suffix. A bare non-zero number is refused as ambiguous.
std::optional<uint64_t> parse_rate(std::string_view text, std::string* error);

// Canonical text for each, which the parsers read back to the same value: the largest unit that
// divides the value exactly ("64KiB", "4096", "1s", "1500ms", "1m30s" is written "90s",
// "200MiB", "1Gbit", "0").
std::string format_size(uint64_t bytes);
std::string format_duration(std::chrono::milliseconds d);
std::string format_rate(uint64_t bytes_per_second);

}  // namespace tandem::ctl::config
