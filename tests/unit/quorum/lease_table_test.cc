// SPDX-License-Identifier: Apache-2.0
// tandem-witness's logic through its handler, without sockets (control/witness/lease_table.h):
// grant, renew, conflict, expiry, release, the start-up quiet period, authentication, errors.
#include "control/witness/lease_table.h"

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace tandem::ctl::witness {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

const time_point t0 = time_point(2000s);

witness_config config(std::chrono::milliseconds quiet = 0ms) {
  witness_config c;
  c.max_ttl = 10s;
  c.quiet_period = quiet;
  c.first_epoch = 100;
  return c;
}

http_request post(std::string path, const json& body, std::string token = {}) {
  http_request r;
  r.method = "POST";
  r.target = std::move(path);
  r.body = body.dump();
  r.headers.emplace_back("host", "witness");
  r.headers.emplace_back("content-type", "application/json");
  if (!token.empty()) r.headers.emplace_back("authorization", "Bearer " + token);
  return r;
}

http_request lease(const std::string& node, uint64_t ttl_ms,
                   std::optional<uint64_t> token = std::nullopt,
                   const std::string& cluster = "c1") {
  json b = {{"cluster", cluster}, {"node", node}, {"ttl_ms", ttl_ms}};
  if (token) b["token"] = *token;
  return post("/v1/lease", b);
}

json body_of(const http_response& r) {
  return json::parse(r.body);
}

TEST(lease_table, grants_a_free_lease_with_a_new_epoch) {
  std::vector<std::string> log;
  lease_table t(config(), t0, [&](std::string_view l) { log.emplace_back(l); });
  const auto r = t.handle(lease("node-a", 3000), t0);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  const json b = body_of(r);
  EXPECT_EQ(b["holder"], "node-a");
  EXPECT_EQ(b["expires_in_ms"], 3000);
  EXPECT_EQ(b["epoch"], 101);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].rfind("grant cluster=c1 node=node-a epoch=101 ttl_ms=3000", 0), 0u) << log[0];
  const auto l = t.find("c1", t0 + 1s);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->expires, t0 + 3s);
}

TEST(lease_table, renews_only_for_the_holder_with_its_epoch) {
  lease_table t(config(), t0);
  ASSERT_EQ(t.handle(lease("node-a", 3000), t0).status, 200);
  // Renewal 1 s later: same epoch, counted from the renewal.
  auto r = t.handle(lease("node-a", 3000, 101), t0 + 1s);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r)["epoch"], 101);
  EXPECT_EQ(body_of(r)["expires_in_ms"], 3000);
  EXPECT_EQ(t.find("c1", t0)->expires, t0 + 4s);
  // Same name without the token, or with another one: refused while the lease runs.
  r = t.handle(lease("node-a", 3000), t0 + 2s);
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(body_of(r)["holder"], "node-a");
  EXPECT_EQ(body_of(r)["expires_in_ms"], 2000);
  EXPECT_EQ(t.handle(lease("node-a", 3000, 99), t0 + 2s).status, 409);
  EXPECT_EQ(t.find("c1", t0 + 2s)->expires, t0 + 4s) << "a refused request changes nothing";
}

TEST(lease_table, refuses_another_node_until_the_lease_expires) {
  lease_table t(config(), t0);
  ASSERT_EQ(t.handle(lease("node-a", 3000), t0).status, 200);
  auto r = t.handle(lease("node-b", 5000), t0 + 2500ms);
  ASSERT_EQ(r.status, 409);
  const json b = body_of(r);
  EXPECT_EQ(b["holder"], "node-a");
  EXPECT_EQ(b["expires_in_ms"], 500);
  EXPECT_FALSE(b.contains("epoch"));
  // At the expiry instant the lease is over (expires is exclusive).
  r = t.handle(lease("node-b", 5000), t0 + 3s);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r)["holder"], "node-b");
  EXPECT_EQ(body_of(r)["epoch"], 102);
  // node-a's late renewal with its old epoch is now a conflict.
  r = t.handle(lease("node-a", 3000, 101), t0 + 3001ms);
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(body_of(r)["holder"], "node-b");
}

TEST(lease_table, an_expired_lease_is_granted_afresh_even_to_its_old_holder) {
  lease_table t(config(), t0);
  ASSERT_EQ(t.handle(lease("node-a", 1000), t0).status, 200);
  const auto r = t.handle(lease("node-a", 1000, 101), t0 + 1s);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r)["epoch"], 102) << "a new lease, not a renewal";
  EXPECT_FALSE(t.find("c1", t0 + 2s));
}

TEST(lease_table, caps_the_ttl_and_keeps_clusters_apart) {
  lease_table t(config(), t0);
  auto r = t.handle(lease("node-a", 600000), t0);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r)["expires_in_ms"], 10000);
  r = t.handle(lease("node-b", 1000, std::nullopt, "c2"), t0);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(t.size(), 2u);
}

TEST(lease_table, release_needs_the_holder_and_its_epoch) {
  lease_table t(config(), t0);
  ASSERT_EQ(t.handle(lease("node-a", 3000), t0).status, 200);
  auto rel = [&](const std::string& node, std::optional<uint64_t> token, time_point at) {
    json b = {{"cluster", "c1"}, {"node", node}};
    if (token) b["token"] = *token;
    return t.handle(post("/v1/lease/release", b), at);
  };
  EXPECT_EQ(rel("node-b", 101, t0).status, 409);
  EXPECT_EQ(rel("node-a", std::nullopt, t0).status, 409);
  auto r = rel("node-a", 101, t0 + 1s);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r)["released"], true);
  EXPECT_FALSE(t.find("c1", t0 + 1s));
  r = rel("node-a", 101, t0 + 1s);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r)["released"], false);
  EXPECT_EQ(t.handle(lease("node-b", 3000), t0 + 1s).status, 200) << "free at once";
}

TEST(lease_table, grants_nothing_during_the_start_up_quiet_period) {
  // A restarted witness does not know what its previous run granted: it waits one max ttl.
  witness_config c = config(-1ms);  // default: max_ttl (10 s)
  lease_table t(c, t0);
  EXPECT_EQ(t.quiet_until(), t0 + 10s);
  auto r = t.handle(lease("node-a", 3000), t0 + 4s);
  ASSERT_EQ(r.status, 503);
  EXPECT_EQ(body_of(r)["retry_in_ms"], 6001);
  bool retry_after = false;
  for (const auto& [k, v] : r.headers)
    retry_after = retry_after || (k == "Retry-After" && v == "7");
  EXPECT_TRUE(retry_after);
  EXPECT_EQ(t.size(), 0u);
  http_request health;
  health.method = "GET";
  health.target = "/healthz";
  r = t.handle(health, t0 + 4s);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r)["status"], "starting");
  EXPECT_EQ(body_of(r)["quiet_ms"], 6000);
  EXPECT_EQ(t.handle(lease("node-a", 3000), t0 + 10s - 1ns).status, 503);
  EXPECT_EQ(t.handle(lease("node-a", 3000), t0 + 10s).status, 200);
  EXPECT_EQ(body_of(t.handle(health, t0 + 10s))["status"], "ok");
}

TEST(lease_table, epochs_grow_across_restarts) {
  witness_config c;
  c.quiet_period = 0ms;
  lease_table first(c, t0);
  const auto e1 = body_of(first.handle(lease("node-a", 1000), t0))["epoch"].get<uint64_t>();
  std::this_thread::sleep_for(1ms);  // a restart takes longer than a microsecond
  lease_table second(c, t0);
  const auto e2 = body_of(second.handle(lease("node-a", 1000), t0))["epoch"].get<uint64_t>();
  EXPECT_GT(e1, uint64_t{1'600'000'000'000'000}) << "wall clock in µs";
  EXPECT_GT(e2, e1);
}

TEST(lease_table, checks_the_bearer_token) {
  witness_config c = config();
  c.token = "s3cret-token";
  lease_table t(c, t0);
  const json b = {{"cluster", "c1"}, {"node", "node-a"}, {"ttl_ms", 1000}};
  auto r = t.handle(post("/v1/lease", b), t0);
  ASSERT_EQ(r.status, 401);
  bool challenge = false;
  for (const auto& [k, v] : r.headers)
    challenge = challenge || k == "WWW-Authenticate";
  EXPECT_TRUE(challenge);
  EXPECT_EQ(t.handle(post("/v1/lease", b, "s3cret-tokem"), t0).status, 401);
  EXPECT_EQ(t.handle(post("/v1/lease", b, "s3cret-token-longer"), t0).status, 401);
  EXPECT_EQ(t.handle(post("/v1/lease", b, "s3cret"), t0).status, 401);
  http_request basic = post("/v1/lease", b);
  basic.headers.emplace_back("authorization", "Basic s3cret-token");
  EXPECT_EQ(t.handle(basic, t0).status, 401);
  http_request lower = post("/v1/lease", b);
  lower.headers.emplace_back("authorization", "bearer s3cret-token");
  EXPECT_EQ(t.handle(lower, t0).status, 200) << "the scheme is case-insensitive";
  EXPECT_EQ(t.size(), 1u);
  http_request health;
  health.method = "GET";
  health.target = "/healthz";
  EXPECT_EQ(t.handle(health, t0).status, 200) << "health needs no token";
  http_request get;
  get.method = "GET";
  get.target = "/v1/lease/c1";
  EXPECT_EQ(t.handle(get, t0).status, 401);
}

TEST(lease_table, reports_a_lease) {
  lease_table t(config(), t0);
  http_request get;
  get.method = "GET";
  get.target = "/v1/lease/c1";
  EXPECT_EQ(t.handle(get, t0).status, 404);
  ASSERT_EQ(t.handle(lease("node-a", 3000), t0).status, 200);
  const auto r = t.handle(get, t0 + 1s);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r)["holder"], "node-a");
  EXPECT_EQ(body_of(r)["expires_in_ms"], 2000);
  get.target = "/v1/lease/bad%20name";
  EXPECT_EQ(t.handle(get, t0).status, 400);
  // A cluster called "release" can be read too: the method tells the paths apart.
  ASSERT_EQ(t.handle(lease("node-a", 3000, std::nullopt, "release"), t0).status, 200);
  get.target = "/v1/lease/release";
  EXPECT_EQ(t.handle(get, t0).status, 200);
}

TEST(lease_table, answers_bad_requests_with_400_and_a_reason) {
  lease_table t(config(), t0);
  auto raw = [&](std::string body) {
    http_request r = post("/v1/lease", json::object());
    r.body = std::move(body);
    return t.handle(r, t0);
  };
  const std::pair<std::string, std::string> cases[] = {
      {"", "not valid JSON"},
      {"{\"cluster\":", "not valid JSON"},
      {"[1,2]", "JSON object"},
      {"{\"node\":\"a\",\"ttl_ms\":1}", "missing 'cluster'"},
      {"{\"cluster\":7,\"node\":\"a\",\"ttl_ms\":1}", "'cluster' must be a string"},
      {"{\"cluster\":\"c\",\"node\":\"a b\",\"ttl_ms\":1}", "'node' must be 1 to 128"},
      {"{\"cluster\":\"\",\"node\":\"a\",\"ttl_ms\":1}", "'cluster' must be 1 to 128"},
      {"{\"cluster\":\"c\",\"node\":\"a\"}", "'ttl_ms' must be at least 1"},
      {"{\"cluster\":\"c\",\"node\":\"a\",\"ttl_ms\":0}", "'ttl_ms' must be at least 1"},
      {"{\"cluster\":\"c\",\"node\":\"a\",\"ttl_ms\":-5}", "'ttl_ms' must be an unsigned"},
      {"{\"cluster\":\"c\",\"node\":\"a\",\"ttl_ms\":1.5}", "'ttl_ms' must be an unsigned"},
      {"{\"cluster\":\"c\",\"node\":\"a\",\"ttl_ms\":1,\"token\":\"x\"}", "'token' must be"},
  };
  for (const auto& [body, why] : cases) {
    const auto r = raw(body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(json::parse(r.body)["error"].get<std::string>().find(why), std::string::npos)
        << body << " -> " << r.body;
  }
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(raw("{\"cluster\":\"c\",\"node\":\"a\",\"ttl_ms\":1,\"extra\":[1]}").status, 200)
      << "unknown fields are ignored";
  EXPECT_FALSE(valid_name(std::string(129, 'a')));
  EXPECT_TRUE(valid_name(std::string(128, 'a')));
}

TEST(lease_table, routes_methods_and_media_types) {
  lease_table t(config(), t0);
  http_request r = lease("node-a", 1000);
  r.method = "PUT";
  EXPECT_EQ(t.handle(r, t0).status, 405);
  r.method = "GET";
  r.target = "/v1/nothing";
  EXPECT_EQ(t.handle(r, t0).status, 404);
  r.target = "/";
  EXPECT_EQ(t.handle(r, t0).status, 404);
  r.target = "/v1/lease/";
  EXPECT_EQ(t.handle(r, t0).status, 404);
  r.method = "DELETE";
  r.target = "/v1/lease/c1";
  EXPECT_EQ(t.handle(r, t0).status, 405);
  http_request text = lease("node-a", 1000);
  text.headers[1].second = "text/plain";
  EXPECT_EQ(t.handle(text, t0).status, 415);
  http_request none = lease("node-a", 1000);
  none.headers.erase(none.headers.begin() + 1);
  EXPECT_EQ(t.handle(none, t0).status, 200) << "no Content-Type is accepted";
  http_request health;
  health.method = "POST";
  health.target = "/healthz";
  EXPECT_EQ(t.handle(health, t0).status, 405);
}

TEST(lease_table, refuses_new_clusters_when_full_until_leases_expire) {
  witness_config c = config();
  c.max_clusters = 2;
  lease_table t(c, t0);
  EXPECT_EQ(t.handle(lease("a", 1000, std::nullopt, "c1"), t0).status, 200);
  EXPECT_EQ(t.handle(lease("a", 5000, std::nullopt, "c2"), t0).status, 200);
  EXPECT_EQ(t.handle(lease("a", 1000, std::nullopt, "c3"), t0).status, 503);
  EXPECT_EQ(t.handle(lease("a", 1000, std::nullopt, "c3"), t0 + 1s).status, 200)
      << "c1 expired and was swept";
  EXPECT_EQ(t.size(), 2u);
}

}  // namespace
}  // namespace tandem::ctl::witness
