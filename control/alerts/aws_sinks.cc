// SPDX-License-Identifier: Apache-2.0
// SNS Publish and CloudWatch PutMetricData: the request encoding, the SNS topics' queues and the
// CloudWatch buffer, each with its worker thread.
#include "control/alerts/aws_sinks.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <utility>

#include <asio/post.hpp>

#include "control/cloud/aws_xml.h"
#include "control/cloud/sigv4.h"

namespace tandem::ctl::alerts {
namespace {

constexpr std::string_view form_type = "application/x-www-form-urlencoded; charset=utf-8";

bool passes(config::alert_severity min_severity, const std::vector<std::string>& events,
            const alert& a) noexcept {
  if (static_cast<int>(a.level) < static_cast<int>(min_severity)) return false;
  if (events.empty()) return true;
  return std::any_of(events.begin(), events.end(),
                     [&](const std::string& p) { return name_matches(p, a.name); });
}

// One signed Query-protocol POST; returns the reply or throws (cloud_error, or runtime_error
// for trouble before any request, such as no credentials).
cloud::api_reply query_call(cloud::aws_stack& st, const std::string& body,
                            std::chrono::milliseconds timeout) {
  return st.api->call(st.service, "POST", "/", {}, body, form_type,
                      cloud::aws_api::clock::now() + timeout);
}

}  // namespace

cloud::aws_stack process_aws_stack(const cloud::aws_stack_options& options) {
  return cloud::make_aws_stack(options, cloud::aws_environment::process());
}

// ---- request encoding -------------------------------------------------------------------------

std::string query_body(std::string_view action, std::string_view version,
                       const cloud::query_params& params) {
  std::string body =
      "Action=" + cloud::uri_encode(action) + "&Version=" + cloud::uri_encode(version);
  for (const auto& [name, value] : params)
    body += "&" + cloud::uri_encode(name) + "=" + cloud::uri_encode(value);
  return body;
}

std::string sns_subject(const alert& a) {
  std::string s = "tandem " + a.cluster + ": " + a.name + " on " + a.node;
  for (char& c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) c = '?';
  }
  if (s.size() > sns_subject_max) s.resize(sns_subject_max);
  return s;
}

cloud::query_params sns_publish_params(std::string_view topic_arn, const alert& a,
                                       std::string_view message) {
  cloud::query_params p = {{"TopicArn", std::string(topic_arn)},
                           {"Subject", sns_subject(a)},
                           {"Message", std::string(message)}};
  if (topic_arn.ends_with(".fifo")) {
    // FIFO topics refuse a Publish without a group; the deduplication id keeps a retried call
    // from being delivered twice while telling apart two events of the same second.
    p.emplace_back("MessageGroupId", a.cluster);
    p.emplace_back("MessageDeduplicationId",
                   a.node + "/" + std::to_string(a.serial) + "/" + a.time);
  }
  return p;
}

std::string iso8601_ms(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = time_point_cast<milliseconds>(t).time_since_epoch().count();
  const auto secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  const int frac = static_cast<int>(ms - static_cast<int64_t>(secs) * 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[96];  // room for any int the format could print, so no truncation is possible
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

cloud::query_params put_metric_data_params(std::string_view metric_namespace,
                                           std::string_view cluster, std::string_view node,
                                           std::span<const check_time> batch) {
  cloud::query_params p;
  p.reserve(1 + batch.size() * 11);
  p.emplace_back("Namespace", std::string(metric_namespace));
  size_t n = 0;
  for (const check_time& c : batch) {
    const std::string m = "MetricData.member." + std::to_string(++n) + ".";
    p.emplace_back(m + "MetricName", std::string(check_time_metric));
    p.emplace_back(m + "Dimensions.member.1.Name", "Cluster");
    p.emplace_back(m + "Dimensions.member.1.Value", std::string(cluster));
    p.emplace_back(m + "Dimensions.member.2.Name", "Node");
    p.emplace_back(m + "Dimensions.member.2.Value", std::string(node));
    p.emplace_back(m + "Dimensions.member.3.Name", "Monitor");
    p.emplace_back(m + "Dimensions.member.3.Value", c.monitor);
    p.emplace_back(m + "Timestamp", iso8601_ms(c.when));
    char value[32];
    std::snprintf(value, sizeof value, "%.3f",
                  std::chrono::duration<double, std::milli>(c.duration).count());
    p.emplace_back(m + "Value", value);
    p.emplace_back(m + "Unit", "Milliseconds");
  }
  return p;
}

// ---- SNS --------------------------------------------------------------------------------------

struct sns_dispatcher::topic {
  explicit topic(const config::sns_topic_config& c)
      : min_severity(c.min_severity), events(c.events) {
    stats.topic_arn = c.topic_arn;
  }

  config::alert_severity min_severity;
  std::vector<std::string> events;
  std::deque<pending> queue;       // waiting, oldest first
  std::optional<pending> current;  // being published
  sns_stats stats;
};

struct sns_dispatcher::shared_state {
  std::atomic<bool> stopped{false};
};

// The worker's own: the AWS clients, one per topic, built at each topic's first call.
struct sns_dispatcher::worker_state {
  aws_stack_factory make;
  std::vector<cloud::aws_stack_options> options;
  std::vector<std::unique_ptr<cloud::aws_stack>> stacks;
  std::chrono::milliseconds timeout{};

  result publish(size_t i, const std::string& body) {
    result r;
    try {
      if (!stacks[i]) stacks[i] = std::make_unique<cloud::aws_stack>(make(options[i]));
      const cloud::api_reply reply = query_call(*stacks[i], body, timeout);
      r.attempts = reply.attempts;
      try {
        r.message_id = cloud::parse_sns_publish(reply.body).message_id;
        r.ok = true;
      } catch (const cloud::aws_xml_error& e) {
        r.error = "SNS answered HTTP " + std::to_string(reply.status) +
                  " with no Publish result (is the endpoint SNS?): " + e.what();
      }
    } catch (const cloud::cloud_error& e) {
      r.attempts = e.attempts();
      r.error = e.what();
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    return r;
  }
};

sns_dispatcher::sns_dispatcher(asio::any_io_executor ex, const config::alerts_config& cfg,
                               sns_options opts, aws_stack_factory make_stack)
    : ex_(std::move(ex)),
      opts_(opts),
      shared_(std::make_shared<shared_state>()),
      worker_state_(std::make_unique<worker_state>()) {
  opts_.queue_limit = std::max<size_t>(opts_.queue_limit, 1);
  worker_state_->make = std::move(make_stack);
  worker_state_->timeout = opts_.call_timeout;
  for (const config::sns_topic_config& t : cfg.sns) {
    topics_.push_back(std::make_unique<topic>(t));
    cloud::aws_stack_options o;
    o.service = "sns";
    o.region = t.region;
    o.endpoint = t.endpoint;
    o.retry = opts_.retry;
    worker_state_->options.push_back(std::move(o));
  }
  worker_state_->stacks.resize(topics_.size());
  if (!topics_.empty()) worker_ = std::make_unique<asio::thread_pool>(1);
}

sns_dispatcher::~sns_dispatcher() {
  try {
    stop();
  } catch (...) {  // join() only throws on broken invariants; never from a destructor
  }
}

size_t sns_dispatcher::post(const alert& a) {
  if (shared_->stopped) return 0;
  size_t n = 0;
  std::string message;  // the webhook payload, serialized once for every topic
  for (size_t i = 0; i < topics_.size(); ++i) {
    topic& t = *topics_[i];
    if (!passes(t.min_severity, t.events, a)) continue;
    if (message.empty()) {
      // Messages may quote what a peer sent: never let bad UTF-8 make the payload throw.
      message = to_json(a).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    if (t.queue.size() >= opts_.queue_limit) {
      t.queue.pop_front();
      ++t.stats.dropped;
    }
    t.queue.push_back(pending{
        a.serial, a.name,
        std::make_shared<const std::string>(query_body(
            "Publish", sns_api_version, sns_publish_params(t.stats.topic_arn, a, message)))});
    ++n;
    kick(i);
  }
  return n;
}

std::vector<sns_stats> sns_dispatcher::stats() const {
  std::vector<sns_stats> out;
  out.reserve(topics_.size());
  for (const auto& t : topics_) {
    sns_stats s = t->stats;
    s.queued = t->queue.size() + (t->current ? 1 : 0);
    out.push_back(std::move(s));
  }
  return out;
}

void sns_dispatcher::retire() {
  shared_->stopped = true;
}

void sns_dispatcher::stop() {
  if (joined_) return;
  joined_ = true;
  retire();
  if (worker_) worker_->join();  // calls not yet begun see `stopped` and return
  for (auto& t : topics_) {
    t->queue.clear();
    t->current.reset();
  }
}

void sns_dispatcher::kick(size_t i) {
  topic& t = *topics_[i];
  if (shared_->stopped || t.current || t.queue.empty()) return;
  t.current = std::move(t.queue.front());
  t.queue.pop_front();
  // The worker touches only its own state, the body (immutable, shared) and the executor;
  // `this` is used back on the executor only, while `stopped` is false.
  asio::post(*worker_,
             [this, s = shared_, ex = ex_, w = worker_state_.get(), body = t.current->body, i] {
               if (s->stopped) return;
               result r = w->publish(i, *body);
               asio::post(ex, [this, s, i, r = std::move(r)] {
                 if (s->stopped) return;
                 on_result(i, r);
               });
             });
}

void sns_dispatcher::on_result(size_t i, const result& r) {
  topic& t = *topics_[i];
  if (r.ok) {
    ++t.stats.sent;
    t.stats.last_error.clear();
    t.stats.last_message_id = r.message_id;
    t.current.reset();
    kick(i);
    return;
  }
  // aws_api has retried what is worth retrying: the alert is given up.
  ++t.stats.failed;
  t.stats.last_error = r.error;
  sns_failure f{i, t.stats.topic_arn, t.current->serial, t.current->name, r.attempts, r.error};
  t.current.reset();
  kick(i);
  if (on_failure_) on_failure_(f);
}

// ---- CloudWatch -------------------------------------------------------------------------------

struct cloudwatch_publisher::shared_state {
  std::atomic<bool> stopped{false};
};

struct cloudwatch_publisher::worker_state {
  aws_stack_factory make;
  cloud::aws_stack_options options;
  std::unique_ptr<cloud::aws_stack> stack;
  std::string metric_namespace, cluster, node;
  std::chrono::milliseconds timeout{};

  // Sends the batch in calls of at most max_datums_per_call; after a failed call the rest is
  // given up too, so that an unreachable endpoint costs one timeout per interval, not one per
  // thousand check times.
  batch_result send(const std::vector<check_time>& batch) {
    batch_result r;
    size_t done = 0;
    try {
      if (!stack) stack = std::make_unique<cloud::aws_stack>(make(options));
      while (done < batch.size()) {
        const size_t n = std::min(max_datums_per_call, batch.size() - done);
        const std::string body =
            query_body("PutMetricData", cloudwatch_api_version,
                       put_metric_data_params(metric_namespace, cluster, node,
                                              std::span<const check_time>(batch).subspan(done, n)));
        ++r.calls;
        (void)query_call(*stack, body, timeout);
        r.sent += n;
        done += n;
      }
    } catch (const std::exception& e) {
      ++r.failed_calls;
      r.failed += batch.size() - done;
      r.error = e.what();
    }
    return r;
  }
};

cloudwatch_publisher::cloudwatch_publisher(asio::any_io_executor ex,
                                           const config::cloudwatch_config& cfg,
                                           std::string cluster, std::string node,
                                           cloudwatch_options opts, aws_stack_factory make_stack)
    : ex_(std::move(ex)),
      cfg_(cfg),
      cluster_(std::move(cluster)),
      node_(std::move(node)),
      opts_(opts),
      timer_(ex_),
      shared_(std::make_shared<shared_state>()),
      worker_state_(std::make_unique<worker_state>()),
      worker_(std::make_unique<asio::thread_pool>(1)) {
  opts_.buffer_limit = std::max<size_t>(opts_.buffer_limit, 1);
  stats_.metric_namespace = cfg_.metric_namespace;
  worker_state_->make = std::move(make_stack);
  worker_state_->options.service = "monitoring";
  worker_state_->options.region = cfg_.region;
  worker_state_->options.endpoint = cfg_.endpoint;
  worker_state_->options.retry = opts_.retry;
  worker_state_->metric_namespace = cfg_.metric_namespace;
  worker_state_->cluster = cluster_;
  worker_state_->node = node_;
  worker_state_->timeout = opts_.call_timeout;
}

cloudwatch_publisher::~cloudwatch_publisher() {
  try {
    stop();
  } catch (...) {  // join() and cancel() only throw on broken invariants
  }
}

void cloudwatch_publisher::start() {
  if (shared_->stopped) return;
  arm();
}

void cloudwatch_publisher::arm() {
  timer_.expires_after(std::max(cfg_.interval, std::chrono::milliseconds(1)));
  timer_.async_wait([this, s = shared_](const std::error_code& ec) {
    if (ec || s->stopped) return;
    send_now();
    arm();
  });
}

void cloudwatch_publisher::record(std::string_view monitor, std::chrono::nanoseconds duration) {
  if (shared_->stopped) return;
  if (buffer_.size() >= opts_.buffer_limit) {
    buffer_.pop_front();
    ++stats_.datums_dropped;
  }
  buffer_.push_back(check_time{std::string(monitor), duration, std::chrono::system_clock::now()});
}

void cloudwatch_publisher::flush() {
  send_now();
}

void cloudwatch_publisher::send_now() {
  if (shared_->stopped || buffer_.empty()) return;
  if (in_flight_ > 0) {
    flush_pending_ = true;  // one call at a time: the rest goes when this one is done
    return;
  }
  auto batch = std::make_shared<const std::vector<check_time>>(
      std::make_move_iterator(buffer_.begin()), std::make_move_iterator(buffer_.end()));
  buffer_.clear();
  in_flight_ = batch->size();
  asio::post(*worker_, [this, s = shared_, ex = ex_, w = worker_state_.get(), batch] {
    if (s->stopped) return;
    batch_result r = w->send(*batch);
    asio::post(ex, [this, s, r = std::move(r)] {
      if (s->stopped) return;
      on_result(r);
    });
  });
}

void cloudwatch_publisher::on_result(const batch_result& r) {
  in_flight_ = 0;
  stats_.datums_sent += r.sent;
  stats_.datums_failed += r.failed;
  stats_.calls += r.calls;
  stats_.failed_calls += r.failed_calls;
  const bool failed = r.failed_calls > 0;
  if (failed) {
    stats_.last_error = r.error;
    if (log_ && failing_ != true)
      log_("CloudWatch PutMetricData to namespace " + cfg_.metric_namespace + " failed (" +
           std::to_string(r.failed) +
           " check times lost; further failures are only counted): " + r.error);
  } else {
    stats_.last_error.clear();
    if (log_ && failing_ == true)
      log_("CloudWatch PutMetricData to namespace " + cfg_.metric_namespace + " works again");
  }
  failing_ = failed;
  if (flush_pending_) {
    flush_pending_ = false;
    send_now();
  }
}

cloudwatch_stats cloudwatch_publisher::stats() const {
  cloudwatch_stats s = stats_;
  s.buffered = buffer_.size() + in_flight_;
  return s;
}

void cloudwatch_publisher::retire() {
  shared_->stopped = true;
  timer_.cancel();
}

void cloudwatch_publisher::stop() {
  if (joined_) return;
  joined_ = true;
  retire();
  worker_->join();
  buffer_.clear();
  in_flight_ = 0;
}

}  // namespace tandem::ctl::alerts
