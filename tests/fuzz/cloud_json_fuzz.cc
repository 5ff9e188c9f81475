// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the cloud JSON readers (control/cloud/cloud_json.h) on any body a metadata
// service, an API endpoint, a proxy or a fake server could answer with, and the two writers on
// any record set.
//
// Input: byte 0 chooses the function ((byte - '0') mod 256 mod 10, so the seeds start with a
// readable digit), the rest is its input:
//   0 parse_cloud_error                5 parse_gcp_record_sets
//   1 parse_imds_role_credentials      6 parse_azure_record_set, type A
//   2 parse_gce_token                  7 parse_azure_record_set, type AAAA
//   3 parse_azure_token                8 gcp_change_body   } byte 1 = flags, bytes 2..5 a ttl
//   4 parse_gcp_change                 9 azure_record_set_body } (big-endian, signed), then
//     NUL-separated strings. gcp: flags bit 0 a deletion, bit 1 an addition, bit 2 adds 2^32 to
//     the ttl; strings name, type, rrdatas (the addition has them in reverse order). azure:
//     flags bit 0 AAAA (else A), bit 1 type "MX" instead, bit 2 adds 2^32 to the ttl; strings
//     the addresses (none when nothing follows the ttl).
// Invariants:
// - a parser throws nothing but cloud_json_error, and parse_cloud_error throws nothing at all;
// - a body parse_cloud_error reads as an error is refused by every success parser, and every
//   body is also tried as an error body (whose code is never empty);
// - what goes into HTTP headers or URLs is safe there: credentials and tokens are non-empty
//   visible ASCII, an etag is non-empty printable ASCII, a change id holds only [A-Za-z0-9_-];
// - token expiries lie after `now` and less than a year on; IMDS expirations are whole seconds;
// - required strings are never empty (status, record names and types); TTLs are 0..2^31-1;
//   Azure addresses are addresses of the asked-for family;
// - what a reader accepts, the matching writer writes back (an Azure record set always, a Cloud
//   DNS record set when Cloud DNS would take it), and it reads back the same;
// - a writer throws exactly when its input is invalid, and otherwise writes JSON whose members
//   are exactly the input's.
#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/cloud/cloud_json.h"

namespace {

using namespace tandem::ctl::cloud;
using json = nlohmann::json;
using sys_clock = std::chrono::system_clock;

// Inside the Azure sample token's lifetime, so its seed is accepted.
const sys_clock::time_point now = sys_clock::time_point(std::chrono::seconds(1'506'480'283));
constexpr long long max_ttl = 2'147'483'647;
constexpr auto one_year = std::chrono::seconds(365LL * 24 * 60 * 60);

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_cloud_json: invariant broken: %s\n", what);
  std::abort();
}

bool visible_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c <= 0x7e; });
}

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

void check_header_value(const std::string& s) {
  if (s.empty() || !visible_ascii(s)) fail("a credential or token unfit for an HTTP header");
}

void check_ttl(long long ttl) {
  if (ttl < 0 || ttl > max_ttl) fail("a ttl outside 0..2^31-1");
}

bool is_address(int family, const std::string& s) {
  if (s.find('\0') != std::string::npos) return false;
  std::array<unsigned char, 16> buf{};
  return ::inet_pton(family, s.c_str(), buf.data()) == 1;
}

void check_token(const access_token& t) {
  check_header_value(t.token);
  if (t.expires <= now || t.expires >= now + one_year) fail("a token expiry not within a year");
}

// Cloud DNS would take it: what gcp_change_body promises to write.
bool writable(const gcp_record_set& s) {
  bool ok = !s.name.empty() && s.name.back() == '.' && printable(s.name) && !s.type.empty() &&
            printable(s.type) && !s.rrdatas.empty() && s.ttl >= 0 && s.ttl <= max_ttl;
  for (const std::string& d : s.rrdatas)
    ok = ok && !d.empty() && printable(d);
  return ok;
}

json rrset_json(const gcp_record_set& s) {
  return json{{"kind", "dns#resourceRecordSet"},
              {"name", s.name},
              {"type", s.type},
              {"ttl", s.ttl},
              {"rrdatas", s.rrdatas}};
}

// Parses a writer's output; it must be JSON.
json written(const std::string& body) {
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) fail("a writer wrote something that is not JSON");
  return doc;
}

// gcp_change_body(deletion, addition) must write exactly these record sets.
void check_gcp_body(const std::optional<gcp_record_set>& deletion,
                    const std::optional<gcp_record_set>& addition, const std::string& body) {
  const json doc = written(body);
  json expected{{"kind", "dns#change"}};
  if (deletion) expected["deletions"] = json::array({rrset_json(*deletion)});
  if (addition) expected["additions"] = json::array({rrset_json(*addition)});
  if (doc != expected) fail("gcp_change_body: the body is not the record sets given");
}

// azure_record_set_body(type, ttl, addresses) must write them, and parse_azure_record_set must
// read them back.
void check_azure_body(std::string_view type, long long ttl,
                      const std::vector<std::string>& addresses, const std::string& body) {
  json doc = written(body);
  const bool v6 = type == "AAAA";
  json records = json::array();
  for (const std::string& a : addresses)
    records.push_back({{v6 ? "ipv6Address" : "ipv4Address", a}});
  const json expected{{"properties",
                       {{"metadata", {{"managed_by", "tandem"}}},
                        {"TTL", ttl},
                        {v6 ? "AAAARecords" : "ARecords", records}}}};
  if (doc != expected) fail("azure_record_set_body: the body is not the record set given");
  doc["etag"] = "e";
  try {
    const azure_record_set back = parse_azure_record_set(doc.dump(), type);
    if (back.ttl != ttl || back.addresses != addresses) {
      fail("azure_record_set_body: read back differently");
    }
  } catch (const cloud_json_error&) {
    fail("azure_record_set_body: its body does not read back");
  }
}

// Runs one success parser; false when it refused the body.
template <class F>
bool accepted(F&& parse) {
  try {
    parse();
    return true;
  } catch (const cloud_json_error&) {
    return false;
  }
}

bool run_parser(unsigned which, std::string_view body) {
  switch (which) {
    case 1:
      return accepted([&] {
        const imds_role_credentials c = parse_imds_role_credentials(body);
        check_header_value(c.access_key_id);
        check_header_value(c.secret_access_key);
        check_header_value(c.token);
        if (c.expiration.time_since_epoch() % std::chrono::seconds(1) != sys_clock::duration{}) {
          fail("an IMDS expiration that is not a whole second");
        }
      });
    case 2:
      return accepted([&] { check_token(parse_gce_token(body, now)); });
    case 3:
      return accepted([&] { check_token(parse_azure_token(body, now)); });
    case 4:
      return accepted([&] {
        const gcp_change c = parse_gcp_change(body);
        if (c.id.empty() || c.status.empty()) fail("an empty change id or status");
        for (const char ch : c.id) {
          const bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                          (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
          if (!ok) fail("a change id with a character that could leave the URL path");
        }
      });
    case 5:
      return accepted([&] {
        const gcp_record_sets r = parse_gcp_record_sets(body);
        for (const gcp_record_set& s : r.sets) {
          if (s.name.empty() || s.type.empty()) fail("an empty record name or type");
          check_ttl(s.ttl);
          if (!writable(s)) continue;
          try {
            check_gcp_body(std::nullopt, s, gcp_change_body(std::nullopt, s));
          } catch (const cloud_json_error&) {
            fail("gcp_change_body refused a record set Cloud DNS would take");
          }
        }
      });
    case 6:
    case 7:
      return accepted([&] {
        const std::string_view type = which == 6 ? "A" : "AAAA";
        const azure_record_set r = parse_azure_record_set(body, type);
        if (r.etag.empty() || !printable(r.etag)) fail("an etag unfit for If-Match");
        check_ttl(r.ttl);
        for (const std::string& a : r.addresses)
          if (!is_address(which == 6 ? AF_INET : AF_INET6, a)) fail("not an address of the type");
        std::string out;
        try {
          out = azure_record_set_body(type, r.ttl, r.addresses);
        } catch (const cloud_json_error&) {
          fail("azure_record_set_body refused a record set parse_azure_record_set read");
        }
        check_azure_body(type, r.ttl, r.addresses, out);
      });
    default:
      fail("no such parser");
  }
}

std::vector<std::string> split_nul(std::string_view s) {
  std::vector<std::string> out;
  for (;;) {
    const size_t nul = s.find('\0');
    out.emplace_back(s.substr(0, nul));
    if (nul == std::string_view::npos) return out;
    s.remove_prefix(nul + 1);
  }
}

// Bytes 2..5 as a signed 32-bit ttl, plus 2^32 with flag bit 2.
long long ttl_of(const uint8_t* data) {
  const auto ttl = static_cast<int32_t>(static_cast<uint32_t>(data[2]) << 24 |
                                        static_cast<uint32_t>(data[3]) << 16 |
                                        static_cast<uint32_t>(data[4]) << 8 | data[5]);
  return ttl + ((data[1] & 4) != 0 ? (1LL << 32) : 0);
}

void run_gcp_body(const uint8_t* data, size_t size) {
  if (size < 6) return;
  const std::vector<std::string> parts =
      split_nul(std::string_view(reinterpret_cast<const char*>(data + 6), size - 6));
  gcp_record_set set;
  set.name = parts[0];
  set.type = parts.size() > 1 ? parts[1] : "";
  set.ttl = ttl_of(data);
  if (parts.size() > 2) set.rrdatas.assign(parts.begin() + 2, parts.end());
  std::optional<gcp_record_set> deletion, addition;
  if ((data[1] & 1) != 0) deletion = set;
  if ((data[1] & 2) != 0) {
    addition = set;
    std::reverse(addition->rrdatas.begin(), addition->rrdatas.end());
  }
  const bool valid = (deletion || addition) && writable(set);
  std::string body;
  try {
    body = gcp_change_body(deletion, addition);
  } catch (const cloud_json_error&) {
    if (valid) fail("gcp_change_body refused a valid change");
    return;
  }
  if (!valid) fail("gcp_change_body accepted an invalid change");
  check_gcp_body(deletion, addition, body);
}

void run_azure_body(const uint8_t* data, size_t size) {
  if (size < 6) return;
  const std::string_view type = (data[1] & 2) != 0 ? "MX" : (data[1] & 1) != 0 ? "AAAA" : "A";
  const long long ttl = ttl_of(data);
  std::vector<std::string> addresses;
  if (size > 6)
    addresses = split_nul(std::string_view(reinterpret_cast<const char*>(data + 6), size - 6));
  bool valid = type != "MX" && ttl >= 0 && ttl <= max_ttl;
  for (const std::string& a : addresses)
    valid = valid && is_address(type == "AAAA" ? AF_INET6 : AF_INET, a);
  std::string body;
  try {
    body = azure_record_set_body(type, ttl, addresses);
  } catch (const cloud_json_error&) {
    if (valid) fail("azure_record_set_body refused a valid record set");
    return;
  }
  if (!valid) fail("azure_record_set_body accepted an invalid record set");
  check_azure_body(type, ttl, addresses, body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const unsigned which = static_cast<uint8_t>(data[0] - '0') % 10;
  try {
    if (which == 8) {
      run_gcp_body(data, size);
      return 0;
    }
    if (which == 9) {
      run_azure_body(data, size);
      return 0;
    }
  } catch (...) {
    fail("a writer threw something other than cloud_json_error");
  }
  // The driver (and libFuzzer) hand over an exactly sized block, so ASan sees any read past it.
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  bool is_error = false;
  try {
    if (const std::optional<cloud_error_body> e = parse_cloud_error(body)) {
      is_error = true;
      if (e->code.empty()) fail("an error body with an empty code");
    }
  } catch (...) {
    fail("parse_cloud_error threw");
  }
  if (which == 0) return 0;
  bool ok = false;
  try {
    ok = run_parser(which, body);  // catches cloud_json_error itself
  } catch (...) {
    fail("a parser threw something other than cloud_json_error");
  }
  if (ok && is_error) fail("an error body accepted as a success response");
  return 0;
}
