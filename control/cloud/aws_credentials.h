// SPDX-License-Identifier: Apache-2.0
// Where AWS credentials and the region come from, in the order the AWS SDKs use: the
// environment, the shared credentials / config files (profiles), the instance role through
// IMDSv2. The IMDS client caches its session token and renews it before it expires or when the
// metadata service says 401.
//
// Threading: one owner each (the resource or monitor that calls AWS).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "control/cloud/http.h"
#include "control/cloud/sigv4.h"

namespace tandem::ctl::cloud {

// What the credential sources read from their surroundings; tests give their own.
struct aws_environment {
  // Returns the variable's value, nullopt when unset. Default: ::getenv.
  std::function<std::optional<std::string>(const char*)> getenv;
  // The current time (credential and token expiry). Default: the system clock.
  std::function<std::chrono::system_clock::time_point()> now;

  static aws_environment process();  // the real process environment and clock
};

// ---- IMDSv2 ----

struct imds_settings {
  // AWS_EC2_METADATA_SERVICE_ENDPOINT when set, else http://169.254.169.254 (no trailing slash).
  std::string endpoint;
  std::chrono::seconds token_ttl{21'600};    // asked for in X-aws-ec2-metadata-token-ttl-seconds
  std::chrono::seconds renew_before{60};     // fetch a new token when less than this is left
  std::chrono::milliseconds timeout{1'000};  // one exchange with the metadata service
  int attempts = 3;  // per get(): 5xx, throttling and network trouble are retried
};

class imds_client {
 public:
  // `http` must not use a proxy (http_settings::use_proxy = false) and outlive this client.
  imds_client(http_client& http, imds_settings settings, aws_environment env);

  // GET <endpoint>/latest/<path> with the session token (fetched with PUT /latest/api/token
  // first, kept until renew_before of its ttl is left, fetched again once on 401). Throws
  // std::runtime_error saying what failed ("instance metadata: GET meta-data/placement/region:
  // HTTP 404", "instance metadata: no answer from http://169.254.169.254: Connection timed
  // out") when no 200 came.
  std::string get(std::string_view path);

  [[nodiscard]] const std::string& endpoint() const noexcept { return settings_.endpoint; }

 private:
  const std::string& token();

  http_client& http_;
  imds_settings settings_;
  aws_environment env_;
  std::string token_;
  std::chrono::system_clock::time_point token_expiry_{};
};

// imds_settings with the endpoint from the environment.
imds_settings imds_settings_from(const aws_environment& env);

// ---- shared files ----

// The INI dialect of ~/.aws/credentials and ~/.aws/config: sections, "key = value" lines,
// comments starting with # or ;, keys lower-cased; indented continuation lines are nested
// settings (s3 = ...), which are skipped, or continue a value on a new line (as in the SDKs;
// aws_credentials.cc has the details). In a config file, "[profile name]" is profile name
// and "[default]" is default; other sections (sso-session, services) are left out. Throws
// std::invalid_argument naming the line for a malformed one.
using aws_profiles = std::map<std::string, std::map<std::string, std::string>>;
aws_profiles parse_aws_ini(std::string_view text, bool config_file);

// ---- credentials ----

class aws_credential_source {
 public:
  virtual ~aws_credential_source() = default;
  aws_credential_source() = default;
  aws_credential_source(const aws_credential_source&) = delete;
  aws_credential_source& operator=(const aws_credential_source&) = delete;

  // Credentials valid for at least another minute. Throws std::runtime_error saying where it
  // looked and what was wrong ("no AWS credentials: AWS_ACCESS_KEY_ID is not set, profile
  // default has none in /root/.aws/credentials, instance metadata: ...").
  virtual credentials get() = 0;
  // AWS refused the credentials as expired (ExpiredToken, RequestExpired with a session token):
  // the next get() fetches them again.
  virtual void invalidate() = 0;
  // Where the credentials come from, for messages: "environment", "profile prod
  // (/root/.aws/credentials)", "instance role web-role (IMDSv2)".
  [[nodiscard]] virtual std::string describe() const = 0;
};

// The default chain, decided at each get() until one source answers, then kept: environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); the profile AWS_PROFILE (else
// "default") in AWS_SHARED_CREDENTIALS_FILE (else $HOME/.aws/credentials) and AWS_CONFIG_FILE
// (else $HOME/.aws/config); the instance role via `imds` (nullptr, or
// AWS_EC2_METADATA_DISABLED=true: skipped), refreshed five minutes before its Expiration.
std::unique_ptr<aws_credential_source> make_default_credentials(aws_environment env,
                                                                imds_client* imds);

// The region: `configured` when not empty; else AWS_REGION, AWS_DEFAULT_REGION, the profile's
// `region` in the config file, IMDS meta-data/placement/region (imds may be nullptr). Throws
// std::runtime_error listing where it looked when none has one.
std::string resolve_region(std::string_view configured, const aws_environment& env,
                           imds_client* imds);

}  // namespace tandem::ctl::cloud
