// SPDX-License-Identifier: Apache-2.0
// Alert webhooks (control/alerts/webhook.h): the payload and the filter as pure functions, and
// the dispatcher against the witness's HTTP server on loopback (retries, overflow, order, stop).
#include "control/alerts/webhook.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/witness/server.h"
#include "tests/support/temp_dir.h"

namespace tandem::ctl::alerts {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Helpers

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

config::webhook_config hook_to(const std::string& url,
                               config::alert_severity min = config::alert_severity::info,
                               std::vector<std::string> events = {}, milliseconds timeout = 2s) {
  config::webhook_config w;
  w.url = url;
  w.min_severity = min;
  w.events = std::move(events);
  w.timeout = timeout;
  return w;
}

config::alerts_config alerts_of(std::vector<config::webhook_config> hooks) {
  config::alerts_config c;
  c.webhooks = std::move(hooks);
  return c;
}

dispatch_options fast(size_t queue_limit = 256) {
  dispatch_options o;
  o.queue_limit = queue_limit;
  o.first_backoff = 5ms;
  return o;
}

// What the receiver saw of one POST.
struct received {
  std::string method, path, content_type, authorization, user_agent;
  nlohmann::json body;
  steady::time_point at;
};

// The witness's HTTP server on 127.0.0.1 (ephemeral port), run by its own thread. `status`
// decides the answer to the n-th request (0-based) on a path; 200 by default.
class receiver {
 public:
  using status_fn = std::function<int(const std::string& path, size_t n)>;

  explicit receiver(status_fn status = {}) : status_(std::move(status)) {
    witness::server_options o;
    o.listen = "127.0.0.1:0";
    o.limits.max_body = 65536;
    srv_ = std::make_unique<witness::server>(
        io_, o, [this](const witness::http_request& r, witness::time_point) {
          received got;
          got.method = r.method;
          got.path = std::string(r.path());
          got.content_type = std::string(r.header("content-type").value_or(""));
          got.authorization = std::string(r.header("authorization").value_or(""));
          got.user_agent = std::string(r.header("user-agent").value_or(""));
          got.body = nlohmann::json::parse(r.body, nullptr, false);
          got.at = steady::now();
          std::lock_guard lock(mu_);
          const size_t n = per_path_[got.path]++;
          witness::http_response resp;
          resp.status = status_ ? status_(got.path, n) : 200;
          resp.body = "{}";
          seen_.push_back(std::move(got));
          return resp;
        });
    srv_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~receiver() {
    io_.stop();
    thread_.join();
    srv_->stop();
  }
  receiver(const receiver&) = delete;
  receiver& operator=(const receiver&) = delete;

  std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(srv_->local_endpoint().port()) + path;
  }
  std::vector<received> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  // The serials the path received, in arrival order (failed attempts included).
  std::vector<uint64_t> serials(const std::string& path = "/hook") const {
    std::vector<uint64_t> out;
    for (const received& r : seen())
      if (r.path == path) out.push_back(r.body.value("serial", uint64_t{0}));
    return out;
  }

 private:
  status_fn status_;
  asio::io_context io_;
  std::unique_ptr<witness::server> srv_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<received> seen_;
  std::map<std::string, size_t> per_path_;
};

// The dispatcher's executor: an io_context the test runs in its own thread.
class executor_loop {
 public:
  asio::any_io_executor executor() { return io_.get_executor(); }
  // Runs handlers until `done` holds or `limit` passes; returns whether it holds.
  bool run_until(const std::function<bool()>& done, milliseconds limit = 3s) {
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

// A port on 127.0.0.1 that nothing listens on: bound, read and closed again.
unsigned short closed_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

struct temp_dir : test::temp_dir {
  temp_dir() : test::temp_dir("tandem-alerts") {}
};

// ---------------------------------------------------------------------------------------------
// Pure functions

TEST(alert_payload, holds_every_field_and_the_optional_ones_only_when_set) {
  alert a = make_alert(42);
  EXPECT_EQ(to_json(a), nlohmann::json::parse(R"({
    "serial": 42, "cluster": "alpha", "node": "node-a", "time": "2025-01-31T12:00:00.250Z",
    "severity": "error", "module": "heartbeat", "id": 2, "name": "heartbeat.node_down",
    "message": "event 42"})"));
  a.about = "node-b";
  a.link = 1;
  a.level = cluster::severity::warning;
  const nlohmann::json j = to_json(a);
  EXPECT_EQ(j.at("about"), "node-b");
  EXPECT_EQ(j.at("link"), 1);
  EXPECT_EQ(j.at("severity"), "warning");
  EXPECT_EQ(j.size(), 11u);
}

TEST(alert_filter, name_patterns) {
  struct row {
    const char* pattern;
    const char* name;
    bool match;
  };
  const row rows[] = {
      {"heartbeat.node_down", "heartbeat.node_down", true},
      {"heartbeat.node_down", "heartbeat.node_up", false},
      {"heartbeat.node_down", "heartbeat.node_down_x", false},
      {"heartbeat.node", "heartbeat.node_down", false},
      {"heartbeat.*", "heartbeat.node_down", true},
      {"heartbeat.*", "heartbeat.", true},
      {"heartbeat.*", "heartbeat", false},
      {"heartbeat.*", "heartbeats.node_down", false},
      {"heartbeat.*", "quorum.lost", false},
      {"group.*", "group.started", true},
      {"*", "quorum.lost", true},
      {"*", "", true},
      {"", "", true},
      {"", "quorum.lost", false},
      {"*.lost", "quorum.lost", true},
      {"*.lost", "quorum.lost_x", false},
      {"heartbeat.rejected_*", "heartbeat.rejected_auth", true},
      {"heartbeat.rejected_*", "heartbeat.node_down", false},
      {"*node*", "heartbeat.node_down", true},
      {"a*b*c", "axxbyyc", true},
      {"a*b*c", "axxbyy", false},
      {"a*b*c", "abcabc", true},
      {"**", "x", true},
  };
  for (const row& r : rows)
    EXPECT_EQ(name_matches(r.pattern, r.name), r.match)
        << "pattern \"" << r.pattern << "\" name \"" << r.name << "\"";
}

TEST(alert_filter, severity_and_events) {
  using cluster::severity;
  using config::alert_severity;
  struct row {
    alert_severity min;
    std::vector<std::string> events;
    severity level;
    const char* name;
    bool match;
  };
  const std::vector<row> rows = {
      {alert_severity::info, {}, severity::info, "heartbeat.node_up", true},
      {alert_severity::warning, {}, severity::info, "heartbeat.node_up", false},
      {alert_severity::warning, {}, severity::warning, "heartbeat.delay", true},
      {alert_severity::warning, {}, severity::error, "heartbeat.node_down", true},
      {alert_severity::error, {}, severity::warning, "heartbeat.delay", false},
      {alert_severity::error, {}, severity::error, "quorum.lost", true},
      {alert_severity::info, {"quorum.*"}, severity::error, "quorum.lost", true},
      {alert_severity::info, {"quorum.*"}, severity::error, "heartbeat.node_down", false},
      {alert_severity::info,
       {"quorum.lost", "heartbeat.*"},
       severity::info,
       "heartbeat.link_up",
       true},
      {alert_severity::info,
       {"quorum.lost", "heartbeat.*"},
       severity::info,
       "tandemd.started",
       false},
      {alert_severity::error, {"heartbeat.*"}, severity::warning, "heartbeat.delay", false},
      {alert_severity::info, {"*"}, severity::info, "tandemd.started", true},
  };
  for (const row& r : rows) {
    const config::webhook_config w = hook_to("http://127.0.0.1:1/", r.min, r.events);
    const alert a = make_alert(1, r.name, r.level);
    EXPECT_EQ(matches(w, a), r.match)
        << r.name << " (" << cluster::to_string(r.level) << ") against min "
        << config::to_string(r.min) << " and " << r.events.size() << " patterns";
  }
}

TEST(alert_token, file_is_read_and_trimmed_and_bad_files_are_named) {
  temp_dir dir;
  EXPECT_EQ(read_token_file(dir.write("t", "  s3cret \n\n")), "s3cret");
  EXPECT_EQ(read_token_file(dir.write("blank", " \n")), "");
  const std::string missing = dir.write("x", "") + "-missing";
  try {
    (void)read_token_file(missing);
    FAIL() << "no error for a missing file";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot read token file " + missing + ": No such file or directory");
  }
}

// ---------------------------------------------------------------------------------------------
// The dispatcher

TEST(webhook_dispatcher, posts_the_payload_as_json) {
  receiver rx;
  executor_loop loop;
  webhook_dispatcher d(loop.executor(), alerts_of({hook_to(rx.url())}), fast());
  alert a = make_alert(7);
  a.about = "node-b";
  a.link = 0;
  EXPECT_EQ(d.post(a), 1u);
  alert bad = make_alert(8);
  bad.message = "peer said \xff\xfe";  // not UTF-8: replaced, not an exception
  EXPECT_EQ(d.post(bad), 1u);
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].sent == 2; }));

  const auto seen = rx.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].path, "/hook");
  EXPECT_EQ(seen[0].content_type, "application/json");
  EXPECT_EQ(seen[0].user_agent, "tandemd");
  EXPECT_EQ(seen[0].authorization, "");
  EXPECT_EQ(seen[0].body, to_json(a));
  EXPECT_EQ(seen[1].body.at("serial"), 8);
  EXPECT_EQ(seen[1].body.at("message"), "peer said \xEF\xBF\xBD\xEF\xBF\xBD");

  const webhook_stats s = d.stats()[0];
  EXPECT_EQ(s.url, rx.url());
  EXPECT_EQ(s.sent, 2u);
  EXPECT_EQ(s.failed_attempts, 0u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(s.last_status, 200);
  EXPECT_EQ(s.last_error, "");
}

TEST(webhook_dispatcher, sends_each_webhook_only_what_it_asked_for) {
  receiver rx;
  executor_loop loop;
  webhook_dispatcher d(
      loop.executor(),
      alerts_of({hook_to(rx.url("/all"), config::alert_severity::info),
                 hook_to(rx.url("/errors"), config::alert_severity::error),
                 hook_to(rx.url("/quorum"), config::alert_severity::info, {"quorum.*"})}),
      fast());
  EXPECT_EQ(d.post(make_alert(1, "heartbeat.node_up", cluster::severity::info)), 1u);
  EXPECT_EQ(d.post(make_alert(2, "heartbeat.node_down", cluster::severity::error)), 2u);
  EXPECT_EQ(d.post(make_alert(3, "quorum.held", cluster::severity::info)), 2u);
  EXPECT_EQ(d.post(make_alert(4, "quorum.lost", cluster::severity::error)), 3u);
  ASSERT_TRUE(loop.run_until([&] {
    const auto s = d.stats();
    return s[0].sent == 4 && s[1].sent == 2 && s[2].sent == 2;
  }));
  EXPECT_EQ(rx.serials("/all"), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(rx.serials("/errors"), (std::vector<uint64_t>{2, 4}));
  EXPECT_EQ(rx.serials("/quorum"), (std::vector<uint64_t>{3, 4}));
}

TEST(webhook_dispatcher, sends_the_bearer_token_from_the_token_file) {
  receiver rx;
  executor_loop loop;
  temp_dir dir;
  config::webhook_config with = hook_to(rx.url("/with"));
  with.token_file = dir.write("token", "s3cret\n");
  webhook_dispatcher d(loop.executor(), alerts_of({with, hook_to(rx.url("/without"))}), fast());
  EXPECT_EQ(d.post(make_alert(1)), 2u);
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].sent == 1 && d.stats()[1].sent == 1; }));
  for (const received& r : rx.seen())
    EXPECT_EQ(r.authorization, r.path == "/with" ? "Bearer s3cret" : "") << r.path;

  // An injected reader is used as is.
  webhook_dispatcher injected(loop.executor(), alerts_of({with}), fast(),
                              [](const std::string& path) { return "from:" + path; });
  injected.post(make_alert(2));
  ASSERT_TRUE(loop.run_until([&] { return injected.stats()[0].sent == 1; }));
  EXPECT_EQ(rx.seen().back().authorization, "Bearer from:" + with.token_file);
}

TEST(webhook_dispatcher, a_missing_empty_or_multi_line_token_file_is_an_error_naming_it) {
  executor_loop loop;
  temp_dir dir;
  const auto error_for = [&](const std::string& file) -> std::string {
    config::webhook_config w = hook_to("http://127.0.0.1:1/");
    w.token_file = file;
    try {
      webhook_dispatcher d(loop.executor(), alerts_of({hook_to("http://127.0.0.1:1/"), w}));
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string missing = dir.write("x", "") + "-missing";
  const std::string empty = dir.write("empty", " \n");
  const std::string two = dir.write("two", "a\nb\n");
  const std::string m = error_for(missing);
  EXPECT_EQ(m.rfind("alerts.webhooks[1].token_file: cannot read token file " + missing, 0), 0u)
      << m;
  EXPECT_EQ(error_for(empty), "alerts.webhooks[1].token_file: token file " + empty + " is empty");
  EXPECT_NE(error_for(two).find("token file " + two + " holds control characters"),
            std::string::npos);
}

TEST(webhook_dispatcher, a_token_file_error_gives_the_line_in_the_cluster_file) {
  executor_loop loop;
  temp_dir dir;
  const std::string missing = dir.write("x", "") + "-missing";
  const config::cluster_load_result r = config::parse_cluster_text(R"(cluster:
  name: demo
  secret_file: /etc/tandem/cluster.key
nodes:
  - name: a
    interconnects:
      - address: 10.0.0.1
quorum:
  mode: none
alerts:
  webhooks:
    - url: http://127.0.0.1:1/
      token_file: )" + missing + "\n",
                                                                   "cluster.yaml");
  ASSERT_TRUE(r.ok()) << r.diag.to_string();
  try {
    webhook_dispatcher d(loop.executor(), r.config.alerts);
    FAIL() << "no error for a missing token file";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("alerts.webhooks[0].token_file (line 13): cannot read "
                                          "token file " +
                                              missing,
                                          0),
              0u)
        << e.what();
  }
}

TEST(webhook_dispatcher, retries_a_failing_answer_with_growing_backoff_then_gives_up) {
  std::atomic<int> status{503};
  receiver rx([&](const std::string&, size_t) { return status.load(); });
  executor_loop loop;
  webhook_dispatcher d(loop.executor(), alerts_of({hook_to(rx.url())}), fast());
  std::vector<delivery_failure> failures;
  d.on_failure([&](const delivery_failure& f) { failures.push_back(f); });

  d.post(make_alert(1));
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].failed == 1; }));
  EXPECT_EQ(rx.serials(), (std::vector<uint64_t>{1, 1, 1, 1})) << "one attempt and 3 retries";
  const auto seen = rx.seen();
  for (size_t i = 1; i < seen.size(); ++i)
    EXPECT_GE(seen[i].at - seen[i - 1].at, 5ms * (1 << (i - 1))) << "backoff before retry " << i;
  webhook_stats s = d.stats()[0];
  EXPECT_EQ(s.sent, 0u);
  EXPECT_EQ(s.failed_attempts, 4u);
  EXPECT_EQ(s.last_status, 503);
  EXPECT_EQ(s.last_error, "HTTP 503");
  EXPECT_EQ(s.queued, 0u);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].webhook, 0u);
  EXPECT_EQ(failures[0].serial, 1u);
  EXPECT_EQ(failures[0].name, "heartbeat.node_down");
  EXPECT_EQ(failures[0].attempts, 4);
  EXPECT_EQ(failures[0].error, "HTTP 503");

  // The next alert goes out normally, and a success clears the error.
  status = 204;
  d.post(make_alert(2));
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].sent == 1; }));
  s = d.stats()[0];
  EXPECT_EQ(s.failed_attempts, 4u);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.last_status, 204);
  EXPECT_EQ(s.last_error, "");
  EXPECT_EQ(rx.serials().back(), 2u);
}

TEST(webhook_dispatcher, a_full_queue_drops_the_oldest_and_counts_it) {
  receiver rx;
  executor_loop loop;
  webhook_dispatcher d(loop.executor(), alerts_of({hook_to(rx.url())}), fast(8));
  // Nothing comes back before the loop runs: alert 1 is in delivery, the queue holds 8.
  for (uint64_t i = 1; i <= 20; ++i)
    EXPECT_EQ(d.post(make_alert(i)), 1u);
  webhook_stats s = d.stats()[0];
  EXPECT_EQ(s.dropped, 11u);
  EXPECT_EQ(s.queued, 9u);
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].sent == 9; }));
  EXPECT_EQ(rx.serials(), (std::vector<uint64_t>{1, 13, 14, 15, 16, 17, 18, 19, 20}));
  s = d.stats()[0];
  EXPECT_EQ(s.dropped, 11u);
  EXPECT_EQ(s.queued, 0u);
}

TEST(webhook_dispatcher, keeps_the_order_per_webhook_through_retries) {
  // Every third request on each path fails: retries must not reorder anything.
  receiver rx([](const std::string&, size_t n) { return n % 3 == 0 ? 500 : 200; });
  executor_loop loop;
  dispatch_options o = fast();
  o.first_backoff = 1ms;
  webhook_dispatcher d(loop.executor(), alerts_of({hook_to(rx.url("/a")), hook_to(rx.url("/b"))}),
                       o);
  std::vector<uint64_t> expected;
  for (uint64_t i = 1; i <= 30; ++i) {
    EXPECT_EQ(d.post(make_alert(i)), 2u);
    expected.push_back(i);
    if (i % 7 == 0) loop.run_for(3ms);  // some arrive while others are in flight
  }
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].sent == 30 && d.stats()[1].sent == 30; }));
  for (const char* path : {"/a", "/b"}) {
    const std::vector<uint64_t> got = rx.serials(path);
    std::vector<uint64_t> delivered;  // each failed attempt is repeated by the next request
    for (size_t n = 0; n < got.size(); ++n)
      if (n % 3 != 0) delivered.push_back(got[n]);
    EXPECT_EQ(delivered, expected) << path;
    EXPECT_EQ(got.size(), 45u) << path;
  }
  EXPECT_EQ(d.stats()[0].failed_attempts, 15u);
  EXPECT_EQ(d.stats()[0].failed, 0u);
}

TEST(webhook_dispatcher, stop_is_prompt_with_an_unreachable_url_and_cancels_the_backoff) {
  executor_loop loop;
  const std::string where = "127.0.0.1:" + std::to_string(closed_port()) + "/hook";  // refused
  const std::string url = "http://user:pw@" + where;
  dispatch_options o;
  o.first_backoff = 300ms;
  webhook_dispatcher d(loop.executor(), alerts_of({hook_to(url)}), o);
  d.post(make_alert(1));
  d.post(make_alert(2));
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].failed_attempts == 1; }));
  webhook_stats s = d.stats()[0];
  EXPECT_EQ(s.url, "http://" + where) << "without user:password";
  EXPECT_EQ(s.last_status, 0);
  EXPECT_NE(s.last_error, "");
  EXPECT_EQ(s.queued, 2u);

  const auto t0 = steady::now();
  d.stop();
  EXPECT_LT(steady::now() - t0, 200ms);
  EXPECT_EQ(d.stats()[0].queued, 0u);
  EXPECT_EQ(d.post(make_alert(3)), 0u) << "ignored after stop";
  loop.run_for(400ms);  // past the backoff: no retry
  EXPECT_EQ(d.stats()[0].failed_attempts, 1u);
  d.stop();  // idempotent
}

TEST(webhook_dispatcher, a_server_that_never_answers_times_out_and_stop_waits_only_for_that) {
  // A listening socket nobody accepts on: the kernel completes the handshake, no answer comes.
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  const std::string url = "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  executor_loop loop;
  dispatch_options o = fast();
  o.retries = 1;
  webhook_dispatcher d(loop.executor(),
                       alerts_of({hook_to(url, config::alert_severity::info, {}, 150ms)}), o);
  d.post(make_alert(1));
  ASSERT_TRUE(loop.run_until([&] { return d.stats()[0].failed == 1; }));
  webhook_stats s = d.stats()[0];
  EXPECT_EQ(s.failed_attempts, 2u);
  EXPECT_NE(s.last_error.find("timeout"), std::string::npos) << s.last_error;

  // stop() with a request in flight: it waits for that request, as long as its timeout.
  d.post(make_alert(2));
  d.post(make_alert(3));
  loop.run_for(30ms);
  const auto t0 = steady::now();
  d.stop();
  const auto waited = steady::now() - t0;
  EXPECT_GE(waited, 50ms) << "the request in flight was waited for";
  EXPECT_LT(waited, 1s);
  loop.run_for(50ms);
  s = d.stats()[0];
  EXPECT_EQ(s.failed_attempts, 2u) << "the attempt ended by stop() is not counted";
  EXPECT_EQ(s.sent, 0u);
  EXPECT_EQ(s.queued, 0u);
}

TEST(webhook_dispatcher, retire_does_not_wait_for_the_request_in_flight) {
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  const std::string url = "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  executor_loop loop;
  webhook_dispatcher d(loop.executor(),
                       alerts_of({hook_to(url, config::alert_severity::info, {}, 300ms)}), fast());
  d.post(make_alert(1));
  d.post(make_alert(2));
  loop.run_for(30ms);  // the first request hangs for 300 ms
  const auto t0 = steady::now();
  d.retire();
  EXPECT_LT(steady::now() - t0, 50ms) << "retire() must not wait";
  EXPECT_EQ(d.post(make_alert(3)), 0u) << "nothing is queued after retire()";
  loop.run_for(400ms);  // the hanging request ends meanwhile: dropped, no retry, no next alert
  const webhook_stats s = d.stats()[0];
  EXPECT_EQ(s.sent, 0u);
  EXPECT_EQ(s.failed_attempts, 0u);
  d.stop();
}

TEST(webhook_dispatcher, without_webhooks_it_does_nothing) {
  executor_loop loop;
  webhook_dispatcher d(loop.executor(), config::alerts_config{});
  EXPECT_EQ(d.post(make_alert(1)), 0u);
  EXPECT_TRUE(d.stats().empty());
  d.stop();
}

}  // namespace
}  // namespace tandem::ctl::alerts
