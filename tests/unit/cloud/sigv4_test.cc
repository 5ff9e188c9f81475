// SPDX-License-Identifier: Apache-2.0
// Signature Version 4 against the AWS signing test suite (sigv4-vectors/v4): every case is signed
// in both forms and the canonical request, string to sign and signature must match byte for byte.
#include "control/cloud/sigv4.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace tandem::ctl::cloud {
namespace {

namespace fs = std::filesystem;

const fs::path vectors_dir{TANDEM_SIGV4_VECTORS};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// request.txt: "METHOD target HTTP/1.1", "Name:value" lines (a line starting with whitespace
// continues the previous value, obs-fold, joined with a space), a blank line, the body. The
// target may contain spaces, so the version is split off at the last space.
http_request parse_request(const std::string& raw) {
  std::vector<std::string> lines;
  size_t pos = 0;
  size_t body_at = std::string::npos;
  while (pos < raw.size()) {
    size_t end = raw.find('\n', pos);
    if (end == std::string::npos) end = raw.size();
    std::string line = raw.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() && !lines.empty()) {
      body_at = pos;
      break;
    }
    lines.push_back(line);
  }
  if (lines.empty()) throw std::runtime_error("empty request");
  http_request req;
  const std::string& first = lines[0];
  size_t sp1 = first.find(' ');
  size_t sp2 = first.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) throw std::runtime_error("bad request line");
  req.method = first.substr(0, sp1);
  std::string target = first.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) {
    std::string_view query = std::string_view(target).substr(q + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view item = query.substr(0, amp);
      size_t eq = item.find('=');
      std::string_view key = item.substr(0, eq);
      std::string_view value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
      req.query.emplace_back(percent_decode(key), percent_decode(value));
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if ((line[0] == ' ' || line[0] == '\t') && !req.headers.empty()) {
      req.headers.back().second += " " + line;
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string::npos) throw std::runtime_error("bad header line: " + line);
    req.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  if (body_at != std::string::npos && body_at <= raw.size()) req.body = raw.substr(body_at);
  return req;
}

struct vector_case {
  http_request request;
  credentials creds;
  sign_options opts;
};

vector_case load_case(const fs::path& dir) {
  auto ctx = nlohmann::json::parse(read_file(dir / "context.json"));
  vector_case c;
  c.request = parse_request(read_file(dir / "request.txt"));
  c.creds.access_key_id = ctx.at("credentials").at("access_key_id").get<std::string>();
  c.creds.secret_access_key = ctx.at("credentials").at("secret_access_key").get<std::string>();
  c.creds.session_token = ctx.at("credentials").value("token", "");
  c.opts.region = ctx.at("region").get<std::string>();
  c.opts.service = ctx.at("service").get<std::string>();
  c.opts.normalize_path = ctx.at("normalize").get<bool>();
  c.opts.sign_body = ctx.at("sign_body").get<bool>();
  c.opts.omit_session_token = ctx.value("omit_session_token", false);
  c.opts.expires = std::chrono::seconds(ctx.at("expiration_in_seconds").get<int>());
  std::tm tm{};
  std::istringstream ts(ctx.at("timestamp").get<std::string>());
  ts >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  if (ts.fail()) throw std::runtime_error("bad timestamp in " + dir.string());
  c.opts.when = std::chrono::system_clock::from_time_t(timegm(&tm));
  return c;
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(vectors_dir, ec)) {
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

const std::string* find_header(const http_request& req, std::string_view name) {
  for (const auto& [k, v] : req.headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

// The suite has 38 cases; a missing or truncated copy must fail rather than run nothing.
TEST(Sigv4Vectors, SuitePresent) {
  ASSERT_TRUE(fs::is_directory(vectors_dir)) << vectors_dir;
  EXPECT_EQ(case_names().size(), 38u);
}

class Sigv4Case : public ::testing::TestWithParam<std::string> {};

TEST_P(Sigv4Case, HeaderForm) {
  const fs::path dir = vectors_dir / GetParam();
  vector_case c = load_case(dir);
  signature_parts parts = sign_headers(c.request, c.creds, c.opts);
  EXPECT_EQ(parts.canonical_request, read_file(dir / "header-canonical-request.txt"));
  EXPECT_EQ(parts.string_to_sign, read_file(dir / "header-string-to-sign.txt"));
  EXPECT_EQ(parts.signature, read_file(dir / "header-signature.txt"));
  // The Authorization header as the suite's signed request carries it.
  const std::string signed_request = read_file(dir / "header-signed-request.txt");
  const std::string* auth = find_header(c.request, "Authorization");
  ASSERT_NE(auth, nullptr);
  EXPECT_NE(signed_request.find("\nAuthorization:" + *auth + "\n"), std::string::npos) << *auth;
}

TEST_P(Sigv4Case, QueryForm) {
  const fs::path dir = vectors_dir / GetParam();
  vector_case c = load_case(dir);
  signature_parts parts = presign_query(c.request, c.creds, c.opts);
  EXPECT_EQ(parts.canonical_request, read_file(dir / "query-canonical-request.txt"));
  EXPECT_EQ(parts.string_to_sign, read_file(dir / "query-string-to-sign.txt"));
  EXPECT_EQ(parts.signature, read_file(dir / "query-signature.txt"));
  ASSERT_FALSE(c.request.query.empty());
  EXPECT_EQ(c.request.query.back().first, "X-Amz-Signature");
  EXPECT_EQ(c.request.query.back().second, parts.signature);
}

INSTANTIATE_TEST_SUITE_P(Aws, Sigv4Case, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& case_info) {
                           std::string name = case_info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

http_request get_vanilla() {
  http_request req;
  req.method = "GET";
  req.path = "/";
  req.headers.emplace_back("Host", "example.amazonaws.com");
  return req;
}

sign_options suite_options() {
  sign_options o;
  o.region = "us-east-1";
  o.service = "service";
  o.when = std::chrono::system_clock::from_time_t(1440938160);  // 2015-08-30T12:36:00Z
  return o;
}

const credentials suite_creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};

TEST(Sigv4, SessionTokenIsSigned) {
  credentials creds = suite_creds;
  creds.session_token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
  http_request req = get_vanilla();
  signature_parts parts = sign_headers(req, creds, suite_options());
  EXPECT_NE(parts.canonical_request.find("\nx-amz-security-token:" + creds.session_token + "\n"),
            std::string::npos);
  EXPECT_NE(parts.canonical_request.find("\nhost;x-amz-date;x-amz-security-token\n"),
            std::string::npos);
  const std::string* token = find_header(req, "X-Amz-Security-Token");
  ASSERT_NE(token, nullptr);
  EXPECT_EQ(*token, creds.session_token);
  // get-vanilla-with-session-token's expected signature.
  EXPECT_EQ(parts.signature,
            read_file(vectors_dir / "get-vanilla-with-session-token" / "header-signature.txt"));
}

TEST(Sigv4, SignBodyAddsContentSha256) {
  http_request req = get_vanilla();
  req.method = "POST";
  req.body = "Param1=value1";
  sign_options opts = suite_options();
  opts.sign_body = true;
  signature_parts parts = sign_headers(req, suite_creds, opts);
  const std::string hash = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
  const std::string* header = find_header(req, "x-amz-content-sha256");
  ASSERT_NE(header, nullptr);
  EXPECT_EQ(*header, hash);
  EXPECT_NE(parts.canonical_request.find("\nx-amz-content-sha256:" + hash + "\n"),
            std::string::npos);
  EXPECT_NE(parts.canonical_request.find("x-amz-content-sha256;x-amz-date\n" + hash),
            std::string::npos);

  http_request plain = get_vanilla();
  plain.method = "POST";
  plain.body = "Param1=value1";
  sign_headers(plain, suite_creds, suite_options());
  EXPECT_EQ(find_header(plain, "x-amz-content-sha256"), nullptr);
}

// Signing again (a retry) replaces the earlier signature instead of adding a second one.
TEST(Sigv4, ResigningReplacesHeadersAndParameters) {
  http_request req = get_vanilla();
  sign_options opts = suite_options();
  sign_headers(req, suite_creds, opts);
  opts.when += std::chrono::minutes(5);
  signature_parts again = sign_headers(req, suite_creds, opts);
  EXPECT_EQ(std::count_if(req.headers.begin(), req.headers.end(),
                          [](const auto& h) { return h.first == "Authorization"; }),
            1);
  EXPECT_EQ(*find_header(req, "X-Amz-Date"), "20150830T124100Z");
  EXPECT_NE(again.signature, read_file(vectors_dir / "get-vanilla" / "header-signature.txt"));

  http_request q = get_vanilla();
  presign_query(q, suite_creds, suite_options());
  signature_parts presigned = presign_query(q, suite_creds, suite_options());
  EXPECT_EQ(q.query.size(), 6u);
  EXPECT_EQ(presigned.signature, read_file(vectors_dir / "get-vanilla" / "query-signature.txt"));
}

TEST(Sigv4, UriEncode) {
  EXPECT_EQ(uri_encode("a b/c~-._%"), "a%20b%2Fc~-._%25");
  EXPECT_EQ(uri_encode("/a b/\xe1\x88\xb4", false), "/a%20b/%E1%88%B4");
  http_request req;
  req.query = {{"k y", "v/1"}, {"a", ""}};
  EXPECT_EQ(query_string(req), "k%20y=v%2F1&a=");
}

}  // namespace
}  // namespace tandem::ctl::cloud
