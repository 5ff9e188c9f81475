// SPDX-License-Identifier: Apache-2.0
// The cursor over yaml-cpp nodes, YAML parsing with located syntax errors, and value checks.
#include "control/config/yaml_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <unordered_map>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

#include "control/config/units.h"

namespace tandem::ctl::config {
namespace {

source_loc loc_from(const YAML::Mark& m, std::string path) {
  source_loc l;
  if (!m.is_null() && m.line >= 0) {
    l.line = m.line + 1;
    l.column = m.column + 1;
  }
  l.path = std::move(path);
  return l;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// The offset of the first byte that is not part of well-formed UTF-8 (no overlong forms, no
// surrogates, nothing above U+10FFFF), or npos.
size_t invalid_utf8_at(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned lo = 0x80;
    unsigned hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return i;
    }
    if (i + len > s.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf)) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

// Records where each document starts; the tree itself is built by YAML::Load.
class document_counter : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& m) override { starts.push_back(m); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

}  // namespace

std::optional<YAML::Node> parse_yaml(std::string_view text, diagnostics& diag) {
  if (text.size() > max_file_bytes) {
    diag.file_error("the file is " + std::to_string(text.size()) + " bytes; configuration files " +
                    "are limited to " + std::to_string(max_file_bytes) + " bytes");
    return std::nullopt;
  }
  if (text.find('\0') != std::string_view::npos) {
    diag.file_error("the file contains a NUL byte: it is not a text file");
    return std::nullopt;
  }
  if (const size_t bad = invalid_utf8_at(text); bad != std::string_view::npos) {
    const std::string_view before = text.substr(0, bad);
    source_loc at;
    at.line = static_cast<int>(std::count(before.begin(), before.end(), '\n')) + 1;
    const size_t line_start = before.rfind('\n');
    at.column =
        static_cast<int>(bad - (line_start == std::string_view::npos ? 0 : line_start + 1)) + 1;
    diag.error(at, "the file is not valid UTF-8 here (configuration files are UTF-8 text)");
    return std::nullopt;
  }
  try {
    // Count the documents with the event parser first, and never more than three: yaml-cpp 0.7's
    // LoadAll() loops forever, allocating, on a stray ',' (jbeder/yaml-cpp#1040, fixed in 0.8 by
    // #1319), producing empty documents that all start at the same place.
    const std::string owned(text);
    std::istringstream in(owned);
    YAML::Parser parser(in);
    document_counter counter;
    while (counter.starts.size() < 3 && parser.HandleNextDocument(counter)) {
      const size_t n = counter.starts.size();
      if (n >= 2 && counter.starts[n - 1].pos == counter.starts[n - 2].pos) {
        const auto pos = static_cast<size_t>(counter.starts[n - 1].pos);
        const std::string what = pos < owned.size() ? in_quotes(owned.substr(pos, 1)) : "text";
        diag.error(loc_from(counter.starts[n - 1], ""), "YAML syntax error: unexpected " + what);
        return std::nullopt;
      }
    }
    if (counter.starts.size() > 1) {
      diag.error(loc_from(counter.starts[1], ""),
                 "the file holds more than one YAML document (separated by ---); a configuration "
                 "file holds exactly one");
      return std::nullopt;
    }
    if (counter.starts.empty()) return YAML::Node(YAML::NodeType::Null);
    return YAML::Load(owned);
  } catch (const YAML::DeepRecursion& e) {
    diag.error(loc_from(e.mark, ""),
               "YAML syntax error: nested too deeply (" + std::to_string(e.depth()) + " levels)");
  } catch (const YAML::Exception& e) {
    diag.error(loc_from(e.mark, ""), "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    diag.file_error(std::string("YAML syntax error: ") + e.what());
  }
  return std::nullopt;
}

std::optional<std::string> read_config_file(const std::string& path, diagnostics& diag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diag.file_error("cannot read: " + std::generic_category().message(errno));
    return std::nullopt;
  }
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > max_file_bytes) {
      diag.file_error("the file is larger than " + std::to_string(max_file_bytes) +
                      " bytes, the limit for configuration files");
      return std::nullopt;
    }
  }
  if (in.bad()) {
    diag.file_error("cannot read: " + std::generic_category().message(errno));
    return std::nullopt;
  }
  return text;
}

// ---- cursor -----------------------------------------------------------------------------------

cursor::cursor(read_context& ctx, const YAML::Node& node, std::string path, source_loc fallback)
    : ctx_(&ctx), node_(node) {
  tick();
  const YAML::Mark m = node_.Mark();
  if (!node_.IsNull() && !m.is_null() && m.line >= 0) {
    loc_ = loc_from(m, std::move(path));
  } else {
    loc_ = std::move(fallback);
    loc_.path = std::move(path);
  }
}

void cursor::tick() const {
  if (++ctx_->visited > max_visited_nodes) throw too_complex{};
}

std::string cursor::child_path(std::string_view key) const {
  if (loc_.path.empty()) return std::string(key);
  return loc_.path + "." + std::string(key);
}

std::string cursor::describe() const {
  if (node_.IsMap()) return "a map";
  if (node_.IsSequence()) return "a list";
  if (node_.IsScalar()) return "the value " + in_quotes(node_.Scalar());
  return "nothing";
}

void cursor::error(std::string message) const {
  ctx_->diag.error(loc_, std::move(message));
}

void cursor::warning(std::string message) const {
  ctx_->diag.warning(loc_, std::move(message));
}

bool cursor::expect_map() const {
  if (node_.IsMap() || node_.IsNull()) return true;
  error("expected a map (key: value lines), found " + describe());
  return false;
}

bool cursor::expect_list() const {
  if (node_.IsSequence() || node_.IsNull()) return true;
  error("expected a list (\"- \" lines or [a, b]), found " + describe());
  return false;
}

void cursor::check_keys(const std::vector<std::string>& known) const {
  check_map_keys(&known);
}

void cursor::check_duplicate_keys() const {
  check_map_keys(nullptr);
}

void cursor::check_map_keys(const std::vector<std::string>* known_keys) const {
  if (!node_.IsMap()) return;
  std::unordered_map<std::string, int> seen;  // key -> its line
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    tick();
    const YAML::Node k = it->first;
    const source_loc kl = loc_from(k.Mark(), loc_.path);
    if (!k.IsScalar()) {
      ctx_->diag.error(kl, "keys must be plain names, found " +
                               std::string(k.IsMap()        ? "a map"
                                           : k.IsSequence() ? "a list"
                                                            : "nothing") +
                               " as a key");
      continue;
    }
    const std::string& key = k.Scalar();
    if (auto [dup, fresh] = seen.emplace(key, kl.line); !fresh) {
      ctx_->diag.error(kl, "key " + in_quotes(key) + " appears twice (first on line " +
                               std::to_string(dup->second) + ")");
      continue;
    }
    if (known_keys == nullptr) continue;
    const std::vector<std::string>& known = *known_keys;
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string msg = "unknown key " + in_quotes(key);
    const std::string hint = did_you_mean(key, known);
    if (!hint.empty()) {
      msg += hint;
    } else if (!known.empty()) {
      msg += "; known keys here: " + join_words(known, ", ");
    }
    ctx_->diag.error(kl, msg);
  }
}

void cursor::check_keys(std::initializer_list<std::string_view> known) const {
  std::vector<std::string> v;
  v.reserve(known.size());
  for (std::string_view k : known)
    v.emplace_back(k);
  check_keys(v);
}

std::optional<cursor> cursor::get(std::string_view key) const {
  if (!node_.IsMap()) return std::nullopt;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    tick();
    const YAML::Node k = it->first;
    if (!k.IsScalar() || k.Scalar() != key) continue;
    // An empty value's mark points at the next token; the key's place is the better one.
    return cursor(*ctx_, it->second, child_path(key), loc_from(k.Mark(), ""));
  }
  return std::nullopt;
}

std::optional<cursor> cursor::require(std::string_view key) const {
  std::optional<cursor> c = get(key);
  if (!c && (node_.IsMap() || node_.IsNull())) error("missing required key " + in_quotes(key));
  return c;
}

std::vector<cursor> cursor::elements() const {
  std::vector<cursor> out;
  if (!node_.IsSequence()) return out;
  size_t i = 0;
  for (auto it = node_.begin(); it != node_.end(); ++it, ++i)
    out.emplace_back(*ctx_, *it, loc_.path + "[" + std::to_string(i) + "]", loc_);
  return out;
}

std::vector<map_entry> cursor::entries() const {
  std::vector<map_entry> out;
  if (!node_.IsMap()) return out;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    tick();
    const YAML::Node k = it->first;
    if (!k.IsScalar()) continue;  // check_keys() reports these
    source_loc kl = loc_from(k.Mark(), loc_.path);
    out.push_back({k.Scalar(), kl, cursor(*ctx_, it->second, child_path(k.Scalar()), kl)});
  }
  return out;
}

std::optional<std::string> cursor::str() const {
  if (node_.IsNull()) {
    error("has no value");
    return std::nullopt;
  }
  if (!node_.IsScalar()) {
    error("expected a single value, found " + describe());
    return std::nullopt;
  }
  const std::string& s = node_.Scalar();
  if (s.empty()) {
    error("is empty");
    return std::nullopt;
  }
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
      error(in_quotes(s) + " contains a control character");
      return std::nullopt;
    }
  }
  return s;
}

std::optional<int64_t> cursor::integer(int64_t min, int64_t max) const {
  std::optional<std::string> s = str();
  if (!s) return std::nullopt;
  int64_t v = 0;
  const char* end = s->data() + s->size();
  auto [p, ec] = std::from_chars(s->data(), end, v);
  if (ec == std::errc::result_out_of_range ||
      (ec == std::errc{} && p == end && (v < min || v > max))) {
    error(in_quotes(*s) + " is out of range: expected " + std::to_string(min) + " to " +
          std::to_string(max));
    return std::nullopt;
  }
  if (ec != std::errc{} || p != end) {
    error(in_quotes(*s) + " is not a whole number");
    return std::nullopt;
  }
  return v;
}

std::optional<bool> cursor::boolean() const {
  std::optional<std::string> s = str();
  if (!s) return std::nullopt;
  const std::string l = lower(*s);
  if (l == "true") return true;
  if (l == "false") return false;
  error(in_quotes(*s) + " is not true or false");
  return std::nullopt;
}

std::optional<uint64_t> cursor::size() const {
  std::optional<std::string> s = str();
  if (!s) return std::nullopt;
  std::string why;
  auto v = parse_size(*s, &why);
  if (!v) error(why);
  return v;
}

std::optional<std::chrono::milliseconds> cursor::duration() const {
  std::optional<std::string> s = str();
  if (!s) return std::nullopt;
  std::string why;
  auto v = parse_duration(*s, &why);
  if (!v) error(why);
  return v;
}

std::optional<uint64_t> cursor::rate() const {
  std::optional<std::string> s = str();
  if (!s) return std::nullopt;
  std::string why;
  auto v = parse_rate(*s, &why);
  if (!v) error(why);
  return v;
}

std::optional<std::string> cursor::one_of(const std::vector<std::string>& choices) const {
  std::optional<std::string> s = str();
  if (!s) return std::nullopt;
  if (std::find(choices.begin(), choices.end(), *s) != choices.end()) return s;
  error(in_quotes(*s) + " is not one of " + join_words(choices, " or ") +
        did_you_mean(*s, choices));
  return std::nullopt;
}

std::optional<std::vector<std::string>> cursor::str_list() const {
  if (!expect_list()) return std::nullopt;
  std::vector<std::string> out;
  bool ok = true;
  for (const cursor& e : elements()) {
    if (auto s = e.str()) {
      out.push_back(std::move(*s));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

// ---- value checks -----------------------------------------------------------------------------

bool is_ip_address(std::string_view text) {
  if (text.size() >= INET6_ADDRSTRLEN) return false;
  const std::string s(text);
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool is_ipv6_address(std::string_view text) {
  if (text.size() >= INET6_ADDRSTRLEN) return false;
  const std::string s(text);
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

std::string canonical_ip(std::string_view text) {
  if (!is_ipv6_address(text)) return std::string(text);
  std::string s(text);
  in6_addr a{};
  char out[INET6_ADDRSTRLEN];
  if (::inet_pton(AF_INET6, s.c_str(), &a) != 1 ||
      ::inet_ntop(AF_INET6, &a, out, sizeof out) == nullptr)
    return s;
  return out;
}

bool is_absolute_path(std::string_view text) {
  return !text.empty() && text.front() == '/' && text.find('\0') == std::string_view::npos &&
         text.size() < 4096;
}

bool is_http_url(std::string_view text) {
  std::string_view rest;
  if (text.starts_with("http://")) {
    rest = text.substr(7);
  } else if (text.starts_with("https://")) {
    rest = text.substr(8);
  } else {
    return false;
  }
  for (const char c : text)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty() || authority.find('@') != std::string_view::npos) return false;
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    if (!is_ipv6_address(authority.substr(1, close - 1))) return false;
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port = after.substr(1);
    }
    host = authority.substr(1, close - 1);
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return false;
  if (authority.front() != '[') {
    for (const char c : host) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_'))
        return false;
    }
  }
  if (authority.find(':') != std::string_view::npos && authority.front() != '[' && port.empty())
    return false;
  if (!port.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc{} || p != port.data() + port.size() || v == 0 || v > 65535) return false;
  }
  return true;
}

bool is_object_name(std::string_view text) {
  if (text.empty() || text.size() > 63) return false;
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_alnum(text.front())) return false;
  return std::all_of(text.begin(), text.end(),
                     [&](char c) { return lower_alnum(c) || c == '_' || c == '.' || c == '-'; });
}

std::optional<std::string> read_ip(const cursor& c) {
  std::optional<std::string> s = c.str();
  if (!s) return std::nullopt;
  if (!is_ip_address(*s)) {
    c.error(in_quotes(*s) + " is not an IP address");
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> read_path(const cursor& c) {
  std::optional<std::string> s = c.str();
  if (!s) return std::nullopt;
  if (!is_absolute_path(*s)) {
    c.error(in_quotes(*s) + " is not an absolute path");
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> read_url(const cursor& c) {
  std::optional<std::string> s = c.str();
  if (!s) return std::nullopt;
  if (!is_http_url(*s)) {
    c.error(in_quotes(*s) + " is not an http:// or https:// URL with a host");
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> read_name(const cursor& c) {
  std::optional<std::string> s = c.str();
  if (!s) return std::nullopt;
  if (!is_object_name(*s)) {
    c.error(in_quotes(*s) +
            " is not a valid name: lower-case letters, digits, '_', '.' and '-', "
            "starting with a letter or digit, at most 63 characters");
    return std::nullopt;
  }
  return s;
}

std::optional<uint16_t> read_port(const cursor& c) {
  auto v = c.integer(1, 65535);
  if (!v) return std::nullopt;
  return static_cast<uint16_t>(*v);
}

}  // namespace tandem::ctl::config
