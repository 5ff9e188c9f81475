// SPDX-License-Identifier: Apache-2.0
// Reading a yaml-cpp tree with key paths: typed values, shape and key checks, located problems.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "control/config/diagnostics.h"

namespace tandem::ctl::config {

// The largest configuration file the loaders read, and the most YAML nodes they visit (aliases
// can make a small file describe a huge tree; the limit keeps hostile input cheap).
inline constexpr size_t max_file_bytes = 1 << 20;
inline constexpr size_t max_visited_nodes = 200'000;

// Thrown when the node budget runs out; the loaders turn it into one error.
struct too_complex : std::exception {
  [[nodiscard]] const char* what() const noexcept override { return "document too complex"; }
};

// Parses YAML text into one document. A syntax error, more than one document, or a file over
// max_file_bytes is reported into `diag` (with line and column where yaml-cpp gives them) and
// yields nullopt. An empty document yields a null node.
std::optional<YAML::Node> parse_yaml(std::string_view text, diagnostics& diag);

// Reads a whole file for parse_yaml; a file that cannot be read is reported into `diag`.
std::optional<std::string> read_config_file(const std::string& path, diagnostics& diag);

// Shared by every cursor of one load: the diagnostics and the visit budget.
struct read_context {
  diagnostics& diag;
  size_t visited = 0;
};

// A YAML node with its key path. Accessors report what is wrong (naming line, column and path)
// and return nullopt / false; the caller keeps its default and carries on, so one pass finds
// every problem. Null (an empty value) counts as an empty map or list where one is expected,
// and as a missing value where a scalar is.
class cursor {
 public:
  cursor(read_context& ctx, const YAML::Node& node, std::string path, source_loc fallback);

  [[nodiscard]] const std::string& path() const noexcept { return loc_.path; }
  [[nodiscard]] const source_loc& loc() const noexcept { return loc_; }
  [[nodiscard]] const YAML::Node& node() const noexcept { return node_; }
  [[nodiscard]] read_context& context() const noexcept { return *ctx_; }

  [[nodiscard]] bool is_null() const { return node_.IsNull(); }
  [[nodiscard]] bool is_map() const { return node_.IsMap(); }
  [[nodiscard]] bool is_list() const { return node_.IsSequence(); }
  [[nodiscard]] bool is_scalar() const { return node_.IsScalar(); }
  // "a map", "a list", "the value \"x\"", "nothing": for "expected ..., found ..." messages.
  [[nodiscard]] std::string describe() const;

  void error(std::string message) const;
  void warning(std::string message) const;

  // Shape checks; a wrong shape is reported ("expected a map (key: value lines), found a list").
  bool expect_map() const;
  bool expect_list() const;

  // For a map: reports keys outside `known` (with a "did you mean" suggestion, or the list of
  // known keys) and keys given twice.
  void check_keys(const std::vector<std::string>& known) const;
  void check_keys(std::initializer_list<std::string_view> known) const;
  // Only the keys given twice (for maps whose keys are names, such as per_node).
  void check_duplicate_keys() const;

  // The value under `key` (null values included), or nullopt when the key is absent.
  [[nodiscard]] std::optional<cursor> get(std::string_view key) const;
  // Like get(), but an absent key is reported ("missing required key \"name\"").
  [[nodiscard]] std::optional<cursor> require(std::string_view key) const;
  // The elements of a list, with paths "path[i]" (none when not a list or null).
  [[nodiscard]] std::vector<cursor> elements() const;
  // The entries of a map, skipping non-scalar keys (check_keys() reports those).
  [[nodiscard]] std::vector<struct map_entry> entries() const;

  // Scalars. Each reports its own problem and returns nullopt.
  [[nodiscard]] std::optional<std::string> str() const;  // any scalar, non-empty
  [[nodiscard]] std::optional<int64_t> integer(int64_t min, int64_t max) const;
  [[nodiscard]] std::optional<bool> boolean() const;  // true | false
  [[nodiscard]] std::optional<uint64_t> size() const;
  [[nodiscard]] std::optional<std::chrono::milliseconds> duration() const;
  [[nodiscard]] std::optional<uint64_t> rate() const;
  // One of `choices` (suggesting the closest one otherwise).
  [[nodiscard]] std::optional<std::string> one_of(const std::vector<std::string>& choices) const;
  // A list of scalars (a single scalar is refused: it must be a list).
  [[nodiscard]] std::optional<std::vector<std::string>> str_list() const;

  // Reads `key` with `parse` (a cursor member such as &cursor::duration, or a callable taking a
  // cursor) into `out` when it is present and valid, recording its location in `locs`.
  // Returns true when `out` was set.
  template <class T, class Parse>
  bool read(std::string_view key, T& out, field_locs& locs, Parse&& parse,
            bool required = false) const {
    std::optional<cursor> c = required ? require(key) : get(key);
    if (!c) return false;
    locs.insert_or_assign(std::string(key), c->loc());
    auto v = std::invoke(std::forward<Parse>(parse), *c);
    if (!v) return false;
    out = std::move(*v);
    return true;
  }

 private:
  void tick() const;
  void check_map_keys(const std::vector<std::string>* known) const;
  [[nodiscard]] std::string child_path(std::string_view key) const;

  read_context* ctx_;
  YAML::Node node_;
  source_loc loc_;
};

struct map_entry {
  std::string key;
  source_loc key_loc;  // where the key is, with the map's path
  cursor value;
};

// Value checks shared by the sections.
bool is_ip_address(std::string_view text);     // an IPv4 or IPv6 literal
bool is_ipv6_address(std::string_view text);   // an IPv6 literal
bool is_absolute_path(std::string_view text);  // "/..." without NUL
bool is_http_url(std::string_view text);       // http:// or https:// with a host
// Names of nodes, groups, resources and monitors: [a-z0-9][a-z0-9_.-]{0,62}.
bool is_object_name(std::string_view text);
// An IP address as it would be compared (IPv6 in canonical form); the text itself when invalid.
std::string canonical_ip(std::string_view text);

// Readers for the checked scalar kinds, reporting what is wrong.
std::optional<std::string> read_ip(const cursor& c);
std::optional<std::string> read_path(const cursor& c);
std::optional<std::string> read_url(const cursor& c);
std::optional<std::string> read_name(const cursor& c);
std::optional<uint16_t> read_port(const cursor& c);

}  // namespace tandem::ctl::config
