// SPDX-License-Identifier: Apache-2.0
// Diagnostic formatting, collection, typo suggestions and quoting.
#include "control/config/diagnostics.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace tandem::ctl::config {

std::string_view to_string(severity s) noexcept {
  return s == severity::error ? "error" : "warning";
}

source_loc loc_of(const field_locs& locs, std::string_view field, const source_loc& fallback) {
  if (auto it = locs.find(field); it != locs.end()) return it->second;
  source_loc l = fallback;
  l.path = fallback.path.empty() ? std::string(field) : fallback.path + "." + std::string(field);
  return l;
}

std::string diagnostic::to_string() const {
  std::string s = file;
  if (where.line > 0) {
    s += ":" + std::to_string(where.line);
    if (where.column > 0) s += ":" + std::to_string(where.column);
  }
  s += ": ";
  if (level == severity::warning) s += "warning: ";
  if (!where.path.empty()) s += where.path + ": ";
  s += message;
  return s;
}

void diagnostics::error(const source_loc& at, std::string message) {
  if (errors_ >= max_errors) {
    ++dropped_;
    return;
  }
  ++errors_;
  list_.push_back({severity::error, file_, at, std::move(message)});
}

void diagnostics::warning(const source_loc& at, std::string message) {
  if (warnings_ >= max_errors) return;
  ++warnings_;
  list_.push_back({severity::warning, file_, at, std::move(message)});
}

void diagnostics::file_error(std::string message) {
  ++errors_;  // never dropped: these say why the rest of the file was not read
  list_.push_back({severity::error, file_, {}, std::move(message)});
}

void diagnostics::finish() {
  std::stable_sort(list_.begin(), list_.end(), [](const diagnostic& a, const diagnostic& b) {
    if (a.where.line != b.where.line) return a.where.line < b.where.line;
    return a.where.column < b.where.column;
  });
  if (dropped_ > 0) {
    list_.push_back(
        {severity::error,
         file_,
         {},
         std::to_string(dropped_) + " more errors not shown (fix the ones above first)"});
    errors_ += dropped_;
    dropped_ = 0;
  }
}

std::string diagnostics::to_string() const {
  std::string s;
  for (const diagnostic& d : list_)
    s += d.to_string() + "\n";
  return s;
}

namespace {

std::string what_of(const diagnostics& d) {
  std::string s = d.to_string();
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (s.empty()) s = d.file() + ": invalid configuration";
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
// Both strings are at most 64 characters (closest_match() checks), so three rows on the stack do.
size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t m = b.size();
  size_t two_back[65];
  size_t prev[65];
  size_t cur[65];
  for (size_t j = 0; j <= m; ++j)
    prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        cur[j] = std::min(cur[j], two_back[j - 2] + 1);
    }
    std::copy(prev, prev + m + 1, two_back);
    std::copy(cur, cur + m + 1, prev);
  }
  return prev[m];
}

}  // namespace

config_error::config_error(const diagnostics& d)
    : std::runtime_error(what_of(d)), problems_(d.all()) {}

std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates) {
  if (word.empty() || word.size() > 64) return std::nullopt;
  const std::string w = lower(word);
  // One edit for short words, up to three for long ones.
  const size_t allowed = std::clamp<size_t>((word.size() + 2) / 4, 1, 3);
  std::optional<std::string> best;
  size_t best_distance = allowed + 1;
  for (const std::string& c : candidates) {
    if (c.size() > 64) continue;
    const size_t gap = c.size() > word.size() ? c.size() - word.size() : word.size() - c.size();
    if (gap > allowed) continue;  // the distance is at least the length difference
    const size_t dist = edit_distance(w, lower(c));
    // Replacing every character is not a typo ("c" for "a").
    if (dist >= word.size() && dist > 0) continue;
    if (dist < best_distance) {
      best_distance = dist;
      best = c;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  if (auto m = closest_match(word, candidates); m && *m != word)
    return " (did you mean " + in_quotes(*m) + "?)";
  return "";
}

std::string in_quotes(std::string_view text) {
  constexpr size_t max_len = 80;
  std::string s = "\"";
  size_t n = 0;
  for (const char ch : text) {
    if (++n > max_len) {
      s += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      s += '\\';
      s += ch;
    } else if (c == '\n') {
      s += "\\n";
    } else if (c == '\t') {
      s += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      s += buf;
    } else {
      s += ch;
    }
  }
  s += "\"";
  return s;
}

std::string join_words(const std::vector<std::string>& words, std::string_view last) {
  std::string s;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) s += (i + 1 == words.size()) ? std::string(last) : std::string(", ");
    s += words[i];
  }
  return s;
}

}  // namespace tandem::ctl::config
