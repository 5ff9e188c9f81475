// SPDX-License-Identifier: Apache-2.0
// aws_api's retry rules and error reports with a scripted HTTP client: throttling and 5xx are
// retried with growing, jittered backoff; client errors are not; expired credentials are
// refreshed once; the deadline bounds everything; failures carry code, message and request id.
#include "control/cloud/aws_api.h"

#include <deque>

#include <gtest/gtest.h>

#include "control/cloud/ec2.h"

namespace tandem::ctl::cloud {
namespace {

using namespace std::chrono_literals;

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

class scripted_http final : public http_client {
 public:
  std::deque<http_reply> replies;
  std::vector<http_call> calls;

  http_reply send(const http_call& call) override {
    calls.push_back(call);
    if (replies.empty()) return {0, {}, "", "script exhausted", false};
    http_reply r = replies.front();
    replies.pop_front();
    return r;
  }
};

class fixed_creds final : public aws_credential_source {
 public:
  int gets = 0, invalidations = 0;
  credentials get() override {
    ++gets;
    return {"AKIDEXAMPLE", "secret", invalidations > 0 ? "token-2" : "token-1"};
  }
  void invalidate() override { ++invalidations; }
  std::string describe() const override { return "test"; }
};

http_reply ok(std::string body, std::string request_id = "req-ok") {
  return {200, {{"x-amzn-requestid", std::move(request_id)}}, std::move(body), "", false};
}

http_reply ec2_error(long status, const std::string& code, const std::string& message) {
  return {status,
          {},
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>" + code +
              "</Code><Message>" + message + "</Message></Error></Errors><RequestID>req-" + code +
              "</RequestID></Response>",
          "",
          false};
}

const char* replace_ok =
    "<ReplaceRouteResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
    "<requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId><return>true</return>"
    "</ReplaceRouteResponse>";

class aws_api_test : public ::testing::Test {
 protected:
  scripted_http http;
  fixed_creds creds;
  std::vector<std::chrono::milliseconds> sleeps;
  aws_api api{http, creds, retry_policy{},
              [this](std::chrono::milliseconds d) { sleeps.push_back(d); }};
  aws_service ec2svc{"ec2", "us-east-1", "https://ec2.us-east-1.amazonaws.com"};

  api_reply replace(std::chrono::milliseconds budget = 10s) {
    return api.ec2(ec2svc, "ReplaceRoute",
                   {{"RouteTableId", "rtb-1"},
                    {"DestinationCidrBlock", "10.200.0.10/32"},
                    {"NetworkInterfaceId", "eni-1"}},
                   aws_api::clock::now() + budget);
  }
};

TEST_F(aws_api_test, an_ec2_action_is_a_signed_form_post) {
  http.replies.push_back(ok(replace_ok));
  const api_reply r = replace();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.request_id, "req-ok");
  EXPECT_EQ(r.attempts, 1);
  ASSERT_EQ(http.calls.size(), 1u);
  const http_call& c = http.calls[0];
  EXPECT_EQ(c.method, "POST");
  EXPECT_EQ(c.url, "https://ec2.us-east-1.amazonaws.com/");
  EXPECT_EQ(c.body,
            "Action=ReplaceRoute&Version=2016-11-15&RouteTableId=rtb-1&DestinationCidrBlock=10."
            "200.0.10%2F32&NetworkInterfaceId=eni-1");
  std::string auth, token, type;
  for (const auto& [n, v] : c.headers) {
    if (n == "Authorization") auth = v;
    if (n == "X-Amz-Security-Token") token = v;
    if (n == "Content-Type") type = v;
  }
  EXPECT_TRUE(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")) << auth;
  EXPECT_TRUE(contains(auth, "/us-east-1/ec2/aws4_request")) << auth;
  EXPECT_TRUE(contains(auth, "x-amz-security-token")) << auth;  // the session token is signed
  EXPECT_EQ(token, "token-1");
  EXPECT_EQ(type, "application/x-www-form-urlencoded; charset=utf-8");
  ASSERT_TRUE(c.total_timeout.has_value());
  EXPECT_LE(*c.total_timeout, 10s);
}

TEST_F(aws_api_test, throttling_is_retried_with_growing_jittered_backoff) {
  http.replies.push_back(ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."));
  http.replies.push_back(ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."));
  http.replies.push_back(ok(replace_ok));
  const api_reply r = replace();
  EXPECT_EQ(r.attempts, 3);
  ASSERT_EQ(sleeps.size(), 2u);
  // Equal jitter: at least half of each exponential step (100 ms, 200 ms), at most all of it.
  EXPECT_GE(sleeps[0], 50ms);
  EXPECT_LE(sleeps[0], 100ms);
  EXPECT_GE(sleeps[1], 100ms);
  EXPECT_LE(sleeps[1], 200ms);
}

TEST_F(aws_api_test, route53_throttling_and_prior_request_are_retried_too) {
  http.replies.push_back({400,
                          {},
                          "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                          "<Message>Rate exceeded</Message></Error><RequestId>r1</RequestId>"
                          "</ErrorResponse>",
                          "",
                          false});
  http.replies.push_back({400,
                          {},
                          "<ErrorResponse><Error><Code>PriorRequestNotComplete</Code><Message>"
                          "still processing</Message></Error><RequestId>r2</RequestId>"
                          "</ErrorResponse>",
                          "",
                          false});
  http.replies.push_back(ok("<x/>"));
  aws_service r53 = default_service("route53", "eu-west-1");
  const api_reply r =
      api.call(r53, "GET", "/2013-04-01/change/C1", {}, "", "", aws_api::clock::now() + 10s);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(http.calls[0].url, "https://route53.amazonaws.com/2013-04-01/change/C1");
}

TEST_F(aws_api_test, not_authorized_is_not_retried_and_names_code_message_and_request_id) {
  http.replies.push_back(
      ec2_error(403, "UnauthorizedOperation", "You are not authorized to perform this operation."));
  try {
    (void)replace();
    FAIL() << "no exception";
  } catch (const cloud_error& e) {
    EXPECT_EQ(e.kind(), cloud_failure::unauthorized);
    EXPECT_EQ(e.code(), "UnauthorizedOperation");
    EXPECT_EQ(e.request_id(), "req-UnauthorizedOperation");
    EXPECT_EQ(e.attempts(), 1);
    EXPECT_STREQ(e.what(),
                 "UnauthorizedOperation: You are not authorized to perform this operation. (HTTP "
                 "403, request id req-UnauthorizedOperation)");
  }
  EXPECT_EQ(http.calls.size(), 1u);
  EXPECT_TRUE(sleeps.empty());
}

TEST_F(aws_api_test, not_found_and_other_client_errors_are_not_retried) {
  http.replies.push_back(
      ec2_error(400, "InvalidRouteTableID.NotFound", "The routeTable ID 'rtb-1' does not exist"));
  try {
    (void)replace();
    FAIL() << "no exception";
  } catch (const cloud_error& e) {
    EXPECT_EQ(e.kind(), cloud_failure::not_found);
  }
  http.replies.push_back(ec2_error(400, "InvalidParameterValue", "bad"));
  try {
    (void)replace();
    FAIL() << "no exception";
  } catch (const cloud_error& e) {
    EXPECT_EQ(e.kind(), cloud_failure::client);
  }
  EXPECT_EQ(http.calls.size(), 2u);
}

TEST_F(aws_api_test, expired_credentials_are_fetched_again_once) {
  http.replies.push_back(ec2_error(400, "RequestExpired", "Request has expired."));
  http.replies.push_back(ok(replace_ok));
  const api_reply r = replace();
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(creds.invalidations, 1);
  std::string token;
  for (const auto& [n, v] : http.calls[1].headers)
    if (n == "X-Amz-Security-Token") token = v;
  EXPECT_EQ(token, "token-2");
  EXPECT_TRUE(sleeps.empty());

  // A second expiry in the same call is a failure, not a loop.
  http.replies.push_back(ec2_error(400, "ExpiredToken", "expired"));
  http.replies.push_back(ec2_error(400, "ExpiredToken", "expired"));
  EXPECT_THROW((void)replace(), cloud_error);
}

TEST_F(aws_api_test, server_errors_stop_after_the_attempts_with_the_last_error) {
  for (int i = 0; i < 6; ++i)
    http.replies.push_back(ec2_error(500, "InternalError", "oops"));
  try {
    (void)replace();
    FAIL() << "no exception";
  } catch (const cloud_error& e) {
    EXPECT_EQ(e.kind(), cloud_failure::server);
    EXPECT_EQ(e.attempts(), 5);
    EXPECT_TRUE(contains(e.what(),
                         "InternalError: oops (HTTP 500, request id req-InternalError, "
                         "5 attempts)"))
        << e.what();
  }
  EXPECT_EQ(http.calls.size(), 5u);
}

TEST_F(aws_api_test, no_answer_is_a_timeout_or_network_failure_bounded_by_the_deadline) {
  http.replies.push_back({0, {}, "", "Operation timed out after 300 milliseconds", true});
  // The backoff would end after the deadline: no second attempt.
  aws_api slow(http, creds, retry_policy{5, 10'000ms, 10'000ms},
               [this](std::chrono::milliseconds d) { sleeps.push_back(d); });
  try {
    (void)slow.ec2(ec2svc, "DescribeVpcs", {}, aws_api::clock::now() + 1s);
    FAIL() << "no exception";
  } catch (const cloud_error& e) {
    EXPECT_EQ(e.kind(), cloud_failure::timeout);
    EXPECT_TRUE(contains(e.what(), "Timeout occurred")) << e.what();
    EXPECT_TRUE(contains(e.what(), "ec2.us-east-1.amazonaws.com")) << e.what();
  }
  EXPECT_EQ(http.calls.size(), 1u);

  http.replies.push_back({0, {}, "", "Connection refused", false});
  http.replies.push_back(ok(replace_ok));
  EXPECT_EQ(replace().attempts, 2);

  // A deadline already passed sends nothing.
  const size_t before = http.calls.size();
  EXPECT_THROW((void)replace(-1ms), cloud_error);
  EXPECT_EQ(http.calls.size(), before);
}

TEST_F(aws_api_test, an_error_page_that_is_not_aws_xml_still_reports_the_status) {
  http.replies.push_back(
      {403, {{"x-amzn-requestid", "hdr-1"}}, "<html>blocked by proxy</html>", "", false});
  try {
    (void)replace();
    FAIL() << "no exception";
  } catch (const cloud_error& e) {
    EXPECT_EQ(e.kind(), cloud_failure::unauthorized);
    EXPECT_EQ(e.request_id(), "hdr-1");
    EXPECT_TRUE(contains(e.what(), "HTTP 403 without an AWS error body")) << e.what();
  }
}

TEST_F(aws_api_test, an_unexpected_success_body_is_malformed_with_the_request_id) {
  http.replies.push_back(ok("<Nonsense/>", "req-9"));
  ec2_client ec2(api, ec2svc);
  try {
    (void)ec2.replace_route("rtb-1", "10.200.0.10/32", "eni-1", aws_api::clock::now() + 5s);
    FAIL() << "no exception";
  } catch (const cloud_error& e) {
    EXPECT_EQ(e.kind(), cloud_failure::malformed);
    EXPECT_EQ(e.request_id(), "req-9");
    EXPECT_TRUE(contains(e.what(), "ReplaceRoute: ")) << e.what();
  }
}

TEST(aws_service_defaults, endpoints_and_signing_regions_per_partition) {
  aws_service s = default_service("ec2", "eu-west-1");
  EXPECT_EQ(s.endpoint, "https://ec2.eu-west-1.amazonaws.com");
  EXPECT_EQ(s.region, "eu-west-1");
  s = default_service("ec2", "cn-north-1");
  EXPECT_EQ(s.endpoint, "https://ec2.cn-north-1.amazonaws.com.cn");
  s = default_service("route53", "ap-southeast-2");
  EXPECT_EQ(s.endpoint, "https://route53.amazonaws.com");
  EXPECT_EQ(s.region, "us-east-1");
  s = default_service("route53", "cn-northwest-1");
  EXPECT_EQ(s.endpoint, "https://route53.amazonaws.com.cn");
  EXPECT_EQ(s.region, "cn-northwest-1");
  s = default_service("route53", "us-gov-west-1");
  EXPECT_EQ(s.endpoint, "https://route53.us-gov.amazonaws.com");
  EXPECT_EQ(s.region, "us-gov-west-1");
}

TEST(aws_error_classes, the_sdk_rules) {
  EXPECT_TRUE(classify_aws_error(503, "RequestLimitExceeded").retry);
  EXPECT_TRUE(classify_aws_error(400, "Throttling").retry);
  EXPECT_TRUE(classify_aws_error(429, "").retry);
  EXPECT_TRUE(classify_aws_error(502, "").retry);
  EXPECT_FALSE(classify_aws_error(403, "AccessDenied").retry);
  EXPECT_EQ(classify_aws_error(400, "InvalidRouteTableId.NotFound").kind, cloud_failure::not_found);
  EXPECT_EQ(classify_aws_error(404, "NoSuchHostedZone").kind, cloud_failure::not_found);
  EXPECT_TRUE(classify_aws_error(400, "ExpiredToken").refresh_credentials);
  EXPECT_EQ(classify_aws_error(400, "InvalidChangeBatch").kind, cloud_failure::client);
}

}  // namespace
}  // namespace tandem::ctl::cloud
