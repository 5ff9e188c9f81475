// SPDX-License-Identifier: Apache-2.0
// witness_client (control/quorum/witness_client.h): against a real tandem-witness server on
// loopback, and its reply parsing on its own.
#include "control/quorum/witness_client.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <asio/io_context.hpp>
#include <gtest/gtest.h>

#include "control/witness/lease_table.h"
#include "control/witness/server.h"

namespace tandem::ctl::quorum {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// tandem-witness's table and server on 127.0.0.1, in a thread.
class witness_on_loopback {
 public:
  explicit witness_on_loopback(std::string token = {}) {
    witness::witness_config cfg;
    cfg.max_ttl = 5s;
    cfg.quiet_period = 0ms;
    cfg.token = std::move(token);
    table_ = std::make_unique<witness::lease_table>(cfg, witness::clock::now());
    witness::server_options o;
    o.listen = "127.0.0.1:0";
    srv_ = std::make_unique<witness::server>(
        io_, o, [this](const witness::http_request& r, witness::time_point now) {
          return table_->handle(r, now);
        });
    srv_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~witness_on_loopback() {
    io_.stop();
    thread_.join();
    srv_->stop();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(srv_->local_endpoint().port());
  }

 private:
  asio::io_context io_;
  std::unique_ptr<witness::lease_table> table_;
  std::unique_ptr<witness::server> srv_;
  std::thread thread_;
};

lease_request request(lease_op op, std::optional<uint64_t> token = std::nullopt,
                      milliseconds timeout = 2000ms) {
  static uint64_t id = 0;
  lease_request r;
  r.id = ++id;
  r.op = op;
  r.ttl = 3000ms;
  r.token = token;
  r.sent_at = std::chrono::steady_clock::now();
  r.deadline = r.sent_at + timeout;
  return r;
}

witness_client_config client_for(const std::string& url, const std::string& node,
                                 const std::string& token = {}) {
  witness_client_config c;
  c.url = url + "/";
  c.cluster = "alpha";
  c.node = node;
  c.token = token;
  return c;
}

TEST(witness_client, acquires_renews_conflicts_and_releases_against_the_real_server) {
  witness_on_loopback w("t0ken");
  witness_client a(client_for(w.url(), "node-a", "t0ken"));
  witness_client b(client_for(w.url(), "node-b", "t0ken"));
  EXPECT_EQ(a.describe(), "witness " + w.url());

  const lease_result g = a.perform(request(lease_op::acquire));
  ASSERT_EQ(g.outcome, lease_outcome::granted) << g.error;
  EXPECT_EQ(g.holder, "node-a");
  EXPECT_GT(g.expires_in, 2900ms);
  EXPECT_LE(g.expires_in, 3000ms);
  EXPECT_GT(g.epoch, 0u);

  const lease_result c = b.perform(request(lease_op::acquire));
  ASSERT_EQ(c.outcome, lease_outcome::held_by_other) << c.error;
  EXPECT_EQ(c.holder, "node-a");
  EXPECT_GT(c.expires_in, 2000ms);

  const lease_result r = a.perform(request(lease_op::renew, g.epoch));
  ASSERT_EQ(r.outcome, lease_outcome::granted) << r.error;
  EXPECT_EQ(r.epoch, g.epoch);

  // The same name without the epoch (a second process with this name) is another holder.
  const lease_result dup = a.perform(request(lease_op::acquire));
  EXPECT_EQ(dup.outcome, lease_outcome::held_by_other);
  EXPECT_EQ(dup.holder, "node-a");

  EXPECT_EQ(b.perform(request(lease_op::release, 1)).outcome, lease_outcome::held_by_other);
  EXPECT_EQ(a.perform(request(lease_op::release, g.epoch)).outcome, lease_outcome::released);
  EXPECT_EQ(a.perform(request(lease_op::release, g.epoch)).outcome, lease_outcome::not_held);
  const lease_result gb = b.perform(request(lease_op::acquire));
  ASSERT_EQ(gb.outcome, lease_outcome::granted);
  EXPECT_GT(gb.epoch, g.epoch);
}

TEST(witness_client, a_wrong_token_is_a_failure_that_says_so) {
  witness_on_loopback w("t0ken");
  witness_client bad(client_for(w.url(), "node-a", "nope"));
  const lease_result r = bad.perform(request(lease_op::acquire));
  EXPECT_EQ(r.outcome, lease_outcome::failed);
  EXPECT_NE(r.error.find("HTTP 401"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("refused the token"), std::string::npos) << r.error;
  witness_client none(client_for(w.url(), "node-a"));
  EXPECT_EQ(none.perform(request(lease_op::acquire)).outcome, lease_outcome::failed);
}

TEST(witness_client, an_unreachable_witness_or_a_spent_deadline_fails_in_time) {
  // A port nobody listens on: bind one, note it, close it.
  std::string url;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
    url = "http://127.0.0.1:" + std::to_string(acc.local_endpoint().port());
  }
  witness_client c(client_for(url, "node-a"));
  const auto start = std::chrono::steady_clock::now();
  const lease_result r = c.perform(request(lease_op::acquire, std::nullopt, 500ms));
  EXPECT_EQ(r.outcome, lease_outcome::failed);
  EXPECT_FALSE(r.error.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  lease_request late = request(lease_op::acquire);
  late.deadline = std::chrono::steady_clock::now() - 1ms;
  const lease_result l = c.perform(late);
  EXPECT_EQ(l.outcome, lease_outcome::failed);
  EXPECT_NE(l.error.find("deadline"), std::string::npos);
  EXPECT_THROW(witness_client({}), std::invalid_argument);
}

TEST(witness_client, request_bodies) {
  lease_request r = request(lease_op::renew, 42);
  EXPECT_EQ(witness_request_body(r, "alpha", "node-a"),
            R"({"cluster":"alpha","node":"node-a","token":42,"ttl_ms":3000})");
  r = request(lease_op::release, 42);
  EXPECT_EQ(witness_request_body(r, "alpha", "node-a"),
            R"({"cluster":"alpha","node":"node-a","token":42})");
  r = request(lease_op::acquire);
  EXPECT_EQ(witness_request_body(r, "alpha", "node-a"),
            R"({"cluster":"alpha","node":"node-a","ttl_ms":3000})");
}

TEST(witness_client, parses_every_kind_of_answer) {
  auto parse = [](long status, std::string body, lease_op op = lease_op::acquire) {
    http_reply h;
    h.status = status;
    h.body = std::move(body);
    return parse_witness_reply(h, op, "node-a");
  };
  auto g = parse(200, R"({"holder":"node-a","expires_in_ms":2999,"epoch":7})");
  EXPECT_EQ(g.outcome, lease_outcome::granted);
  EXPECT_EQ(g.expires_in, 2999ms);
  EXPECT_EQ(g.epoch, 7u);
  EXPECT_EQ(parse(200, R"({"holder":"node-b","expires_in_ms":1,"epoch":7})").outcome,
            lease_outcome::held_by_other);
  auto o = parse(409, R"({"holder":"node-b","expires_in_ms":1500})");
  EXPECT_EQ(o.outcome, lease_outcome::held_by_other);
  EXPECT_EQ(o.holder, "node-b");
  EXPECT_EQ(o.expires_in, 1500ms);
  auto q = parse(503, R"({"error":"starting","retry_in_ms":4000})");
  EXPECT_EQ(q.outcome, lease_outcome::failed);
  EXPECT_EQ(q.retry_in, 4000ms);
  EXPECT_NE(q.error.find("HTTP 503: starting"), std::string::npos);
  for (const char* bad : {"", "[]", R"({"holder":"node-a"})", R"({"holder":1,"expires_in_ms":1})",
                          R"({"holder":"node-a","expires_in_ms":-1,"epoch":1})",
                          R"({"holder":"node-a","expires_in_ms":1})",
                          R"({"holder":"node-a","expires_in_ms":1,"epoch":0})"})
    EXPECT_EQ(parse(200, bad).outcome, lease_outcome::failed) << bad;
  EXPECT_EQ(parse(200, R"({"released":true})", lease_op::release).outcome, lease_outcome::released);
  EXPECT_EQ(parse(200, R"({"released":false})", lease_op::release).outcome,
            lease_outcome::not_held);
  EXPECT_EQ(parse(200, R"({})", lease_op::release).outcome, lease_outcome::failed);
  EXPECT_EQ(parse(500, "oops").outcome, lease_outcome::failed);
  http_reply none;
  none.error = "Connection refused";
  EXPECT_EQ(parse_witness_reply(none, lease_op::acquire, "node-a").error, "Connection refused");
  EXPECT_EQ(redact_url("https://user:pw@host:1/x@y"), "https://host:1/x@y");
  EXPECT_EQ(redact_url("http://host/"), "http://host/");
}

}  // namespace
}  // namespace tandem::ctl::quorum
