// SPDX-License-Identifier: Apache-2.0
// Signed AWS calls with SDK-style retries; the rules follow botocore's _retry.json (5 attempts,
// exponential backoff, throttling codes per service) with jitter so that two nodes retrying the
// same throttled account do not stay in step.
#include "control/cloud/aws_api.h"

#include <algorithm>
#include <cctype>
#include <random>
#include <thread>

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

std::string_view to_string(aws_failure f) noexcept {
  switch (f) {
    case aws_failure::network:
      return "network";
    case aws_failure::timeout:
      return "timeout";
    case aws_failure::throttled:
      return "throttled";
    case aws_failure::server:
      return "server";
    case aws_failure::unauthorized:
      return "unauthorized";
    case aws_failure::not_found:
      return "not_found";
    case aws_failure::client:
      return "client";
    case aws_failure::malformed:
      return "malformed";
  }
  return "?";
}

namespace {

std::string error_text(aws_failure kind, long status, const std::string& code,
                       const std::string& message, const std::string& request_id, int attempts) {
  std::string s;
  if (kind == aws_failure::timeout) {
    s = "Timeout occurred";
    if (!message.empty()) s += ": " + message;
  } else if (!code.empty()) {
    s = code + ": " + message;
  } else {
    s = message;
  }
  std::string detail;
  if (status != 0) detail = "HTTP " + std::to_string(status);
  if (!request_id.empty()) detail += (detail.empty() ? "" : ", ") + ("request id " + request_id);
  if (attempts > 1) detail += (detail.empty() ? "" : ", ") + std::to_string(attempts) + " attempts";
  if (!detail.empty()) s += " (" + detail + ")";
  return s;
}

}  // namespace

aws_error::aws_error(aws_failure kind, long http_status, std::string code, std::string message,
                     std::string request_id, int attempts)
    : std::runtime_error(error_text(kind, http_status, code, message, request_id, attempts)),
      kind_(kind),
      http_status_(http_status),
      code_(std::move(code)),
      message_(std::move(message)),
      request_id_(std::move(request_id)),
      attempts_(attempts) {}

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
    if (iequals(code, t)) return {aws_failure::throttled, true, false};
  if (iequals(code, "ExpiredToken") || iequals(code, "ExpiredTokenException") ||
      iequals(code, "RequestExpired") || iequals(code, "InvalidToken"))
    return {aws_failure::unauthorized, false, true};
  if (status == 429) return {aws_failure::throttled, true, false};
  if (status >= 500) return {aws_failure::server, true, false};
  if (status == 401 || status == 403 || iequals(code, "UnauthorizedOperation") ||
      iequals(code, "AuthFailure") || iequals(code, "AccessDenied") ||
      iequals(code, "SignatureDoesNotMatch") || iequals(code, "InvalidClientTokenId"))
    return {aws_failure::unauthorized, false, false};
  if (ends_with_ci(code, ".NotFound") || starts_with(code, "NoSuch") || status == 404)
    return {aws_failure::not_found, false, false};
  return {aws_failure::client, false, false};
}

std::string ec2_query_body(std::string_view action, const query_params& params) {
  std::string body = "Action=" + uri_encode(action) + "&Version=2016-11-15";
  for (const auto& [name, value] : params)
    body += "&" + uri_encode(name) + "=" + uri_encode(value);
  return body;
}

aws_api::aws_api(http_client& http, aws_credential_source& creds, retry_policy policy,
                 std::function<void(std::chrono::milliseconds)> sleep)
    : http_(http), creds_(creds), policy_(policy), sleep_(std::move(sleep)) {
  if (!sleep_) sleep_ = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
}

aws_reply aws_api::call(const aws_service& svc, std::string_view method, std::string_view path,
                        const query_params& query, std::string body, std::string_view content_type,
                        clock::time_point deadline) {
  using std::chrono::milliseconds;
  thread_local std::minstd_rand jitter{std::random_device{}()};
  bool refreshed = false;
  int attempt = 0;
  for (;;) {
    ++attempt;
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - clock::now());
    if (left <= milliseconds(0))
      throw aws_error(aws_failure::timeout, 0, "", "no time left before the deadline", "",
                      attempt - 1);

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
    http_reply r = http_.send(call);

    std::string request_id = request_id_header(r);
    if (r.status >= 200 && r.status < 300)
      return {r.status, std::move(r.body), std::move(request_id), attempt};

    error_class cls{};
    std::string code, message;
    if (r.status == 0) {
      cls = {r.timed_out ? aws_failure::timeout : aws_failure::network, true, false};
      message = r.timed_out ? "no answer from " + svc.endpoint + " in time: " + r.error
                            : "no answer from " + svc.endpoint + ": " + r.error;
    } else {
      std::optional<aws_error_body> e = parse_aws_error(r.body);
      if (e) {
        code = e->code;
        message = e->message;
        if (!e->request_id.empty()) request_id = e->request_id;
      } else {
        message = "HTTP " + std::to_string(r.status) + " without an AWS error body";
      }
      cls = classify_aws_error(r.status, code);
    }

    if (cls.refresh_credentials && !refreshed) {
      refreshed = true;
      creds_.invalidate();
      continue;  // at once: nothing to wait for
    }
    const bool can_retry = cls.retry && attempt < policy_.max_attempts;
    if (can_retry) {
      // Equal jitter: half the exponential step for sure, the other half at random.
      const milliseconds step = std::min<milliseconds>(
          policy_.cap, policy_.base * (int64_t{1} << std::min(attempt - 1, 20)));
      const auto half = std::max<milliseconds::rep>(step.count() / 2, 0);
      const milliseconds wait =
          milliseconds(half + std::uniform_int_distribution<milliseconds::rep>(0, half)(jitter));
      // Retry only if an attempt still fits after the backoff; a timeout already spent `left`.
      if (clock::now() + wait < deadline) {
        sleep_(wait);
        continue;
      }
    }
    throw aws_error(cls.kind, r.status, std::move(code), std::move(message), std::move(request_id),
                    attempt);
  }
}

aws_reply aws_api::ec2(const aws_service& svc, std::string_view action, const query_params& params,
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
