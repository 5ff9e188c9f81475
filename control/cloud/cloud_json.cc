// SPDX-License-Identifier: Apache-2.0
// The metadata-service, Google Cloud DNS and Azure DNS JSON readers and writers of cloud_json.h,
// on nlohmann::json.
//
// Bodies are parsed with exceptions disabled (a broken document comes back discarded) and every
// member is type-checked before it is read, so no nlohmann exception can reach a caller: each
// failure is a cloud_json_error naming the document and the member. nlohmann's parser keeps its
// own stack instead of recursing, and destroys values iteratively, so deep nesting within the
// size cap costs memory but never the call stack.
#include "control/cloud/cloud_json.h"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <system_error>

#include <nlohmann/json.hpp>

namespace tandem::ctl::cloud {
namespace {

using json = nlohmann::json;
// The writers keep members in the documented order, for whoever reads a request in a log.
using ordered_json = nlohmann::ordered_json;
using sys_clock = std::chrono::system_clock;

// Far above any answer we ask for (a page of record sets is a few kB), low enough that a
// runaway body cannot make the DOM take the daemon's memory.
constexpr size_t max_body = size_t{8} << 20;
constexpr long long max_ttl = INT32_MAX;
// Tokens live an hour or so; a lifetime of a year or more is a broken answer, not a token.
constexpr long long one_year = 365LL * 24 * 60 * 60;
// 9999-12-31T23:59:59Z: a bound for epoch seconds that a double holds exactly.
constexpr long long max_epoch = 253'402'300'799;

// Text from the body for an error message: cut short and without control bytes, so a hostile
// body cannot flood or forge log lines.
std::string clean(std::string_view s, size_t max = 64) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
  }
  if (s.size() > max) out += "...";
  return out;
}

// Fit for an HTTP header value as a single token (credentials, bearer tokens): no spaces, no
// control bytes, nothing that could end the header line.
bool visible_ascii(std::string_view s) {
  for (const char c : s)
    if (c <= 0x20 || c > 0x7e) return false;
  return true;
}

bool printable_ascii(std::string_view s) {
  for (const char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::optional<sys_clock::time_point> from_epoch_seconds(long long secs) {
  // system_clock counts nanoseconds in 64 bits: about 292 years either side of 1970.
  constexpr long long limit =
      std::chrono::duration_cast<std::chrono::seconds>(sys_clock::duration::max()).count();
  if (secs > limit || secs < -limit) return std::nullopt;
  return sys_clock::time_point(std::chrono::seconds(secs));
}

long long epoch_seconds(sys_clock::time_point t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

// YYYY-MM-DDTHH:MM:SS[.fraction]Z (RFC 3339 in UTC; lower-case t and z are the same there).
// The fraction is dropped, which errs towards refreshing early. Read by hand rather than with
// strptime / std::get_time, which depend on the locale; timegm ignores TZ.
std::optional<sys_clock::time_point> parse_utc_timestamp(std::string_view s) {
  auto number = [&](size_t pos, size_t len, int& out) {
    if (pos + len > s.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int year, month, day, hour, minute, second;
  if (s.size() < 20 || !number(0, 4, year) || s[4] != '-' || !number(5, 2, month) || s[7] != '-' ||
      !number(8, 2, day) || (s[10] != 'T' && s[10] != 't') || !number(11, 2, hour) ||
      s[13] != ':' || !number(14, 2, minute) || s[16] != ':' || !number(17, 2, second)) {
    return std::nullopt;
  }
  size_t i = 19;
  if (s[i] == '.') {
    const size_t start = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9')
      ++i;
    if (i == start) return std::nullopt;
  }
  if (s.substr(i) != "Z" && s.substr(i) != "z") return std::nullopt;
  static constexpr std::array<int, 12> month_days = {31, 29, 31, 30, 31, 30,
                                                     31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 || day > month_days[month - 1] || hour > 23 ||
      minute > 59 || second > 60) {
    return std::nullopt;
  }
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month == 2 && day == 29 && !leap) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;  // 60, a leap second, comes out as the next minute's first
  return from_epoch_seconds(::timegm(&tm));
}

// ---- reading ----

// One document being read: `name` starts every message ("GCE token: no access_token").
struct doc_reader {
  std::string_view name;

  [[noreturn]] void fail(std::string_view why) const {
    throw cloud_json_error(std::string(name) + ": " + std::string(why));
  }

  static std::string path(std::string_view at, std::string_view key) {
    return at.empty() ? std::string(key) : std::string(at) + "." + std::string(key);
  }

  [[nodiscard]] const json* optional(const json& obj, std::string_view key) const {
    const auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
  }

  [[nodiscard]] const json& required(const json& obj, std::string_view at,
                                     std::string_view key) const {
    const json* v = optional(obj, key);
    if (v == nullptr) fail("no " + path(at, key));
    return *v;
  }

  [[nodiscard]] const json& object(const json& v, const std::string& where) const {
    if (!v.is_object()) fail(where + " is not an object");
    return v;
  }

  [[nodiscard]] const json& array(const json& v, const std::string& where) const {
    if (!v.is_array()) fail(where + " is not an array");
    return v;
  }

  [[nodiscard]] const std::string& text(const json& v, const std::string& where) const {
    if (!v.is_string()) fail(where + " is not a string");
    return v.get_ref<const std::string&>();
  }

  // A required string member that is not empty.
  [[nodiscard]] const std::string& filled(const json& obj, std::string_view at,
                                          std::string_view key) const {
    const std::string where = path(at, key);
    const std::string& s = text(required(obj, at, key), where);
    if (s.empty()) fail(where + " is empty");
    return s;
  }

  // A credential or token: it goes into an HTTP header as it is.
  [[nodiscard]] const std::string& header_token(const json& obj, std::string_view key) const {
    const std::string& s = filled(obj, "", key);
    if (!visible_ascii(s)) fail(std::string(key) + " has a byte outside visible ASCII");
    return s;
  }

  // A JSON number that is a whole number in [min, max] (3600.0 and 3.6e3 count as 3600).
  [[nodiscard]] long long integer(const json& v, const std::string& where, long long min,
                                  long long max) const {
    const std::string range =
        " is out of range " + std::to_string(min) + ".." + std::to_string(max);
    if (v.is_number_unsigned()) {
      const auto u = v.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(max) || static_cast<long long>(u) < min) {
        fail(where + " " + v.dump() + range);
      }
      return static_cast<long long>(u);
    }
    if (v.is_number_integer()) {
      const auto i = v.get<std::int64_t>();
      if (i < min || i > max) fail(where + " " + v.dump() + range);
      return i;
    }
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!std::isfinite(d) || d != std::trunc(d)) fail(where + " is not a whole number");
      // Compared as doubles before converting (a double outside long long is undefined to cast);
      // every bound used here is exact as a double.
      if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
        fail(where + " " + v.dump() + range);
      }
      return static_cast<long long>(d);
    }
    fail(where + " is not a number");
  }

  // A whole number written as a JSON number or as a string of decimal digits (Azure IMDS puts
  // its numbers in strings).
  [[nodiscard]] long long integer_or_digits(const json& v, const std::string& where, long long min,
                                            long long max) const {
    if (!v.is_string()) return integer(v, where, min, max);
    const auto& s = v.get_ref<const std::string&>();
    if (s.empty() || s.front() < '0' || s.front() > '9') {
      fail(where + " " + clean(s) + " is not a number");
    }
    long long n = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc::result_out_of_range) {
      fail(where + " " + clean(s) + " is out of range");
    }
    if (ec != std::errc() || end != s.data() + s.size()) {
      fail(where + " " + clean(s) + " is not a number");
    }
    if (n < min || n > max) {
      fail(where + " " + clean(s) + " is out of range " + std::to_string(min) + ".." +
           std::to_string(max));
    }
    return n;
  }

  // The body as a JSON object that is not an error answer.
  [[nodiscard]] json parse(std::string_view body) const;
};

// The error shapes of parse_cloud_error, on an already parsed document.
std::optional<cloud_error_body> error_of(const json& doc) {
  if (!doc.is_object()) return std::nullopt;
  const auto error = doc.find("error");
  if (error == doc.end()) return std::nullopt;
  cloud_error_body out;
  if (error->is_string()) {
    // OAuth: {"error":"invalid_request","error_description":"..."}
    out.code = error->get<std::string>();
    if (out.code.empty()) return std::nullopt;
    if (auto d = doc.find("error_description"); d != doc.end() && d->is_string()) {
      out.message = d->get<std::string>();
    }
    return out;
  }
  if (!error->is_object()) return std::nullopt;
  // Google: the first errors[].reason says more than the HTTP status in code.
  if (auto errors = error->find("errors"); errors != error->end() && errors->is_array() &&
                                           !errors->empty() && errors->front().is_object()) {
    const json& first = errors->front();
    if (auto reason = first.find("reason"); reason != first.end() && reason->is_string()) {
      out.code = reason->get<std::string>();
    }
  }
  if (out.code.empty()) {
    const auto code = error->find("code");
    if (code == error->end()) return std::nullopt;
    if (code->is_string()) {
      out.code = code->get<std::string>();  // ARM: "PreconditionFailed"
    } else if (code->is_number_integer()) {
      out.code = code->dump();  // Google without errors[]: 409
    }
    if (out.code.empty()) return std::nullopt;
  }
  if (auto m = error->find("message"); m != error->end() && m->is_string()) {
    out.message = m->get<std::string>();
  }
  return out;
}

// The body as JSON, discarded when it is not JSON. nlohmann's lexer takes a NUL byte for the end
// of the input and would ignore whatever follows it; JSON text never holds one (not even
// inside a string), so a body with a NUL is refused whole.
json parse_json(std::string_view body) {
  if (body.find('\0') != std::string_view::npos) {
    // Braces would make an array holding the value_t, not a discarded value.
    // NOLINTNEXTLINE(modernize-return-braced-init-list)
    return json(json::value_t::discarded);
  }
  return json::parse(body.data(), body.data() + body.size(), nullptr, false);
}

json doc_reader::parse(std::string_view body) const {
  if (body.size() > max_body) fail("body larger than 8 MiB");
  json doc = parse_json(body);
  if (doc.is_discarded() || !doc.is_object()) fail("not a JSON object");
  // A 200 with an error document (a proxy, a misrouted request) is not an answer; no success
  // document of these services has a top-level "error" member.
  if (doc.contains("error")) {
    if (const std::optional<cloud_error_body> e = error_of(doc)) {
      fail("an error answer: " + clean(e->code) + ": " + clean(e->message, 200));
    }
    fail("an error answer");
  }
  return doc;
}

void check_kind(const doc_reader& r, const json& obj, std::string_view at,
                std::string_view expected) {
  if (const json* kind = r.optional(obj, "kind")) {
    const std::string where = doc_reader::path(at, "kind");
    if (const std::string& k = r.text(*kind, where); k != expected) {
      r.fail(where + " is " + clean(k) + ", not " + std::string(expected));
    }
  }
}

bool is_change_id(std::string_view id) {
  for (const char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return !id.empty();
}

gcp_record_set read_gcp_record_set(const doc_reader& r, const json& v, const std::string& at) {
  const json& set = r.object(v, at);
  check_kind(r, set, at, "dns#resourceRecordSet");
  gcp_record_set out;
  out.name = r.filled(set, at, "name");
  out.type = r.filled(set, at, "type");
  // Google always sends ttl and rrdatas for plain record sets; a routing-policy set has no
  // rrdatas, and neither is worth refusing a whole listing over (absent, they read as 0 and
  // none).
  if (const json* ttl = r.optional(set, "ttl")) {
    out.ttl = r.integer(*ttl, doc_reader::path(at, "ttl"), 0, max_ttl);
  }
  if (const json* v_rrdatas = r.optional(set, "rrdatas")) {
    const std::string where = doc_reader::path(at, "rrdatas");
    const json& rrdatas = r.array(*v_rrdatas, where);
    out.rrdatas.reserve(rrdatas.size());
    for (size_t i = 0; i < rrdatas.size(); ++i) {
      out.rrdatas.push_back(r.text(rrdatas[i], where + "[" + std::to_string(i) + "]"));
    }
  }
  return out;
}

// "A" or "AAAA" with the matching address family and member names.
struct azure_type {
  const char* records;  // ARecords / AAAARecords
  const char* address;  // ipv4Address / ipv6Address
  int family;
  const char* family_name;
};

azure_type azure_type_of(const doc_reader& r, std::string_view type) {
  if (type == "A") return {"ARecords", "ipv4Address", AF_INET, "IPv4"};
  if (type == "AAAA") return {"AAAARecords", "ipv6Address", AF_INET6, "IPv6"};
  r.fail("type " + clean(type) + " is not A or AAAA");
}

bool is_address(int family, const std::string& s) {
  // inet_pton reads up to the first NUL: "192.0.2.1\0junk" must not pass.
  if (s.find('\0') != std::string::npos) return false;
  std::array<unsigned char, 16> buf{};
  return ::inet_pton(family, s.c_str(), buf.data()) == 1;
}

// ---- writing ----

ordered_json gcp_rrset_json(const doc_reader& r, std::string_view side, const gcp_record_set& set) {
  const std::string at(side);
  // Printable ASCII only: names are ASCII (IDNs go as punycode) and it keeps dump() from ever
  // meeting invalid UTF-8.
  auto check = [&](std::string_view field, const std::string& value) {
    if (value.empty()) r.fail(at + " " + std::string(field) + " is empty");
    if (!printable_ascii(value)) {
      r.fail(at + " " + std::string(field) + " has a byte outside printable ASCII");
    }
  };
  check("name", set.name);
  if (set.name.back() != '.') r.fail(at + " name " + clean(set.name) + " has no trailing dot");
  check("type", set.type);
  if (set.ttl < 0 || set.ttl > max_ttl) {
    r.fail(at + " ttl " + std::to_string(set.ttl) + " is out of range 0.." +
           std::to_string(max_ttl));
  }
  if (set.rrdatas.empty()) r.fail(at + " has no rrdatas");
  for (const std::string& d : set.rrdatas)
    check("rrdata", d);
  return ordered_json{{"kind", "dns#resourceRecordSet"},
                      {"name", set.name},
                      {"type", set.type},
                      {"ttl", set.ttl},
                      {"rrdatas", set.rrdatas}};
}

}  // namespace

// ---- metadata services ----

imds_role_credentials parse_imds_role_credentials(std::string_view body) {
  const doc_reader r{"IMDS role credentials"};
  const json doc = r.parse(body);
  if (const std::string& code = r.text(r.required(doc, "", "Code"), "Code"); code != "Success") {
    std::string message = "Code " + clean(code);
    if (const json* m = r.optional(doc, "Message"); m != nullptr && m->is_string()) {
      message += ": " + clean(m->get_ref<const std::string&>(), 200);
    }
    r.fail(message);
  }
  imds_role_credentials out;
  out.access_key_id = r.header_token(doc, "AccessKeyId");
  out.secret_access_key = r.header_token(doc, "SecretAccessKey");
  out.token = r.header_token(doc, "Token");
  const std::string& expiration = r.text(r.required(doc, "", "Expiration"), "Expiration");
  const std::optional<sys_clock::time_point> expiry = parse_utc_timestamp(expiration);
  if (!expiry) r.fail("Expiration " + clean(expiration) + " is not a UTC time");
  out.expiration = *expiry;
  return out;
}

namespace {

// The members both token endpoints share; `numbers_as_strings` for Azure's string numbers.
access_token read_token(const doc_reader& r, const json& doc, sys_clock::time_point now,
                        bool numbers_as_strings) {
  access_token out;
  out.token = r.header_token(doc, "access_token");
  if (const json* type = r.optional(doc, "token_type")) {
    if (const std::string& t = r.text(*type, "token_type"); lower(t) != "bearer") {
      r.fail("token_type " + clean(t) + " is not Bearer");
    }
  }
  std::optional<long long> expires_in;
  if (const json* v = r.optional(doc, "expires_in")) {
    expires_in = numbers_as_strings ? r.integer_or_digits(*v, "expires_in", 1, one_year - 1)
                                    : r.integer(*v, "expires_in", 1, one_year - 1);
  }
  if (const json* v = numbers_as_strings ? r.optional(doc, "expires_on") : nullptr) {
    const long long on = r.integer_or_digits(*v, "expires_on", 0, max_epoch);
    const long long now_s = epoch_seconds(now);
    if (on <= now_s || on - now_s >= one_year) {
      r.fail("expires_on " + std::to_string(on) + " is not within a year from now (" +
             std::to_string(now_s) + ")");
    }
    const std::optional<sys_clock::time_point> expires = from_epoch_seconds(on);
    if (!expires) r.fail("expires_on " + std::to_string(on) + " is out of range");
    out.expires = *expires;
    return out;
  }
  if (!expires_in) r.fail("no expires_in");
  out.expires = now + std::chrono::seconds(*expires_in);
  return out;
}

}  // namespace

access_token parse_gce_token(std::string_view body, std::chrono::system_clock::time_point now) {
  const doc_reader r{"GCE token"};
  return read_token(r, r.parse(body), now, false);
}

access_token parse_azure_token(std::string_view body, std::chrono::system_clock::time_point now) {
  const doc_reader r{"Azure token"};
  return read_token(r, r.parse(body), now, true);
}

// ---- Google Cloud DNS ----

gcp_change parse_gcp_change(std::string_view body) {
  const doc_reader r{"Cloud DNS change"};
  const json doc = r.parse(body);
  check_kind(r, doc, "", "dns#change");
  gcp_change out;
  out.id = r.filled(doc, "", "id");
  // The id goes into the URL of changes.get.
  if (!is_change_id(out.id)) r.fail("id " + clean(out.id) + " is not a change id");
  out.status = r.filled(doc, "", "status");
  return out;
}

gcp_record_sets parse_gcp_record_sets(std::string_view body) {
  const doc_reader r{"Cloud DNS record sets"};
  const json doc = r.parse(body);
  check_kind(r, doc, "", "dns#resourceRecordSetsListResponse");
  gcp_record_sets out;
  if (const json* v_rrsets = r.optional(doc, "rrsets")) {
    const json& rrsets = r.array(*v_rrsets, "rrsets");
    out.sets.reserve(rrsets.size());
    for (size_t i = 0; i < rrsets.size(); ++i) {
      out.sets.push_back(read_gcp_record_set(r, rrsets[i], "rrsets[" + std::to_string(i) + "]"));
    }
  }
  if (const json* token = r.optional(doc, "nextPageToken")) {
    out.next_page_token = r.text(*token, "nextPageToken");
  }
  return out;
}

std::string gcp_change_body(const std::optional<gcp_record_set>& deletion,
                            const std::optional<gcp_record_set>& addition) {
  const doc_reader r{"Cloud DNS change"};
  if (!deletion && !addition) r.fail("neither a deletion nor an addition");
  ordered_json change{{"kind", "dns#change"}};
  if (deletion)
    change["deletions"] = ordered_json::array({gcp_rrset_json(r, "deletion", *deletion)});
  if (addition)
    change["additions"] = ordered_json::array({gcp_rrset_json(r, "addition", *addition)});
  return change.dump();
}

// ---- Azure DNS (ARM) ----

azure_record_set parse_azure_record_set(std::string_view body, std::string_view type) {
  const doc_reader r{"Azure DNS record set"};
  const azure_type t = azure_type_of(r, type);
  const json doc = r.parse(body);
  if (const json* arm_type = r.optional(doc, "type")) {
    // "Microsoft.Network/dnsZones/A": a record set of another type means a wrong URL.
    const std::string& s = r.text(*arm_type, "type");
    if (!s.ends_with("/" + std::string(type))) {
      r.fail("type " + clean(s) + " is not an " + std::string(type) + " record set");
    }
  }
  azure_record_set out;
  out.etag = r.filled(doc, "", "etag");
  // It comes back in If-Match.
  if (!printable_ascii(out.etag)) r.fail("etag has a byte outside printable ASCII");
  const json& props = r.object(r.required(doc, "", "properties"), "properties");
  out.ttl = r.integer(r.required(props, "properties", "TTL"), "properties.TTL", 0, max_ttl);
  if (const json* v_records = r.optional(props, t.records)) {
    const std::string where = doc_reader::path("properties", t.records);
    const json& records = r.array(*v_records, where);
    out.addresses.reserve(records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      const std::string at = where + "[" + std::to_string(i) + "]";
      const json& record = r.object(records[i], at);
      const std::string& address =
          r.text(r.required(record, at, t.address), doc_reader::path(at, t.address));
      if (!is_address(t.family, address)) {
        r.fail(doc_reader::path(at, t.address) + " " + clean(address) + " is not an " +
               t.family_name + " address");
      }
      out.addresses.push_back(address);
    }
  }
  return out;
}

std::string azure_record_set_body(std::string_view type, long long ttl,
                                  const std::vector<std::string>& addresses) {
  const doc_reader r{"Azure DNS record set"};
  const azure_type t = azure_type_of(r, type);
  if (ttl < 0 || ttl > max_ttl) {
    r.fail("TTL " + std::to_string(ttl) + " is out of range 0.." + std::to_string(max_ttl));
  }
  ordered_json records = ordered_json::array();
  for (const std::string& a : addresses) {
    // Also keeps dump() from meeting invalid UTF-8: a valid address is ASCII.
    if (!is_address(t.family, a)) {
      r.fail(clean(a) + " is not an " + std::string(t.family_name) + " address");
    }
    records.push_back({{t.address, a}});
  }
  // metadata marks the record set as one tandem manages, for whoever looks at it in the portal.
  const ordered_json body{
      {"properties",
       {{"metadata", {{"managed_by", "tandem"}}}, {"TTL", ttl}, {t.records, std::move(records)}}}};
  return body.dump();
}

// ---- errors ----

std::optional<cloud_error_body> parse_cloud_error(std::string_view body) {
  try {
    if (body.size() > max_body) return std::nullopt;
    const json doc = parse_json(body);
    if (doc.is_discarded()) return std::nullopt;
    return error_of(doc);
  } catch (...) {
    // Only std::bad_alloc can get here; the promise is "never throws", and no error body is
    // still a truthful answer.
    return std::nullopt;
  }
}

}  // namespace tandem::ctl::cloud
