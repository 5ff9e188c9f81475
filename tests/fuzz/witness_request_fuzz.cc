// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: tandem-witness's request path on any bytes — the HTTP parser
// (control/witness/http.h), then the lease handler (control/witness/lease_table.h) on every
// request that parses, as the server would run them on one connection.
//
// The first input byte picks how the rest is cut into reads (1 + byte % 64 bytes each, 0: all
// at once) and, with bit 7, that the witness requires a bearer token. The rest is the stream a
// client sent: requests are parsed one after the other (pipelining) until one fails.
// Invariants: the parser never uses more bytes than it is given; a parsed request respects the
// limits; a failure carries one of the documented statuses; every answer is one of the handler's
// statuses with a JSON object body; the handler never throws; a lease it reports is one the
// table holds.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "control/witness/http.h"
#include "control/witness/lease_table.h"

namespace tandem::fuzz {
namespace {

using namespace tandem::ctl::witness;

[[noreturn]] void fail(const char* what, size_t size) {
  std::fprintf(stderr, "fuzz_witness_request: invariant broken: %s (input of %zu bytes)\n", what,
               size);
  std::abort();
}

#define TANDEM_FUZZ_CHECK(cond, size) \
  do {                                \
    if (!(cond)) fail(#cond, size);   \
  } while (0)

bool known_error_status(int s) {
  return s == 400 || s == 413 || s == 431 || s == 501 || s == 505;
}

bool known_handler_status(int s) {
  switch (s) {
    case 200:
    case 400:
    case 401:
    case 404:
    case 405:
    case 409:
    case 415:
    case 503:
      return true;
    default:
      return false;
  }
}

}  // namespace
}  // namespace tandem::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tandem::fuzz;
  if (size == 0) return 0;
  const size_t step = data[0] % 64 == 0 ? size : 1 + data[0] % 64;
  const bool with_token = (data[0] & 0x80) != 0;
  const std::span<const char> stream(reinterpret_cast<const char*>(data + 1), size - 1);

  witness_config cfg;
  cfg.max_ttl = std::chrono::milliseconds(5000);
  cfg.quiet_period = std::chrono::milliseconds(0);
  cfg.first_epoch = 1;
  cfg.max_clusters = 4;
  if (with_token) cfg.token = "fuzz-token";
  const time_point start = time_point(std::chrono::seconds(100));
  lease_table table(cfg, start);
  const request_limits limits;

  size_t pos = 0;
  int requests = 0;
  while (pos < stream.size() && requests < 64) {
    request_parser parser(limits);
    // Feed the stream in reads of `step` bytes, like a socket would deliver it.
    while (pos < stream.size() && !parser.done() && !parser.failed()) {
      const size_t n = std::min(step, stream.size() - pos);
      const size_t used = parser.feed(stream.subspan(pos, n));
      TANDEM_FUZZ_CHECK(used <= n, size);
      pos += used;
      if (used < n) {
        TANDEM_FUZZ_CHECK(parser.done() || parser.failed(), size);
        break;
      }
    }
    if (parser.failed()) {
      TANDEM_FUZZ_CHECK(known_error_status(parser.error_status()), size);
      TANDEM_FUZZ_CHECK(!parser.error_message().empty(), size);
      break;  // the server answers and closes
    }
    if (!parser.done()) break;  // the stream ended mid-request
    const http_request& req = parser.request();
    TANDEM_FUZZ_CHECK(req.body.size() <= limits.max_body, size);
    TANDEM_FUZZ_CHECK(req.headers.size() <= limits.max_headers, size);
    TANDEM_FUZZ_CHECK(!req.method.empty() && !req.target.empty() && req.target[0] == '/', size);

    const time_point now = start + std::chrono::milliseconds(250 * requests);
    const http_response resp = table.handle(req, now);
    TANDEM_FUZZ_CHECK(known_handler_status(resp.status), size);
    const auto body = nlohmann::json::parse(resp.body, nullptr, false);
    TANDEM_FUZZ_CHECK(body.is_object(), size);
    if (resp.status == 200 && body.contains("holder")) {
      // A grant (POST /v1/lease, whose body then parsed) or a report (GET /v1/lease/<cluster>).
      const std::string cluster =
          req.path() == "/v1/lease"
              ? nlohmann::json::parse(req.body)["cluster"].get<std::string>()
              : std::string(req.path().substr(std::string_view("/v1/lease/").size()));
      const auto l = table.find(cluster, now);
      TANDEM_FUZZ_CHECK(l.has_value(), size);
      TANDEM_FUZZ_CHECK(l->holder == body["holder"].get<std::string>(), size);
      TANDEM_FUZZ_CHECK(l->epoch == body["epoch"].get<uint64_t>(), size);
    }
    const std::string wire = serialize(resp, req.keep_alive);
    TANDEM_FUZZ_CHECK(wire.size() > resp.body.size(), size);
    ++requests;
    if (!req.keep_alive) break;
  }
  TANDEM_FUZZ_CHECK(table.size() <= cfg.max_clusters, size);
  return 0;
}
