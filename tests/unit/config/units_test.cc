// SPDX-License-Identifier: Apache-2.0
// units (control/config/units.h): sizes, durations, rates; exact values, refusals, round trips.
#include "control/config/units.h"

#include <chrono>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

namespace tandem::ctl::config {
namespace {

using namespace std::chrono_literals;

uint64_t size_ok(std::string_view s) {
  std::string why;
  auto v = parse_size(s, &why);
  EXPECT_TRUE(v.has_value()) << s << ": " << why;
  return v.value_or(0);
}

std::string size_error(std::string_view s) {
  std::string why;
  EXPECT_FALSE(parse_size(s, &why).has_value()) << s;
  return why;
}

TEST(units, sizes) {
  EXPECT_EQ(size_ok("4096"), 4096u);
  EXPECT_EQ(size_ok("0"), 0u);
  EXPECT_EQ(size_ok("64KiB"), 64u << 10);
  EXPECT_EQ(size_ok("4MiB"), 4u << 20);
  EXPECT_EQ(size_ok("10GiB"), 10ull << 30);
  EXPECT_EQ(size_ok("2TiB"), 2ull << 40);
  EXPECT_EQ(size_ok("1.5GiB"), 3ull << 29);
  EXPECT_EQ(size_ok("10GB"), 10'000'000'000u);
  EXPECT_EQ(size_ok("1kB"), 1000u);
  EXPECT_EQ(size_ok("512B"), 512u);
  EXPECT_EQ(size_ok(" 64 KiB "), 64u << 10);
}

TEST(units, size_errors_say_what_is_wrong) {
  EXPECT_EQ(size_error("10G"),
            "\"10G\": \"G\" is ambiguous, write GiB (powers of 1024) or GB (powers of 1000)");
  EXPECT_EQ(size_error("64KB2"),
            "\"64KB2\" is not a size: use bytes (4096) or a unit B, KiB, MiB, GiB, TiB, kB, MB, "
            "GB, TB (e.g. 64KiB)");
  EXPECT_EQ(size_error("0.5B"), "\"0.5B\" is not a whole number of bytes");
  EXPECT_EQ(size_error("KiB"), "\"KiB\" does not start with a number");
  EXPECT_EQ(size_error("-1"), "\"-1\" does not start with a number");
  EXPECT_EQ(size_error("9000PiB"), "\"9000PiB\" is too large");
  EXPECT_EQ(size_error("1."), "\"1.\" does not start with a number");
  EXPECT_EQ(size_error("1234567890123456789012345678901234"),
            "\"1234567890123456789012345678901234\" is too large");
}

std::chrono::milliseconds dur_ok(std::string_view s) {
  std::string why;
  auto v = parse_duration(s, &why);
  EXPECT_TRUE(v.has_value()) << s << ": " << why;
  return v.value_or(-1ms);
}

std::string dur_error(std::string_view s) {
  std::string why;
  EXPECT_FALSE(parse_duration(s, &why).has_value()) << s;
  return why;
}

TEST(units, durations) {
  EXPECT_EQ(dur_ok("200ms"), 200ms);
  EXPECT_EQ(dur_ok("1s"), 1000ms);
  EXPECT_EQ(dur_ok("2m"), 120'000ms);
  EXPECT_EQ(dur_ok("1h"), 3'600'000ms);
  EXPECT_EQ(dur_ok("1m30s"), 90'000ms);
  EXPECT_EQ(dur_ok("1h2m3s4ms"), 3'723'004ms);
  EXPECT_EQ(dur_ok("1.5s"), 1500ms);
  EXPECT_EQ(dur_ok("0"), 0ms);
}

TEST(units, duration_errors_say_what_is_wrong) {
  EXPECT_EQ(dur_error("5"), "\"5\" has no unit: write e.g. 5s or 5ms");
  EXPECT_EQ(dur_error("1sec"), "\"1sec\": unknown unit \"sec\" (use ms, s, m or h)");
  EXPECT_EQ(dur_error("0.5ms"), "\"0.5ms\" is finer than a millisecond");
  EXPECT_EQ(dur_error("30s1m"),
            "\"30s1m\": units must go from largest to smallest, each once "
            "(e.g. 1m30s)");
  EXPECT_EQ(dur_error("1s1s"),
            "\"1s1s\": units must go from largest to smallest, each once "
            "(e.g. 1m30s)");
  EXPECT_EQ(dur_error("1s x"), "\"1s x\" is not a duration: e.g. 200ms, 1s, 2m, 1h, 1m30s");
  EXPECT_EQ(dur_error(""), "\"\" does not start with a number");
}

uint64_t rate_ok(std::string_view s) {
  std::string why;
  auto v = parse_rate(s, &why);
  EXPECT_TRUE(v.has_value()) << s << ": " << why;
  return v.value_or(1);
}

std::string rate_error(std::string_view s) {
  std::string why;
  EXPECT_FALSE(parse_rate(s, &why).has_value()) << s;
  return why;
}

TEST(units, rates_in_bytes_per_second) {
  EXPECT_EQ(rate_ok("0"), 0u);
  EXPECT_EQ(rate_ok("1Gbit"), 125'000'000u);
  EXPECT_EQ(rate_ok("10Gbit/s"), 1'250'000'000u);
  EXPECT_EQ(rate_ok("100Mbit"), 12'500'000u);
  EXPECT_EQ(rate_ok("8kbit"), 1000u);
  EXPECT_EQ(rate_ok("100MiB"), 100u << 20);
  EXPECT_EQ(rate_ok("200MiB/s"), 200u << 20);
  EXPECT_EQ(rate_ok("1GB"), 1'000'000'000u);
}

TEST(units, rate_errors_say_what_is_wrong) {
  EXPECT_EQ(rate_error("100"),
            "\"100\" has no unit: write e.g. 100MiB (bytes per second) or "
            "1Gbit (bits per second); 0 means unlimited");
  EXPECT_EQ(rate_error("1bit"), "\"1bit\" is not a whole number of bytes per second");
  EXPECT_EQ(rate_error("1Gbps"),
            "\"1Gbps\" is not a rate: use a byte unit (B, KiB, MiB, GiB, "
            "MB, GB) or a bit unit (kbit, Mbit, Gbit), per second, e.g. "
            "200MiB or 1Gbit");
}

TEST(units, canonical_text_reads_back_to_the_same_value) {
  EXPECT_EQ(format_size(64u << 10), "64KiB");
  EXPECT_EQ(format_size(10ull << 30), "10GiB");
  EXPECT_EQ(format_size(1000), "1000");
  EXPECT_EQ(format_size(0), "0");
  EXPECT_EQ(format_duration(1500ms), "1500ms");
  EXPECT_EQ(format_duration(90'000ms), "90s");
  EXPECT_EQ(format_duration(120'000ms), "2m");
  EXPECT_EQ(format_duration(0ms), "0");
  EXPECT_EQ(format_rate(125'000'000), "1Gbit");
  EXPECT_EQ(format_rate(200u << 20), "200MiB");
  EXPECT_EQ(format_rate(0), "0");
  EXPECT_EQ(format_rate(123), "123B");
  for (uint64_t v : {uint64_t{1}, uint64_t{512}, uint64_t{4096}, uint64_t{1000}, uint64_t{123457},
                     uint64_t{1} << 40, uint64_t{125'000'000}, uint64_t{999'999'999'999}}) {
    std::string why;
    EXPECT_EQ(parse_size(format_size(v), &why), v) << format_size(v);
    EXPECT_EQ(parse_rate(format_rate(v), &why), v) << format_rate(v);
  }
  for (int64_t ms : {1, 999, 1000, 61'000, 3'600'000, 86'400'000}) {
    std::string why;
    EXPECT_EQ(parse_duration(format_duration(std::chrono::milliseconds(ms)), &why),
              std::chrono::milliseconds(ms));
  }
}

}  // namespace
}  // namespace tandem::ctl::config
