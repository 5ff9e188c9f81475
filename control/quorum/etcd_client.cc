// SPDX-License-Identifier: Apache-2.0
// etcd v3 JSON-gateway client: leases and a create-if-absent transaction on the quorum key.
#include "control/quorum/etcd_client.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

namespace tandem::ctl::quorum {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

lease_result failed(std::string error) {
  lease_result r;
  r.outcome = lease_outcome::failed;
  r.error = std::move(error);
  return r;
}

// etcd's int64 fields come as JSON strings ("123"); absent means 0 (proto3 defaults).
std::optional<int64_t> int_field(const json& j, const char* name) {
  if (!j.is_object()) return std::nullopt;
  if (!j.contains(name)) return 0;
  const json& v = j[name];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (!v.is_string()) return std::nullopt;
  const auto& s = v.get_ref<const std::string&>();
  int64_t out = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return out;
}

std::string describe_error(const http_reply& r, const json& j) {
  if (!r.ok()) return r.error;
  std::string e = "HTTP " + std::to_string(r.status);
  if (j.is_object() && j.contains("message") && j["message"].is_string())
    e += ": " + j["message"].get<std::string>();
  return e;
}

bool lease_not_found(const json& j) {
  return j.is_object() && j.contains("message") && j["message"].is_string() &&
         j["message"].get<std::string>().find("lease not found") != std::string::npos;
}

milliseconds seconds_to_ms(int64_t s) {
  return milliseconds(std::clamp<int64_t>(s, 0, int64_t{1} << 30) * 1000);
}

}  // namespace

std::string base64_encode(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(const std::string& in) {
  if (in.size() % 4 != 0) return std::nullopt;
  if (in.empty()) return std::string();
  std::string out(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  auto len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts the padding as zero bytes.
  if (in[in.size() - 1] == '=') --len;
  if (in[in.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

etcd_client::etcd_client(etcd_client_config cfg) : cfg_(std::move(cfg)), http_(cfg_.tls) {
  if (cfg_.endpoints.empty()) throw std::invalid_argument("etcd client: no endpoints");
  if (cfg_.key.empty()) throw std::invalid_argument("etcd client: no key");
  if (cfg_.node.empty()) throw std::invalid_argument("etcd client: no node name");
  for (auto& e : cfg_.endpoints) {
    if (e.empty()) throw std::invalid_argument("etcd client: empty endpoint");
    while (e.back() == '/')
      e.pop_back();
  }
}

std::string etcd_client::describe() const {
  std::string s = "etcd ";
  for (size_t i = 0; i < cfg_.endpoints.size(); ++i)
    s += (i > 0 ? "," : "") + redact_url(cfg_.endpoints[i]);
  return s;
}

etcd_client::call etcd_client::post(const std::string& path, const std::string& body,
                                    steady::time_point deadline) {
  call c;
  for (size_t tries = 0; tries < cfg_.endpoints.size(); ++tries) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
    if (left <= milliseconds(0)) {
      if (tries == 0) c.reply.error = "the request's deadline passed";
      break;
    }
    c.endpoint = cfg_.endpoints[current_];
    c.reply = http_.post_json(c.endpoint + cfg_.api_prefix + path, body, left);
    if (c.reply.ok()) return c;
    current_ = (current_ + 1) % cfg_.endpoints.size();
  }
  return c;
}

lease_result etcd_client::perform(const lease_request& req) {
  try {
    switch (req.op) {
      case lease_op::acquire:
        return acquire(req);
      case lease_op::renew:
        return lease_id_ != 0 ? renew(req) : acquire(req);
      case lease_op::release:
        return release(req);
    }
  } catch (const std::exception& e) {  // json type errors, allocation: never let them out
    return failed(std::string("etcd answer not understood: ") + e.what());
  }
  return failed("unknown request");
}

lease_result etcd_client::acquire(const lease_request& req) {
  if (lease_id_ != 0) {  // an earlier lease of ours that no longer carries the key
    revoke_quietly(lease_id_, req.deadline);
    lease_id_ = 0;
  }
  const int64_t ttl_s = std::max<int64_t>(1, (req.ttl.count() + 999) / 1000);
  call g = post("/lease/grant", json{{"TTL", ttl_s}}.dump(), req.deadline);
  json gj = json::parse(g.reply.body, nullptr, false);
  if (!g.reply.ok() || g.reply.status != 200)
    return failed("lease grant: " + describe_error(g.reply, gj));
  const auto id = int_field(gj, "ID");
  const auto granted_ttl = int_field(gj, "TTL");
  if (!id || *id == 0 || !granted_ttl || *granted_ttl <= 0)
    return failed("lease grant: malformed answer");

  const std::string key = base64_encode(cfg_.key);
  const json txn = {
      {"compare",
       json::array(
           {{{"key", key}, {"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"}}})},
      {"success", json::array({{{"request_put",
                                 {{"key", key},
                                  {"value", base64_encode(cfg_.node)},
                                  {"lease", std::to_string(*id)}}}}})},
      {"failure", json::array({{{"request_range", {{"key", key}}}}})}};
  call t = post("/kv/txn", txn.dump(), req.deadline);
  json tj = json::parse(t.reply.body, nullptr, false);
  if (!t.reply.ok() || t.reply.status != 200) {
    revoke_quietly(*id, req.deadline);
    return failed("transaction: " + describe_error(t.reply, tj));
  }
  const bool succeeded = tj.is_object() && tj.value("succeeded", false);
  if (succeeded) {
    lease_id_ = *id;
    lease_result r;
    r.outcome = lease_outcome::granted;
    r.holder = cfg_.node;
    r.expires_in = seconds_to_ms(*granted_ttl);
    const auto rev = tj.contains("header") ? int_field(tj["header"], "revision") : std::nullopt;
    r.epoch = rev && *rev > 0 ? static_cast<uint64_t>(*rev) : 1;
    return r;
  }
  // Someone holds the key: who, and for how long?
  revoke_quietly(*id, req.deadline);
  lease_result r;
  r.outcome = lease_outcome::held_by_other;
  try {
    const json& kv = tj.at("responses").at(0).at("response_range").at("kvs").at(0);
    const auto value = base64_decode(kv.value("value", std::string()));
    r.holder = value.value_or("?");
    const auto holder_lease = int_field(kv, "lease");
    if (holder_lease && *holder_lease != 0) {
      call ttl = post("/lease/timetolive", json{{"ID", std::to_string(*holder_lease)}}.dump(),
                      req.deadline);
      const json lj = json::parse(ttl.reply.body, nullptr, false);
      const auto left = ttl.reply.ok() ? int_field(lj, "TTL") : std::nullopt;
      if (left && *left > 0) r.expires_in = seconds_to_ms(*left);
    }
  } catch (const json::exception&) {
    // The key vanished between the compare and the range: try again soon.
    return failed("the quorum key changed during the transaction");
  }
  return r;
}

lease_result etcd_client::renew(const lease_request& req) {
  call k = post("/lease/keepalive", json{{"ID", std::to_string(lease_id_)}}.dump(), req.deadline);
  json kj = json::parse(k.reply.body, nullptr, false);
  if (!k.reply.ok() || k.reply.status != 200) {
    if (lease_not_found(kj)) {
      lease_id_ = 0;
      lease_result r;
      r.outcome = lease_outcome::not_held;
      r.error = "etcd lease not found";
      return r;
    }
    return failed("keepalive: " + describe_error(k.reply, kj));
  }
  // The gateway streams: one {"result": {...}} per keepalive request.
  const json* res = kj.is_object() && kj.contains("result") ? &kj["result"] : nullptr;
  const auto ttl = res != nullptr ? int_field(*res, "TTL") : std::nullopt;
  if (!ttl) return failed("keepalive: malformed answer");
  if (*ttl <= 0) {
    lease_id_ = 0;
    lease_result r;
    r.outcome = lease_outcome::not_held;
    r.error = "etcd lease expired";
    return r;
  }
  call g = post("/kv/range", json{{"key", base64_encode(cfg_.key)}}.dump(), req.deadline);
  json gj = json::parse(g.reply.body, nullptr, false);
  if (!g.reply.ok() || g.reply.status != 200)
    return failed("range: " + describe_error(g.reply, gj));
  const json* kv = nullptr;
  if (gj.is_object() && gj.contains("kvs") && gj["kvs"].is_array() && !gj["kvs"].empty())
    kv = &gj["kvs"][0];
  lease_result r;
  if (kv == nullptr) {
    r.outcome = lease_outcome::not_held;
    r.error = "the quorum key " + cfg_.key + " was deleted";
    revoke_quietly(lease_id_, req.deadline);
    lease_id_ = 0;
    return r;
  }
  const auto value = base64_decode(kv->value("value", std::string()));
  const auto lease = int_field(*kv, "lease");
  if (!value || !lease || *value != cfg_.node || *lease != lease_id_) {
    r.outcome = lease_outcome::held_by_other;
    r.holder = value.value_or("?");
    revoke_quietly(lease_id_, req.deadline);
    lease_id_ = 0;
    return r;
  }
  r.outcome = lease_outcome::granted;
  r.holder = cfg_.node;
  r.expires_in = seconds_to_ms(*ttl);
  const auto rev = int_field(*kv, "create_revision");
  r.epoch = rev && *rev > 0 ? static_cast<uint64_t>(*rev) : 1;
  return r;
}

lease_result etcd_client::release(const lease_request& req) {
  lease_result r;
  if (lease_id_ == 0) {
    r.outcome = lease_outcome::not_held;
    r.error = "no etcd lease to release";
    return r;
  }
  call c = post("/lease/revoke", json{{"ID", std::to_string(lease_id_)}}.dump(), req.deadline);
  const json j = json::parse(c.reply.body, nullptr, false);
  if (c.reply.ok() && c.reply.status == 200) {
    lease_id_ = 0;
    r.outcome = lease_outcome::released;
    return r;
  }
  if (lease_not_found(j)) {
    lease_id_ = 0;
    r.outcome = lease_outcome::not_held;
    r.error = "etcd lease not found";
    return r;
  }
  return failed("revoke: " + describe_error(c.reply, j));
}

void etcd_client::revoke_quietly(int64_t id, steady::time_point deadline) {
  (void)post("/lease/revoke", json{{"ID", std::to_string(id)}}.dump(), deadline);
}

}  // namespace tandem::ctl::quorum
