// SPDX-License-Identifier: Apache-2.0
// Bearer-token calls for Google Cloud and Azure, and the metadata token sources.
#include "control/cloud/bearer_api.h"

#include <algorithm>
#include <cctype>

#include "control/cloud/sigv4.h"

namespace tandem::ctl::cloud {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string env_or(const aws_environment& env, const char* name, std::string fallback) {
  if (auto v = env.getenv(name); v && !v->empty()) return *v;
  return fallback;
}

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/')
    s.pop_back();
  return s;
}

// A metadata-service token: fetched with a few quick retries (the services ask for backoff on
// 429 and 5xx; Azure IMDS also answers 404 while it updates), kept until a minute before it
// expires.
class metadata_token_source final : public token_source {
 public:
  using parser = access_token (*)(std::string_view, std::chrono::system_clock::time_point);

  metadata_token_source(http_client& http, std::string what, std::string url, header_list headers,
                        parser parse, bool retry_404, aws_environment env)
      : http_(http),
        what_(std::move(what)),
        url_(std::move(url)),
        headers_(std::move(headers)),
        parse_(parse),
        retry_404_(retry_404),
        env_(std::move(env)) {}

  std::string get(rest_clock::time_point until) override {
    const auto now = env_.now();
    if (!token_.empty() && expires_ - now > seconds(60)) return token_;
    rest_exchange ex;
    ex.endpoint = what_ + " " + url_;
    ex.build = [this](milliseconds left) {
      http_call c;
      c.method = "GET";
      c.url = url_;
      c.headers = headers_;
      c.total_timeout = std::min<milliseconds>(left, milliseconds(2'000));
      return c;
    };
    ex.classify = [this](const http_reply& r, std::string& code, std::string& message,
                         std::string&) {
      if (auto e = parse_cloud_error(r.body)) {
        code = e->code;
        message = e->message;
      } else {
        message = "HTTP " + std::to_string(r.status);
      }
      message = what_ + ": " + message;
      const bool retry = r.status == 429 || r.status >= 500 || (retry_404_ && r.status == 404);
      const cloud_failure kind = r.status == 429                      ? cloud_failure::throttled
                                 : r.status >= 500                    ? cloud_failure::server
                                 : r.status == 401 || r.status == 403 ? cloud_failure::unauthorized
                                 : r.status == 404                    ? cloud_failure::not_found
                                                                      : cloud_failure::client;
      return error_class{kind, retry, false};
    };
    const api_reply r = call_with_retries(
        http_, retry_policy{3, milliseconds(50), milliseconds(500)}, {}, ex, until);
    try {
      access_token t = parse_(r.body, now);
      token_ = std::move(t.token);
      expires_ = t.expires;
    } catch (const cloud_json_error& e) {
      throw cloud_error(cloud_failure::malformed, r.status, "", what_ + ": " + e.what(), "",
                        r.attempts);
    }
    return token_;
  }

  void invalidate() override { token_.clear(); }
  std::string describe() const override { return what_; }

 private:
  http_client& http_;
  std::string what_, url_;
  header_list headers_;
  parser parse_;
  bool retry_404_;
  aws_environment env_;
  std::string token_;
  std::chrono::system_clock::time_point expires_{};
};

}  // namespace

std::string gce_metadata_endpoint(const aws_environment& env) {
  std::string host = env_or(env, "GCE_METADATA_HOST", "metadata.google.internal");
  if (host.find("://") == std::string::npos) host = "http://" + host;
  return trim_slash(host);
}

std::string azure_imds_endpoint(const aws_environment& env) {
  return trim_slash(env_or(env, "AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://169.254.169.254"));
}

std::unique_ptr<token_source> make_gce_token_source(http_client& metadata_http,
                                                    std::string endpoint, aws_environment env) {
  return std::make_unique<metadata_token_source>(
      metadata_http, "GCE metadata",
      trim_slash(std::move(endpoint)) +
          "/computeMetadata/v1/instance/service-accounts/default/token",
      header_list{{"Metadata-Flavor", "Google"}}, &parse_gce_token, false, std::move(env));
}

std::unique_ptr<token_source> make_azure_token_source(http_client& metadata_http,
                                                      std::string endpoint, std::string client_id,
                                                      aws_environment env) {
  std::string url = trim_slash(std::move(endpoint)) +
                    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" +
                    uri_encode("https://management.azure.com/");
  if (!client_id.empty()) url += "&client_id=" + uri_encode(client_id);
  return std::make_unique<metadata_token_source>(metadata_http, "Azure IMDS", std::move(url),
                                                 header_list{{"Metadata", "true"}},
                                                 &parse_azure_token, true, std::move(env));
}

error_class classify_bearer_error(long status, std::string_view code) {
  const std::string c = lower(code);
  // Google reports quota exhaustion as 403 rateLimitExceeded / userRateLimitExceeded.
  if (status == 429 || c == "ratelimitexceeded" || c == "userratelimitexceeded" ||
      c == "toomanyrequests")
    return {cloud_failure::throttled, true, false};
  if (status >= 500) return {cloud_failure::server, true, false};
  if (status == 401) return {cloud_failure::unauthorized, false, true};
  if (status == 403) return {cloud_failure::unauthorized, false, false};
  if (status == 404) return {cloud_failure::not_found, false, false};
  return {cloud_failure::client, false, false};
}

bearer_api::bearer_api(http_client& http, token_source& tokens, retry_policy policy, sleep_fn sleep)
    : http_(http), tokens_(tokens), policy_(policy), sleep_(std::move(sleep)) {}

api_reply bearer_api::call(std::string_view method, const std::string& url, std::string body,
                           std::string_view content_type, const header_list& extra,
                           rest_clock::time_point deadline) {
  rest_exchange ex;
  ex.endpoint = url.substr(0, url.find('/', url.find("://") + 3));
  ex.build = [&](milliseconds left) {
    http_call c;
    c.method = std::string(method);
    c.url = url;
    c.headers = {{"Authorization", "Bearer " + tokens_.get(deadline)}};
    if (!content_type.empty()) c.headers.emplace_back("Content-Type", std::string(content_type));
    for (const auto& h : extra)
      c.headers.push_back(h);
    c.body = body;
    c.total_timeout = left;
    return c;
  };
  ex.classify = [](const http_reply& r, std::string& code, std::string& message, std::string&) {
    if (auto e = parse_cloud_error(r.body)) {
      code = e->code;
      message = e->message;
    } else {
      message = "HTTP " + std::to_string(r.status) + " without an error body";
    }
    return classify_bearer_error(r.status, code);
  };
  ex.refresh = [this] { tokens_.invalidate(); };
  ex.request_id = [](const http_reply& r) {
    for (const char* name : {"x-ms-request-id", "x-request-id", "x-guploader-uploadid"}) {
      std::string v = r.header(name);
      if (!v.empty()) return v;
    }
    return std::string();
  };
  return call_with_retries(http_, policy_, sleep_, ex, deadline);
}

bearer_stack make_bearer_stack(bearer_provider provider, const std::string& ca_file,
                               aws_environment env) {
  bearer_stack s;
  http_settings hs;
  hs.ca_file = ca_file;
  if (hs.ca_file.empty())
    hs.ca_file = env_or(env, "SSL_CERT_FILE", env_or(env, "CURL_CA_BUNDLE", ""));
  s.http = make_curl_client(hs);
  http_settings ms;
  ms.use_proxy = false;  // link-local metadata: a proxy must never see the token
  ms.connect_timeout = milliseconds(1'000);
  s.metadata_http = make_curl_client(ms);
  if (provider == bearer_provider::gcp)
    s.tokens = make_gce_token_source(*s.metadata_http, gce_metadata_endpoint(env), env);
  else
    s.tokens = make_azure_token_source(*s.metadata_http, azure_imds_endpoint(env),
                                       env_or(env, "AZURE_CLIENT_ID", ""), env);
  s.api = std::make_unique<bearer_api>(*s.http, *s.tokens);
  return s;
}

}  // namespace tandem::ctl::cloud
