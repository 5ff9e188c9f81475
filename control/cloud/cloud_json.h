// SPDX-License-Identifier: Apache-2.0
// Parsers for the JSON that the metadata services and the Google Cloud DNS and Azure DNS APIs
// answer with (shapes in docs/cloud.md and ../shared/cloud/API_SHAPES.md sections 7-9). They
// read outside input: every one has a libFuzzer target (fuzz_cloud_json) and throws
// cloud_json_error, never anything else, for a body that is not the expected document. Unknown
// members are ignored (the providers add fields over time).
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::ctl::cloud {

struct cloud_json_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- metadata services ----

// AWS IMDS meta-data/iam/security-credentials/<role>: Code must be "Success"; Expiration is
// ISO-8601 UTC ("2017-05-17T15:09:54Z", fractional seconds allowed).
struct imds_role_credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string token;
  std::chrono::system_clock::time_point expiration;
};
imds_role_credentials parse_imds_role_credentials(std::string_view body);

// An OAuth access token: the GCE metadata server's
// {"access_token","expires_in"(number),"token_type"} and Azure IMDS's
// {"access_token","expires_in"(string),"expires_on"(string, epoch seconds),...}. token_type
// must be Bearer (any case) when present.
struct access_token {
  std::string token;
  // When it expires: `now` + expires_in, or expires_on when the body has it (Azure).
  std::chrono::system_clock::time_point expires;
};
access_token parse_gce_token(std::string_view body, std::chrono::system_clock::time_point now);
access_token parse_azure_token(std::string_view body, std::chrono::system_clock::time_point now);

// ---- Google Cloud DNS ----

struct gcp_record_set {
  std::string name;  // with the trailing dot
  std::string type;
  long long ttl = 0;
  std::vector<std::string> rrdatas;
};
// A Change resource (changes.create / changes.get): id and status ("pending" | "done").
struct gcp_change {
  std::string id;
  std::string status;
};
gcp_change parse_gcp_change(std::string_view body);
// resourceRecordSets.list: {"rrsets":[...], "nextPageToken"}; a missing rrsets is an empty list.
struct gcp_record_sets {
  std::vector<gcp_record_set> sets;
  std::string next_page_token;
};
gcp_record_sets parse_gcp_record_sets(std::string_view body);
// The body of changes.create replacing `deletion` (may be empty: nothing to delete) with
// `addition` (may be empty: a pure deletion). Throws cloud_json_error when both are empty or a
// record set is not one Cloud DNS takes (a name without its trailing dot, no rrdatas, a ttl
// outside 0..2^31-1, a byte outside printable ASCII).
std::string gcp_change_body(const std::optional<gcp_record_set>& deletion,
                            const std::optional<gcp_record_set>& addition);

// ---- Azure DNS (ARM) ----

// A record set of type A or AAAA: GET / PUT answer.
struct azure_record_set {
  std::string etag;
  long long ttl = 0;
  std::vector<std::string> addresses;  // ARecords[].ipv4Address or AAAARecords[].ipv6Address
};
azure_record_set parse_azure_record_set(std::string_view body, std::string_view type);
// The PUT body: {"properties":{"TTL":ttl,"ARecords":[{"ipv4Address":...}]}} (AAAARecords /
// ipv6Address for AAAA); metadata marks it as tandem's. Throws cloud_json_error for another
// type, a ttl outside 0..2^31-1 or an address that is not of the type's family.
std::string azure_record_set_body(std::string_view type, long long ttl,
                                  const std::vector<std::string>& addresses);

// ---- errors ----

// Google {"error":{"code":409,"message":"...","errors":[{"reason":"alreadyExists",...}]}} and
// Azure {"error":{"code":"PreconditionFailed","message":"..."}} (ARM) or the OAuth
// {"error":"invalid_request","error_description":"..."} of the token endpoints. nullopt when
// the body is none of these (an HTML page, an empty body). Never throws.
struct cloud_error_body {
  std::string code;  // Google: the first reason ("alreadyExists"), else the numeric code
  std::string message;
};
std::optional<cloud_error_body> parse_cloud_error(std::string_view body);

}  // namespace tandem::ctl::cloud
