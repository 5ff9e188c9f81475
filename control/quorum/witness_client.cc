// SPDX-License-Identifier: Apache-2.0
// tandem-witness client: lease requests as JSON over HTTP, answers mapped to lease_result.
#include "control/quorum/witness_client.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

namespace tandem::ctl::quorum {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

lease_result failed(std::string error) {
  lease_result r;
  r.outcome = lease_outcome::failed;
  r.error = std::move(error);
  return r;
}

std::string server_error(const json& j) {
  if (j.is_object() && j.contains("error") && j["error"].is_string())
    return j["error"].get<std::string>();
  return {};
}

// A non-negative integer field, or nullopt.
std::optional<uint64_t> uint_field(const json& j, const char* name) {
  if (!j.is_object() || !j.contains(name)) return std::nullopt;
  const json& v = j[name];
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0)
    return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

}  // namespace

witness_client::witness_client(witness_client_config cfg) : cfg_(std::move(cfg)), http_(cfg_.tls) {
  if (cfg_.url.empty()) throw std::invalid_argument("witness client: no url");
  if (cfg_.cluster.empty()) throw std::invalid_argument("witness client: no cluster name");
  if (cfg_.node.empty()) throw std::invalid_argument("witness client: no node name");
  while (!cfg_.url.empty() && cfg_.url.back() == '/')
    cfg_.url.pop_back();
}

std::string witness_client::describe() const {
  return "witness " + redact_url(cfg_.url);
}

std::string witness_request_body(const lease_request& req, const std::string& cluster,
                                 const std::string& node) {
  json j = {{"cluster", cluster}, {"node", node}};
  if (req.op != lease_op::release) j["ttl_ms"] = static_cast<uint64_t>(req.ttl.count());
  if (req.token) j["token"] = *req.token;
  return j.dump();
}

lease_result parse_witness_reply(const http_reply& reply, lease_op op, const std::string& node) {
  if (!reply.ok()) return failed(reply.error.empty() ? "no answer" : reply.error);
  const json j = json::parse(reply.body, nullptr, false);
  const std::string what = "HTTP " + std::to_string(reply.status);
  if (reply.status == 200 && op == lease_op::release) {
    if (!j.is_object() || !j.contains("released") || !j["released"].is_boolean())
      return failed(what + " without 'released'");
    lease_result r;
    r.outcome = j["released"].get<bool>() ? lease_outcome::released : lease_outcome::not_held;
    if (r.outcome == lease_outcome::not_held) r.error = "the witness had no lease to release";
    return r;
  }
  if (reply.status == 200 || reply.status == 409) {
    const auto expires = uint_field(j, "expires_in_ms");
    if (!j.is_object() || !j.contains("holder") || !j["holder"].is_string() || !expires)
      return failed(what + " with a malformed body");
    lease_result r;
    r.holder = j["holder"].get<std::string>();
    r.expires_in = milliseconds(
        static_cast<milliseconds::rep>(std::min<uint64_t>(*expires, uint64_t{1} << 40)));
    if (reply.status == 409) {
      r.outcome = lease_outcome::held_by_other;
      return r;
    }
    const auto epoch = uint_field(j, "epoch");
    if (!epoch || *epoch == 0) return failed(what + " without an epoch");
    r.epoch = *epoch;
    r.outcome = r.holder == node ? lease_outcome::granted : lease_outcome::held_by_other;
    return r;
  }
  std::string error = what;
  if (reply.status == 401 || reply.status == 403) error += " (the witness refused the token)";
  const std::string detail = server_error(j);
  if (!detail.empty()) error += ": " + detail;
  lease_result r = failed(error);
  if (const auto retry = uint_field(j, "retry_in_ms"))
    r.retry_in = milliseconds(static_cast<milliseconds::rep>(std::min<uint64_t>(*retry, 1u << 30)));
  return r;
}

lease_result witness_client::perform(const lease_request& req) {
  const auto left =
      std::chrono::duration_cast<milliseconds>(req.deadline - std::chrono::steady_clock::now());
  if (left <= milliseconds(0)) return failed("the request's deadline passed before it was sent");
  std::vector<std::string> headers;
  if (!cfg_.token.empty()) headers.push_back("Authorization: Bearer " + cfg_.token);
  const std::string url =
      cfg_.url + (req.op == lease_op::release ? "/v1/lease/release" : "/v1/lease");
  const http_reply reply =
      http_.post_json(url, witness_request_body(req, cfg_.cluster, cfg_.node), left, headers);
  return parse_witness_reply(reply, req.op, cfg_.node);
}

}  // namespace tandem::ctl::quorum
