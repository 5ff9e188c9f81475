// SPDX-License-Identifier: Apache-2.0
// libcurl behind the lease backends: one reused easy handle, hard per-call timeouts.
#include "control/quorum/http_client.h"

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <curl/curl.h>

namespace tandem::ctl::quorum {
namespace {

struct capture {
  std::string* body;
  bool truncated = false;
};

size_t on_data(char* data, size_t size, size_t count, void* user) {
  auto* c = static_cast<capture*>(user);
  const size_t n = size * count;
  if (c->body->size() + n > http_client::max_reply_body) {
    c->truncated = true;
    return 0;  // makes curl fail with CURLE_WRITE_ERROR
  }
  c->body->append(data, n);
  return n;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw std::runtime_error("curl_global_init failed");
  });
}

}  // namespace

http_client::http_client(tls_options tls) : tls_(std::move(tls)) {
  global_init();
  curl_ = curl_easy_init();
  if (curl_ == nullptr) throw std::runtime_error("curl_easy_init failed");
}

http_client::~http_client() {
  curl_easy_cleanup(static_cast<CURL*>(curl_));
}

http_reply http_client::post_json(const std::string& url, const std::string& body,
                                  std::chrono::milliseconds timeout,
                                  const std::vector<std::string>& headers) {
  return perform(url, &body, timeout, headers);
}

http_reply http_client::get(const std::string& url, std::chrono::milliseconds timeout,
                            const std::vector<std::string>& headers) {
  return perform(url, nullptr, timeout, headers);
}

http_reply http_client::perform(const std::string& url, const std::string* body,
                                std::chrono::milliseconds timeout,
                                const std::vector<std::string>& headers) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);  // keeps the connection cache
  http_reply reply;
  capture cap{&reply.body};
  char errbuf[CURL_ERROR_SIZE] = {};
  const long ms = static_cast<long>(std::max<std::chrono::milliseconds::rep>(timeout.count(), 1));

  curl_slist* list = nullptr;
  if (body != nullptr) list = curl_slist_append(list, "Content-Type: application/json");
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
  for (const auto& h : headers)
    list = curl_slist_append(list, h.c_str());

  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &cap);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  if (body != nullptr) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
  } else {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  }
  if (!tls_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, tls_.ca_file.c_str());
  if (!tls_.cert_file.empty()) curl_easy_setopt(c, CURLOPT_SSLCERT, tls_.cert_file.c_str());
  if (!tls_.key_file.empty()) curl_easy_setopt(c, CURLOPT_SSLKEY, tls_.key_file.c_str());

  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(list);
  if (rc != CURLE_OK) {
    if (cap.truncated) {
      reply.error = "answer larger than " + std::to_string(max_reply_body) + " bytes";
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
      reply.error = "timeout after " + std::to_string(ms) + " ms";
    } else {
      reply.error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    }
    reply.body.clear();
    return reply;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

std::string redact_url(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t host = scheme + 3;
  const size_t slash = url.find('/', host);
  const size_t at = url.rfind('@', slash == std::string::npos ? url.size() : slash);
  if (at == std::string::npos || at < host) return url;
  return url.substr(0, host) + url.substr(at + 1);
}

}  // namespace tandem::ctl::quorum
