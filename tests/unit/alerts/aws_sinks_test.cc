// SPDX-License-Identifier: Apache-2.0
// SNS and CloudWatch sinks (control/alerts/aws_sinks.h): the Publish and PutMetricData encoding
// as pure functions, and the dispatcher and publisher against a scripted HTTP client behind the
// real aws_api (signing, retries): filtering, queue overflow, failures without retry storms,
// batches of at most 1000 check times, the interval timer, stop.
#include "control/alerts/aws_sinks.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/cloud/aws_xml.h"

namespace tandem::ctl::alerts {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

alert make_alert(uint64_t serial, std::string name = "heartbeat.node_down",
                 cluster::severity level = cluster::severity::error) {
  alert a;
  a.serial = serial;
  a.cluster = "alpha";
  a.node = "node-a";
  a.module = name.substr(0, name.find('.'));
  a.id = 2;
  a.name = std::move(name);
  a.level = level;
  a.message = "event " + std::to_string(serial);
  a.time = "2025-01-31T12:00:00.250Z";
  return a;
}

// Decodes a form body back into its pairs (the test's own decoder, independent of the encoder).
std::vector<std::pair<std::string, std::string>> form_pairs(const std::string& body) {
  auto decode = [](std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size()) {
        out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out += s[i];
      }
    }
    return out;
  };
  std::vector<std::pair<std::string, std::string>> out;
  size_t start = 0;
  while (start <= body.size()) {
    size_t amp = body.find('&', start);
    if (amp == std::string::npos) amp = body.size();
    const std::string_view part = std::string_view(body).substr(start, amp - start);
    const size_t eq = part.find('=');
    out.emplace_back(decode(part.substr(0, eq)),
                     eq == std::string_view::npos ? "" : decode(part.substr(eq + 1)));
    start = amp + 1;
  }
  return out;
}

std::string param(const std::string& body, const std::string& name) {
  for (const auto& [n, v] : form_pairs(body))
    if (n == name) return v;
  return "<absent>";
}

std::string header(const cloud::http_call& c, const std::string& name) {
  for (const auto& [n, v] : c.headers)
    if (n == name) return v;
  return "";
}

cloud::http_reply publish_ok(const std::string& id) {
  return {200,
          {{"x-amzn-requestid", "req-" + id}},
          "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult>"
          "<MessageId>" +
              id + "</MessageId></PublishResult><ResponseMetadata><RequestId>req-" + id +
              "</RequestId></ResponseMetadata></PublishResponse>",
          "",
          false};
}

cloud::http_reply put_ok() {
  return {200,
          {},
          "<PutMetricDataResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">"
          "<ResponseMetadata><RequestId>req-put</RequestId></ResponseMetadata>"
          "</PutMetricDataResponse>",
          "",
          false};
}

cloud::http_reply aws_error(long status, const std::string& code, const std::string& message) {
  return {status,
          {},
          "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender"
          "</Type><Code>" +
              code + "</Code><Message>" + message +
              "</Message></Error><RequestId>req-err</RequestId></ErrorResponse>",
          "",
          false};
}

// What the fake AWS behind the scripted clients does: replies in order (then success), every
// call seen, every client built, and a gate that holds calls until the test opens it.
struct script {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<cloud::http_reply> replies;
  std::vector<cloud::http_call> calls;
  std::vector<cloud::aws_stack_options> built;
  int factory_failures = 0;
  bool gate_closed = false;
  int published = 0;

  void open_gate() {
    std::lock_guard l(mu);
    gate_closed = false;
    cv.notify_all();
  }
  std::vector<cloud::http_call> seen() {
    std::lock_guard l(mu);
    return calls;
  }
  size_t call_count() {
    std::lock_guard l(mu);
    return calls.size();
  }
};

class scripted_http final : public cloud::http_client {
 public:
  explicit scripted_http(std::shared_ptr<script> s) : s_(std::move(s)) {}
  cloud::http_reply send(const cloud::http_call& c) override {
    std::unique_lock l(s_->mu);
    s_->calls.push_back(c);
    s_->cv.wait(l, [&] { return !s_->gate_closed; });
    if (!s_->replies.empty()) {
      cloud::http_reply r = s_->replies.front();
      s_->replies.pop_front();
      return r;
    }
    if (c.body.starts_with("Action=Publish&"))
      return publish_ok("m" + std::to_string(++s_->published));
    return put_ok();
  }

 private:
  std::shared_ptr<script> s_;
};

class fixed_creds final : public cloud::aws_credential_source {
 public:
  cloud::credentials get() override { return {"AKIDEXAMPLE", "secret", ""}; }
  void invalidate() override {}
  std::string describe() const override { return "test"; }
};

aws_stack_factory scripted_stacks(std::shared_ptr<script> s) {
  return [s](const cloud::aws_stack_options& o) {
    {
      std::lock_guard l(s->mu);
      s->built.push_back(o);
      if (s->factory_failures > 0) {
        --s->factory_failures;
        throw std::runtime_error("no AWS region: AWS_REGION is not set");
      }
    }
    cloud::aws_stack st;
    st.http = std::make_unique<scripted_http>(s);
    st.creds = std::make_unique<fixed_creds>();
    st.api = std::make_unique<cloud::aws_api>(*st.http, *st.creds, o.retry,
                                              [](milliseconds) {});  // no real backoff
    st.service = cloud::default_service(o.service, o.region.empty() ? "us-east-1" : o.region);
    if (!o.endpoint.empty()) st.service.endpoint = o.endpoint;
    return st;
  };
}

// The sinks' executor: an io_context the test runs in its own thread.
class executor_loop {
 public:
  asio::any_io_executor executor() { return io_.get_executor(); }
  bool run_until(const std::function<bool()>& done, milliseconds limit = 5s) {
    const auto end = steady::now() + limit;
    while (!done()) {
      if (steady::now() >= end) return false;
      io_.run_for(2ms);
    }
    return true;
  }
  void run_for(milliseconds d) { io_.run_for(d); }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
};

config::sns_topic_config topic(std::string arn, config::alert_severity min,
                               std::vector<std::string> events = {}) {
  config::sns_topic_config t;
  t.topic_arn = std::move(arn);
  t.region = t.topic_arn.substr(12, t.topic_arn.find(':', 12) - 12);
  t.min_severity = min;
  t.events = std::move(events);
  return t;
}

constexpr const char* arn1 = "arn:aws:sns:eu-west-1:123456789012:tandem-alerts";
constexpr const char* arn2 = "arn:aws:sns:us-east-1:123456789012:pager";

config::alerts_config topics_of(std::vector<config::sns_topic_config> t) {
  config::alerts_config c;
  c.sns = std::move(t);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Encoding

TEST(aws_query_body, encodes_names_and_values_as_the_sdks_do) {
  EXPECT_EQ(query_body("Publish", "2010-03-31",
                       {{"TopicArn", "arn:aws:sns:us-east-1:123456789012:t"},
                        {"Message", "{\"a\": \"b c/d+e~f\"}"}}),
            "Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A"
            "123456789012%3At&Message=%7B%22a%22%3A%20%22b%20c%2Fd%2Be~f%22%7D");
  EXPECT_EQ(query_body("PutMetricData", "2010-08-01", {}),
            "Action=PutMetricData&Version=2010-08-01");
}

TEST(sns_encoding, subject_is_printable_ascii_and_less_than_100_characters) {
  alert a = make_alert(1);
  EXPECT_EQ(sns_subject(a), "tandem alpha: heartbeat.node_down on node-a");
  a.node = "n\xc3\xa9\n1";  // UTF-8 and a line break
  EXPECT_EQ(sns_subject(a), "tandem alpha: heartbeat.node_down on n???1");
  a.cluster = std::string(120, 'c');
  const std::string s = sns_subject(a);
  EXPECT_EQ(s.size(), 99u);
  EXPECT_EQ(s, "tandem " + std::string(92, 'c'));
}

TEST(sns_encoding, publish_parameters_and_fifo_topics) {
  const alert a = make_alert(42);
  const std::string msg = to_json(a).dump();
  EXPECT_EQ(sns_publish_params(arn1, a, msg),
            (cloud::query_params{{"TopicArn", arn1},
                                 {"Subject", "tandem alpha: heartbeat.node_down on node-a"},
                                 {"Message", msg}}));
  const cloud::query_params fifo =
      sns_publish_params("arn:aws:sns:eu-west-1:123456789012:ops.fifo", a, msg);
  ASSERT_EQ(fifo.size(), 5u);
  EXPECT_EQ(fifo[3], (std::pair<std::string, std::string>{"MessageGroupId", "alpha"}));
  EXPECT_EQ(fifo[4], (std::pair<std::string, std::string>{"MessageDeduplicationId",
                                                          "node-a/42/2025-01-31T12:00:00.250Z"}));
}

TEST(sns_encoding, the_publish_answer_is_read_with_the_xml_parser) {
  EXPECT_EQ(cloud::parse_sns_publish(publish_ok("abc-123").body).message_id, "abc-123");
  EXPECT_THROW((void)cloud::parse_sns_publish("<html>proxy login</html>"), cloud::aws_xml_error);
}

TEST(cloudwatch_encoding, timestamps_are_utc_with_milliseconds) {
  using std::chrono::system_clock;
  EXPECT_EQ(iso8601_ms(system_clock::time_point{}), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(iso8601_ms(system_clock::time_point{milliseconds(1738324800250)}),
            "2025-01-31T12:00:00.250Z");
  EXPECT_EQ(iso8601_ms(system_clock::time_point{milliseconds(951782399999)}),
            "2000-02-28T23:59:59.999Z");
}

TEST(cloudwatch_encoding, put_metric_data_names_every_datum_and_its_dimensions) {
  using std::chrono::system_clock;
  const std::vector<check_time> batch = {
      {"web-http", 12'345'678ns, system_clock::time_point{milliseconds(1738324800250)}},
      {"db", 2s, system_clock::time_point{milliseconds(1738324801000)}}};
  const cloud::query_params p = put_metric_data_params("Tandem", "alpha", "node-a", batch);
  const cloud::query_params want = {{"Namespace", "Tandem"},
                                    {"MetricData.member.1.MetricName", "MonitorCheckTime"},
                                    {"MetricData.member.1.Dimensions.member.1.Name", "Cluster"},
                                    {"MetricData.member.1.Dimensions.member.1.Value", "alpha"},
                                    {"MetricData.member.1.Dimensions.member.2.Name", "Node"},
                                    {"MetricData.member.1.Dimensions.member.2.Value", "node-a"},
                                    {"MetricData.member.1.Dimensions.member.3.Name", "Monitor"},
                                    {"MetricData.member.1.Dimensions.member.3.Value", "web-http"},
                                    {"MetricData.member.1.Timestamp", "2025-01-31T12:00:00.250Z"},
                                    {"MetricData.member.1.Value", "12.346"},
                                    {"MetricData.member.1.Unit", "Milliseconds"},
                                    {"MetricData.member.2.MetricName", "MonitorCheckTime"},
                                    {"MetricData.member.2.Dimensions.member.1.Name", "Cluster"},
                                    {"MetricData.member.2.Dimensions.member.1.Value", "alpha"},
                                    {"MetricData.member.2.Dimensions.member.2.Name", "Node"},
                                    {"MetricData.member.2.Dimensions.member.2.Value", "node-a"},
                                    {"MetricData.member.2.Dimensions.member.3.Name", "Monitor"},
                                    {"MetricData.member.2.Dimensions.member.3.Value", "db"},
                                    {"MetricData.member.2.Timestamp", "2025-01-31T12:00:01.000Z"},
                                    {"MetricData.member.2.Value", "2000.000"},
                                    {"MetricData.member.2.Unit", "Milliseconds"}};
  EXPECT_EQ(p, want);
}

// ---------------------------------------------------------------------------------------------
// The SNS dispatcher

TEST(sns_dispatcher, publishes_matching_alerts_signed_for_sns_in_the_topics_region) {
  auto s = std::make_shared<script>();
  executor_loop loop;
  sns_dispatcher d(loop.executor(),
                   topics_of({topic(arn1, config::alert_severity::warning),
                              topic(arn2, config::alert_severity::info, {"quorum.*"})}),
                   {}, scripted_stacks(s));
  alert a = make_alert(7);
  a.about = "node-b";
  EXPECT_EQ(d.post(a), 1u);  // arn2 wants quorum.* only
  EXPECT_EQ(d.post(make_alert(8, "tandemd.started", cluster::severity::info)), 0u);
  EXPECT_EQ(d.post(make_alert(9, "quorum.lost", cluster::severity::info)), 1u);  // arn2 only
  ASSERT_TRUE(loop.run_until([&] {
    const auto st = d.stats();
    return st[0].sent == 1 && st[1].sent == 1;
  })) << s->call_count();

  const std::vector<cloud::http_call> calls = s->seen();
  ASSERT_EQ(calls.size(), 2u);
  const cloud::http_call* c1 = nullptr;
  for (const auto& c : calls)
    if (contains(c.url, "eu-west-1")) c1 = &c;
  ASSERT_NE(c1, nullptr);
  EXPECT_EQ(c1->method, "POST");
  EXPECT_EQ(c1->url, "https://sns.eu-west-1.amazonaws.com/");
  EXPECT_EQ(header(*c1, "Content-Type"), "application/x-www-form-urlencoded; charset=utf-8");
  const std::string auth = header(*c1, "Authorization");
  EXPECT_TRUE(contains(auth, "Credential=AKIDEXAMPLE/")) << auth;
  EXPECT_TRUE(contains(auth, "/eu-west-1/sns/aws4_request")) << auth;
  EXPECT_EQ(param(c1->body, "Action"), "Publish");
  EXPECT_EQ(param(c1->body, "Version"), "2010-03-31");
  EXPECT_EQ(param(c1->body, "TopicArn"), arn1);
  EXPECT_EQ(param(c1->body, "Subject"), "tandem alpha: heartbeat.node_down on node-a");
  EXPECT_EQ(nlohmann::json::parse(param(c1->body, "Message")), to_json(a));
  EXPECT_TRUE(c1->body.starts_with("Action=Publish&Version=2010-03-31&TopicArn="));

  const std::vector<sns_stats> st = d.stats();
  EXPECT_EQ(st[0].topic_arn, arn1);
  EXPECT_EQ(st[0].queued, 0u);
  EXPECT_FALSE(st[0].last_message_id.empty());
  EXPECT_EQ(st[0].last_error, "");
  std::lock_guard l(s->mu);
  ASSERT_EQ(s->built.size(), 2u);  // one client per topic, built at its first call
  EXPECT_EQ(s->built[0].service, "sns");
}

TEST(sns_dispatcher, endpoint_override_and_region_go_to_the_client) {
  auto s = std::make_shared<script>();
  executor_loop loop;
  config::sns_topic_config t = topic(arn1, config::alert_severity::info);
  t.endpoint = "https://10.0.0.9:8443";
  sns_dispatcher d(loop.executor(), topics_of({t}), {}, scripted_stacks(s));
  (void)d.post(make_alert(1));
  (void)d.post(make_alert(2));
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].sent == 2; }));
  const auto calls = s->seen();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].url, "https://10.0.0.9:8443/");
  std::lock_guard l(s->mu);
  ASSERT_EQ(s->built.size(), 1u);  // kept between calls
  EXPECT_EQ(s->built[0].region, "eu-west-1");
  EXPECT_EQ(s->built[0].endpoint, "https://10.0.0.9:8443");
}

TEST(sns_dispatcher, a_refused_publish_is_given_up_at_once_and_reported) {
  auto s = std::make_shared<script>();
  s->replies.push_back(aws_error(403, "AuthorizationError",
                                 "User: arn:aws:iam::123456789012:user/x is not authorized to "
                                 "perform: SNS:Publish"));
  executor_loop loop;
  sns_dispatcher d(loop.executor(), topics_of({topic(arn1, config::alert_severity::info)}), {},
                   scripted_stacks(s));
  std::vector<sns_failure> failures;
  d.on_failure([&](const sns_failure& f) { failures.push_back(f); });
  (void)d.post(make_alert(1));
  (void)d.post(make_alert(2));
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].sent == 1; }));
  EXPECT_EQ(s->call_count(), 2u);  // no retry of the refused one: aws_api decides
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].topic, 0u);
  EXPECT_EQ(failures[0].topic_arn, arn1);
  EXPECT_EQ(failures[0].serial, 1u);
  EXPECT_EQ(failures[0].name, "heartbeat.node_down");
  EXPECT_EQ(failures[0].attempts, 1);
  EXPECT_TRUE(contains(failures[0].error, "AuthorizationError: User: arn:aws:iam::"))
      << failures[0].error;
  EXPECT_TRUE(contains(failures[0].error, "HTTP 403")) << failures[0].error;
  const sns_stats st = d.stats()[0];
  EXPECT_EQ(st.failed, 1u);
  EXPECT_EQ(st.last_error, "");  // the second alert went through
}

TEST(sns_dispatcher, throttling_is_retried_by_aws_api_only) {
  auto s = std::make_shared<script>();
  s->replies.push_back(aws_error(400, "Throttling", "Rate exceeded"));
  s->replies.push_back(aws_error(400, "Throttling", "Rate exceeded"));
  executor_loop loop;
  sns_options o;
  o.retry.max_attempts = 3;
  sns_dispatcher d(loop.executor(), topics_of({topic(arn1, config::alert_severity::info)}), o,
                   scripted_stacks(s));
  (void)d.post(make_alert(1));
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].sent == 1; }));
  EXPECT_EQ(s->call_count(), 3u);

  // Still throttled after aws_api's attempts: given up, never retried by the dispatcher.
  for (int i = 0; i < 3; ++i)
    s->replies.push_back(aws_error(400, "Throttling", "Rate exceeded"));
  int failed = 0;
  d.on_failure([&](const sns_failure& f) {
    ++failed;
    EXPECT_EQ(f.attempts, 3);
  });
  (void)d.post(make_alert(2));
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].failed == 1; }));
  loop.run_for(50ms);
  EXPECT_EQ(s->call_count(), 6u);
  EXPECT_EQ(failed, 1);
}

TEST(sns_dispatcher, a_full_queue_drops_the_oldest_and_order_is_kept) {
  auto s = std::make_shared<script>();
  s->gate_closed = true;
  executor_loop loop;
  sns_options o;
  o.queue_limit = 2;
  sns_dispatcher d(loop.executor(), topics_of({topic(arn1, config::alert_severity::info)}), o,
                   scripted_stacks(s));
  (void)d.post(make_alert(1));
  ASSERT_TRUE(loop.run_until([&] { return s->call_count() == 1; }));  // 1 is in flight
  for (uint64_t i = 2; i <= 5; ++i)
    (void)d.post(make_alert(i));  // 2 and 3 are pushed out by 4 and 5
  sns_stats st = d.stats()[0];
  EXPECT_EQ(st.dropped, 2u);
  EXPECT_EQ(st.queued, 3u);
  s->open_gate();
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].sent == 3; }));
  std::vector<std::string> order;
  for (const auto& c : s->seen())
    order.push_back(nlohmann::json::parse(param(c.body, "Message")).at("message"));
  EXPECT_EQ(order, (std::vector<std::string>{"event 1", "event 4", "event 5"}));
  EXPECT_EQ(d.stats()[0].queued, 0u);
}

TEST(sns_dispatcher, a_client_that_cannot_be_built_fails_the_alert_and_is_tried_again) {
  auto s = std::make_shared<script>();
  s->factory_failures = 1;
  executor_loop loop;
  sns_dispatcher d(loop.executor(), topics_of({topic(arn1, config::alert_severity::info)}), {},
                   scripted_stacks(s));
  std::vector<sns_failure> failures;
  d.on_failure([&](const sns_failure& f) { failures.push_back(f); });
  (void)d.post(make_alert(1));
  ASSERT_TRUE(loop.run_until([&] { return failures.size() == 1; }));
  EXPECT_EQ(failures[0].attempts, 0);
  EXPECT_EQ(failures[0].error, "no AWS region: AWS_REGION is not set");
  EXPECT_EQ(s->call_count(), 0u);
  (void)d.post(make_alert(2));
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].sent == 1; }));
}

TEST(sns_dispatcher, an_answer_without_a_message_id_is_a_failure) {
  auto s = std::make_shared<script>();
  s->replies.push_back({200, {}, "<html>Please log in to the proxy</html>", "", false});
  executor_loop loop;
  sns_dispatcher d(loop.executor(), topics_of({topic(arn1, config::alert_severity::info)}), {},
                   scripted_stacks(s));
  (void)d.post(make_alert(1));
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].failed == 1; }));
  EXPECT_EQ(d.stats()[0].last_error,
            "SNS answered HTTP 200 with no Publish result (is the endpoint SNS?): Publish: root "
            "element is \"html\", not \"PublishResponse\"");
}

TEST(sns_dispatcher, stop_discards_the_queue_and_later_posts) {
  auto s = std::make_shared<script>();
  s->gate_closed = true;
  executor_loop loop;
  auto d = std::make_unique<sns_dispatcher>(loop.executor(),
                                            topics_of({topic(arn1, config::alert_severity::info)}),
                                            sns_options{}, scripted_stacks(s));
  (void)d->post(make_alert(1));
  (void)d->post(make_alert(2));
  ASSERT_TRUE(loop.run_until([&] { return s->call_count() == 1; }));
  d->retire();  // on the executor: does not wait for the call in flight
  EXPECT_EQ(d->post(make_alert(3)), 0u);
  s->open_gate();
  d->stop();  // waits for it
  loop.run_for(20ms);
  EXPECT_EQ(s->call_count(), 1u);
  EXPECT_EQ(d->stats()[0].sent, 0u);  // its answer came after retire(): dropped
  EXPECT_EQ(d->stats()[0].queued, 0u);
}

// ---------------------------------------------------------------------------------------------
// The CloudWatch publisher

config::cloudwatch_config cw_config(milliseconds interval = 60s) {
  config::cloudwatch_config c;
  c.present = true;
  c.metric_namespace = "Tandem/test";
  c.region = "eu-central-1";
  c.interval = interval;
  return c;
}

TEST(cloudwatch_publisher, sends_at_most_1000_check_times_per_call) {
  auto s = std::make_shared<script>();
  executor_loop loop;
  cloudwatch_publisher p(loop.executor(), cw_config(), "alpha", "node-a", {}, scripted_stacks(s));
  for (int i = 0; i < 2500; ++i)
    p.record("mon" + std::to_string(i % 3), std::chrono::microseconds(1500 + i));
  EXPECT_EQ(p.stats().buffered, 2500u);
  p.flush();
  ASSERT_TRUE(loop.run_until([&] { return p.stats().datums_sent == 2500; }));
  const auto calls = s->seen();
  ASSERT_EQ(calls.size(), 3u);
  const std::string& b = calls[0].body;
  EXPECT_EQ(calls[0].url, "https://monitoring.eu-central-1.amazonaws.com/");
  EXPECT_TRUE(contains(header(calls[0], "Authorization"), "/eu-central-1/monitoring/aws4_request"));
  EXPECT_TRUE(b.starts_with("Action=PutMetricData&Version=2010-08-01&Namespace=Tandem%2Ftest&"));
  EXPECT_EQ(param(b, "MetricData.member.1.MetricName"), "MonitorCheckTime");
  EXPECT_EQ(param(b, "MetricData.member.1.Dimensions.member.1.Value"), "alpha");
  EXPECT_EQ(param(b, "MetricData.member.1.Dimensions.member.2.Value"), "node-a");
  EXPECT_EQ(param(b, "MetricData.member.1.Dimensions.member.3.Value"), "mon0");
  EXPECT_EQ(param(b, "MetricData.member.1.Value"), "1.500");
  EXPECT_EQ(param(b, "MetricData.member.1.Unit"), "Milliseconds");
  EXPECT_EQ(param(b, "MetricData.member.1000.Dimensions.member.3.Value"), "mon0");  // i = 999
  EXPECT_EQ(param(b, "MetricData.member.1001.MetricName"), "<absent>");
  EXPECT_EQ(param(calls[1].body, "MetricData.member.1.Value"), "2.500");  // i = 1000
  EXPECT_EQ(param(calls[2].body, "MetricData.member.500.Value"), "3.999");
  EXPECT_EQ(param(calls[2].body, "MetricData.member.501.MetricName"), "<absent>");
  const auto ts = param(b, "MetricData.member.1.Timestamp");
  EXPECT_EQ(ts.size(), 24u) << ts;
  EXPECT_EQ(ts.back(), 'Z');
  const cloudwatch_stats st = p.stats();
  EXPECT_EQ(st.calls, 3u);
  EXPECT_EQ(st.failed_calls, 0u);
  EXPECT_EQ(st.buffered, 0u);
  EXPECT_EQ(st.metric_namespace, "Tandem/test");
  std::lock_guard l(s->mu);
  ASSERT_EQ(s->built.size(), 1u);
  EXPECT_EQ(s->built[0].service, "monitoring");
  EXPECT_EQ(s->built[0].region, "eu-central-1");
}

TEST(cloudwatch_publisher, a_failed_call_gives_up_the_rest_and_is_logged_once) {
  auto s = std::make_shared<script>();
  s->replies.push_back(aws_error(403, "AccessDenied",
                                 "User is not authorized to perform: cloudwatch:PutMetricData"));
  executor_loop loop;
  cloudwatch_publisher p(loop.executor(), cw_config(), "alpha", "node-a", {}, scripted_stacks(s));
  std::vector<std::string> lines;
  p.on_log([&](const std::string& line) { lines.push_back(line); });
  for (int i = 0; i < 1500; ++i)
    p.record("web", 1ms);
  p.flush();
  ASSERT_TRUE(loop.run_until([&] { return p.stats().failed_calls == 1; }));
  EXPECT_EQ(s->call_count(), 1u);  // the second thousand is not tried after a refusal
  cloudwatch_stats st = p.stats();
  EXPECT_EQ(st.datums_failed, 1500u);
  EXPECT_EQ(st.datums_sent, 0u);
  EXPECT_TRUE(contains(st.last_error, "AccessDenied: User is not authorized")) << st.last_error;
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(
      lines[0].starts_with("CloudWatch PutMetricData to namespace Tandem/test failed "
                           "(1500 check times lost; further failures are only counted): "
                           "AccessDenied"))
      << lines[0];

  s->replies.push_back(aws_error(403, "AccessDenied", "still not"));
  p.record("web", 1ms);
  p.flush();
  ASSERT_TRUE(loop.run_until([&] { return p.stats().failed_calls == 2; }));
  EXPECT_EQ(lines.size(), 1u);  // no line per failure

  p.record("web", 1ms);
  p.flush();
  ASSERT_TRUE(loop.run_until([&] { return p.stats().datums_sent == 1; }));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "CloudWatch PutMetricData to namespace Tandem/test works again");
  EXPECT_EQ(p.stats().last_error, "");
}

TEST(cloudwatch_publisher, the_timer_sends_every_interval_and_not_before_start) {
  auto s = std::make_shared<script>();
  executor_loop loop;
  cloudwatch_publisher p(loop.executor(), cw_config(30ms), "alpha", "node-a", {},
                         scripted_stacks(s));
  p.record("web", 3ms);
  loop.run_for(100ms);
  EXPECT_EQ(s->call_count(), 0u);
  p.start();
  ASSERT_TRUE(loop.run_until([&] { return p.stats().datums_sent == 1; }));
  p.record("web", 4ms);
  p.record("db", 5ms);
  ASSERT_TRUE(loop.run_until([&] { return p.stats().datums_sent == 3; }));
  EXPECT_EQ(s->call_count(), 2u);
  loop.run_for(100ms);  // nothing buffered: no empty calls
  EXPECT_EQ(s->call_count(), 2u);
}

TEST(cloudwatch_publisher, one_call_at_a_time_and_a_bounded_buffer) {
  auto s = std::make_shared<script>();
  s->gate_closed = true;
  executor_loop loop;
  cloudwatch_options o;
  o.buffer_limit = 3;
  cloudwatch_publisher p(loop.executor(), cw_config(), "alpha", "node-a", o, scripted_stacks(s));
  p.record("a", 1ms);
  p.flush();
  ASSERT_TRUE(loop.run_until([&] { return s->call_count() == 1; }));
  for (int i = 0; i < 5; ++i)
    p.record("m" + std::to_string(i), 1ms);
  p.flush();  // in flight: sent when the call ends
  cloudwatch_stats st = p.stats();
  EXPECT_EQ(st.datums_dropped, 2u);
  EXPECT_EQ(st.buffered, 4u);  // one in flight, three waiting
  s->open_gate();
  ASSERT_TRUE(loop.run_until([&] { return p.stats().datums_sent == 4; }));
  const auto calls = s->seen();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(param(calls[1].body, "MetricData.member.1.Dimensions.member.3.Value"), "m2");
  EXPECT_EQ(param(calls[1].body, "MetricData.member.3.Dimensions.member.3.Value"), "m4");
}

TEST(cloudwatch_publisher, stop_discards_what_is_buffered) {
  auto s = std::make_shared<script>();
  executor_loop loop;
  cloudwatch_publisher p(loop.executor(), cw_config(20ms), "alpha", "node-a", {},
                         scripted_stacks(s));
  p.start();
  p.record("web", 1ms);
  p.stop();
  p.record("web", 1ms);
  loop.run_for(80ms);
  EXPECT_EQ(s->call_count(), 0u);
  EXPECT_EQ(p.stats().buffered, 0u);
}

}  // namespace
}  // namespace tandem::ctl::alerts
