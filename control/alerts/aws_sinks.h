// SPDX-License-Identifier: Apache-2.0
// Alerts published to Amazon SNS topics and monitor check times sent to Amazon CloudWatch.
//
// Both objects live on an Asio executor (tandemd's io_context): post(), record(), stats() and
// the rest are called there and never block. The AWS calls (SigV4-signed Query-protocol POSTs
// through cloud::aws_api, whose SDK-style retries are the only ones: a missing permission fails
// at once) run on one worker thread per object, one at a time; results come back on the
// executor. The AWS client itself (region, credentials chain, HTTPS) is also built on the
// worker, because finding the region or the instance role may ask the metadata service.
// docs/alerts.md describes the messages, the metric and the counters.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>

#include "control/alerts/webhook.h"
#include "control/cloud/aws_api.h"
#include "control/config/cluster_config.h"

namespace tandem::ctl::alerts {

// Builds the AWS client for one service and region. Called on the worker thread; throws
// std::runtime_error when it cannot (no region found, no CA bundle). Tests give a scripted one.
using aws_stack_factory = std::function<cloud::aws_stack(const cloud::aws_stack_options&)>;

// cloud::make_aws_stack with the process's environment (credentials chain, AWS_CA_BUNDLE).
cloud::aws_stack process_aws_stack(const cloud::aws_stack_options& options);

inline constexpr std::string_view sns_api_version = "2010-03-31";
inline constexpr std::string_view cloudwatch_api_version = "2010-08-01";
inline constexpr size_t sns_subject_max = 99;        // SNS: "less than 100 characters"
inline constexpr size_t max_datums_per_call = 1000;  // PutMetricData's limit per request
inline constexpr std::string_view check_time_metric = "MonitorCheckTime";

// ---- request encoding -------------------------------------------------------------------------

// The form body of a Query-protocol action: "Action=<action>&Version=<version>&<name>=<value>..."
// with names and values RFC 3986-encoded as the AWS SDKs send them.
std::string query_body(std::string_view action, std::string_view version,
                       const cloud::query_params& params);

// "tandem <cluster>: <event name> on <node>" as SNS takes a subject: printable ASCII only (any
// other byte becomes '?'), cut to sns_subject_max characters.
std::string sns_subject(const alert& a);

// The parameters of Publish for one alert: TopicArn, Subject, Message (`message`: the webhook
// payload); a FIFO topic (name ending in ".fifo") also gets MessageGroupId (the cluster: one
// ordered stream per cluster) and MessageDeduplicationId (node/serial/time: one per event).
cloud::query_params sns_publish_params(std::string_view topic_arn, const alert& a,
                                       std::string_view message);

// One monitor check's duration, stamped when the check was over.
struct check_time {
  std::string monitor;
  std::chrono::nanoseconds duration{};
  std::chrono::system_clock::time_point when;
};

// "2025-01-31T12:00:00.250Z": UTC with milliseconds, as CloudWatch takes a Timestamp.
std::string iso8601_ms(std::chrono::system_clock::time_point t);

// The parameters of PutMetricData for up to max_datums_per_call check times: Namespace and, per
// datum N, MetricData.member.N.{MetricName=MonitorCheckTime, Dimensions.member.1..3 = Cluster,
// Node, Monitor, Timestamp, Value (milliseconds, 3 decimals), Unit=Milliseconds}.
cloud::query_params put_metric_data_params(std::string_view metric_namespace,
                                           std::string_view cluster, std::string_view node,
                                           std::span<const check_time> batch);

// ---- SNS --------------------------------------------------------------------------------------

struct sns_options {
  size_t queue_limit = 256;                       // alerts waiting per topic; full: oldest dropped
  std::chrono::milliseconds call_timeout{5'000};  // one Publish, aws_api's retries included
  cloud::retry_policy retry;                      // aws_api's
};

// One topic's counters since the dispatcher started.
struct sns_stats {
  std::string topic_arn;
  uint64_t sent = 0;            // alerts SNS accepted (it answered with a MessageId)
  uint64_t failed = 0;          // alerts given up (the call failed after aws_api's attempts)
  uint64_t dropped = 0;         // alerts pushed out of a full queue (the oldest goes)
  uint64_t queued = 0;          // alerts waiting or in delivery now
  std::string last_error;       // why the last alert failed; empty after a success
  std::string last_message_id;  // SNS's id of the last accepted alert
};

// An alert given up, reported on the executor.
struct sns_failure {
  size_t topic = 0;  // index in alerts_config::sns
  std::string topic_arn;
  uint64_t serial = 0;
  std::string name;
  int attempts = 0;  // HTTP attempts aws_api made (0: none, e.g. no credentials)
  std::string error;
};

class sns_dispatcher {
 public:
  using failure_handler = std::function<void(const sns_failure&)>;

  sns_dispatcher(asio::any_io_executor ex, const config::alerts_config& cfg, sns_options opts = {},
                 aws_stack_factory make_stack = process_aws_stack);
  ~sns_dispatcher();  // stop()
  sns_dispatcher(const sns_dispatcher&) = delete;
  sns_dispatcher& operator=(const sns_dispatcher&) = delete;

  // Queues the alert for every topic it matches (severity and events, as for webhooks); returns
  // how many that is. On the executor; never blocks. Ignored after stop() or retire().
  size_t post(const alert& a);

  // Called on the executor for every alert given up. Must not destroy the dispatcher.
  void on_failure(failure_handler h) { on_failure_ = std::move(h); }

  // One entry per configured topic, in configuration order. On the executor.
  [[nodiscard]] std::vector<sns_stats> stats() const;

  // Publishes nothing further (queued alerts are discarded) and waits for the call in flight,
  // which sns_options::call_timeout bounds. On the executor, or while it does not run;
  // idempotent.
  void stop();
  // Publishes nothing further, without waiting (the answer in flight is dropped): for replacing
  // the dispatcher on the executor. stop() (or the destructor) later waits. On the executor.
  void retire();

 private:
  struct topic;
  struct worker_state;
  struct shared_state;
  struct pending {
    uint64_t serial = 0;
    std::string name;
    std::shared_ptr<const std::string> body;  // the form body of the Publish call
  };
  struct result {
    bool ok = false;
    std::string message_id;
    int attempts = 0;
    std::string error;
  };

  void kick(size_t i);
  void on_result(size_t i, const result& r);

  asio::any_io_executor ex_;
  sns_options opts_;
  std::vector<std::unique_ptr<topic>> topics_;
  failure_handler on_failure_;
  std::shared_ptr<shared_state> shared_;
  std::unique_ptr<worker_state> worker_state_;  // used on the worker only
  bool joined_ = false;
  std::unique_ptr<asio::thread_pool> worker_;  // one thread; absent without topics
};

// ---- CloudWatch -------------------------------------------------------------------------------

struct cloudwatch_options {
  size_t buffer_limit = 20'000;  // check times waiting to be sent; full: the oldest dropped
  std::chrono::milliseconds call_timeout{10'000};  // one PutMetricData, retries included
  cloud::retry_policy retry;                       // aws_api's
};

struct cloudwatch_stats {
  std::string metric_namespace;
  uint64_t datums_sent = 0;     // check times CloudWatch accepted
  uint64_t datums_failed = 0;   // check times of calls that failed (not sent again)
  uint64_t datums_dropped = 0;  // pushed out of a full buffer
  uint64_t buffered = 0;        // waiting for the next send, or being sent now
  uint64_t calls = 0;           // PutMetricData calls made (each up to 1000 check times)
  uint64_t failed_calls = 0;
  std::string last_error;  // why the last call failed; empty after a success
};

class cloudwatch_publisher {
 public:
  using log_fn = std::function<void(const std::string& line)>;

  // Nothing is sent before start().
  cloudwatch_publisher(asio::any_io_executor ex, const config::cloudwatch_config& cfg,
                       std::string cluster, std::string node, cloudwatch_options opts = {},
                       aws_stack_factory make_stack = process_aws_stack);
  ~cloudwatch_publisher();  // stop()
  cloudwatch_publisher(const cloudwatch_publisher&) = delete;
  cloudwatch_publisher& operator=(const cloudwatch_publisher&) = delete;

  // Sends what is buffered every cfg.interval from now on. On the executor.
  void start();
  // Buffers one check's duration, stamped now. On the executor; never blocks. Ignored after
  // stop() or retire().
  void record(std::string_view monitor, std::chrono::nanoseconds duration);
  // Sends what is buffered now (a send in flight: at its end), as the timer does.
  void flush();

  // A line for the log when sending starts failing (the first failure after a success, and the
  // first ever) and when it works again, not for every failure: CloudWatch being unreachable
  // must not flood the log. Called on the executor.
  void on_log(log_fn f) { log_ = std::move(f); }

  [[nodiscard]] cloudwatch_stats stats() const;

  // Sends nothing further (buffered check times are discarded) and waits for the call in
  // flight, which cloudwatch_options::call_timeout bounds (each of its up to 1000-datum calls).
  // Idempotent.
  void stop();
  // Sends nothing further, without waiting; stop() later waits. On the executor.
  void retire();

 private:
  struct worker_state;
  struct shared_state;
  struct batch_result {
    uint64_t sent = 0, failed = 0, calls = 0, failed_calls = 0;
    std::string error;  // the last failed call's
  };

  void arm();
  void send_now();
  void on_result(const batch_result& r);

  asio::any_io_executor ex_;
  config::cloudwatch_config cfg_;
  std::string cluster_, node_;
  cloudwatch_options opts_;
  asio::steady_timer timer_;
  std::deque<check_time> buffer_;
  uint64_t in_flight_ = 0;  // check times being sent now
  bool flush_pending_ = false;
  std::optional<bool> failing_;  // the last call failed; nullopt before the first
  cloudwatch_stats stats_;
  log_fn log_;
  std::shared_ptr<shared_state> shared_;
  std::unique_ptr<worker_state> worker_state_;  // used on the worker only
  bool joined_ = false;
  std::unique_ptr<asio::thread_pool> worker_;
};

}  // namespace tandem::ctl::alerts
