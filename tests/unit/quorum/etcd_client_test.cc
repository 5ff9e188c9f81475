// SPDX-License-Identifier: Apache-2.0
// etcd_client (control/quorum/etcd_client.h) against a fake of etcd 3.4's JSON gateway on
// loopback (the same answers the real one gives: int64 as strings, base64 keys, omitted zero
// fields). The real etcd runs in tests/integration/quorum/.
#include "control/quorum/etcd_client.h"

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <asio/io_context.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/witness/server.h"

namespace tandem::ctl::quorum {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// The parts of etcd's gateway the client uses; leases never expire on their own (expire()).
class fake_etcd {
 public:
  fake_etcd() {
    witness::server_options o;
    o.listen = "127.0.0.1:0";
    srv_ = std::make_unique<witness::server>(
        io_, o, [this](const witness::http_request& r, witness::time_point) { return handle(r); });
    srv_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~fake_etcd() {
    io_.stop();
    thread_.join();
    srv_->stop();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(srv_->local_endpoint().port());
  }

  struct kv {
    std::string value;
    int64_t lease = 0;
    int64_t create_revision = 0;
  };
  std::optional<kv> get(const std::string& key) {
    std::lock_guard lock(mu_);
    const auto it = kvs_.find(key);
    if (it == kvs_.end()) return std::nullopt;
    return it->second;
  }
  void expire_all() {
    std::lock_guard lock(mu_);
    leases_.clear();
    kvs_.clear();
  }
  void remove_key(const std::string& key) {
    std::lock_guard lock(mu_);
    kvs_.erase(key);
  }
  size_t live_leases() {
    std::lock_guard lock(mu_);
    return leases_.size();
  }
  std::atomic<int> fail_with{0};  // answer every request with this status when non-zero

 private:
  static std::string decode(const json& v) { return base64_decode(v.get<std::string>()).value(); }
  static witness::http_response reply(const json& j, int status = 200) {
    witness::http_response r;
    r.status = status;
    r.body = j.dump();
    return r;
  }
  json header() const { return {{"revision", std::to_string(revision_)}, {"raft_term", "2"}}; }
  static witness::http_response not_found() {
    return reply({{"error", "etcdserver: requested lease not found"},
                  {"message", "etcdserver: requested lease not found"},
                  {"code", 5}},
                 404);
  }

  witness::http_response handle(const witness::http_request& r) {
    std::lock_guard lock(mu_);
    if (fail_with != 0) return reply({{"message", "injected"}}, fail_with);
    const json in = json::parse(r.body);
    const std::string path(r.path());
    if (path == "/v3/lease/grant") {
      const int64_t id = next_lease_++;
      const int64_t ttl = std::max<int64_t>(in["TTL"].get<int64_t>(), 2);  // etcd's minimum
      leases_[id] = ttl;
      return reply(
          {{"header", header()}, {"ID", std::to_string(id)}, {"TTL", std::to_string(ttl)}});
    }
    if (path == "/v3/lease/keepalive") {
      const int64_t id = std::stoll(in["ID"].get<std::string>());
      json res = {{"header", header()}, {"ID", std::to_string(id)}};
      if (leases_.count(id) != 0) res["TTL"] = std::to_string(leases_[id]);  // else omitted
      return reply({{"result", res}});
    }
    if (path == "/v3/lease/revoke") {
      const int64_t id = std::stoll(in["ID"].get<std::string>());
      if (leases_.erase(id) == 0) return not_found();
      for (auto it = kvs_.begin(); it != kvs_.end();)
        it = it->second.lease == id ? kvs_.erase(it) : std::next(it);
      ++revision_;
      return reply({{"header", header()}});
    }
    if (path == "/v3/lease/timetolive") {
      const int64_t id = std::stoll(in["ID"].get<std::string>());
      const bool live = leases_.count(id) != 0;
      return reply({{"header", header()},
                    {"ID", std::to_string(id)},
                    {"TTL", live ? std::to_string(leases_[id] - 1) : "-1"}});
    }
    if (path == "/v3/kv/range") {
      const std::string key = decode(in["key"]);
      json out = {{"header", header()}};
      if (const auto it = kvs_.find(key); it != kvs_.end()) {
        out["kvs"] = json::array({to_json(key, it->second)});
        out["count"] = "1";
      }
      return reply(out);
    }
    if (path == "/v3/kv/txn") {
      const json& cmp = in["compare"][0];
      const std::string key = decode(cmp["key"]);
      EXPECT_EQ(cmp["target"], "CREATE");
      EXPECT_EQ(cmp["result"], "EQUAL");
      EXPECT_EQ(cmp["create_revision"], "0");
      if (kvs_.count(key) == 0) {
        const json& put = in["success"][0]["request_put"];
        const int64_t lease = std::stoll(put["lease"].get<std::string>());
        if (leases_.count(lease) == 0) return not_found();
        ++revision_;
        kvs_[key] = {decode(put["value"]), lease, revision_};
        return reply({{"header", header()},
                      {"succeeded", true},
                      {"responses", json::array({{{"response_put", {{"header", header()}}}}})}});
      }
      json range = {
          {"header", header()}, {"kvs", json::array({to_json(key, kvs_[key])})}, {"count", "1"}};
      return reply(
          {{"header", header()}, {"responses", json::array({{{"response_range", range}}})}});
    }
    return reply({{"message", "not found"}}, 404);
  }

  static json to_json(const std::string& key, const kv& v) {
    return {{"key", base64_encode(key)},
            {"value", base64_encode(v.value)},
            {"create_revision", std::to_string(v.create_revision)},
            {"mod_revision", std::to_string(v.create_revision)},
            {"version", "1"},
            {"lease", std::to_string(v.lease)}};
  }

  asio::io_context io_;
  std::unique_ptr<witness::server> srv_;
  std::thread thread_;
  std::mutex mu_;
  int64_t revision_ = 1;
  int64_t next_lease_ = 7587869130450000000;  // as large as etcd's: beyond double precision
  std::map<int64_t, int64_t> leases_;         // id -> ttl
  std::map<std::string, kv> kvs_;
};

lease_request request(lease_op op, std::chrono::milliseconds ttl = 3000ms) {
  static uint64_t id = 0;
  lease_request r;
  r.id = ++id;
  r.op = op;
  r.ttl = ttl;
  r.sent_at = std::chrono::steady_clock::now();
  r.deadline = r.sent_at + 2s;
  return r;
}

etcd_client_config config(std::vector<std::string> endpoints, std::string node) {
  etcd_client_config c;
  c.endpoints = std::move(endpoints);
  c.key = "/tandem/alpha/quorum";
  c.node = std::move(node);
  return c;
}

TEST(etcd_client, takes_the_key_with_a_lease_and_keeps_it_alive) {
  fake_etcd e;
  etcd_client a(config({e.url()}, "node-a"));
  EXPECT_EQ(a.describe(), "etcd " + e.url());
  const lease_result g = a.perform(request(lease_op::acquire, 2500ms));
  ASSERT_EQ(g.outcome, lease_outcome::granted) << g.error;
  EXPECT_EQ(g.holder, "node-a");
  EXPECT_EQ(g.expires_in, 3000ms) << "2.5 s rounds up to etcd's whole seconds";
  const auto kv = e.get("/tandem/alpha/quorum");
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->value, "node-a");
  EXPECT_EQ(kv->lease, a.lease_id());
  EXPECT_EQ(g.epoch, static_cast<uint64_t>(kv->create_revision));
  EXPECT_EQ(a.lease_id(), 7587869130450000000) << "64-bit ids survive the JSON round trip";

  const lease_result r = a.perform(request(lease_op::renew));
  ASSERT_EQ(r.outcome, lease_outcome::granted) << r.error;
  EXPECT_EQ(r.epoch, g.epoch);
  EXPECT_EQ(r.expires_in, 3000ms);
}

TEST(etcd_client, another_holder_is_reported_with_its_time_left_and_our_lease_revoked) {
  fake_etcd e;
  etcd_client a(config({e.url()}, "node-a"));
  etcd_client b(config({e.url()}, "node-b"));
  ASSERT_EQ(a.perform(request(lease_op::acquire)).outcome, lease_outcome::granted);
  const lease_result o = b.perform(request(lease_op::acquire));
  ASSERT_EQ(o.outcome, lease_outcome::held_by_other) << o.error;
  EXPECT_EQ(o.holder, "node-a");
  EXPECT_EQ(o.expires_in, 2000ms);  // the fake's timetolive: ttl - 1 s
  EXPECT_EQ(b.lease_id(), 0);
  EXPECT_EQ(e.live_leases(), 1u) << "node-b's unused lease was revoked";
  // A second process under node-a's name does not share node-a's lease either.
  etcd_client a2(config({e.url()}, "node-a"));
  EXPECT_EQ(a2.perform(request(lease_op::acquire)).outcome, lease_outcome::held_by_other);
}

TEST(etcd_client, an_expired_lease_or_a_deleted_key_is_not_held) {
  fake_etcd e;
  etcd_client a(config({e.url()}, "node-a"));
  ASSERT_EQ(a.perform(request(lease_op::acquire)).outcome, lease_outcome::granted);
  e.expire_all();
  lease_result r = a.perform(request(lease_op::renew));
  EXPECT_EQ(r.outcome, lease_outcome::not_held);
  EXPECT_NE(r.error.find("expired"), std::string::npos);
  EXPECT_EQ(a.lease_id(), 0);
  // A renew without a lease acquires.
  ASSERT_EQ(a.perform(request(lease_op::renew)).outcome, lease_outcome::granted);
  e.remove_key("/tandem/alpha/quorum");
  r = a.perform(request(lease_op::renew));
  EXPECT_EQ(r.outcome, lease_outcome::not_held);
  EXPECT_NE(r.error.find("deleted"), std::string::npos);
  EXPECT_EQ(e.live_leases(), 0u);
}

TEST(etcd_client, releases_by_revoking_the_lease) {
  fake_etcd e;
  etcd_client a(config({e.url()}, "node-a"));
  EXPECT_EQ(a.perform(request(lease_op::release)).outcome, lease_outcome::not_held);
  ASSERT_EQ(a.perform(request(lease_op::acquire)).outcome, lease_outcome::granted);
  EXPECT_EQ(a.perform(request(lease_op::release)).outcome, lease_outcome::released);
  EXPECT_FALSE(e.get("/tandem/alpha/quorum"));
  etcd_client b(config({e.url()}, "node-b"));
  EXPECT_EQ(b.perform(request(lease_op::acquire)).outcome, lease_outcome::granted);
}

TEST(etcd_client, moves_on_to_the_next_endpoint_and_reports_errors) {
  fake_etcd e;
  std::string dead;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
    dead = "http://127.0.0.1:" + std::to_string(acc.local_endpoint().port());
  }
  etcd_client a(config({dead, e.url()}, "node-a"));
  const lease_result g = a.perform(request(lease_op::acquire));
  EXPECT_EQ(g.outcome, lease_outcome::granted) << g.error;
  e.fail_with = 503;
  const lease_result f = a.perform(request(lease_op::renew));
  EXPECT_EQ(f.outcome, lease_outcome::failed);
  EXPECT_NE(f.error.find("HTTP 503: injected"), std::string::npos) << f.error;
  EXPECT_NE(a.lease_id(), 0) << "a failed renewal keeps the lease for the next try";
  e.fail_with = 0;
  EXPECT_EQ(a.perform(request(lease_op::renew)).outcome, lease_outcome::granted);
  EXPECT_THROW(etcd_client(config({}, "node-a")), std::invalid_argument);
}

TEST(etcd_client, base64_round_trips) {
  for (const std::string s : {"", "a", "ab", "abc", "abcd", "/tandem/alpha/quorum"}) {
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  }
  EXPECT_EQ(base64_encode("node1"), "bm9kZTE=");
  EXPECT_EQ(base64_decode("dGFuZGVtL3F1b3J1bS9jMQ=="), "tandem/quorum/c1");
  EXPECT_FALSE(base64_decode("abc"));
  EXPECT_FALSE(base64_decode("a*c="));
}

}  // namespace
}  // namespace tandem::ctl::quorum
