// SPDX-License-Identifier: Apache-2.0
// Configuration problems with file, line, column and key path, collected rather than thrown.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::ctl::config {

enum class severity { error, warning };
std::string_view to_string(severity s) noexcept;

// Where a value is in the configuration file: 1-based line and column (0 when unknown, e.g. for
// a value that was never written and took its default) and the key path of the value, in the
// form "nodes[1].interconnects[0].address".
struct source_loc {
  int line = 0;
  int column = 0;
  std::string path;
};

// Each parsed struct keeps the locations of the fields it read, by field name (for checks that
// run after parsing, such as references between sections).
using field_locs = std::map<std::string, source_loc, std::less<>>;

// The location of `field` when it was written in the file, else `fallback` (usually the location
// of the enclosing map) with the field's key path.
source_loc loc_of(const field_locs& locs, std::string_view field, const source_loc& fallback);

struct diagnostic {
  severity level = severity::error;
  std::string file;
  source_loc where;
  std::string message;

  // "cluster.yaml:14:7: nodes[1].interconnects[0].address: \"10.0.0.300\" is not an IP address".
  // Warnings say so: "cluster.yaml:30:9: warning: quorum.mode: ...". Parts that are unknown are
  // left out ("cluster.yaml: cannot read: No such file or directory").
  [[nodiscard]] std::string to_string() const;
};

// Every problem found in one file, in the order found (sorted by line when finished).
class diagnostics {
 public:
  // At most this many errors are kept; the rest are counted and summarised by finish().
  static constexpr size_t max_errors = 200;

  explicit diagnostics(std::string file) : file_(std::move(file)) {}

  void error(const source_loc& at, std::string message);
  void warning(const source_loc& at, std::string message);
  // Appends a problem with no location in the file (the file as a whole); never dropped.
  void file_error(std::string message);

  // Sorts by line and column (stable for the same place) and adds the "N more errors" line.
  void finish();

  [[nodiscard]] const std::string& file() const noexcept { return file_; }
  [[nodiscard]] const std::vector<diagnostic>& all() const noexcept { return list_; }
  [[nodiscard]] size_t error_count() const noexcept { return errors_ + dropped_; }
  [[nodiscard]] size_t warning_count() const noexcept { return warnings_; }
  [[nodiscard]] bool ok() const noexcept { return error_count() == 0; }
  // Every diagnostic's to_string(), one per line.
  [[nodiscard]] std::string to_string() const;

 private:
  std::string file_;
  std::vector<diagnostic> list_;
  size_t errors_ = 0;
  size_t warnings_ = 0;
  size_t dropped_ = 0;
};

// Thrown by the load_* functions that return a value only when the file is valid. what() holds
// every problem, one per line.
class config_error : public std::runtime_error {
 public:
  explicit config_error(const diagnostics& d);
  [[nodiscard]] const std::vector<diagnostic>& problems() const noexcept { return problems_; }

 private:
  std::vector<diagnostic> problems_;
};

// The candidate closest to `word` when it is close enough to be a likely typo (edit distance,
// with transpositions, small relative to the word's length; case differences count as typos).
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);
// " (did you mean \"x\"?)" or "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

// `text` in double quotes, with quotes, backslashes and control characters escaped and anything
// past 80 characters cut to "...", for quoting user input in messages.
std::string in_quotes(std::string_view text);

// "a, b and c".
std::string join_words(const std::vector<std::string>& words, std::string_view last = " and ");

}  // namespace tandem::ctl::config
