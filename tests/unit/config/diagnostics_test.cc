// SPDX-License-Identifier: Apache-2.0
// diagnostics (control/config/diagnostics.h): format, order, limits, suggestions, quoting.
#include "control/config/diagnostics.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tandem::ctl::config {
namespace {

TEST(diagnostics, format_names_file_line_column_and_path) {
  diagnostic d{severity::error,
               "cluster.yaml",
               {14, 7, "nodes[1].interconnects[0].address"},
               "\"10.0.0.300\" is not an IP address"};
  EXPECT_EQ(d.to_string(),
            "cluster.yaml:14:7: nodes[1].interconnects[0].address: \"10.0.0.300\" is not an IP "
            "address");
  d.level = severity::warning;
  EXPECT_EQ(d.to_string(),
            "cluster.yaml:14:7: warning: nodes[1].interconnects[0].address: \"10.0.0.300\" is not "
            "an IP address");
  diagnostic whole{severity::error, "x.yaml", {}, "cannot read: No such file or directory"};
  EXPECT_EQ(whole.to_string(), "x.yaml: cannot read: No such file or directory");
}

TEST(diagnostics, sorted_by_place_and_counted) {
  diagnostics d("f.yaml");
  d.error({9, 1, "b"}, "second");
  d.warning({3, 4, "a"}, "first");
  d.error({9, 1, "c"}, "third");
  d.finish();
  ASSERT_EQ(d.all().size(), 3u);
  EXPECT_EQ(d.all()[0].message, "first");
  EXPECT_EQ(d.all()[1].message, "second");
  EXPECT_EQ(d.all()[2].message, "third");
  EXPECT_EQ(d.error_count(), 2u);
  EXPECT_EQ(d.warning_count(), 1u);
  EXPECT_FALSE(d.ok());
}

TEST(diagnostics, error_flood_is_capped_and_summarised) {
  diagnostics d("f.yaml");
  for (int i = 0; i < 250; ++i)
    d.error({i + 1, 1, "x"}, "bad");
  d.finish();
  EXPECT_EQ(d.all().size(), diagnostics::max_errors + 1);
  EXPECT_EQ(d.all().back().to_string(),
            "f.yaml: 50 more errors not shown (fix the ones above first)");
  EXPECT_EQ(d.error_count(), 250u);
}

TEST(diagnostics, config_error_carries_every_problem) {
  diagnostics d("f.yaml");
  d.error({1, 2, "a"}, "one");
  d.error({3, 4, "b"}, "two");
  d.finish();
  const config_error e(d);
  EXPECT_STREQ(e.what(), "f.yaml:1:2: a: one\nf.yaml:3:4: b: two");
  EXPECT_EQ(e.problems().size(), 2u);
}

TEST(diagnostics, suggestions_for_typos_only) {
  const std::vector<std::string> keys = {"interval", "timeout", "priority", "interconnects"};
  EXPECT_EQ(closest_match("intervall", keys), "interval");
  EXPECT_EQ(closest_match("tiemout", keys), "timeout");  // a swap is one edit
  EXPECT_EQ(closest_match("Priority", keys), "priority");
  EXPECT_EQ(closest_match("interconnect", keys), "interconnects");
  EXPECT_FALSE(closest_match("address", keys).has_value());
  EXPECT_FALSE(closest_match("c", std::vector<std::string>{"a", "b"}).has_value());
  EXPECT_EQ(did_you_mean("intreval", keys), " (did you mean \"interval\"?)");
  EXPECT_EQ(did_you_mean("zzz", keys), "");
}

TEST(diagnostics, quoting_escapes_and_truncates) {
  EXPECT_EQ(in_quotes("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(in_quotes(std::string("x\n\t\x01", 4)), "\"x\\n\\t\\x01\"");
  EXPECT_EQ(in_quotes(std::string(100, 'a')), "\"" + std::string(80, 'a') + "...\"");
  EXPECT_EQ(join_words({"a", "b", "c"}), "a, b and c");
  EXPECT_EQ(join_words({"a", "b"}, " or "), "a or b");
}

}  // namespace
}  // namespace tandem::ctl::config
