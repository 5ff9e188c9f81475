// SPDX-License-Identifier: Apache-2.0
// Outbound HTTP(S) for the cloud backends: one small interface (a blocking exchange) with a
// libcurl implementation; tests substitute scripted clients.
//
// Threading: a client has one owner (a resource or monitor on its worker thread); it keeps its
// connection open between calls so that a route switch after a failover does not pay for a new
// TLS handshake.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem::ctl::cloud {

struct http_settings {
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds total_timeout{10'000};  // one exchange, connect included
  // A PEM bundle to trust instead of the system's (AWS_CA_BUNDLE; the tests' own CA). Empty:
  // the system store.
  std::string ca_file;
  // Proxies come from the environment (https_proxy, http_proxy, no_proxy, all_proxy) as with
  // curl(1); metadata endpoints set this to false, because a proxy must never see them.
  bool use_proxy = true;
};

using header_list = std::vector<std::pair<std::string, std::string>>;

struct http_call {
  std::string method;  // GET, PUT, POST, DELETE, ...
  std::string url;     // absolute, with the query already encoded
  header_list headers;
  std::string body;
  // Overrides http_settings::total_timeout for this exchange (an IMDS token fetch is short).
  std::optional<std::chrono::milliseconds> total_timeout;
};

struct http_reply {
  long status = 0;  // the HTTP status; 0 when no answer came (see error)
  header_list
      headers;  // names lower-cased, in arrival order (last response of a redirect-free exchange)
  std::string body;
  std::string error;  // no answer: why, in libcurl's words ("Connection refused", ...)
  bool timed_out = false;

  // The first header called `name` (any case), or "".
  [[nodiscard]] std::string header(std::string_view name) const;
};

class http_client {
 public:
  virtual ~http_client() = default;
  http_client() = default;
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // One exchange, blocking for at most the total timeout. Never throws for network trouble or
  // HTTP errors: those are in the reply. Redirects are not followed (no cloud API we call uses
  // them, and a metadata endpoint that redirects is not one to trust).
  virtual http_reply send(const http_call& call) = 0;
};

// The libcurl client. Throws std::runtime_error when libcurl cannot be set up (or ca_file does not
// exist).
[[nodiscard]] std::unique_ptr<http_client> make_curl_client(const http_settings& settings);

}  // namespace tandem::ctl::cloud
