// SPDX-License-Identifier: Apache-2.0
// AWS Signature Version 4 (the "AWS4-HMAC-SHA256" scheme) for the cloud backends: signs an HTTP
// request either with an Authorization header or as a presigned URL (query parameters).
//
// Follows the published algorithm for every service except S3, which encodes the path once and
// never normalises it; tandem does not sign S3 requests here. tests/unit/cloud/sigv4-vectors is
// the AWS test suite this is checked against.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem::ctl::cloud {

struct credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
};

struct http_request {
  std::string method;
  // The path exactly as it goes on the wire (it may hold %xx escapes); the signer encodes it again,
  // as AWS requires for every service but S3.
  std::string path;
  // Decoded names and values, in the order they are sent; the signer percent-encodes them and
  // query_string() gives the encoded form to put on the request line.
  std::vector<std::pair<std::string, std::string>> query;
  // Names in any case; a name may repeat. Must include Host.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct sign_options {
  std::string region;
  std::string service;
  std::chrono::system_clock::time_point when;
  // Remove "." and ".." segments and duplicate slashes before signing the path.
  bool normalize_path = true;
  // Header form only: send the payload hash as x-amz-content-sha256 (and sign it).
  bool sign_body = false;
  // Add the session token after signing instead of signing it: a few services (IoT) reject a
  // request whose token is part of the signature.
  bool omit_session_token = false;
  // Query form only: how long the presigned request stays valid.
  std::chrono::seconds expires{3600};
};

// The intermediate results, so a signature mismatch reported by AWS (which returns its own
// canonical request) can be diagnosed.
struct signature_parts {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;  // lower-case hex
};

// Adds X-Amz-Date, X-Amz-Security-Token (with a session token), x-amz-content-sha256 (with
// sign_body) and Authorization headers, replacing any left by an earlier signing of req.
signature_parts sign_headers(http_request& req, const credentials& creds, const sign_options& opts);

// Adds the X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders, -Security-Token and
// -Signature query parameters, replacing any left by an earlier signing of req. The headers
// present are signed and must be sent unchanged.
signature_parts presign_query(http_request& req, const credentials& creds,
                              const sign_options& opts);

// RFC 3986 percent-encoding: everything but A-Z a-z 0-9 - . _ ~ (and '/' unless encode_slash)
// becomes %XX with upper-case hex.
std::string uri_encode(std::string_view s, bool encode_slash = true);

// req.query encoded for the request line ("a=1&b=2"), in its order.
std::string query_string(const http_request& req);

}  // namespace tandem::ctl::cloud
