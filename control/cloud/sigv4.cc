// SPDX-License-Identifier: Apache-2.0
// AWS Signature Version 4. The steps and their names follow the AWS documentation ("Create a
// canonical request", "Create a string to sign", "Calculate the signature").
#include "control/cloud/sigv4.h"

#include <algorithm>
#include <ctime>
#include <initializer_list>
#include <map>
#include <stdexcept>

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace tandem::ctl::cloud {
namespace {

constexpr std::string_view algorithm = "AWS4-HMAC-SHA256";

std::string hex(const unsigned char* p, size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 0xf];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("sigv4: SHA-256 failed");
  }
  return hex(digest, len);
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
           &len) == nullptr) {
    throw std::runtime_error("sigv4: HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  });
  return out;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// Leading and trailing whitespace removed, inner runs collapsed to one space.
std::string trim_collapse(std::string_view v) {
  std::string out;
  bool pending_space = false;
  for (char c : v) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

// "." and ".." resolved and empty segments (duplicate slashes) dropped, as RFC 3986's
// remove_dot_segments does; a trailing slash, or a trailing "." / "..", leaves a trailing slash.
std::string normalize(std::string_view path) {
  std::vector<std::string_view> segments;
  bool trailing_slash = false;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(pos, end - pos);
    trailing_slash = seg.empty() || seg == "." || seg == "..";
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    pos = end + 1;
  }
  std::string out;
  for (auto seg : segments) {
    out += '/';
    out += seg;
  }
  if (out.empty() || trailing_slash) out += '/';
  return out;
}

std::string amz_date(std::chrono::system_clock::time_point when) {
  std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[17];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

bool iequals(std::string_view a, std::string_view b) {
  return lower(a) == lower(b);
}

template <typename Pairs>
void erase_named(Pairs& pairs, std::initializer_list<std::string_view> names) {
  std::erase_if(pairs, [&](const auto& p) {
    return std::any_of(names.begin(), names.end(),
                       [&](std::string_view n) { return iequals(p.first, n); });
  });
}

// Headers that do not take part in the signature: the Authorization header itself, and those
// proxies and SDK layers rewrite in transit.
bool unsigned_header(std::string_view lowered) {
  return lowered == "authorization" || lowered == "user-agent" || lowered == "x-amzn-trace-id";
}

struct canonical_headers {
  std::string block;         // "name:value\n" per header
  std::string signed_names;  // "name;name"
};

canonical_headers canonicalize_headers(const http_request& req) {
  // Sorted by lower-cased name; repeated names joined with ',' in the order they appear.
  std::map<std::string, std::string> merged;
  for (const auto& [name, value] : req.headers) {
    std::string key = lower(name);
    if (unsigned_header(key)) continue;
    auto [it, inserted] = merged.try_emplace(key, trim_collapse(value));
    if (!inserted) it->second += "," + trim_collapse(value);
  }
  canonical_headers out;
  for (const auto& [name, value] : merged) {
    out.block += name + ":" + value + "\n";
    if (!out.signed_names.empty()) out.signed_names += ';';
    out.signed_names += name;
  }
  return out;
}

std::string canonical_query(const http_request& req) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(req.query.size());
  for (const auto& [k, v] : req.query)
    encoded.emplace_back(uri_encode(k), uri_encode(v));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [k, v] : encoded) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

std::string canonical_uri(const http_request& req, const sign_options& opts) {
  std::string_view path = req.path.empty() ? std::string_view("/") : std::string_view(req.path);
  std::string p = opts.normalize_path ? normalize(path) : std::string(path);
  return uri_encode(p, false);
}

struct scope {
  std::string date_time;  // 20150830T123600Z
  std::string credential_scope;
};

scope make_scope(const sign_options& opts) {
  scope s;
  s.date_time = amz_date(opts.when);
  s.credential_scope =
      s.date_time.substr(0, 8) + "/" + opts.region + "/" + opts.service + "/aws4_request";
  return s;
}

// Canonical request, string to sign and signature for req as it stands.
signature_parts compute(const http_request& req, const credentials& creds, const sign_options& opts,
                        const scope& sc, const canonical_headers& headers,
                        const std::string& payload_hash) {
  signature_parts parts;
  parts.canonical_request = req.method + "\n" + canonical_uri(req, opts) + "\n" +
                            canonical_query(req) + "\n" + headers.block + "\n" +
                            headers.signed_names + "\n" + payload_hash;
  parts.string_to_sign = std::string(algorithm) + "\n" + sc.date_time + "\n" + sc.credential_scope +
                         "\n" + sha256_hex(parts.canonical_request);
  std::string k = hmac_sha256("AWS4" + creds.secret_access_key, sc.date_time.substr(0, 8));
  k = hmac_sha256(k, opts.region);
  k = hmac_sha256(k, opts.service);
  k = hmac_sha256(k, "aws4_request");
  std::string mac = hmac_sha256(k, parts.string_to_sign);
  parts.signature = hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
  return parts;
}

}  // namespace

std::string uri_encode(std::string_view s, bool encode_slash) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && !encode_slash);
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 0xf];
    }
  }
  return out;
}

std::string query_string(const http_request& req) {
  std::string out;
  for (const auto& [k, v] : req.query) {
    if (!out.empty()) out += '&';
    out += uri_encode(k) + "=" + uri_encode(v);
  }
  return out;
}

signature_parts sign_headers(http_request& req, const credentials& creds,
                             const sign_options& opts) {
  erase_named(req.headers,
              {"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"});
  const scope sc = make_scope(opts);
  const std::string payload_hash = sha256_hex(req.body);
  req.headers.emplace_back("X-Amz-Date", sc.date_time);
  if (opts.sign_body) req.headers.emplace_back("x-amz-content-sha256", payload_hash);
  const bool token = !creds.session_token.empty();
  if (token && !opts.omit_session_token) {
    req.headers.emplace_back("X-Amz-Security-Token", creds.session_token);
  }
  const canonical_headers headers = canonicalize_headers(req);
  signature_parts parts = compute(req, creds, opts, sc, headers, payload_hash);
  if (token && opts.omit_session_token) {
    req.headers.emplace_back("X-Amz-Security-Token", creds.session_token);
  }
  req.headers.emplace_back("Authorization",
                           std::string(algorithm) + " Credential=" + creds.access_key_id + "/" +
                               sc.credential_scope + ", SignedHeaders=" + headers.signed_names +
                               ", Signature=" + parts.signature);
  return parts;
}

signature_parts presign_query(http_request& req, const credentials& creds,
                              const sign_options& opts) {
  erase_named(req.query, {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                          "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature"});
  erase_named(req.headers, {"authorization"});
  const scope sc = make_scope(opts);
  const canonical_headers headers = canonicalize_headers(req);
  req.query.emplace_back("X-Amz-Algorithm", std::string(algorithm));
  req.query.emplace_back("X-Amz-Credential", creds.access_key_id + "/" + sc.credential_scope);
  req.query.emplace_back("X-Amz-Date", sc.date_time);
  req.query.emplace_back("X-Amz-SignedHeaders", headers.signed_names);
  req.query.emplace_back("X-Amz-Expires", std::to_string(opts.expires.count()));
  const bool token = !creds.session_token.empty();
  if (token && !opts.omit_session_token) {
    req.query.emplace_back("X-Amz-Security-Token", creds.session_token);
  }
  signature_parts parts = compute(req, creds, opts, sc, headers, sha256_hex(req.body));
  if (token && opts.omit_session_token) {
    req.query.emplace_back("X-Amz-Security-Token", creds.session_token);
  }
  req.query.emplace_back("X-Amz-Signature", parts.signature);
  return parts;
}

}  // namespace tandem::ctl::cloud
