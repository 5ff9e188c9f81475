// SPDX-License-Identifier: Apache-2.0
// Alert webhooks: the payload, the filter, and the dispatcher's queues, retries and worker.
#include "control/alerts/webhook.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "control/quorum/http_client.h"

namespace tandem::ctl::alerts {
namespace {

static_assert(static_cast<int>(cluster::severity::info) ==
                  static_cast<int>(config::alert_severity::info) &&
              static_cast<int>(cluster::severity::warning) ==
                  static_cast<int>(config::alert_severity::warning) &&
              static_cast<int>(cluster::severity::error) ==
                  static_cast<int>(config::alert_severity::error));

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// "alerts.webhooks[2].token_file (line 40)", for errors about a webhook's setting.
std::string where(const config::webhook_config& w, size_t index, std::string_view field) {
  const config::source_loc at = config::loc_of(w.locs, field, w.loc);
  // A configuration built in code has no paths: name the key the way the file would.
  std::string s = w.loc.path.empty() && !w.locs.contains(field)
                      ? "alerts.webhooks[" + std::to_string(index) + "]." + std::string(field)
                      : at.path;
  if (at.line > 0) s += " (line " + std::to_string(at.line) + ")";
  return s;
}

bool passes(config::alert_severity min_severity, const std::vector<std::string>& events,
            const alert& a) noexcept {
  if (static_cast<int>(a.level) < static_cast<int>(min_severity)) return false;
  if (events.empty()) return true;
  return std::any_of(events.begin(), events.end(),
                     [&](const std::string& p) { return name_matches(p, a.name); });
}

}  // namespace

nlohmann::json to_json(const alert& a) {
  nlohmann::json j = {{"serial", a.serial},
                      {"cluster", a.cluster},
                      {"node", a.node},
                      {"time", a.time},
                      {"severity", cluster::to_string(a.level)},
                      {"module", a.module},
                      {"id", a.id},
                      {"name", a.name},
                      {"message", a.message}};
  if (a.about) j["about"] = *a.about;
  if (a.link) j["link"] = *a.link;
  return j;
}

bool name_matches(std::string_view pattern, std::string_view name) noexcept {
  // Greedy glob with one backtrack point (the last '*'): linear in practice, never exponential.
  size_t p = 0, n = 0;
  size_t star = std::string_view::npos, resume = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*')
    ++p;
  return p == pattern.size();
}

bool matches(const config::webhook_config& w, const alert& a) noexcept {
  return passes(w.min_severity, w.events, a);
}

std::string read_token_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read token file " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read token file " + path);
  std::string s = std::move(ss).str();
  const auto first = std::find_if_not(s.begin(), s.end(), is_space);
  const auto last = std::find_if_not(s.rbegin(), s.rend(), is_space).base();
  return first < last ? std::string(first, last) : std::string();
}

struct webhook_dispatcher::target {
  std::string url;
  std::chrono::milliseconds timeout{};
  std::vector<std::string> headers;
};

struct webhook_dispatcher::hook {
  hook(const config::webhook_config& c, std::shared_ptr<const target> t,
       const asio::any_io_executor& ex)
      : min_severity(c.min_severity), events(c.events), dest(std::move(t)), backoff(ex) {
    stats.url = quorum::redact_url(c.url);
  }

  config::alert_severity min_severity;
  std::vector<std::string> events;
  std::shared_ptr<const target> dest;
  std::deque<pending> queue;       // waiting, oldest first
  std::optional<pending> current;  // being delivered, or waiting for its retry
  int attempts = 0;                // of `current`
  asio::steady_timer backoff;
  webhook_stats stats;
};

struct webhook_dispatcher::shared_state {
  std::atomic<bool> stopped{false};
};

webhook_dispatcher::webhook_dispatcher(asio::any_io_executor ex, const config::alerts_config& cfg,
                                       dispatch_options opts, token_reader read_token)
    : ex_(std::move(ex)), opts_(opts), shared_(std::make_shared<shared_state>()) {
  opts_.queue_limit = std::max<size_t>(opts_.queue_limit, 1);
  opts_.retries = std::clamp(opts_.retries, 0, 16);
  for (size_t i = 0; i < cfg.webhooks.size(); ++i) {
    const config::webhook_config& w = cfg.webhooks[i];
    auto t = std::make_shared<target>();
    t->url = w.url;
    t->timeout = w.timeout;
    t->headers.emplace_back("User-Agent: tandemd");
    if (!w.token_file.empty()) {
      std::string token;
      try {
        token = read_token(w.token_file);
      } catch (const std::exception& e) {
        throw std::runtime_error(where(w, i, "token_file") + ": " + e.what());
      }
      if (token.empty())
        throw std::runtime_error(where(w, i, "token_file") + ": token file " + w.token_file +
                                 " is empty");
      if (std::any_of(token.begin(), token.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
        throw std::runtime_error(where(w, i, "token_file") + ": token file " + w.token_file +
                                 " holds control characters (one token on one line)");
      t->headers.push_back("Authorization: Bearer " + token);
    }
    hooks_.push_back(std::make_unique<hook>(w, std::move(t), ex_));
  }
  if (!hooks_.empty()) {
    client_ = std::make_unique<quorum::http_client>();
    worker_ = std::make_unique<asio::thread_pool>(1);
  }
}

webhook_dispatcher::~webhook_dispatcher() {
  try {
    stop();
  } catch (...) {  // cancel() and join() only throw on broken invariants; never from here
  }
}

size_t webhook_dispatcher::post(const alert& a) {
  if (shared_->stopped) return 0;
  std::shared_ptr<const std::string> body;  // serialized once, shared by every webhook
  size_t n = 0;
  for (size_t i = 0; i < hooks_.size(); ++i) {
    hook& h = *hooks_[i];
    if (!passes(h.min_severity, h.events, a)) continue;
    if (!body) {
      // Messages may quote what a peer sent: never let bad UTF-8 make the payload throw.
      body = std::make_shared<const std::string>(
          to_json(a).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    if (h.queue.size() >= opts_.queue_limit) {
      h.queue.pop_front();
      ++h.stats.dropped;
    }
    h.queue.push_back(pending{a.serial, a.name, body});
    ++n;
    kick(i);
  }
  return n;
}

std::vector<webhook_stats> webhook_dispatcher::stats() const {
  std::vector<webhook_stats> out;
  out.reserve(hooks_.size());
  for (const auto& h : hooks_) {
    webhook_stats s = h->stats;
    s.queued = h->queue.size() + (h->current ? 1 : 0);
    out.push_back(std::move(s));
  }
  return out;
}

void webhook_dispatcher::retire() {
  shared_->stopped = true;
  for (auto& h : hooks_)
    h->backoff.cancel();
}

void webhook_dispatcher::stop() {
  if (joined_) return;
  joined_ = true;
  retire();
  if (worker_) worker_->join();  // requests not yet begun see `stopped` and return
  for (auto& h : hooks_) {
    h->queue.clear();
    h->current.reset();
  }
}

void webhook_dispatcher::kick(size_t i) {
  hook& h = *hooks_[i];
  if (shared_->stopped || h.current || h.queue.empty()) return;
  h.current = std::move(h.queue.front());
  h.queue.pop_front();
  h.attempts = 0;
  attempt(i);
}

void webhook_dispatcher::attempt(size_t i) {
  hook& h = *hooks_[i];
  ++h.attempts;
  // The worker touches only what it is given: the target and body (immutable, shared), the
  // client (the worker's alone) and the executor; `this` is used back on the executor only.
  asio::post(*worker_, [this, s = shared_, ex = ex_, client = client_.get(), dest = h.dest,
                        body = h.current->body, i] {
    if (s->stopped) return;
    quorum::http_reply r = client->post_json(dest->url, *body, dest->timeout, dest->headers);
    asio::post(ex, [this, s, i, status = r.status, error = std::move(r.error)] {
      if (s->stopped) return;
      on_reply(i, status, error);
    });
  });
}

void webhook_dispatcher::on_reply(size_t i, long status, const std::string& error) {
  hook& h = *hooks_[i];
  h.stats.last_status = status;
  if (error.empty() && status >= 200 && status < 300) {
    ++h.stats.sent;
    h.stats.last_error.clear();
    h.current.reset();
    kick(i);
    return;
  }
  ++h.stats.failed_attempts;
  h.stats.last_error = !error.empty() ? error : "HTTP " + std::to_string(status);
  if (h.attempts <= opts_.retries) {
    h.backoff.expires_after(opts_.first_backoff * (int64_t{1} << (h.attempts - 1)));
    h.backoff.async_wait([this, s = shared_, i](const std::error_code& ec) {
      if (ec || s->stopped) return;
      attempt(i);
    });
    return;
  }
  ++h.stats.failed;
  delivery_failure f{i,          h.stats.url,       h.current->serial, h.current->name,
                     h.attempts, h.stats.last_error};
  h.current.reset();
  kick(i);
  if (on_failure_) on_failure_(f);
}

}  // namespace tandem::ctl::alerts
