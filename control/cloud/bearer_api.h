// SPDX-License-Identifier: Apache-2.0
// Calls to the Google Cloud and Azure REST APIs: an OAuth bearer token from the instance's
// metadata service (GCE's service account, Azure's managed identity), kept until a minute
// before it expires and fetched again on 401, and the same retry loop as AWS (rest.h).
//
// Threading: one owner each.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "control/cloud/aws_credentials.h"
#include "control/cloud/cloud_json.h"
#include "control/cloud/http.h"
#include "control/cloud/rest.h"

namespace tandem::ctl::cloud {

class token_source {
 public:
  virtual ~token_source() = default;
  token_source() = default;
  token_source(const token_source&) = delete;
  token_source& operator=(const token_source&) = delete;

  // A token valid for at least another minute. Throws cloud_error naming the metadata service
  // and what it answered.
  virtual std::string get(rest_clock::time_point until) = 0;
  // The API refused the token (401): the next get() fetches a new one.
  virtual void invalidate() = 0;
  [[nodiscard]] virtual std::string describe() const = 0;
};

// The GCE metadata server's token for the default service account:
// GET <endpoint>/computeMetadata/v1/instance/service-accounts/default/token with
// "Metadata-Flavor: Google". `metadata_http` must not use a proxy and outlive the source.
std::unique_ptr<token_source> make_gce_token_source(http_client& metadata_http,
                                                    std::string endpoint, aws_environment env);
// Azure IMDS's managed-identity token for Azure Resource Manager:
// GET <endpoint>/metadata/identity/oauth2/token?api-version=2018-02-01&resource=
// https://management.azure.com/[&client_id=<id>] with "Metadata: true".
std::unique_ptr<token_source> make_azure_token_source(http_client& metadata_http,
                                                      std::string endpoint, std::string client_id,
                                                      aws_environment env);

// Where the metadata services are: GCE_METADATA_HOST (host[:port], as Google's libraries read
// it) else metadata.google.internal; AZURE_POD_IDENTITY_AUTHORITY_HOST (a URL, as Azure's
// libraries read it) else http://169.254.169.254.
std::string gce_metadata_endpoint(const aws_environment& env);
std::string azure_imds_endpoint(const aws_environment& env);

class bearer_api {
 public:
  // Both must outlive this object.
  bearer_api(http_client& http, token_source& tokens, retry_policy policy = {},
             sleep_fn sleep = {});

  // One call to an absolute URL with "Authorization: Bearer <token>": the 2xx reply, or
  // cloud_error once retries are spent (429 and 5xx are retried, a 401 fetches a new token
  // once, other 4xx fail at once with the provider's code and message).
  api_reply call(std::string_view method, const std::string& url, std::string body,
                 std::string_view content_type, const header_list& extra,
                 rest_clock::time_point deadline);

 private:
  http_client& http_;
  token_source& tokens_;
  retry_policy policy_;
  sleep_fn sleep_;
};

// Classifies a Google or Azure error reply (rest.h's loop).
error_class classify_bearer_error(long http_status, std::string_view code);

// Everything one owner needs for Google Cloud DNS or Azure DNS.
struct bearer_stack {
  std::unique_ptr<http_client> http;
  std::unique_ptr<http_client> metadata_http;
  std::unique_ptr<token_source> tokens;
  std::unique_ptr<bearer_api> api;
};
enum class bearer_provider { gcp, azure };
// `ca_file` "" → the system store (or CURL_CA_BUNDLE / SSL_CERT_FILE as curl reads them).
bearer_stack make_bearer_stack(bearer_provider provider, const std::string& ca_file,
                               aws_environment env);

}  // namespace tandem::ctl::cloud
