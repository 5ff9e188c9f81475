// SPDX-License-Identifier: Apache-2.0
// Signed AWS calls with SDK-style retries; the rules follow botocore's _retry.json (5 attempts,
// exponential backoff, throttling codes per service) with jitter so that two nodes retrying the
// same throttled account do not stay in step.
#include "control/cloud/aws_api.h"

#include <algorithm>
#include <cctype>

#include "control/cloud/aws_xml.h"
#include "control/cloud/sigv4.h"

namespace tandem::ctl::cloud {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// host[:port] of scheme://host[:port]/...
std::string host_of(std::string_view url) {
  auto p = url.find("://");
  std::string_view rest = p == std::string_view::npos ? url : url.substr(p + 3);
  return std::string(rest.substr(0, rest.find('/')));
}

std::string request_id_header(const http_reply& r) {
  for (const char* name : {"x-amzn-requestid", "x-amz-request-id", "x-amzn-request-id"}) {
    std::string v = r.header(name);
    if (!v.empty()) return v;
  }
  return {};
}

}  // namespace

aws_service default_service(std::string_view service, std::string_view region) {
  const bool china = starts_with(region, "cn-");
  const std::string suffix = china ? ".amazonaws.com.cn" : ".amazonaws.com";
  if (service == "route53") {
    // Route 53 has one endpoint per partition and signs for that partition's home region.
    std::string home = china                            ? "cn-northwest-1"
                       : starts_with(region, "us-gov-") ? "us-gov-west-1"
                                                        : "us-east-1";
    std::string host =
        starts_with(region, "us-gov-") ? "route53.us-gov.amazonaws.com" : "route53" + suffix;
    return {"route53", home, "https://" + host};
  }
  return {std::string(service), std::string(region),
          "https://" + std::string(service) + "." + std::string(region) + suffix};
}

error_class classify_aws_error(long status, std::string_view code) {
  // Throttling answers: EC2 sends 503 RequestLimitExceeded, Route 53 400 Throttling or
  // PriorRequestNotComplete, other services ThrottlingException / TooManyRequestsException.
  static constexpr std::string_view throttles[] = {"Throttling",
                                                   "ThrottlingException",
                                                   "ThrottledException",
                                                   "RequestThrottled",
                                                   "RequestLimitExceeded",
                                                   "TooManyRequestsException",
                                                   "SlowDown",
                                                   "PriorRequestNotComplete",
                                                   "RequestThrottledException",
                                                   "EC2ThrottledException",
                                                   "BandwidthLimitExceeded"};
  for (std::string_view t : throttles)
    if (iequals(code, t)) return {cloud_failure::throttled, true, false};
  if (iequals(code, "ExpiredToken") || iequals(code, "ExpiredTokenException") ||
      iequals(code, "RequestExpired") || iequals(code, "InvalidToken"))
    return {cloud_failure::unauthorized, false, true};
  if (status == 429) return {cloud_failure::throttled, true, false};
  if (status >= 500) return {cloud_failure::server, true, false};
  if (status == 401 || status == 403 || iequals(code, "UnauthorizedOperation") ||
      iequals(code, "AuthFailure") || iequals(code, "AccessDenied") ||
      iequals(code, "SignatureDoesNotMatch") || iequals(code, "InvalidClientTokenId"))
    return {cloud_failure::unauthorized, false, false};
  if (ends_with_ci(code, ".NotFound") || starts_with(code, "NoSuch") || status == 404)
    return {cloud_failure::not_found, false, false};
  return {cloud_failure::client, false, false};
}

std::string ec2_query_body(std::string_view action, const query_params& params) {
  std::string body = "Action=" + uri_encode(action) + "&Version=2016-11-15";
  for (const auto& [name, value] : params)
    body += "&" + uri_encode(name) + "=" + uri_encode(value);
  return body;
}

aws_api::aws_api(http_client& http, aws_credential_source& creds, retry_policy policy,
                 std::function<void(std::chrono::milliseconds)> sleep)
    : http_(http), creds_(creds), policy_(policy), sleep_(std::move(sleep)) {}

api_reply aws_api::call(const aws_service& svc, std::string_view method, std::string_view path,
                        const query_params& query, std::string body, std::string_view content_type,
                        clock::time_point deadline) {
  rest_exchange ex;
  ex.endpoint = svc.endpoint;
  ex.build = [&](std::chrono::milliseconds left) {
    http_request req;
    req.method = std::string(method);
    req.path = std::string(path);
    req.query = query;
    req.headers = {{"Host", host_of(svc.endpoint)}};
    if (!content_type.empty()) req.headers.emplace_back("Content-Type", std::string(content_type));
    req.body = body;
    sign_options opts;
    opts.region = svc.region;
    opts.service = svc.name;
    opts.when = std::chrono::system_clock::now();
    sign_headers(req, creds_.get(), opts);

    http_call call;
    call.method = req.method;
    call.url = svc.endpoint + req.path;
    if (!req.query.empty()) call.url += "?" + query_string(req);
    for (auto& [name, value] : req.headers)
      if (!iequals(name, "Host")) call.headers.emplace_back(name, value);
    call.body = std::move(req.body);
    call.total_timeout = left;
    return call;
  };
  ex.classify = [](const http_reply& r, std::string& code, std::string& message,
                   std::string& request_id) {
    if (std::optional<aws_error_body> e = parse_aws_error(r.body)) {
      code = e->code;
      message = e->message;
      if (!e->request_id.empty()) request_id = e->request_id;
    } else {
      message = "HTTP " + std::to_string(r.status) + " without an AWS error body";
    }
    return classify_aws_error(r.status, code);
  };
  ex.refresh = [this] { creds_.invalidate(); };
  ex.request_id = request_id_header;
  return call_with_retries(http_, policy_, sleep_, ex, deadline);
}

api_reply aws_api::ec2(const aws_service& svc, std::string_view action, const query_params& params,
                       clock::time_point deadline) {
  return call(svc, "POST", "/", {}, ec2_query_body(action, params),
              "application/x-www-form-urlencoded; charset=utf-8", deadline);
}

aws_stack make_aws_stack(const aws_stack_options& options, aws_environment env) {
  aws_stack s;
  http_settings hs = options.http;
  if (hs.ca_file.empty()) {
    if (auto ca = env.getenv("AWS_CA_BUNDLE"); ca && !ca->empty()) hs.ca_file = *ca;
  }
  s.http = make_curl_client(hs);
  http_settings ms;
  ms.use_proxy = false;  // the metadata service is link-local: a proxy must never see its token
  ms.connect_timeout = std::chrono::milliseconds(1'000);
  s.imds_http = make_curl_client(ms);
  s.imds = std::make_unique<imds_client>(*s.imds_http, imds_settings_from(env), env);
  const bool imds_off = [&] {
    auto v = env.getenv("AWS_EC2_METADATA_DISABLED");
    return v && iequals(*v, "true");
  }();
  imds_client* imds = imds_off ? nullptr : s.imds.get();
  s.creds = make_default_credentials(env, imds);
  std::string region = resolve_region(options.region, env, imds);
  s.service = default_service(options.service, region);
  if (!options.endpoint.empty()) {
    s.service.endpoint = options.endpoint;
    while (!s.service.endpoint.empty() && s.service.endpoint.back() == '/')
      s.service.endpoint.pop_back();
  }
  s.api = std::make_unique<aws_api>(*s.http, *s.creds, options.retry);
  return s;
}

}  // namespace tandem::ctl::cloud
