// SPDX-License-Identifier: Apache-2.0
// tandem-witness's lease table and HTTP handler.
#include "control/witness/lease_table.h"

#include <time.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

namespace tandem::ctl::witness {
namespace {

using json = nlohmann::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr size_t max_name = 128;

http_response json_response(int status, const json& body) {
  http_response r;
  r.status = status;
  r.body = body.dump();
  return r;
}

http_response error(int status, std::string message) {
  return json_response(status, json{{"error", std::move(message)}});
}

uint64_t ms_left(time_point expires, time_point now) {
  if (expires <= now) return 0;
  // Rounded down: the client counts from before it sent, so less is the safe side.
  return static_cast<uint64_t>(duration_cast<milliseconds>(expires - now).count());
}

int64_t mono_ns(time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

uint64_t wall_clock_us() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

// Compares without an early exit, so the time taken does not tell how much of a guess matched.
bool constant_time_equal(std::string_view a, std::string_view b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff = static_cast<unsigned char>(diff | (x ^ y));
  }
  return diff == 0;
}

struct lease_body {
  std::string cluster;
  std::string node;
  std::optional<uint64_t> ttl_ms;
  std::optional<uint64_t> token;
};

// Parses and checks a lease request body; on failure returns the 400 message.
std::string parse_body(const std::string& text, bool need_ttl, lease_body& out) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return "body is not valid JSON";
  if (!j.is_object()) return "body must be a JSON object";
  auto name = [&](const char* key, std::string& dst) -> std::string {
    if (!j.contains(key)) return std::string("missing '") + key + "'";
    if (!j[key].is_string()) return std::string("'") + key + "' must be a string";
    dst = j[key].get<std::string>();
    if (!valid_name(dst))
      return std::string("'") + key + "' must be 1 to 128 characters of A-Z a-z 0-9 . _ -";
    return {};
  };
  if (auto e = name("cluster", out.cluster); !e.empty()) return e;
  if (auto e = name("node", out.node); !e.empty()) return e;
  auto number = [&](const char* key, std::optional<uint64_t>& dst) -> std::string {
    if (!j.contains(key) || j[key].is_null()) return {};
    if (!j[key].is_number_unsigned())
      return std::string("'") + key + "' must be an unsigned integer";
    dst = j[key].get<uint64_t>();
    return {};
  };
  if (auto e = number("ttl_ms", out.ttl_ms); !e.empty()) return e;
  if (auto e = number("token", out.token); !e.empty()) return e;
  if (need_ttl && (!out.ttl_ms || *out.ttl_ms == 0)) return "'ttl_ms' must be at least 1";
  return {};
}

}  // namespace

bool valid_name(std::string_view s) noexcept {
  if (s.empty() || s.size() > max_name) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

lease_table::lease_table(witness_config cfg, time_point start, log_sink log)
    : cfg_(std::move(cfg)), log_(std::move(log)) {
  if (cfg_.max_ttl < milliseconds(1)) throw std::invalid_argument("max ttl must be at least 1 ms");
  if (cfg_.max_clusters == 0) throw std::invalid_argument("max clusters must be at least 1");
  if (cfg_.quiet_period < milliseconds(0)) cfg_.quiet_period = cfg_.max_ttl;
  quiet_until_ = start + cfg_.quiet_period;
  next_epoch_ = cfg_.first_epoch != 0 ? cfg_.first_epoch : wall_clock_us();
}

void lease_table::log(const std::string& line) const {
  if (log_) log_(line);
}

std::optional<lease_table::lease> lease_table::find(std::string_view cluster,
                                                    time_point now) const {
  const auto it = leases_.find(cluster);
  if (it == leases_.end() || it->second.expires <= now) return std::nullopt;
  return it->second;
}

bool lease_table::authorized(const http_request& req) const {
  if (cfg_.token.empty()) return true;
  const auto h = req.header("authorization");
  if (!h) return false;
  std::string_view v = *h;
  const size_t sp = v.find(' ');
  if (sp == std::string_view::npos) return false;
  std::string scheme(v.substr(0, sp));
  for (auto& c : scheme)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (scheme != "bearer") return false;
  std::string_view given = v.substr(sp + 1);
  while (!given.empty() && given.front() == ' ')
    given.remove_prefix(1);
  return constant_time_equal(given, cfg_.token);
}

http_response lease_table::handle(const http_request& req, time_point now) {
  const std::string_view path = req.path();
  if (path == "/healthz") {
    if (req.method != "GET" && req.method != "HEAD") {
      http_response r = error(405, "use GET");
      r.headers.emplace_back("Allow", "GET, HEAD");
      return r;
    }
    return health(now);
  }
  // POST /v1/lease and /v1/lease/release change leases; GET /v1/lease/<cluster> reads one (a
  // cluster may be called "release": the method tells them apart).
  const bool post_path = path == "/v1/lease" || path == "/v1/lease/release";
  const bool get_path = path.starts_with("/v1/lease/") && path.size() > 10;
  if (!post_path && !get_path) return error(404, "no such resource");
  const bool is_get = req.method == "GET" && get_path;
  const bool is_post = req.method == "POST" && post_path;
  if (!is_get && !is_post) {
    http_response r = error(405, post_path ? "use POST" : "use GET");
    r.headers.emplace_back("Allow", post_path && get_path ? "GET, POST"
                                    : post_path           ? "POST"
                                                          : "GET");
    return r;
  }
  if (!authorized(req)) {
    if (verbose_) log("refused request=" + std::string(path) + " reason=token");
    http_response r = error(401, "missing or wrong bearer token");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"tandem-witness\"");
    return r;
  }
  if (now < quiet_until_) {
    const uint64_t left = ms_left(quiet_until_, now) + 1;
    http_response r =
        json_response(503, json{{"error",
                                 "starting: no lease is granted until every lease a previous run "
                                 "may have granted has expired"},
                                {"retry_in_ms", left}});
    r.headers.emplace_back("Retry-After", std::to_string((left + 999) / 1000));
    return r;
  }
  if (is_get) return get_lease(path.substr(std::string_view("/v1/lease/").size()), now);
  if (const auto ct = req.header("content-type"); ct && !ct->starts_with("application/json"))
    return error(415, "send Content-Type: application/json");
  return path == "/v1/lease" ? post_lease(req, now) : post_release(req, now);
}

void lease_table::sweep(time_point now) {
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.expires <= now) {
      log("expired cluster=" + it->first + " node=" + it->second.holder +
          " epoch=" + std::to_string(it->second.epoch));
      it = leases_.erase(it);
    } else {
      ++it;
    }
  }
}

http_response lease_table::post_lease(const http_request& req, time_point now) {
  lease_body b;
  if (auto e = parse_body(req.body, true, b); !e.empty()) return error(400, e);
  const auto ttl = milliseconds(static_cast<milliseconds::rep>(
      std::min<uint64_t>(*b.ttl_ms, static_cast<uint64_t>(cfg_.max_ttl.count()))));

  auto it = leases_.find(b.cluster);
  if (it != leases_.end() && it->second.expires > now) {
    lease& l = it->second;
    if (l.holder == b.node && b.token == l.epoch) {
      l.expires = now + ttl;
      if (verbose_) {
        log("renew cluster=" + b.cluster + " node=" + b.node + " epoch=" + std::to_string(l.epoch) +
            " ttl_ms=" + std::to_string(ttl.count()) +
            " now_mono_ns=" + std::to_string(mono_ns(now)) +
            " expires_mono_ns=" + std::to_string(mono_ns(l.expires)));
      }
      return json_response(200, json{{"holder", l.holder},
                                     {"expires_in_ms", ms_left(l.expires, now)},
                                     {"epoch", l.epoch}});
    }
    if (verbose_) {
      log("conflict cluster=" + b.cluster + " node=" + b.node + " holder=" + l.holder +
          (l.holder == b.node ? " reason=token" : ""));
    }
    return json_response(409,
                         json{{"holder", l.holder}, {"expires_in_ms", ms_left(l.expires, now)}});
  }
  if (it == leases_.end() && leases_.size() >= cfg_.max_clusters) {
    sweep(now);
    if (leases_.size() >= cfg_.max_clusters) {
      return json_response(
          503, json{{"error", "too many clusters"}, {"retry_in_ms", static_cast<uint64_t>(1000)}});
    }
  }
  if (it != leases_.end()) {
    log("expired cluster=" + b.cluster + " node=" + it->second.holder +
        " epoch=" + std::to_string(it->second.epoch));
  }
  lease& l = leases_[b.cluster];
  l.holder = b.node;
  l.epoch = ++next_epoch_;
  l.expires = now + ttl;
  log("grant cluster=" + b.cluster + " node=" + b.node + " epoch=" + std::to_string(l.epoch) +
      " ttl_ms=" + std::to_string(ttl.count()) + " now_mono_ns=" + std::to_string(mono_ns(now)) +
      " expires_mono_ns=" + std::to_string(mono_ns(l.expires)));
  return json_response(
      200,
      json{{"holder", l.holder}, {"expires_in_ms", ms_left(l.expires, now)}, {"epoch", l.epoch}});
}

http_response lease_table::post_release(const http_request& req, time_point now) {
  lease_body b;
  if (auto e = parse_body(req.body, false, b); !e.empty()) return error(400, e);
  auto it = leases_.find(b.cluster);
  if (it == leases_.end() || it->second.expires <= now)
    return json_response(200, json{{"released", false}});
  lease& l = it->second;
  if (l.holder != b.node || b.token != l.epoch) {
    return json_response(409,
                         json{{"holder", l.holder}, {"expires_in_ms", ms_left(l.expires, now)}});
  }
  log("release cluster=" + b.cluster + " node=" + b.node + " epoch=" + std::to_string(l.epoch) +
      " now_mono_ns=" + std::to_string(mono_ns(now)));
  leases_.erase(it);
  return json_response(200, json{{"released", true}});
}

http_response lease_table::get_lease(std::string_view cluster, time_point now) const {
  if (!valid_name(cluster)) return error(400, "malformed cluster name");
  const auto l = find(cluster, now);
  if (!l) return error(404, "no lease for this cluster");
  return json_response(200, json{{"holder", l->holder},
                                 {"expires_in_ms", ms_left(l->expires, now)},
                                 {"epoch", l->epoch}});
}

http_response lease_table::health(time_point now) const {
  const bool starting = now < quiet_until_;
  return json_response(200, json{{"status", starting ? "starting" : "ok"},
                                 {"quiet_ms", starting ? ms_left(quiet_until_, now) : 0}});
}

}  // namespace tandem::ctl::witness
