// SPDX-License-Identifier: Apache-2.0
// Signed AWS API calls with the retry rules of the AWS SDKs: throttling, 5xx and lost
// connections are retried with exponential backoff and jitter until the caller's deadline;
// client errors (not authorized, not found, bad input) fail at once, so a missing IAM permission
// never turns into a retry storm. Failures carry AWS's error code, message and request id.
//
// Threading: one owner (a resource or a monitor, on its worker thread).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/cloud/aws_credentials.h"
#include "control/cloud/http.h"
#include "control/cloud/rest.h"

namespace tandem::ctl::cloud {

struct aws_service {
  std::string name;      // the signing name: "ec2", "route53", "sns", "monitoring"
  std::string region;    // the signing region (Route 53: us-east-1, or cn-northwest-1 in China)
  std::string endpoint;  // scheme://host[:port], no trailing slash
};

// The public endpoint of `service` in `region`: https://ec2.eu-west-1.amazonaws.com,
// https://ec2.cn-north-1.amazonaws.com.cn, https://route53.amazonaws.com (Route 53 is global:
// its signing region is us-east-1, cn-northwest-1 for China, us-gov-west-1 for GovCloud).
aws_service default_service(std::string_view service, std::string_view region);

using query_params = std::vector<std::pair<std::string, std::string>>;

class aws_api {
 public:
  using clock = std::chrono::steady_clock;
  // Both must outlive this object. `sleep` (tests) defaults to std::this_thread::sleep_for.
  aws_api(http_client& http, aws_credential_source& creds, retry_policy policy = {},
          std::function<void(std::chrono::milliseconds)> sleep = {});

  // One REST call: `path` as it goes on the wire, `query` decoded (encoded here), signed with
  // SigV4 for svc. Returns the 2xx reply; throws cloud_error for anything else once retries are
  // spent or the deadline is near. Each attempt's own timeout is cut to what is left before
  // `deadline`.
  api_reply call(const aws_service& svc, std::string_view method, std::string_view path,
                 const query_params& query, std::string body, std::string_view content_type,
                 clock::time_point deadline);

  // An EC2 Query-protocol action: POST / with Action=<action>&Version=2016-11-15&<params>.
  api_reply ec2(const aws_service& svc, std::string_view action, const query_params& params,
                clock::time_point deadline);

  [[nodiscard]] aws_credential_source& credentials() noexcept { return creds_; }

 private:
  http_client& http_;
  aws_credential_source& creds_;
  retry_policy policy_;
  std::function<void(std::chrono::milliseconds)> sleep_;
};

// The form encoding of an EC2 Query body ("Action=X&Version=2016-11-15&A.1=b"), RFC 3986
// percent-encoded as the AWS SDKs send it.
std::string ec2_query_body(std::string_view action, const query_params& params);

// Classifies an AWS error reply: the failure kind, and whether the SDKs retry it.
error_class classify_aws_error(long http_status, std::string_view code);

// Everything one owner needs to call AWS: an HTTPS client (AWS_CA_BUNDLE honoured), the instance
// metadata client on its own proxy-free connection, the default credential chain and the
// signed-call layer, for one service in one region.
struct aws_stack {
  std::unique_ptr<http_client> http;
  std::unique_ptr<http_client> imds_http;
  std::unique_ptr<imds_client> imds;
  std::unique_ptr<aws_credential_source> creds;
  std::unique_ptr<aws_api> api;
  aws_service service;
};

struct aws_stack_options {
  std::string service;   // "ec2", "route53", ...
  std::string region;    // "" → resolve_region (environment, profile, IMDS)
  std::string endpoint;  // "" → default_service's
  http_settings http;    // ca_file "" → AWS_CA_BUNDLE
  retry_policy retry;
};

// Throws std::runtime_error when the region cannot be found or the client cannot be built.
aws_stack make_aws_stack(const aws_stack_options& options, aws_environment env);

}  // namespace tandem::ctl::cloud
